"""Evaluation: retrieval hit rates, answer and abstention accuracy, latency, on a question set."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from docqa.answer import measures as measure
from docqa.answer.qa import Answer
from docqa.errors import UsageError
from docqa.index.store import Hit
from docqa.text import contains

Kind = Literal["number", "name", "date", "fact", "unanswerable"]


class EvalItem(BaseModel):
    """One line of a questions file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    question: str
    answers: list[str]
    pages: list[int]
    kind: Kind
    # The file the pages are in, as sources name it (its path below the data folder); without
    # it a listed page of any file counts.
    source: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EvalItem:
        if (self.kind == "unanswerable") != (not self.answers):
            raise ValueError("unanswerable items, and only they, have no answers")
        if self.kind == "unanswerable" and self.pages:
            raise ValueError("unanswerable items list no pages")
        if any(page < 1 for page in self.pages):
            raise ValueError("pages are 1-based")
        if self.source is not None and not self.source.strip():
            raise ValueError("source, when given, names a file")
        return self

    def on_listed_page(self, hit: Hit) -> bool:
        """Whether the hit is on one of the listed pages (of the listed file, if any)."""
        return hit.page in self.pages and self.in_listed_file(hit)

    def in_listed_file(self, hit: Hit) -> bool:
        """Whether the hit is from the listed file (any file, when none is listed)."""
        return self.source is None or self.source in (hit.source, *hit.also)

    def hits(self, hit: Hit) -> bool:
        """A retrieved chunk that answers: on a listed page, or holding an acceptable answer
        (in the listed file, when one is listed)."""
        if self.on_listed_page(hit):
            return True
        return bool(self.answers) and self.in_listed_file(hit) and contains(hit.text, self.answers)

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"


