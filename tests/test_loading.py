"""Reading PDFs page by page, and the clear reasons for files that cannot be read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from docqa.index.loading import PdfFile, PdfReadError, find_pdfs, normalise, open_pdf
from tests.fixtures.pdfs import write_pdf
from tests.fixtures.projects import BROKEN_PDF, DOCUMENTS, write_documents


def load(path: Path, folder: Path) -> PdfFile:
    return open_pdf(path.relative_to(folder).as_posix(), path.read_bytes())


def test_find_pdfs_is_recursive_sorted_and_case_insensitive(tmp_path: Path) -> None:
    write_documents(tmp_path)
    (tmp_path / "UPPER.PDF").write_bytes(b"%PDF")
    (tmp_path / "notes.txt").write_text("not a pdf")
    found, broken = find_pdfs(tmp_path)
    assert [f.source for f in found] == [
        "UPPER.PDF",
        "broken.pdf",
        "orchard.pdf",
        "travel/ferries.pdf",
    ]
    assert [f.path for f in found][-1] == tmp_path / "travel" / "ferries.pdf"
    assert broken == []


def test_pages_are_numbered_from_one_with_their_text(tmp_path: Path) -> None:
    write_documents(tmp_path, broken=False)
    pdf = load(tmp_path / "travel" / "ferries.pdf", tmp_path)
    assert (pdf.source, pdf.page_count) == ("travel/ferries.pdf", 2)
    pages = list(pdf.pages())
    assert [page.number for page in pages] == [1, 2]
    assert "46 minutes" in pages[0].text
    assert "07:15" in pages[1].text
    assert not pdf.unreadable_pages


def test_pound_sign_survives_extraction(tmp_path: Path) -> None:
    write_documents(tmp_path, broken=False)
    pages = list(load(tmp_path / "orchard.pdf", tmp_path).pages())
    assert "£18 million" in pages[len(DOCUMENTS["orchard.pdf"]) - 1].text


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file (0 bytes)"),
        (b"just some text, named .pdf", "not a PDF (no %PDF header"),
        (BROKEN_PDF, "not a readable PDF"),
    ],
)
def test_unreadable_files_raise_with_a_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.pdf"
    path.write_bytes(content)
    with pytest.raises(PdfReadError, match=re.escape(reason)):
        load(path, tmp_path)


def test_blank_pages_have_no_text(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "blank.pdf", ["", ""])
    pages = list(load(path, tmp_path).pages())
    assert [page.text for page in pages] == ["", ""]


def test_normalise_tidies_whitespace() -> None:
    assert normalise("a  \t b\r\n\n\n\nc\x00d\u00a0e ") == "a b\n\ncd e"
