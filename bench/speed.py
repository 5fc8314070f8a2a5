"""Ingest and ask, from process start to exit: docqa against the reference pipeline, side by
side in one run, each a fresh process, medians of --runs runs. Writes bench/results/speed.md
and speed.json.

    poetry run python -m bench.speed [--pdf FILE] [--runs 3] [--part ingest|ask|all]

Needs `poetry install --with bench` (the reference pipeline is LangChain's stock parts).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.report import write

ROOT = Path(__file__).resolve().parent
SHOWCASE = ROOT.parent.parent / "shared" / "data" / "manu-20f-2022-09-24.pdf"
QUESTION = "How much is the minimum guarantee payable by adidas?"

# The reference pipeline as one program: `python -c REFERENCE ingest|ask PDF INDEX`.
REFERENCE = """
import sys, time
started = time.perf_counter()
from pathlib import Path
from bench.reference import ReferencePipeline
command, pdf, index = sys.argv[1:4]
pipeline = ReferencePipeline(k=2)
if command == "ingest":  # one PDF, or every PDF below a folder
    source = Path(pdf)
    print(pipeline.ingest(sorted(source.rglob("*.pdf")) if source.is_dir() else [source]))
    pipeline._store.save_local(index)  # a pickle: fine for a benchmark, never for docqa
else:
    pipeline.load(Path(index))
    answer = pipeline.ask(sys.argv[4])
    print(answer.answer)
"""


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT.parent)
    return time.perf_counter() - started, result.stdout


def docqa_ingest(data: Path, index: Path) -> list[str]:
    return [
        sys.executable,
        "ingest.py",
        "--data",
        str(data),
        "--vectorstore",
        str(index),
        "--rebuild",
    ]


def docqa_ask(index: Path) -> list[str]:
    return [sys.executable, "main.py", QUESTION, "--vectorstore", str(index)]


def reference(command: str, pdf: Path, index: Path, *rest: str) -> list[str]:
    return [sys.executable, "-c", REFERENCE, command, str(pdf), str(index), *rest]


def compare(name: str, ours: list[str], theirs: list[str], runs: int) -> dict[str, Any]:
    """Alternate the two programs run by run, so both see the same machine."""
    times: dict[str, list[float]] = {"docqa": [], "reference": []}
    outputs = {}
    for _ in range(runs):
        for who, command in (("docqa", ours), ("reference", theirs)):
            seconds, outputs[who] = timed(command)
            times[who].append(round(seconds, 2))
            print(f"  {name} {who}: {seconds:.2f} s", flush=True)
    medians = {who: statistics.median(values) for who, values in times.items()}
    return {
        "task": name,
        "docqa_s": medians["docqa"],
        "reference_s": medians["reference"],
        "speedup": round(medians["reference"] / medians["docqa"], 1),
        "runs": times,
        "docqa_output": outputs["docqa"].strip().splitlines()[:1],
        "reference_output": outputs["reference"].strip().splitlines()[:1],
    }


WORK = ROOT / ".cache" / "speed"
DOCQA_INDEX = WORK / "docqa-index"


def run(pdf: Path, runs: int, part: str = "all") -> dict[str, list[dict[str, Any]]]:
    """docqa against the reference pipeline on `pdf`; leaves docqa's index in DOCQA_INDEX."""
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "data").mkdir(parents=True)
    (WORK / "data" / pdf.name).symlink_to(pdf.resolve())
    theirs = WORK / "reference-index"
    rows = []
    if part in ("ingest", "all"):
        rows.append(
            compare(
                "ingest",
                docqa_ingest(WORK / "data", DOCQA_INDEX),
                reference("ingest", pdf, theirs),
                runs,
            )
        )
    if part in ("ask", "all"):
        if not (DOCQA_INDEX / "CURRENT").exists():
            timed(docqa_ingest(WORK / "data", DOCQA_INDEX))
        if not theirs.exists():
            timed(reference("ingest", pdf, theirs))
        rows.append(
            compare("ask", docqa_ask(DOCQA_INDEX), reference("ask", pdf, theirs, QUESTION), runs)
        )
    sections = {"docqa against the reference pipeline": rows}
    if rows[0]["task"] == "ingest":
        sections["docqa ingest throughput"] = [ingest_rates(DOCQA_INDEX, rows[0]["docqa_s"])]
    return sections


def ingest_rates(index: Path, seconds: float) -> dict[str, Any]:
    """Pages, chunks and word pieces per second of a whole ingest that took `seconds`."""
    from docqa.index.embeddings import Embedder
    from docqa.index.store import VectorStore

    embedder = Embedder("all-MiniLM-L6-v2")
    store = VectorStore.open(index, embedder.model_id)
    texts = [chunk.text for chunk in store.chunks]
    tokens = sum(len(e.ids) for e in embedder.tokenizer.encode_batch(texts))
    pages = store.manifest.pages
    return {
        "pages": pages,
        "chunks": len(texts),
        "tokens": tokens,
        "seconds": seconds,
        "pages_per_s": round(pages / seconds, 1),
        "chunks_per_s": round(len(texts) / seconds, 1),
        "tokens_per_s": round(tokens / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdf", type=Path, default=SHOWCASE)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--part", choices=["ingest", "ask", "all"], default="all")
    args = parser.parse_args()
    heading = f"Speed on {args.pdf.name}: seconds from process start to exit, median of {args.runs}"
    print(write("speed", heading, run(args.pdf, args.runs, args.part)))


if __name__ == "__main__":
    main()
