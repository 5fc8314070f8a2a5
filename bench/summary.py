"""The README's Speed and Quality summary, written from bench/results/ (cog runs it: `make
docs`). Each line is one run's figures, with the machine and the day it ran on."""

from __future__ import annotations

import json
from typing import Any

from bench.report import RESULTS


def readme_summary() -> str:
    lines = [_speed(), _quality(), *_library()]
    return "\n".join(f"- {line}" for line in lines if line)


def _speed() -> str:
    latest = _load("latest")
    ingest, ask = latest["speed"]["docqa against the reference pipeline"]
    return (
        f"Ingest of the 20-F (177 pages) {ingest['docqa_s']:.2f} s against the reference "
        f"pipeline's {ingest['reference_s']:.2f} s ({ingest['speedup']}x); a question from "
        f"process start to exit {ask['docqa_s']:.2f} s against {ask['reference_s']:.2f} s "
        f"({ask['speedup']}x). Medians of 3, `make bench`, {_run(latest)}."
    )


def _quality() -> str:
    halves = _load("quality-halves")
    half = next(rows for title, rows in halves.items() if title.startswith("test half"))
    ours, theirs = half[0], half[1]
    measures = [
        ("hit@4", "hit@4"),
        ("MRR", "mrr"),
        ("answers right", "answer_accuracy"),
        ("wrong", "wrong_answers"),
    ]
    shown = ", ".join(f"{name} {_value(ours[key])}" for name, key in measures)
    reference = ", ".join(_value(theirs[key]) for _, key in measures)
    return (
        f"20-F test half (82 questions, demo model): {shown} (reference: {reference}). "
        f"`make quality`, {_run(halves)}; intervals in bench/results/quality-halves.md."
    )


def _library() -> list[str]:
    library = _load("library")
    retrieval = library["The question's own document and page among the first 4 sources"]
    answers = library["Answers, test halves (demo model), 95% intervals"]
    lines = []
    run = f"`python -m bench.library`, {_run(library)}"
    for name in ("library-test", "analyst-test"):
        ours, theirs = (
            next(row for row in retrieval if row["set"] == name and row["system"] == who)
            for who in ("docqa", "reference")
        )
        wrong = {
            row["system"]: _value(row["wrong_answers"]) for row in answers if row["set"] == name
        }
        lines.append(
            f"Library, {name}: the question's document among the first 4 sources "
            f"{_value(ours['document_hit@4'])} (reference {_value(theirs['document_hit@4'])}), "
            f"its page {_value(ours['page_hit@4'])} ({_value(theirs['page_hit@4'])}), wrong "
            f"answers {wrong['docqa']} ({wrong['reference']}). {run}."
        )
    (ingest,) = library["Ingest of the library (medians; peak memory of the ingest process)"]
    (large,) = next(rows for title, rows in library.items() if title.endswith("and the 20-F"))
    lines.append(
        f"Library ingest: {ingest['pages']:,} pages at {ingest['docqa_pages_per_s']} pages/s "
        f"(reference {ingest['reference_pages_per_s']}); {large['pages']:,} pages "
        f"({large['chunks']:,} chunks) at {large['pages_per_s']} pages/s, the ingest process "
        f"peaking at {large['peak_rss_mb']:,} MB ({large['peak_all_processes_mb']:,} MB with its "
        f"reading and embedding processes); a question over them "
        f"{large['ask_difference_s']:+.2f} s against the 20-F alone. {run}."
    )
    return lines


def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8")))


def _run(results: dict[str, Any]) -> str:
    return f"{results['machine']}, {results['date'][:10]}"


def _value(cell: object) -> str:
    """A measure without its interval: "0.971 [0.93, 1.00]" -> "0.971"."""
    return str(cell).split(" [")[0]
