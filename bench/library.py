"""docqa on a library of look-alike documents, side by side with the reference pipeline:
ingest speed and peak memory, a re-ingest with nothing changed, finding the question's own
document and page among the first sources, answers right, declined and wrong, and a question's
time over a library of ~50,000 chunks against the 20-F alone.

    poetry run python -m bench.library --datasets DIR [--runs 2] [--copies 5] [--part ...]

DIR is a checkout of github.com/docugami/KG-RAG-datasets (public documents with questions, not
part of docqa): its sec-10-q, us-fed-agency-reports, ntsb-aviation-incident-accident-reports
and nih-clinical-trial-protocols collections are arranged as the question sets
tests/eval/library-*.jsonl and analyst-*.jsonl name them (sec-10-q/, agency-reports/, ntsb/,
nih/). The large library is --copies copies of it plus the 20-F, each copy's files made
distinct by a trailing PDF comment (the same text read again, not a copy docqa recognises).
Writes bench/results/library.md and library.json. Needs `poetry install --with bench`.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.memory import measure
from bench.report import write
from bench.speed import SHOWCASE, reference, timed

ROOT = Path(__file__).resolve().parent
WORK = ROOT / ".cache" / "library"
COLLECTIONS = {  # folder in the library -> the collection's documents in the datasets checkout
    "sec-10-q": "sec-10-q/data/v1/docs",
    "agency-reports": "us-fed-agency-reports/data/v1/docs",
    "ntsb": "ntsb-aviation-incident-accident-reports/data/v1/docs",
    "nih": "nih-clinical-trial-protocols/data/v1/docs",
}
SETS = ("library-test", "analyst-test")  # the halves reported; the others tuned docqa
K = 10
QUESTION = "How much is the minimum guarantee payable by adidas?"
PARTS = ("ingest", "retrieval", "answers", "large")


def arrange(datasets: Path) -> Path:
    """The library: a folder per collection, of links to the collection's documents."""
    library = WORK / "data"
    shutil.rmtree(library, ignore_errors=True)
    for name, documents in COLLECTIONS.items():
        if not (datasets / documents).is_dir():
            raise SystemExit(f"{datasets / documents} not found: is {datasets} KG-RAG-datasets?")
        (library / name).mkdir(parents=True)
        for pdf in sorted((datasets / documents).glob("*.pdf")):
            (library / name / pdf.name).symlink_to(pdf.resolve())
    return library


def copies(library: Path, count: int) -> Path:
    """`count` copies of the library, each file's bytes made distinct, and the 20-F."""
    large = WORK / f"data-x{count}"
    if (large / ".complete").exists():
        return large
    shutil.rmtree(large, ignore_errors=True)
    for copy in range(count):
        for pdf in sorted(library.rglob("*.pdf")):
            target = large / f"copy-{copy}" / pdf.relative_to(library)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(pdf.read_bytes() + f"\n% docqa bench copy {copy}\n".encode())
    if SHOWCASE.is_file():
        shutil.copy(SHOWCASE, large / SHOWCASE.name)
    (large / ".complete").touch()
    return large


def ingest_rows(library: Path, runs: int) -> list[dict[str, Any]]:
    """docqa and the reference pipeline ingesting the library, alternately, `runs` times."""
    pages = _pages(library)
    times: dict[str, list[float]] = {"docqa": [], "reference": []}
    peaks, unreadable = [], 0
    for _ in range(runs):
        result = measure(library, WORK / "docqa-index")
        times["docqa"].append(result["seconds"])
        peaks.append(result["peak_rss_mb"])
        seconds, printed = timed(reference("ingest", library, WORK / "reference-index"))
        times["reference"].append(round(seconds, 1))
        unreadable = ast.literal_eval(printed.strip().splitlines()[-1])["unreadable_files"]
    ours, theirs = (statistics.median(times[who]) for who in ("docqa", "reference"))
    unchanged = [timed(_docqa_ingest(library, WORK / "docqa-index"))[0] for _ in range(3)]
    return [
        {
            "files": len(list(library.rglob("*.pdf"))),
            "pages": pages,
            "docqa_s": ours,
            "reference_s": theirs,
            "speedup": round(theirs / ours, 2),
            "docqa_pages_per_s": round(pages / ours, 1),
            "reference_pages_per_s": round(pages / theirs, 1),
            "docqa_peak_mb": max(peaks),
            "docqa_runs_s": times["docqa"],
            "reference_runs_s": times["reference"],
            "unchanged_reingest_s": round(statistics.median(unchanged), 2),
            "files_the_reference_cannot_read": unreadable,
        }
    ]


