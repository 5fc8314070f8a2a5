"""Every PDF a user has: pages that are pictures of text are OCR'd (RapidOCR, offline), files
pypdf cannot open are read by pypdfium2, and `docqa status --json` says what became of each."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

import pytest

from docqa.config import Settings, load_settings
from docqa.index.formats.pdf import open_pdf
from docqa.index.ingest import ingest
from docqa.index.ocr import TextBox, layout
from docqa.index.report import IngestProgress
from docqa.index.status import index_status
from tests.fixtures.pdfs import write_pdf
from tests.fixtures.projects import run_cli

pytestmark = pytest.mark.slow

SCANNED = [
    "Lighthouse log\nThe keeper of the Skerry lighthouse records every passing ship in a "
    "bound ledger. The lamp was converted to electric power in 1963 and its beam reaches "
    "twenty-two nautical miles.",
    "Supplies\nA relief boat brings fresh water, diesel and letters every second Thursday, "
    "weather permitting.",
]
TEXT_PAGE = "Visitors\nThe lighthouse museum opens from April to October."


def settings_for(folder: Path, ocr: str = "auto") -> Settings:
    overrides = {
        "paths": {"data": folder / "data", "vectorstore": folder / "vectorstore"},
        "loading": {"ocr": ocr},
    }
    return load_settings(None, overrides, environ={})


class OcrCount(IngestProgress):
    def __init__(self) -> None:
        self.ocr_pages = 0

    def page(self, ocr: bool = False) -> None:
        self.ocr_pages += ocr


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def test_ocr_reads_the_words_of_an_image_only_pdf(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "scan.pdf", SCANNED, images=frozenset({1, 2}))
    pdf = open_pdf("scan.pdf", path.read_bytes())
    assert [page.text for page in open_pdf("scan.pdf", path.read_bytes()).pages("off")] == [
        "",
        "",
    ]
    pages = list(pdf.pages("auto"))
    assert pdf.ocr_pages == [1, 2]
    assert all(page.ocr for page in pages)
    for page, text in zip(pages, SCANNED, strict=True):
        expected, found = words(text), set(words(page.text))
        assert sum(word in found for word in expected) / len(expected) >= 0.95, page.text
    # a sentence broken over lines by the page is one sentence again, hyphenation undone
    assert "converted to electric power in 1963" in " ".join(pages[0].text.split())


def test_an_image_only_pdf_is_answered_from_with_its_page_marked_ocr(tmp_path: Path) -> None:
    write_pdf(tmp_path / "data" / "scan.pdf", SCANNED, images=frozenset({1, 2}))
    ingested = run_cli("ingest.py", cwd=tmp_path)
    assert ingested.returncode == 0, ingested.stderr
    assert "2 pages, 2 of them by OCR" in ingested.stdout
    question = "How often does a relief boat bring fresh water, diesel and letters?"
    asked = run_cli("main.py", question, "--json", cwd=tmp_path)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    top = answer["sources"][0]
    assert (top["source"], top["page"], top["ocr"]) == ("scan.pdf", 2, True)
    assert not answer["abstained"]
    assert "second thursday" in answer["answer"].lower()
    shown = run_cli("main.py", question, cwd=tmp_path)
    assert "scan.pdf, page 2 (OCR)" in shown.stdout
    status = run_cli("-m", "docqa", "status", cwd=tmp_path)
    assert "Pages:       2 (2 read by OCR)" in status.stdout


def test_only_the_image_page_of_a_mixed_pdf_is_ocrd_and_only_once(tmp_path: Path) -> None:
    write_pdf(tmp_path / "data" / "mixed.pdf", [TEXT_PAGE, SCANNED[1]], images=frozenset({2}))
    settings = settings_for(tmp_path)
    first = OcrCount()
    report = ingest(settings, first)
    assert first.ocr_pages == 1
    assert [(f.source, f.ocr_pages, f.parser) for f in report.files] == [
        ("mixed.pdf", [2], "pypdf")
    ]
    again = OcrCount()
    assert not ingest(settings, again).written
    assert again.ocr_pages == 0
    # a copy under another name is the same content: read from the kept document
    (tmp_path / "data" / "copy.pdf").write_bytes((tmp_path / "data" / "mixed.pdf").read_bytes())
    copy = OcrCount()
    assert ingest(settings, copy).written
    assert copy.ocr_pages == 0


def test_with_ocr_off_pages_without_text_are_left_out_as_before(tmp_path: Path) -> None:
    write_pdf(tmp_path / "data" / "mixed.pdf", [TEXT_PAGE, SCANNED[1]], images=frozenset({2}))
    write_pdf(tmp_path / "data" / "scan.pdf", SCANNED, images=frozenset({1, 2}))
    off = OcrCount()
    report = ingest(settings_for(tmp_path, "off"), off)
    assert off.ocr_pages == 0
    assert [(f.source, f.pages, f.ocr_pages) for f in report.files] == [("mixed.pdf", 2, [])]
    assert [(f.source, f.reason) for f in report.failed] == [
        ("scan.pdf", "no text layer on its 2 pages (scanned? set loading.ocr to auto to read them)")
    ]
    # turning OCR on reads again only the files that have pages without text
    on = OcrCount()
    report = ingest(settings_for(tmp_path, "auto"), on)
    assert on.ocr_pages == 3
    assert [(f.source, f.ocr_pages) for f in report.files] == [
        ("mixed.pdf", [2]),
        ("scan.pdf", [1, 2]),
    ]


def test_ocr_always_reads_text_pages_from_their_image_too(tmp_path: Path) -> None:
    write_pdf(tmp_path / "data" / "text.pdf", [TEXT_PAGE])
    report = ingest(settings_for(tmp_path, "always"))
    assert report.files[0].ocr_pages == [1]


def test_a_pdf_pypdf_rejects_is_read_by_pypdfium2(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "data" / "damaged.pdf", [TEXT_PAGE, SCANNED[1]])
    data = path.read_bytes()
    # Kids that point back at the catalogue: pypdf gives up ("cyclic page references"),
    # pdfium skips the bad entry and reads both pages.
    kids = re.search(rb"/Kids \[([^\]]*)\]", data)
    assert kids is not None
    path.write_bytes(data.replace(kids[0], b"/Kids [" + kids[1] + b" 1 0 R]"))
    report = ingest(settings_for(tmp_path))
    assert [(f.source, f.pages, f.parser, f.ocr_pages) for f in report.files] == [
        ("damaged.pdf", 2, "pypdfium2", [])
    ]
    status = run_cli("-m", "docqa", "status", cwd=tmp_path)
    assert "Read by pypdfium2 (pypdf could not): damaged.pdf" in status.stdout


def test_pages_with_a_handful_of_words_are_text_not_scans(tmp_path: Path) -> None:
    # the same few words on every page: running-header removal must not take all of them
    write_pdf(tmp_path / "data" / "few.pdf", ["Draft agenda for review"] * 4)
    progress = OcrCount()
    report = ingest(settings_for(tmp_path), progress)
    assert progress.ocr_pages == 0
    assert not report.failed
    assert report.files[0].chunks >= 1


def test_status_lists_every_file_with_what_became_of_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_pdf(data / "mixed.pdf", [TEXT_PAGE, SCANNED[1]], images=frozenset({2}))
    (data / "empty.pdf").write_bytes(b"")
    settings = settings_for(tmp_path)
    ingest(settings)
    write_pdf(data / "later.pdf", [TEXT_PAGE])
    listing = index_status(settings).listing()
    assert cast(dict[str, Any], listing[2].pop("document"))["label"] == "docqa test document"
    assert listing == [
        {"source": "empty.pdf", "state": "failed", "reason": "empty file (0 bytes)"},
        {"source": "later.pdf", "state": "pending", "change": "new"},
        {
            "source": "mixed.pdf",
            "state": "indexed",
            "pages": 2,
            "chunks": 2,
            "ocr_pages": [2],
            "parser": "pypdf",
        },
    ]
    shown = run_cli("-m", "docqa", "status", "--json", cwd=tmp_path)
    assert json.loads(shown.stdout)["files"] == index_status(settings).listing()


def test_layout_puts_boxes_in_reading_order() -> None:
    boxes = [
        TextBox(300, 100, 360, 130, "world,"),  # a line read as two boxes, out of order
        TextBox(50, 102, 120, 128, "Hello"),
        TextBox(50, 140, 200, 170, "a hyphen-"),
        TextBox(50, 180, 200, 210, "ated word."),
        TextBox(50, 300, 250, 330, "New paragraph."),
    ]
    assert layout(boxes) == "Hello world,\na hyphenated word.\n\nNew paragraph."
    assert layout([]) == ""


def test_the_adidas_passage_of_a_scanned_20f_is_found_first_with_its_words_apart(
    tmp_path: Path, showcase_pdf: Path
) -> None:
    """Pages 52-54 of the 20-F as a scanner gives them (300 dpi grayscale pictures, no text):
    the adidas question finds page 53 first, its words apart and its £ read as such."""
    import pypdfium2
    from fpdf import FPDF

    original = pypdfium2.PdfDocument(showcase_pdf)
    scan = FPDF(unit="pt")
    for index in (51, 52, 53):
        width, height = original[index].get_size()
        scan.add_page(format=(width, height))
        picture = original[index].render(scale=300 / 72, grayscale=True).to_pil()
        scan.image(picture, x=0, y=0, w=width, h=height)
    (tmp_path / "data").mkdir()
    scan.output(str(tmp_path / "data" / "manu-pages-52-54-scanned.pdf"))
    assert run_cli("ingest.py", cwd=tmp_path).returncode == 0
    question = "How much is the minimum guarantee payable by adidas?"
    asked = run_cli("main.py", question, "--json", "--retrieve-only", cwd=tmp_path)
    top = json.loads(asked.stdout)["sources"][0]
    assert top["page"] in (2, 3)  # the 20-F's pages 53 and 54 both give it
    assert top["ocr"]
    text = " ".join(top["text"].split())
    assert "minimum guarantee" in text
    assert "£750 million" in text


def test_a_page_the_ocr_models_cannot_read_is_reported_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import docqa.index.ocr

    def fails(image: object) -> str:
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION")

    monkeypatch.setattr(docqa.index.ocr, "ocr_image", fails)
    path = write_pdf(tmp_path / "scan.pdf", SCANNED, images=frozenset({1, 2}))
    pdf = open_pdf("scan.pdf", path.read_bytes())
    assert [page.text for page in pdf.pages("auto")] == ["", ""]
    assert pdf.unreadable_pages == [1, 2]
