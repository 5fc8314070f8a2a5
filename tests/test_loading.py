"""Reading PDFs page by page, and the clear reasons for files that cannot be read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from docqa.index.formats.pdf import PdfFile, open_pdf
from docqa.index.loading import ReadError, find_files, normalise
from tests.fixtures.pdfs import write_pdf
from tests.fixtures.projects import BROKEN_PDF, DOCUMENTS, write_documents


def load(path: Path, folder: Path) -> PdfFile:
    return open_pdf(path.relative_to(folder).as_posix(), path.read_bytes())


def test_find_files_is_recursive_sorted_and_case_insensitive(tmp_path: Path) -> None:
    write_documents(tmp_path)
    (tmp_path / "UPPER.PDF").write_bytes(b"%PDF")
    (tmp_path / "notes.txt").write_text("read as text")
    (tmp_path / "old.DOC").write_bytes(b"\xd0\xcf")
    (tmp_path / ".hidden.doc").write_bytes(b"not a document")  # hidden: not mentioned
    (tmp_path / "docqa-meta.yml").write_text("{}")  # docqa's own corrections
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / f"{'a' * 64}.name").write_text("report.pdf")  # an upload's name
    found = find_files(tmp_path)
    assert [f.source for f in found.found] == [
        "UPPER.PDF",
        "broken.pdf",
        "notes.txt",
        "orchard.pdf",
        "travel/ferries.pdf",
    ]
    assert [f.path for f in found.found][-1] == tmp_path / "travel" / "ferries.pdf"
    assert found.broken == []
    assert found.unsupported == [("old.DOC", "not a supported type: .doc — save it as .docx")]


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
    with pytest.raises(ReadError, match=re.escape(reason)):
        load(path, tmp_path)


def test_blank_pages_have_no_text(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "blank.pdf", ["", ""])
    pages = list(load(path, tmp_path).pages())
    assert [page.text for page in pages] == ["", ""]


def test_normalise_tidies_whitespace() -> None:
    assert normalise("a  \t b\r\n\n\n\nc\x00d\u00a0e ") == "a b\n\ncd e"
