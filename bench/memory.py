"""Peak memory of ingesting a growing corpus of generated PDFs, to check that it stays bounded.

    poetry run python -m bench.memory [--files 20 200] [--pages 50]

Each size is a fresh `ingest.py` process on its own folder of distinct generated PDFs (every
file different, so none is skipped as a copy). Writes bench/results/memory.md and .json.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.report import write
from tests.fixtures.pdfs import write_pdf

ROOT = Path(__file__).resolve().parent
WORDS = [
    "ledger",
    "harbour",
    "quarry",
    "orchard",
    "canal",
    "ferry",
    "beacon",
    "granary",
    "mill",
    "forge",
    "tannery",
    "wharf",
    "vicarage",
    "toll",
    "bridge",
    "meadow",
    "weir",
    "lock",
    "sluice",
    "barge",
    "cooper",
    "chandler",
]


def page_text(rng: random.Random, file: int, page: int) -> str:
    sentences = [
        f"Record {file}-{page}-{n}: the {rng.choice(WORDS)} at {rng.choice(WORDS)} "
        f"held {rng.randint(1, 99_999)} {rng.choice(WORDS)}s in {rng.randint(1800, 2024)}."
        for n in range(8)
    ]
    return " ".join(sentences)


def corpus(folder: Path, files: int, pages: int) -> Path:
    """`files` distinct PDFs of `pages` pages each (made once, then reused)."""
    for file in range(files):
        path = folder / f"report-{file:04d}.pdf"
        if not path.exists():
            rng = random.Random(file)
            write_pdf(path, [page_text(rng, file, page) for page in range(pages)])
    return folder


def measure(data: Path, index: Path) -> dict[str, Any]:
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT.parent / "ingest.py"),
            "--data",
            str(data),
            "--vectorstore",
            str(index),
            "--rebuild",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # largest child so far
    size = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
    return {
        "summary": result.stdout.splitlines()[0],
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_kb / 1024),
        "index_mb": round(size / 2**20, 1),
    }


def run(files: list[int], pages: int) -> dict[str, list[dict[str, Any]]]:
    """Ingest `files` distinct PDFs of `pages` pages, for each count, in a fresh process."""
    rows = []
    for count in sorted(files):  # ascending, so each child's peak is the running maximum
        data = corpus(ROOT / ".cache" / f"corpus-{pages}p", count, pages)
        subset = ROOT / ".cache" / f"subset-{count}x{pages}"
        subset.mkdir(parents=True, exist_ok=True)
        for path in sorted(data.glob("*.pdf"))[:count]:
            link = subset / path.name
            if not link.exists():
                link.symlink_to(path)
        row = {
            "files": count,
            "pages": count * pages,
            **measure(subset, ROOT / ".cache" / f"index-{count}x{pages}"),
        }
        print(row, flush=True)
        rows.append(row)
    return {"Ingest time and peak memory against corpus size": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--pages", type=int, default=50)
    args = parser.parse_args()
    heading = "Peak memory of ingest against corpus size"
    print(write("memory", heading, run(args.files, args.pages)))


if __name__ == "__main__":
    main()
