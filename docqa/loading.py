"""Finding PDF files and reading their text page by page with pypdf."""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    source: str  # path relative to the data folder, with forward slashes
    number: int  # 1-based, as printed by PDF viewers
    text: str


@dataclass
class PdfFile:
    """An opened PDF; `pages()` extracts its text one page at a time."""

    source: str
    sha256: str
    page_count: int
    _reader: Any = field(repr=False)
    unreadable_pages: list[int] = field(default_factory=list)  # filled while reading

    def pages(self) -> Iterator[Page]:
        for number, raw_page in enumerate(self._reader.pages, start=1):
            try:
                text = normalise(raw_page.extract_text() or "")
            except Exception as exc:  # pypdf raises many types on damaged pages; keep the rest
                log.debug("page %d of %s: %s", number, self.source, exc)
                self.unreadable_pages.append(number)
                text = ""
            yield Page(self.source, number, text)


class PdfReadError(Exception):
    """A file that cannot be read as a PDF; the message is the reason."""


def find_pdfs(folder: Path) -> list[Path]:
    """Every *.pdf file (any case) below `folder`, in a stable order."""
    return sorted(
        path for path in folder.rglob("*") if path.suffix.lower() == ".pdf" and path.is_file()
    )


def open_pdf(path: Path, folder: Path) -> PdfFile:
    """Open one PDF (decrypting it with an empty password if needed), or say why not."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # font warnings are noise for users
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PdfReadError(f"cannot read the file ({exc.strerror})") from exc
    if not data:
        raise PdfReadError("empty file (0 bytes)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise PdfReadError("encrypted, and it needs a password")
        page_count = len(reader.pages)
    except (PyPdfError, ValueError, TypeError, KeyError, OSError) as exc:
        raise PdfReadError(f"not a readable PDF ({exc})") from exc
    source = path.relative_to(folder).as_posix()
    return PdfFile(source, hashlib.sha256(data).hexdigest(), page_count, reader)


_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_DOT_LEADERS = re.compile(r"(?:\s?\.){4,}")  # "Revenue ........ 583.2": table-of-contents dots
_BLANK_LINES = re.compile(r"\n{3,}")


def normalise(text: str) -> str:
    """Tidy extracted text: one space between words, at most one blank line, no NULs, and no
    dot leaders (each dot would cost the embedding model a word piece)."""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    text = _DOT_LEADERS.sub(" ", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
