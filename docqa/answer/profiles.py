"""Reader profiles: how much of the retrieved text the LLM reads, chosen from the model's size.

A 135M model answers best from the two sentences that best match the question, and its answer
is kept only when it says what the best of them says; a model of a billion parameters or more
reads whole passages, more of them, in a bounded prompt. Any of these set in the settings wins
over the profile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from docqa.config import Settings
from docqa.errors import ModelError
from docqa.llm.header import ModelShape, model_shape
from docqa.llm.models import resolve_model_path

ProfileName = Literal["evidence", "passages"]
PASSAGES_FROM_PARAMETERS = 1_000_000_000
PASSAGES_FROM_CONTEXT = 2048  # a shorter context holds whole passages badly


@dataclass(frozen=True)
class ReaderProfile:
    name: ProfileName
    reads: Literal["evidence", "passages"]
    k: int  # chunks retrieved
    context_tokens: int | None  # passages' share of the prompt; None: all the room there is
    must_match_best: bool  # an answer that disagrees with the best evidence sentence is replaced

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


PROFILES: dict[ProfileName, ReaderProfile] = {
    "evidence": ReaderProfile("evidence", "evidence", 4, None, must_match_best=True),
    "passages": ReaderProfile("passages", "passages", 3, 1024, must_match_best=False),
}


def choose_profile(settings: Settings, shape: ModelShape | None) -> ReaderProfile:
    """The configured profile (auto: by the model's shape; evidence when it is unknown), with
    each setting given explicitly in place of the profile's."""
    name = settings.answer.profile
    if name == "auto":
        big = shape is not None and shape.parameters >= PASSAGES_FROM_PARAMETERS
        context = settings.llm.context_length or (shape.context_length if shape else None)
        short = (context or PASSAGES_FROM_CONTEXT) < PASSAGES_FROM_CONTEXT
        name = "passages" if big and not short else "evidence"
    profile = PROFILES[name]
    return replace(
        profile,
        reads=settings.answer.reads or profile.reads,
        k=settings.retrieval.k or profile.k,
        context_tokens=settings.answer.context_tokens or profile.context_tokens,
    )


def profile_for(
    settings: Settings, model: Path | None = None, explicit: bool = False
) -> ReaderProfile:
    """The profile for `model` (default: the file the settings name, or the demo model that
    stands in for it), read from its header; the evidence profile when there is no model."""
    try:
        path = model or resolve_model_path(settings.llm.model, explicit)[0]
        shape = model_shape(path, settings.llm.model_type)
    except ModelError:
        shape = None
    return choose_profile(settings, shape)
