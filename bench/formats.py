"""Each format's ingest speed on this machine: files generated with each format's own library
(about the size of a 100-page report each, from the same text), and the largest real files of
each format in a folder you give (e.g. the example documents of Unstructured-IO/unstructured,
which this benchmark was run on; they are not part of docqa).

For each format: its reading alone (in this process, as a reading process does it: units and
characters per second), and `python ingest.py` on a folder holding only those files, from
process start to end (reading, embedding, writing the index). Medians of --runs runs. Writes
bench/results/formats.md and .json.

    poetry run python -m bench.formats [--real DIR] [--runs N]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from bench.report import write
from docqa.config import LoadingSettings
from docqa.index.formats import format_of, read_document_file
from docqa.index.loading import ReadError

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = 100  # one "page" of text each: about 350 words
ROWS = 5_000
WORDS = [
    "revenue",
    "margin",
    "customer",
    "contract",
    "supplier",
    "board",
    "quarter",
    "forecast",
    "budget",
    "region",
    "market",
    "agreement",
    "payment",
    "invoice",
    "partner",
    "growth",
    "risk",
    "energy",
    "plant",
    "capital",
    "report",
    "employee",
    "policy",
    "audit",
    "product",
    "service",
    "price",
    "volume",
    "cost",
    "share",
    "dividend",
    "loan",
    "interest",
    "lease",
]


def paragraph(rng: random.Random, words: int = 70) -> str:
    sentences = []
    while words > 0:
        length = rng.randint(8, 18)
        sentence = " ".join(rng.choice(WORDS) for _ in range(length))
        sentences.append(sentence.capitalize() + f" in {rng.randint(2015, 2027)}.")
        words -= length + 2
    return " ".join(sentences)


def sections(rng: random.Random) -> list[tuple[str, list[str]]]:
    return [
        (
            f"Section {n}: {rng.choice(WORDS)} {rng.choice(WORDS)}",
            [paragraph(rng) for _ in range(5)],
        )
        for n in range(1, SECTIONS + 1)
    ]


def generated(folder: Path) -> dict[str, tuple[Path, int, str]]:
    """One generated file per format: its path, its units and what they are."""
    import docx
    from openpyxl import Workbook
    from pptx import Presentation

    rng = random.Random(7)
    parts = sections(rng)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[Path, int, str]] = {}

    document = docx.Document()
    for title, paragraphs in parts:
        document.add_heading(title, level=2)
        for text in paragraphs:
            document.add_paragraph(text)
    document.save(str(folder / "generated.docx"))
    files["Word"] = (folder / "generated.docx", SECTIONS, "sections")

    presentation = Presentation()
    for title, paragraphs in parts:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = "\n".join(paragraphs[:2])
        slide.notes_slide.notes_text_frame.text = paragraphs[2]
    presentation.save(str(folder / "generated.pptx"))
    files["PowerPoint"] = (folder / "generated.pptx", SECTIONS, "slides")

    rows = [
        (f"item {n}", rng.choice(WORDS), rng.randint(1, 10**6), rng.random(), f"{2020 + n % 8}")
        for n in range(ROWS)
    ]
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(("Item", "Category", "Amount", "Share", "Year"))
    for row in rows:
        sheet.append(row)
    workbook.save(folder / "generated.xlsx")
    files["Excel"] = (folder / "generated.xlsx", ROWS, "rows")
    lines = ["Item,Category,Amount,Share,Year"] + [",".join(map(str, row)) for row in rows]
    (folder / "generated.csv").write_text("\n".join(lines) + "\n")
    files["CSV"] = (folder / "generated.csv", ROWS, "rows")

    body = "".join(
        f"<h2>{title}</h2>" + "".join(f"<p>{text}</p>" for text in paragraphs)
        for title, paragraphs in parts
    )
    (folder / "generated.html").write_text(
        f"<html><head><title>Generated</title></head><body><nav>Home</nav><main>{body}</main>"
        "</body></html>"
    )
    files["HTML"] = (folder / "generated.html", SECTIONS, "sections")
    markdown = "".join(
        f"## {title}\n\n" + "".join(f"{text}\n\n" for text in paragraphs)
        for title, paragraphs in parts
    )
    (folder / "generated.md").write_text(markdown)
    files["Markdown"] = (folder / "generated.md", SECTIONS, "sections")
    text = "\n\n".join("\n".join([title, *paragraphs]) for title, paragraphs in parts)
    (folder / "generated.txt").write_text(text)
    files["text"] = (folder / "generated.txt", text.count("\n") + 1, "lines")

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "Notes"
    message.set_content("\n\n".join(paragraphs[0] for _, paragraphs in parts))
    message.add_attachment(markdown, subtype="markdown", filename="notes.md")
    (folder / "generated.eml").write_bytes(bytes(message))
    files["e-mail"] = (folder / "generated.eml", 2, "message + attachment")
    return files


def real(folder: Path) -> dict[str, tuple[Path, int, str]]:
    """Of each format (other than PDF) in `folder`, the file that reads to the most text."""
    loading = LoadingSettings()
    largest: dict[str, tuple[int, Path]] = {}
    for path in sorted(folder.iterdir()):
        found = format_of(path.name)
        if found is None or found.paged:
            continue
        try:
            pages = read_document_file(path.name, path.read_bytes(), loading).pages()
        except ReadError:
            continue
        characters = sum(len(page.text) for page in pages)
        if characters > largest.get(found.name, (0, path))[0]:
            largest[found.name] = (characters, path)
    return {name: (path, 0, "") for name, (_, path) in sorted(largest.items())}


def median_seconds(run: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def row(kind: str, name: str, path: Path, units: int, what: str, runs: int) -> dict[str, Any]:
    data = path.read_bytes()
    loading = LoadingSettings()

    def read() -> list[Any]:
        return list(read_document_file(path.name, data, loading).pages())

    read_s, pages = median_seconds(read, runs)
    if not units:  # a real file: its units as read
        units, what = len(pages), "units"
    characters = sum(len(page.text) for page in pages)
    ingest_s = median_seconds(lambda: ingest(path), runs)[0]
    return {
        "files": kind,
        "format": name,
        "file": path.name,
        "MB": round(len(data) / 2**20, 2),
        "units": f"{units} {what}",
        "read_s": round(read_s, 3),
        "read_units_per_s": round(units / read_s, 1),
        "read_chars_per_s": round(characters / read_s),
        "ingest_s": round(ingest_s, 2),
        "ingest_units_per_s": round(units / ingest_s, 1),
    }


def ingest(path: Path) -> None:
    """`python ingest.py` on a folder holding only `path`, from process start to end."""
    with tempfile.TemporaryDirectory() as temporary:
        project = Path(temporary)
        (project / "data").mkdir()
        shutil.copy(path, project / "data" / path.name)
        subprocess.run(
            [sys.executable, str(ROOT / "ingest.py"), "--data", "data", "--vectorstore", "vs"],
            cwd=project,
            check=True,
            capture_output=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, help="a folder of real files of each format")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        for name, (path, units, what) in generated(Path(temporary)).items():
            rows.append(row("generated", name, path, units, what, args.runs))
            print(f"  {rows[-1]}", flush=True)
    if args.real:
        for name, (path, units, what) in real(args.real).items():
            rows.append(row("real", name, path, units, what, args.runs))
            print(f"  {rows[-1]}", flush=True)
    print(write("formats", "Formats: reading and ingest speed", {"Each format": rows}))


if __name__ == "__main__":
    main()
