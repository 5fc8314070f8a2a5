"""What answering produces, for every front end: sources, answers, timings, the event stream
(sources, token, answer, timings, error), and their JSON form."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from docqa.errors import DocqaError

if TYPE_CHECKING:
    from docqa.index.identity import DocumentIdentity
    from docqa.llm.engine import Completion

# How grounding changed the model's text: citations added, unsupported text cut, the best
# evidence quoted instead, or the answer declined.
Revision = Literal["cited", "trimmed", "quoted", "declined"]


@dataclass(frozen=True)
class Source:
    n: int  # the number the model saw the passage under
    source: str
    page: int
    text: str
    score: float
    also: tuple[str, ...] = ()  # other names of the same file
    ocr: bool = False  # the page's text was read from its image
    document: DocumentIdentity | None = None  # what the file is
    locator: str = ""  # where in the file ("slide 3: Budget", "Sheet1, rows 2-40"); "" for a page
    quote: str = ""  # the passage's sentence the answer rests on, shown highlighted

    @property
    def where(self) -> str:
        """Where the passage is, as sources are shown: its locator, else its page."""
        return self.locator or f"page {self.page}"

    @property
    def paged(self) -> bool:
        """Whether its file's units are pages (a PDF): then `page` is a page number."""
        from docqa.index.formats import format_of

        found = format_of(self.source)
        return found is not None and found.paged


@dataclass(frozen=True)
class Timings:
    """One request's times, in seconds from its start: not counting loading the models."""

    retrieve_s: float
    first_token_s: float | None  # None when no answer was generated
    generate_s: float | None
    total_s: float


@dataclass(frozen=True)
class Turn:
    """One finished exchange of a conversation, as later prompts show it to the model."""

    question: str
    answer: str
    query: str = ""  # the stand-alone question retrieval used for it


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str | None  # None with retrieve-only
    sources: list[Source]
    timings: Timings
    query: str = ""  # the stand-alone question retrieval used (a follow-up made whole)
    abstained: bool = False  # the answer says the documents do not say
    completion: Completion | None = None  # None when the LLM was not called
    raw_answer: str | None = None  # the model's text before grounding: what was streamed
    revision: Revision | None = None  # how grounding changed the streamed text
    dropped: int = 0  # retrieved passages left out because the context was full
    history_dropped: int = 0  # earlier turns left out of the prompt for room
    model_path: Path | None = None
    backend: str | None = None
    profile: str | None = None  # the reader profile the answer was prepared with
    read: tuple[str, ...] = ()  # the passages' texts the model read (empty: it read none)


@dataclass(frozen=True)
class SourcesEvent:
    sources: list[Source]
    query: str
    kind: Literal["sources"] = "sources"


@dataclass(frozen=True)
class TokenEvent:
    text: str
    kind: Literal["token"] = "token"


@dataclass(frozen=True)
class AnswerEvent:
    answer: Answer
    kind: Literal["answer"] = "answer"


@dataclass(frozen=True)
class TimingsEvent:
    timings: Timings
    kind: Literal["timings"] = "timings"


@dataclass(frozen=True)
class ErrorEvent:
    error: DocqaError
    kind: Literal["error"] = "error"


Event = SourcesEvent | TokenEvent | AnswerEvent | TimingsEvent | ErrorEvent


def final_answer(events: Iterable[Event]) -> Answer:
    """The answer an event stream ends with; raises the error of an error event."""
    for event in events:
        if isinstance(event, ErrorEvent):
            raise event.error
        if isinstance(event, AnswerEvent):
            return event.answer
    raise AssertionError("the answer stream ended without an answer")


def sources_dict(sources: list[Source]) -> list[dict[str, Any]]:
    return [
        {
            "n": s.n,
            "source": s.source,
            "also": list(s.also),
            "page": s.page if s.paged else None,
            "locator": s.where,
            "ocr": s.ocr,
            "text": s.text,
            "quote": s.quote,
            "score": round(s.score, 4),
            "document": s.document.as_dict() if s.document else None,
        }
        for s in sources
    ]


def timings_dict(timings: Timings) -> dict[str, float | None]:
    return {
        name: None if value is None else round(value, 3) for name, value in vars(timings).items()
    }


def answer_dict(answer: Answer) -> dict[str, Any]:
    """The answer as one JSON object; no "answer" key when nothing was generated."""
    document: dict[str, Any] = {"question": answer.question, "query": answer.query}
    if answer.answer is not None:
        document["answer"] = answer.answer
        document["abstained"] = answer.abstained
        document["revised"] = answer.revision is not None
        document["revision"] = answer.revision
    document["sources"] = sources_dict(answer.sources)
    document["timings"] = timings_dict(answer.timings)
    document["model"] = {
        "file": answer.model_path.name if answer.model_path else None,
        "backend": answer.backend,
        "profile": answer.profile,
    }
    if answer.completion:
        c = answer.completion
        document["usage"] = {
            "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens,
            "tokens_per_s": None if c.tokens_per_s is None else round(c.tokens_per_s, 1),
            "first_token_s": None if c.first_token_s is None else round(c.first_token_s, 3),
            "finish_reason": c.finish_reason,
        }
        document["raw_answer"] = answer.raw_answer
        document["dropped_sources"] = answer.dropped
        document["dropped_turns"] = answer.history_dropped
    return document


def event_dict(event: Event) -> dict[str, Any]:
    """One event as a JSON object with its "event" name."""
    match event:
        case SourcesEvent():
            return {
                "event": "sources",
                "query": event.query,
                "sources": sources_dict(event.sources),
            }
        case TokenEvent():
            return {"event": "token", "text": event.text}
        case AnswerEvent():
            return {"event": "answer", **answer_dict(event.answer)}
        case TimingsEvent():
            return {"event": "timings", **timings_dict(event.timings)}
        case ErrorEvent():
            return {
                "event": "error",
                "message": str(event.error),
                "code": int(event.error.exit_code),
            }
