"""Retrieval and answer quality on the 20-F: docqa against the reference pipeline, side by
side in one run. Writes bench/results/quality-PART.md and .json.

    poetry run python -m bench.quality [--part PART] [--questions FILE] [--pdf FILE]

PART: halves (the default: docqa's defaults and the reference pipeline on the tuning and the
test half of the held-out set, each measure with its 95% interval), retrieval (chunking and
search variants, no LLM) or answers (answer variants with the SmolLM2 demo model), the
variants on --questions (the tuning half unless given). Indexes are cached in bench/.cache/
by their chunk settings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from bench.report import RESULTS, write
from docqa.answer.evaluation import EvalItem, EvalReport, QASystem, evaluate, load_questions
from docqa.answer.qa import QAService
from docqa.config import Settings, load_settings
from docqa.index.ingest import ingest

ROOT = Path(__file__).resolve().parent
SHOWCASE = ROOT.parent.parent / "shared" / "data" / "manu-20f-2022-09-24.pdf"
DEPTH = 4  # hit@4 and MRR over the first 4 chunks, as the targets are stated

# Each variant changes the defaults (config.py) in one respect, so its effect shows alone.
CHUNKINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "128 tokens": {"chunk_tokens": 128, "overlap_tokens": 24},
    "254 tokens": {"chunk_tokens": 254, "overlap_tokens": 32},
    "overlap 0": {"overlap_tokens": 0},
    "overlap 64": {"overlap_tokens": 64},
    "cross-page": {"cross_page": True},
    "keep boilerplate": {"strip_boilerplate": False},
}
SEARCHES: dict[str, dict[str, Any]] = {
    "default": {},
    "vector only": {"mode": "vector"},
    "keyword only": {"mode": "keyword"},
    "vector weight 1": {"vector_weight": 1.0},
    "vector weight 0.5": {"vector_weight": 0.5},
    "mmr 0.7": {"mmr_lambda": 0.7},
    "rrf k 20": {"rrf_k": 20},
}
EVAL = ROOT.parent / "tests/eval"
HALVES = {"tuning": EVAL / "manu-20f-tuning.jsonl", "test": EVAL / "manu-20f-test.jsonl"}
# Questions reworded away from the document's own words, where keyword search is weak.
PARAPHRASED = EVAL / "manu-20f-paraphrased.jsonl"
ANSWERS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {},
    "k 2": {"retrieval": {"k": 2}},
    "evidence 1 sentence": {"answer": {"evidence_sentences": 1}},
    "evidence 3 sentences": {"answer": {"evidence_sentences": 3}},
    "reads whole passages": {"answer": {"reads": "passages"}},
    "neighbour chunks 1": {"retrieval": {"neighbours": 1}},
    "never quote": {"answer": {"quote_unsupported": False}},
    "quote from 0.9": {"answer": {"min_quote_score": 0.9}},
    "no relevance threshold": {"retrieval": {"min_score": -1.0}},
}


def settings_for(data: Path, index: Path, **sections: dict[str, Any]) -> Settings:
    overrides: dict[str, dict[str, Any]] = {"paths": {"data": data, "vectorstore": index}}
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    return load_settings(None, overrides, environ={})


def build_index(pdf: Path, chunking: dict[str, Any], cache: Path) -> Path:
    key = hashlib.sha256(json.dumps([str(pdf), chunking], sort_keys=True).encode()).hexdigest()
    index = cache / f"index-{key[:12]}"
    if not (index / "CURRENT").exists():
        data = cache / f"data-{key[:12]}"
        data.mkdir(parents=True, exist_ok=True)
        if not (data / pdf.name).exists():
            (data / pdf.name).symlink_to(pdf)
        report = ingest(settings_for(data, index, chunking=chunking))
        print(f"  indexed {report.chunks} chunks in {report.seconds:.0f} s", flush=True)
    return index


def row(name: str, report: EvalReport) -> dict[str, Any]:
    return {"variant": name, **report.metrics()}


def with_intervals(name: str, report: EvalReport) -> dict[str, Any]:
    """The report's measures as "value [low, high]", its 95% bootstrap interval."""
    intervals = report.intervals()
    cells: dict[str, Any] = {"system": name}
    for measure, value in report.metrics().items():
        interval = intervals.get(measure)
        cells[measure] = (
            f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else value
        )
    return cells