def quality_rows(library: Path, depth: int, answer: bool = False) -> list[dict[str, Any]]:
    """Each test half through docqa and the reference pipeline: retrieval to `depth`, and with
    `answer` the answers too (each system reads its own number of passages)."""
    from bench.reference import ReferencePipeline
    from docqa.answer.evaluation import evaluate, load_questions
    from docqa.answer.qa import QAService
    from docqa.config import load_settings

    docqa = QAService(load_settings(None, {"paths": {"vectorstore": WORK / "docqa-index"}}))
    docqa.load(with_llm=answer)
    theirs = ReferencePipeline(root=library)
    theirs.load(WORK / "reference-index")
    wanted = [f"document_hit@{depth}", f"page_hit@{depth}"]
    if answer:
        wanted = ["answer_accuracy", "false_abstentions", "wrong_answers"]
    elif depth > 1:
        wanted = ["document_hit@1", *wanted, "mrr"]
    rows = []
    for name in SETS:
        items = load_questions(ROOT.parent / "tests" / "eval" / f"{name}.jsonl")
        for who, system in (("docqa", docqa), ("reference", theirs)):
            report = evaluate(system, items, depth, answer=answer)
            metrics, intervals = report.metrics(), report.intervals()
            row: dict[str, Any] = {"set": name, "system": who}
            for measure_name in wanted:
                low, high = intervals[measure_name] or (0.0, 0.0)
                row[measure_name] = f"{metrics[measure_name]:.3f} [{low:.2f}, {high:.2f}]"
            rows.append(row)
            print(row, flush=True)
    return rows


def large_rows(library: Path, count: int) -> list[dict[str, Any]]:
    """Ingest of the large library once, a re-ingest with nothing changed, and the adidas
    question over it against the 20-F alone (process start to exit, alternately, medians of
    5)."""
    from docqa.index.manifest import read_manifest

    large = copies(library, count)
    index = WORK / f"docqa-index-x{count}"
    with TreePeak() as peak:
        result = measure(large, index)
    manifest, _ = read_manifest(index)
    unchanged = [timed(_docqa_ingest(large, index))[0] for _ in range(3)]
    alone = WORK / "showcase"
    shutil.rmtree(alone, ignore_errors=True)
    (alone / "data").mkdir(parents=True)
    (alone / "data" / SHOWCASE.name).symlink_to(SHOWCASE.resolve())
    timed(_docqa_ingest(alone / "data", alone / "index"))
    asked: dict[str, list[float]] = {"large": [], "alone": []}
    for _ in range(5):
        for who, folder in (("large", index), ("alone", alone / "index")):
            command = [sys.executable, "main.py", QUESTION, "--vectorstore", str(folder)]
            asked[who].append(timed(command)[0])
    large_s, alone_s = (statistics.median(asked[who]) for who in ("large", "alone"))
    return [
        {
            "files": len(manifest.files),
            "pages": manifest.pages,
            "chunks": manifest.chunks,
            "ingest_s": result["seconds"],
            "pages_per_s": round(manifest.pages / result["seconds"], 1),
            "chunks_per_s": round(manifest.chunks / result["seconds"], 1),
            "peak_rss_mb": result["peak_rss_mb"],
            "peak_all_processes_mb": peak.megabytes,
            "unchanged_reingest_s": round(statistics.median(unchanged), 2),
            "ask_large_s": round(large_s, 2),
            "ask_20f_alone_s": round(alone_s, 2),
            "ask_difference_s": round(large_s - alone_s, 2),
        }
    ]


class TreePeak:
    """The largest memory (RSS) this process's descendants held at once, sampled every 0.2 s:
    an ingest with its embedding and reading processes."""

    def __enter__(self) -> TreePeak:
        import threading

        self.megabytes = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        import os

        own = os.getpid()
        while not self._done.wait(0.2):
            parents, rss = {}, {}
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                parents[int(entry.name)], rss[int(entry.name)] = int(stat[1]), int(stat[21])
            total = 0
            for pid in rss:
                ancestor = parents.get(pid)
                while ancestor and ancestor != own:
                    ancestor = parents.get(ancestor)
                total += rss[pid] if ancestor == own else 0
            self.megabytes = max(self.megabytes, total * os.sysconf("SC_PAGE_SIZE") // 2**20)


def _docqa_ingest(data: Path, index: Path) -> list[str]:
    return [sys.executable, "ingest.py", "--data", str(data), "--vectorstore", str(index)]


def _pages(library: Path) -> int:
    from docqa.index.formats.pdf import page_count

    return sum(page_count(pdf.read_bytes()) for pdf in library.rglob("*.pdf"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--part", nargs="*", choices=PARTS, default=list(PARTS))
    args = parser.parse_args()
    started = time.perf_counter()
    library = arrange(args.datasets)
    sections: dict[str, list[dict[str, Any]]] = {}
    if "ingest" in args.part:
        sections["Ingest of the library (medians; peak memory of the ingest process)"] = (
            ingest_rows(library, args.runs)
        )
    if "retrieval" in args.part:
        sections["The question's own document and page among the first 4 sources"] = quality_rows(
            library, 4
        )
        sections[f"Retrieval to depth {K}, test halves, 95% intervals"] = quality_rows(library, K)
    if "answers" in args.part:
        sections["Answers, test halves (demo model), 95% intervals"] = quality_rows(
            library, 4, answer=True
        )
    if "large" in args.part:
        sections[f"{args.copies} copies of the library and the 20-F"] = large_rows(
            library, args.copies
        )
    minutes = (time.perf_counter() - started) / 60
    heading = f"docqa on a library of look-alike documents ({minutes:.0f} minutes)"
    print(write("library", heading, sections))


if __name__ == "__main__":
    main()
