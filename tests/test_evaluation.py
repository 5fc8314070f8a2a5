"""Evaluation metrics on a scripted system, and the validation of questions files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docqa.answer.evaluation import EvalItem, EvalReport, ItemResult, evaluate, load_questions
from docqa.answer.measures import paired_difference
from docqa.answer.qa import Answer, QAService, Timings
from docqa.config import load_settings
from docqa.errors import UsageError
from docqa.index.ingest import ingest
from docqa.index.store import Hit
from tests.fixtures.pdfs import write_pdf


def item(id_: str, answers: list[str], pages: list[int], kind: str = "number") -> EvalItem:
    return EvalItem.model_validate(
        {"id": id_, "question": f"q{id_}?", "answers": answers, "pages": pages, "kind": kind}
    )


class Scripted:
    """Retrieval and answers fixed per question."""

    def __init__(self, script: dict[str, tuple[list[int], str]]) -> None:
        self.script = script

    def search(self, question: str, k: int | None = None) -> list[Hit]:
        pages, _ = self.script[question]
        return [Hit("doc.pdf", page, f"text of page {page}", 0.5) for page in pages][:k]

    def ask(self, question: str, k: int | None = None) -> Answer:
        pages, text = self.script[question]
        read = tuple(f"text of page {page}" for page in pages[:2])
        return Answer(
            question, text, [], Timings(0, 0, 0, 0), abstained="do not say" in text, read=read
        )


def test_metrics() -> None:
    items = [
        item("1", ["£750 million"], [53]),
        item("2", ["1 August 2015"], [42]),
        item("3", ["74,240"], [60]),
        item("4", [], [], "unanswerable"),
        item("5", [], [], "unanswerable"),
    ]
    system = Scripted(
        {
            "q1?": ([53, 7, 8, 9], "It is £ 750 Million [1]."),
            "q2?": ([5, 42, 7, 8], "It began in 2016."),
            "q3?": ([1, 2, 3, 4], "The documents do not say."),
            "q4?": ([1, 2, 3, 4], "The documents do not say."),
            "q5?": ([1, 2, 3, 4], "It is 12."),
        }
    )
    report = evaluate(system, items, k=4)
    metrics = report.metrics()
    hits = (metrics["hit@1"], metrics["hit@2"], metrics["hit@4"])
    assert (*hits, metrics["mrr"]) == (0.3333, 0.6667, 0.6667, 0.5)
    assert metrics["answer_accuracy"] == 0.3333
    assert metrics["abstention_accuracy"] == 0.5
    assert metrics["false_abstentions"] == 0.3333
    assert metrics["latency_p50_s"] is not None
    assert "hit@4" in report.table()
    markdown = report.markdown("title", {"k": 4})
    assert markdown.startswith("# title")
    assert "| 1 | number | 1 | yes |" in markdown
    assert json.loads(json.dumps(report.to_json()))["items"][1]["rank"] == 2


class Library:
    """Retrieval over several files: (file, page) per rank, fixed per question."""

    def __init__(self, script: dict[str, list[tuple[str, int, str]]]) -> None:
        self.script = script

    def search(self, question: str, k: int | None = None) -> list[Hit]:
        return [Hit(f, p, text, 0.5) for f, p, text in self.script[question]][:k]

    def ask(self, question: str, k: int | None = None) -> Answer:
        text = {"qa?": "It was 81,797 [1].", "qb?": "It was 12 [1].", "qc?": "It was 7 [1]."}
        return Answer(question, text[question], [], Timings(0, 0, 0, 0))


def test_document_and_page_hits_and_wrong_answers() -> None:
    def filed(id_: str, source: str, page: int) -> EvalItem:
        return EvalItem(
            id=id_, question=f"q{id_}?", answers=["81,797"], pages=[page], kind="number",
            source=source,
        )  # fmt: skip

    items = [
        filed("a", "aapl-q3.pdf", 4),
        filed("b", "aapl-q3.pdf", 4),
        EvalItem(id="c", question="qc?", answers=[], pages=[], kind="unanswerable"),
    ]
    system = Library(
        {
            # the right filing second, on the right page
            "qa?": [("msft.pdf", 4, "x"), ("aapl-q3.pdf", 4, "y"), ("aapl-q2.pdf", 1, "z")],
            # the answer's figure in another filing is no hit; the right filing on another page
            "qb?": [("aapl-q2.pdf", 9, "81,797"), ("aapl-q3.pdf", 7, "w")],
            "qc?": [("msft.pdf", 1, "v")],
        }
    )
    report = evaluate(system, items, k=2)
    metrics = report.metrics()
    assert (metrics["document_hit@1"], metrics["document_hit@2"]) == (0.0, 1.0)
    assert metrics["page_hit@2"] == 0.5
    assert metrics["hit@2"] == 0.5  # "81,797" outside the filing asked about does not count
    assert metrics["answer_accuracy"] == 0.5
    assert metrics["wrong_answers"] == pytest.approx(2 / 3, abs=1e-4)  # b's, and c answered
    intervals = report.intervals()
    assert intervals["document_hit@2"] == (1.0, 1.0)
    first = report.items_json()[0]
    assert (first["document_rank"], first["page_rank"], first["source"]) == (2, 2, "aapl-q3.pdf")


def test_context_recall_intervals_and_paired_differences() -> None:
    items = [item(str(n), [f"page {n}"], [n]) for n in range(1, 21)]
    # Items 1-10 have their page read first; 11-20 only retrieved third (not read).
    script = {f"q{n}?": ([n, 99, 98] if n <= 10 else [99, 98, n], "x") for n in range(1, 21)}
    report = evaluate(Scripted(script), items, k=4)
    metrics, intervals = report.metrics(), report.intervals()
    assert metrics["context_recall"] == metrics["hit@2"] == 0.5
    interval = intervals["context_recall"]
    assert interval is not None
    low, high = interval
    assert low < 0.5 < high
    assert intervals["hit@4"] == (1.0, 1.0)
    assert intervals == report.intervals(), "the same seed: the same interval"
    better = {f"q{n}?": ([n, 99, 98], "x") for n in range(1, 21)}
    improved = evaluate(Scripted(better), items, k=4)
    differences = paired_difference(improved.items_json(), report.items_json(), 4, True)
    assert differences["context_recall"]["difference"] == 0.5
    assert differences["context_recall"]["interval"][0] > 0  # beyond noise
    assert differences["hit@4"] == {"difference": 0.0, "interval": (0.0, 0.0), "items": 20}


def test_a_chunk_holding_the_answer_is_a_hit_on_any_page() -> None:
    system = Scripted({"q1?": ([9], "x")})
    system.search = lambda question, k=None: [Hit("d.pdf", 9, "it is £750 million", 0.5)]  # type: ignore[method-assign]
    assert (
        evaluate(system, [item("1", ["£750 million"], [53])], k=4, answer=False).results[0].rank
        == 1
    )


@pytest.mark.slow
def test_a_listed_page_of_another_file_is_no_hit(tmp_path: Path) -> None:
    write_pdf(
        tmp_path / "data" / "orchard.pdf",
        ["Harbour Lane Orchard Cooperative.", "The harvest festival is held in the cider barn."],
    )
    write_pdf(
        tmp_path / "data" / "travel" / "ferries.pdf",
        ["The ferry from Oban takes 46 minutes.", "The first sailing leaves Oban at 07:15."],
    )
    settings = load_settings(
        None,
        {"paths": {"data": tmp_path / "data", "vectorstore": tmp_path / "vs"}},
        environ={},
    )
    ingest(settings)
    service = QAService(settings)
    question = "Where is the harvest festival held?"
    assert [(h.source, h.page) for h in service.search(question, 1)] == [("orchard.pdf", 2)]

    def rank(source: str | None) -> int | None:
        # An answer no chunk holds, so only the page (and file) can make a hit.
        listed = EvalItem(
            id="1", question=question, answers=["a barn"], pages=[2], kind="fact", source=source
        )
        return evaluate(service, [listed], k=4, answer=False).results[0].rank

    assert rank(None) == 1
    assert rank("orchard.pdf") == 1
    wrong_file = rank("travel/ferries.pdf")
    assert wrong_file is not None
    assert wrong_file > 1
    assert [(h.source, h.page) for h in service.search(question, 4)][wrong_file - 1] == (
        "travel/ferries.pdf",
        2,
    )


@pytest.mark.parametrize(
    ("count", "p50", "p95"),
    # 5 and 30: round() (half to even) takes 2.5 to 2 and 28.5 to 28, one item too low.
    [(5, 3, 5), (30, 15, 29), (20, 10, 19), (1, 1, 1)],
)
def test_latency_percentiles_are_nearest_rank(count: int, p50: float, p95: float) -> None:
    report = EvalReport(k=4, answered=False)
    report.results = [
        ItemResult(item(str(n), ["x"], [1]), None, [], seconds=float(n))
        for n in range(count, 0, -1)
    ]
    metrics = report.metrics()
    assert (metrics["latency_p50_s"], metrics["latency_p95_s"]) == (p50, p95)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"id": "a", "question": "q", "answers": [], "pages": [], "kind": "number"}',
            "unanswerable items, and only they, have no answers",
        ),
        (
            '{"id": "a", "question": "q", "answers": ["x"], "pages": [0], "kind": "number"}',
            "pages are 1-based",
        ),
        ('{"id": "a", "question": "q", "answers": ["x"], "pages": [1], "kind": "guess"}', "kind"),
        ("not json", "line 1"),
    ],
)
def test_bad_questions_files_say_where(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(UsageError, match=message):
        load_questions(path)


def test_ids_must_be_unique(tmp_path: Path) -> None:
    line = '{"id": "a", "question": "q", "answers": ["x"], "pages": [1], "kind": "fact"}\n'
    path = tmp_path / "q.jsonl"
    path.write_text(line * 2)
    with pytest.raises(UsageError, match="unique"):
        load_questions(path)
