"""What one question is answered from: the sources found, the evidence picked, and the prompt
fitted into the model's context."""

from __future__ import annotations

from dataclasses import dataclass, field

from docqa.answer.evidence import Evidence
from docqa.answer.grounding import ABSTENTION
from docqa.answer.prompts import Passage
from docqa.answer.results import Source
from docqa.answer.routing import Route
from docqa.errors import UsageError
from docqa.index.store import Hit


@dataclass(frozen=True)
class Context:
    question: str  # what the model is asked, as the user asked it
    query: str  # the stand-alone question retrieval and evidence used
    sources: list[Source]  # the retrieved chunks that fit, numbered as the model sees them
    reading: list[Passage]  # what the model reads of them: n, source, page, text
    evidence: list[Evidence]  # every sentence of the sources, best first
    prompt: str  # the prompt the model reads, earlier turns included
    dropped: int = 0  # passages left out for room
    history_dropped: int = 0  # earlier turns left out for room
    decline: bool = False  # nothing relevant was found: answer without the LLM...
    declined: str = ABSTENTION  # ...with this
    route: Route = field(default_factory=Route)  # the documents the question names

    @classmethod
    def declining(
        cls,
        question: str,
        query: str,
        sources: list[Source],
        evidence: list[Evidence],
        declined: str,
        route: Route,
    ) -> Context:
        """A context answered without the LLM, with `declined`."""
        return cls(
            question, query, sources, [], evidence, "", decline=True, declined=declined, route=route
        )


def sources_of(hits: list[Hit], texts: list[str] | None = None) -> list[Source]:
    """Hits as numbered sources, with their passage texts when those differ from the chunk's."""
    return [
        Source(
            n,
            hit.source,
            hit.page,
            texts[n - 1] if texts else hit.text,
            hit.score,
            hit.also,
            hit.ocr,
            hit.document,
            hit.locator,
        )
        for n, hit in enumerate(hits, start=1)
    ]


def clean_question(question: str) -> str:
    question = " ".join(question.split())
    if not question:
        raise UsageError('the question is empty: ask something, e.g. "What is ...?"')
    return question
