"""Peak memory of ingesting a growing corpus of generated PDFs, to check that it stays bounded.

    poetry run python -m bench.memory [--files 20 200] [--pages 50]

Each size is a fresh `ingest.py` process on its own folder of distinct generated PDFs (every
file different, so none is skipped as a copy). Writes bench/results/memory.md and .json.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
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


# Runs `python ARGS...` and prints its peak RSS in KiB last. Linux hands a new process the peak
# of the process that started it, so a large parent (the benchmark holds GBs) would be reported
# for every child: this small launcher stands between them.
PEAK_OF_CHILD = """
import os, subprocess, sys
child = subprocess.Popen([sys.executable, *sys.argv[1:]])
_, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss, flush=True)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(data: Path, index: Path) -> dict[str, Any]:
    """Time one `ingest.py --rebuild` and read its own peak memory."""
    command = [str(ROOT.parent / "ingest.py"), "--data", str(data), "--vectorstore", str(index)]
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        launched = [sys.executable, "-c", PEAK_OF_CHILD, *command, "--rebuild"]
        if subprocess.run(launched, stdout=output).returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed")
        seconds = time.perf_counter() - started
        output.seek(0)
        lines = output.read().splitlines()
    size = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
    return {
        "summary": lines[0].strip(),
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(int(lines[-1]) / 1024),
        "index_mb": round(size / 2**20, 1),
    }


def run(files: list[int], pages: int) -> dict[str, list[dict[str, Any]]]:
    """Ingest `files` distinct PDFs of `pages` pages, for each count, in a fresh process."""
    rows = []
    for count in sorted(files):
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
