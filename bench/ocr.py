"""OCR on this machine: its speed, and how well it reads pages whose text layer is known.

Every page of the bundled sample and of the 20-F is rendered to a grayscale image at 300 dpi,
as a scanner would give it, and saved losslessly as an image-only PDF, which docqa then reads
by OCR.
Its text is compared with the page's text layer: character and word error rates (jiwer), and
the share of the text layer's words that OCR found, which does not depend on reading order.
Then the held-out test questions about those pages are searched in an index of the image-only
pages and in one of the same pages with their text layer. Only the first 60 pages of the 20-F
are used by default: OCR reads a dense page in about 10 s here, and the image-only copy is read
twice (once to compare, once to index). Writes bench/results/ocr.md and .json.

    poetry run python -m bench.ocr [--pages N]   (N: the first N pages of the 20-F)
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.quality import DEPTH, HALVES, SHOWCASE, build_index, settings_for, with_intervals
from bench.report import write
from docqa.answer.evaluation import evaluate, load_questions
from docqa.answer.qa import QAService
from docqa.index.formats.pdf import open_pdf

ROOT = Path(__file__).resolve().parent
SAMPLE = ROOT.parent / "data" / "larkspur-annual-report-2024-SAMPLE.pdf"
DPI = 300  # a common scanning resolution


def image_only(pdf: Path, out: Path, pages: int | None) -> Path:
    """A copy of `pdf` whose pages are lossless grayscale pictures of the originals at DPI, as
    a good scanner gives them, with no text layer."""
    import pypdfium2
    from fpdf import FPDF

    document = pypdfium2.PdfDocument(pdf)
    copy = FPDF(unit="pt")
    for i in range(min(len(document), pages or len(document))):
        width, height = document[i].get_size()
        copy.add_page(format=(width, height))
        image = document[i].render(scale=DPI / 72, grayscale=True).to_pil()
        copy.image(image, x=0, y=0, w=width, h=height)
    out.parent.mkdir(parents=True, exist_ok=True)
    copy.output(str(out))
    return out


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def reading_row(name: str, pdf: Path, cache: Path, pages: int | None) -> dict[str, Any]:
    """OCR speed and error rates on the image-only copy of `pdf` against its text layer."""
    import jiwer

    copy = image_only(pdf, cache / f"image-only-{pdf.stem}.pdf", pages)
    layer = [page.text for page in open_pdf(pdf.name, pdf.read_bytes()).pages("off")]
    scanned = open_pdf(copy.name, copy.read_bytes())
    started = time.perf_counter()
    read = [page.text for page in scanned.pages("auto")]
    seconds = time.perf_counter() - started
    pairs = [(" ".join(t.split()), " ".join(o.split())) for t, o in zip(layer, read, strict=False)]
    pairs = [(truth, seen) for truth, seen in pairs if truth]
    found = missed = 0
    for truth, seen in pairs:
        have = Counter(words(seen))
        for word, count in Counter(words(truth)).items():
            found += min(count, have[word])
            missed += max(0, count - have[word])
    truths, seens = [t for t, _ in pairs], [s for _, s in pairs]
    return {
        "document": name,
        "pages": len(read),
        "ocr_pages": len(scanned.ocr_pages),
        "seconds": round(seconds, 1),
        "pages_per_s": round(len(read) / seconds, 3),
        "cer": round(jiwer.cer(truths, seens), 4),
        "wer": round(jiwer.wer(truths, seens), 4),
        "words_found": round(found / (found + missed), 4),
    }


def first_pages(pdf: Path, out: Path, pages: int) -> Path:
    """The first `pages` pages of `pdf`, text layer and all."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(pdf).pages[:pages]:
        writer.add_page(page)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as file:
        writer.write(file)
    return out


def retrieval_rows(pages: int, cache: Path) -> list[dict[str, Any]]:
    """The answerable test-half questions about the first `pages` pages of the 20-F, searched
    in those pages with their text layer and in their image-only copy."""
    items = [  # each index holds one copy of the 20-F under its own name: any file counts
        item.model_copy(update={"source": None})
        for item in load_questions(HALVES["test"])
        if item.answerable and min(item.pages) <= pages
    ]
    copies = {
        "text layer": first_pages(SHOWCASE, cache / f"first-{pages}-{SHOWCASE.name}", pages),
        "image-only copy, OCR": cache / f"image-only-{SHOWCASE.stem}.pdf",
    }
    rows = []
    for name, pdf in copies.items():
        service = QAService(settings_for(pdf.parent, build_index(pdf, {}, cache)))
        service.load(with_llm=False)
        report = evaluate(service, items, DEPTH, answer=False)
        rows.append(with_intervals(f"20-F pages 1-{pages}, {name}", report))
        print(f"  {rows[-1]}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pages", type=int, default=60, help="the first N pages of the 20-F (default 60)"
    )
    args = parser.parse_args()
    cache = ROOT / ".cache"
    reading = [reading_row("bundled sample", SAMPLE, cache, None)]
    print(f"  {reading[-1]}", flush=True)
    sections = {f"OCR at {DPI} dpi against the text layer": reading}
    if SHOWCASE.exists():
        reading.append(reading_row(f"20-F, pages 1-{args.pages}", SHOWCASE, cache, args.pages))
        print(f"  {reading[-1]}", flush=True)
        title = f"Retrieval, answerable test-half questions about pages 1-{args.pages}"
        sections[title] = retrieval_rows(args.pages, cache)
    print(write("ocr", "OCR: speed, error rates, retrieval", sections))


if __name__ == "__main__":
    main()