def load_questions(path: Path) -> list[EvalItem]:
    """Read a JSONL questions file, with the line number of the first bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read questions file {path} ({exc.strerror})") from exc
    items = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                items.append(EvalItem.model_validate_json(line))
            except ValidationError as exc:
                problem = exc.errors()[0]
                where = ".".join(str(part) for part in problem["loc"]) or "line"
                raise UsageError(f"{path}, line {number}: {where}: {problem['msg']}") from exc
    if not items:
        raise UsageError(f"{path} holds no questions")
    if len({item.id for item in items}) != len(items):
        raise UsageError(f"{path}: ids must be unique")
    return items


@dataclass(frozen=True)
class ItemResult:
    item: EvalItem
    rank: int | None  # 1-based rank of the first retrieved chunk that hits; None: no hit
    retrieved: list[tuple[str, int, float]]  # (source, page, score) in rank order
    seconds: float
    answer: str | None = None
    abstained: bool | None = None
    read: tuple[str, ...] | None = None  # what the LLM read; None without answering
    document_rank: int | None = None  # of the first chunk from the listed file
    page_rank: int | None = None  # of the first chunk on a listed page of the listed file

    @property
    def context_hit(self) -> bool | None:
        """Whether an acceptable answer is in what the LLM read (answerable items)."""
        if self.read is None or not self.item.answerable:
            return None
        return contains("\n".join(self.read), self.item.answers)

    @property
    def correct(self) -> bool | None:
        """Answerable: the answer holds an acceptable answer. Unanswerable: it abstained."""
        if self.answer is None:
            return None
        if not self.item.answerable:
            return bool(self.abstained)
        return not self.abstained and contains(self.answer, self.item.answers)


@dataclass
class EvalReport:
    k: int
    answered: bool
    results: list[ItemResult] = field(default_factory=list)

    def metrics(self) -> dict[str, float | int | None]:
        answerable = [r for r in self.results if r.item.answerable]
        seconds = sorted(r.seconds for r in self.results)
        values: dict[str, float | int | None] = {
            "items": len(self.results),
            "answerable": len(answerable),
            "unanswerable": len(self.results) - len(answerable),
            "k": self.k,
        }
        per_item = self.item_values()
        for name in measure.measures(self.k, self.answered):
            values[name] = measure.mean([item[name] for item in per_item])
        values["latency_p50_s"] = round(measure.percentile(seconds, 50), 3) if seconds else None
        values["latency_p95_s"] = round(measure.percentile(seconds, 95), 3) if seconds else None
        return values

    def item_values(self) -> list[dict[str, float | None]]:
        return [measure.item_values(item, self.k) for item in self.items_json()]

    def intervals(self) -> dict[str, tuple[float, float] | None]:
        """95% bootstrap intervals of each measure, items resampled."""
        per_item = self.item_values()
        return {
            name: measure.bootstrap([item[name] for item in per_item])
            for name in measure.measures(self.k, self.answered)
        }

    def items_json(self) -> list[dict[str, Any]]:
        return [
            {
                "id": r.item.id,
                "kind": r.item.kind,
                "question": r.item.question,
                "source": r.item.source,
                "rank": r.rank,
                "document_rank": r.document_rank,
                "page_rank": r.page_rank,
                "retrieved": [
                    {"source": s, "page": p, "score": round(v, 4)} for s, p, v in r.retrieved
                ],
                "answer": r.answer,
                "abstained": r.abstained,
                "correct": r.correct,
                "context_hit": r.context_hit,
                "seconds": round(r.seconds, 3),
            }
            for r in self.results
        ]

    def to_json(self) -> dict[str, object]:
        return {
            "metrics": self.metrics(),
            "intervals": self.intervals(),
            "items": self.items_json(),
        }

    def table(self) -> str:
        """The metrics, with their 95% intervals, as an aligned table for the terminal."""
        rows = self._rows()
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)

    def _rows(self) -> list[tuple[str, str]]:
        intervals = self.intervals()
        rows = []
        for name, value in self.metrics().items():
            interval = intervals.get(name)
            shown = _show(value) + (f"  [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")
            rows.append((name, shown))
        return rows

    def markdown(self, title: str, settings: dict[str, object]) -> str:
        lines = [f"# {title}", "", "| metric | value [95% interval] |", "| --- | --- |"]
        lines += [f"| {name} | {value} |" for name, value in self._rows()]
        lines += ["", "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()), ""]
        lines += ["| id | kind | rank | correct | answer | retrieved pages |", "| --- " * 6 + "|"]
        for r in self.results:
            answer = (r.answer or "").replace("\n", " ").replace("|", "\\|")[:120]
            pages = ", ".join(str(page) for _, page, _ in r.retrieved)
            lines.append(
                f"| {r.item.id} | {r.item.kind} | {r.rank or '-'} | {_show(r.correct)} | "
                f"{answer} | {pages} |"
            )
        return "\n".join(lines) + "\n"


class QASystem(Protocol):
    """What evaluation needs: docqa's QAService, or the reference pipeline in bench/."""

    def search(self, question: str, k: int | None = None) -> list[Hit]: ...
    def ask(self, question: str, k: int | None = None) -> Answer: ...


def evaluate(
    system: QASystem,
    items: list[EvalItem],
    k: int,
    answer: bool = True,
    on_result: Callable[[ItemResult], None] | None = None,
) -> EvalReport:
    """Run every item through retrieval to depth k and, if `answer`, through answering (with
    the system's own number of passages). Load the system's models before calling this."""
    report = EvalReport(k=k, answered=answer)
    for item in items:
        started = time.perf_counter()
        hits = system.search(item.question, k)
        if answer:  # latency is what a user waits for: the answer, or else the search
            started = time.perf_counter()
        response: Answer | None = system.ask(item.question) if answer else None
        retrieved = [(hit.source, hit.page, hit.score) for hit in hits]
        listed = item.answerable and item.source is not None
        result = ItemResult(
            item=item,
            rank=_first(hits, item.hits),
            retrieved=retrieved,
            document_rank=_first(hits, item.in_listed_file) if listed else None,
            page_rank=_first(hits, item.on_listed_page) if listed else None,
            seconds=time.perf_counter() - started,
            answer=response.answer if response else None,
            abstained=response.abstained if response else None,
            read=response.read if response else None,
        )
        report.results.append(result)
        if on_result:
            on_result(result)
    return report


def _first(hits: list[Hit], found: Callable[[Hit], bool]) -> int | None:
    """The 1-based rank of the first hit `found` accepts; None when none is."""
    return next((n for n, hit in enumerate(hits, start=1) if found(hit)), None)


def _show(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