def halves_rows(pdf: Path, cache: Path) -> dict[str, list[dict[str, Any]]]:
    """docqa's defaults and the reference pipeline on each half of the held-out set."""
    from bench.reference import ReferencePipeline

    service = QAService(settings_for(pdf.parent, build_index(pdf, {}, cache)))
    service.load()
    reference = ReferencePipeline(k=2)
    reference.ingest([pdf])
    systems: list[tuple[str, QASystem]] = [
        ("docqa", service),
        ("reference (500/50 chars, vector, k=2)", reference),
    ]
    sections = {}
    for half, path in HALVES.items():
        items = load_questions(path)
        rows = []
        for name, system in systems:
            report = evaluate(system, items, DEPTH)
            rows.append(with_intervals(name, report))
            print(f"  {half}, {name}: {rows[-1]}", flush=True)
            (RESULTS / f"quality-{half}-{name.split()[0]}.json").write_text(
                json.dumps(report.to_json(), indent=1, ensure_ascii=False), encoding="utf-8"
            )
        sections[f"{half} half ({len(items)} items, {path.name})"] = rows
    return sections


def retrieval_rows(pdf: Path, items: list[EvalItem], cache: Path) -> list[dict[str, Any]]:
    paraphrased = load_questions(PARAPHRASED)
    rows = []
    for chunk_name, chunking in CHUNKINGS.items():
        print(f"chunking: {chunk_name}", flush=True)
        index = build_index(pdf, chunking, cache)
        searches = SEARCHES if chunk_name == "default" else {"default": {}}
        for search_name, search in searches.items():
            service = QAService(settings_for(pdf.parent, index, retrieval=search))
            service.load(with_llm=False)
            name = f"chunking {chunk_name}, search {search_name}"
            main = evaluate(service, items, DEPTH, answer=False).metrics()
            reworded = evaluate(service, paraphrased, DEPTH, answer=False).metrics()
            rows.append(
                {
                    "variant": name,
                    "hit@1": main["hit@1"],
                    f"hit@{DEPTH}": main[f"hit@{DEPTH}"],
                    "mrr": main["mrr"],
                    f"reworded hit@{DEPTH}": reworded[f"hit@{DEPTH}"],
                    "reworded mrr": reworded["mrr"],
                    "latency_p50_s": main["latency_p50_s"],
                }
            )
            print(f"  {rows[-1]}", flush=True)
    return rows


def answer_rows(pdf: Path, items: list[EvalItem], cache: Path) -> list[dict[str, Any]]:
    from bench.reference import ReferencePipeline

    index = build_index(pdf, {}, cache)
    rows = []
    for name, sections in ANSWERS.items():
        service = QAService(settings_for(pdf.parent, index, **sections))
        service.load()
        rows.append(row(f"docqa {name}", evaluate(service, items, DEPTH)))
        print(f"  docqa {name}: {rows[-1]}", flush=True)
    reference = ReferencePipeline(k=2)
    started = time.perf_counter()
    reference.ingest([pdf])
    print(f"  reference ingest: {time.perf_counter() - started:.0f} s", flush=True)
    result = evaluate(reference, items, DEPTH)
    rows.append(row("reference (500/50 chars, vector, k=2)", result))
    print(f"  reference: {rows[-1]}", flush=True)
    (RESULTS / "reference-answers.json").write_text(
        json.dumps(result.to_json(), indent=1, ensure_ascii=False), encoding="utf-8"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["halves", "retrieval", "answers"], default="halves")
    parser.add_argument("--questions", type=Path, default=HALVES["tuning"])
    parser.add_argument("--pdf", type=Path, default=SHOWCASE)
    args = parser.parse_args()
    pdf, cache = args.pdf.resolve(), ROOT / ".cache"
    if args.part == "halves":
        heading = f"Quality on the held-out 20-F questions (depth {DEPTH}, 95% intervals)"
        print(write("quality-halves", heading, halves_rows(pdf, cache)))
        return
    items = load_questions(args.questions)
    rows = (retrieval_rows if args.part == "retrieval" else answer_rows)(pdf, items, cache)
    heading = f"Quality on {args.questions.name} ({len(items)} items, depth {DEPTH})"
    print(write(f"quality-{args.part}", heading, {args.part: rows}))


if __name__ == "__main__":
    main()
