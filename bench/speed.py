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
if command == "ingest":
    print(pipeline.ingest([Path(pdf)]))
    pipeline._store.save_local(index)  # a pickle: fine for a benchmark, never for docqa
else:
    from langchain_community.vectorstores import FAISS
    pipeline._store = FAISS.load_local(index, pipeline._embeddings,
                                       allow_dangerous_deserialization=True)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdf", type=Path, default=SHOWCASE)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--part", choices=["ingest", "ask", "all"], default="all")
    args = parser.parse_args()
    work = ROOT / ".cache" / "speed"
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    (work / "data" / args.pdf.name).symlink_to(args.pdf.resolve())
    ours, theirs = work / "docqa-index", work / "reference-index"
    rows = []
    if args.part in ("ingest", "all"):
        rows.append(
            compare(
                "ingest",
                docqa_ingest(work / "data", ours),
                reference("ingest", args.pdf, theirs),
                args.runs,
            )
        )
    if args.part in ("ask", "all"):
        if not (ours / "CURRENT").exists():
            timed(docqa_ingest(work / "data", ours))
        if not theirs.exists():
            timed(reference("ingest", args.pdf, theirs))
        rows.append(
            compare("ask", docqa_ask(ours), reference("ask", args.pdf, theirs, QUESTION), args.runs)
        )
    heading = f"Speed on {args.pdf.name}: seconds from process start to exit, median of {args.runs}"
    print(write("speed", heading, {"docqa against the reference pipeline": rows}))


if __name__ == "__main__":
    main()
