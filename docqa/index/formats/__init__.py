"""The file types docqa reads, each with the library made for it, and the reason it gives for
any other file. Every file is read in a reading process (docqa.index.readers), so whatever a
format's library does with a hostile file stays within the loading limits.

    PDF          pdf.py        pypdf, pypdfium2; OCR for pages without text
    Word         word.py       python-docx: headings, paragraphs, tables
    PowerPoint   slides.py     python-pptx: one unit per slide, with its notes
    Excel, CSV   sheets.py     openpyxl, csv: sheet regions, rows with their headers
    HTML, MD     markup.py     lxml.html (main content), markdown-it-py (headings)
    e-mail       mail.py       email (stdlib) for .eml, extract-msg for Outlook's .msg
    text         plaintext.py  line-numbered text
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from docqa.index.formats.ooxml import OLE_MAGIC
from docqa.index.loading import ReadError

if TYPE_CHECKING:
    from docqa.config import LoadingSettings
    from docqa.index.formats.units import Opened


@dataclass(frozen=True)
class Format:
    name: str  # as users call it
    module: str  # the module below docqa.index.formats that reads it
    reader: str  # that module's function: (source, data, loading) -> Opened
    paged: bool = False  # its units are pages (sources give the page number)


FORMATS = {
    ".pdf": Format("PDF", "pdf", "read_pdf", paged=True),
    ".docx": Format("Word", "word", "read_docx"),
    ".pptx": Format("PowerPoint", "slides", "read_pptx"),
    ".xlsx": Format("Excel", "sheets", "read_xlsx"),
    ".csv": Format("CSV", "sheets", "read_csv"),
    ".html": Format("HTML", "markup", "read_html"),
    ".htm": Format("HTML", "markup", "read_html"),
    ".md": Format("Markdown", "markup", "read_markdown"),
    ".markdown": Format("Markdown", "markup", "read_markdown"),
    ".txt": Format("text", "plaintext", "read_text"),
    ".eml": Format("e-mail", "mail", "read_eml"),
    ".msg": Format("Outlook e-mail", "mail", "read_msg"),
}

_SAVE_AS = {
    ".doc": ".docx",
    ".rtf": ".docx",
    ".odt": ".docx",
    ".pages": ".docx or PDF",
    ".xls": ".xlsx",
    ".ods": ".xlsx",
    ".numbers": ".xlsx",
    ".ppt": ".pptx",
    ".odp": ".pptx",
    ".key": ".pptx or PDF",
}
_OFFICE_PARTS = {
    "word/document.xml": ".docx",
    "ppt/presentation.xml": ".pptx",
    "xl/workbook.xml": ".xlsx",
}
_TEXT_TYPES = (".txt", ".md", ".markdown", ".csv", ".html", ".htm", ".eml")  # told by name
SNIFFED = 64 * 1024  # bytes of a file its type is told from
OLE_DIRECTORY = 1 << 20  # bytes of a Compound File searched for an Outlook message's streams
_MAIL_HEADER = re.compile(rb"[a-z][a-z0-9-]*:[ \t]")  # "From: ...": a message's first line
_ARCHIVES = {".zip", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz"}
_IMAGES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp", ".webp", ".heic"}


def format_of(source: str) -> Format | None:
    """The format a file is read as, by its name; None when docqa does not read it."""
    return FORMATS.get(PurePosixPath(source).suffix.lower())


def unsupported_reason(source: str) -> str:
    """Why a file is not read, and what to do about it."""
    suffix = PurePosixPath(source).suffix.lower()
    if not suffix:
        return "not a supported type (no extension): name it for its type, e.g. notes.txt"
    if suffix in _SAVE_AS:
        advice = f"save it as {_SAVE_AS[suffix]}"
    elif suffix in _ARCHIVES:
        advice = "unpack it into the data folder"
    elif suffix in _IMAGES:
        advice = "put scanned images into a PDF, which is read by OCR"
    else:
        advice = "docqa reads " + ", ".join(sorted(FORMATS))
    return f"not a supported type: {suffix} — {advice}"


def read_document_file(source: str, data: bytes, loading: LoadingSettings) -> Opened:
    """The file opened by its format's reader (ReadError or LimitReached: why it cannot be)."""
    found = format_of(source)
    if found is None:
        raise ReadError(unsupported_reason(source))
    if not data:
        raise ReadError("empty file (0 bytes)")
    module = importlib.import_module(f"{__name__}.{found.module}")
    try:
        opened: Opened = getattr(module, found.reader)(source, data, loading)
    except (ReadError, MemoryError):
        raise
    except Exception as exc:  # a library failing on a file: that file fails, not the ingest
        kind = f"{found.name} file" if "e-mail" not in found.name else "message"
        raise ReadError(f"not a readable {kind} ({type(exc).__name__}: {exc})") from exc
    return opened


def sniff(path: Path, name: str) -> str:
    """The type a file's content shows it to be, as the suffix it is read by; ReadError when
    it is none docqa reads, or not the type its `name` claims (a .pdf that is text). Which of
    .txt, .md and .csv a text file is comes from its name: text alone cannot tell."""
    found = _content_type(path, name)
    claimed = PurePosixPath(name).suffix.lower()
    if claimed in FORMATS and claimed not in _TEXT_TYPES and FORMATS[claimed] != FORMATS[found]:
        raise ReadError(f"named {claimed}, but it is not {_a(FORMATS[claimed].name)} file")
    return found


def _a(name: str) -> str:
    return ("an " if name[0] in "AEIOUaeiou" else "a ") + name


def _content_type(path: Path, name: str) -> str:
    with open(path, "rb") as file:
        head = file.read(SNIFFED)
        if head.startswith(OLE_MAGIC):  # its directory, where an Outlook message's streams
            head += file.read(OLE_DIRECTORY - len(head))  # are named, is usually in here
    if b"%PDF-" in head[:1024]:
        return ".pdf"
    if head.startswith(b"PK\x03\x04"):
        return _office_type(path)
    if head.startswith(OLE_MAGIC):
        if "__substg1.0_".encode("utf-16-le") in head:
            return ".msg"
        raise ReadError(
            "an encrypted or older binary Office file (.doc, .xls, .ppt): save it without a "
            "password as .docx, .xlsx or .pptx"
        )
    if b"\0" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ReadError(f"not a type docqa reads ({', '.join(sorted(FORMATS))})")
    start = head[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html")) or b"<body" in start:
        return ".html"
    if _MAIL_HEADER.match(start) and re.search(rb"^(from|subject|date):", start, re.MULTILINE):
        return ".eml"
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in _SAVE_AS.keys() | _ARCHIVES | _IMAGES:  # text, named as another known type
        raise ReadError(unsupported_reason(name))
    return suffix if suffix in _TEXT_TYPES else ".txt"


def _office_type(path: Path) -> str:
    import zipfile

    try:
        with zipfile.ZipFile(path) as package:
            names = set(package.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReadError(f"a damaged zip file ({exc})") from exc
    for part, suffix in _OFFICE_PARTS.items():
        if part in names:
            return suffix
    raise ReadError("a zip archive, not a Word, PowerPoint or Excel file: unpack it first")
