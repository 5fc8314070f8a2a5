"""Finding PDF files and reading their text page by page with pypdf."""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    source: str  # path relative to the data folder, with forward slashes
    number: int  # 1-based, as printed by PDF viewers
    text: str


@dataclass(frozen=True)
class PdfDocument:
    source: str
    sha256: str
    pages: list[Page]
    unreadable_pages: list[int]  # 1-based numbers of pages pypdf could not extract

    @property
    def has_text(self) -> bool:
        return any(page.text for page in self.pages)


class PdfReadError(Exception):
    """A file that cannot be read as a PDF; the message is the reason."""


def find_pdfs(folder: Path) -> list[Path]:
    """Every *.pdf file (any case) below `folder`, in a stable order."""
    return sorted(
        path for path in folder.rglob("*") if path.suffix.lower() == ".pdf" and path.is_file()
    )


def read_pdf(path: Path, folder: Path) -> PdfDocument:
    """Read one PDF into pages of normalised text. Raises PdfReadError with the reason."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # font warnings are noise for users
    source = path.relative_to(folder).as_posix()
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
        raw_pages = list(reader.pages)
    except (PyPdfError, ValueError, TypeError, KeyError, OSError) as exc:
        raise PdfReadError(f"not a readable PDF ({exc})") from exc

    pages, unreadable = [], []
    for number, raw_page in enumerate(raw_pages, start=1):
        try:
            text = normalise(raw_page.extract_text() or "")
        except Exception as exc:  # pypdf raises many types on damaged pages; keep the rest
            log.debug("page %d of %s: %s", number, source, exc)
            unreadable.append(number)
            text = ""
        pages.append(Page(source=source, number=number, text=text))
    return PdfDocument(source, hashlib.sha256(data).hexdigest(), pages, unreadable)


_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalise(text: str) -> str:
    """Tidy extracted text: one space between words, at most one blank line, no NULs."""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
