"""Finding PDF files and reading their text page by page with pypdf."""

from __future__ import annotations

import io
import logging
import os
import re
import unicodedata
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


@dataclass(frozen=True)
class FoundFile:
    source: str  # path below the data folder, '/'-separated, always valid UTF-8
    path: Path


def find_pdfs(folder: Path) -> tuple[list[FoundFile], list[tuple[str, str]]]:
    """Every *.pdf file (any case) below `folder` in a stable order, following symbolic links
    but visiting each real folder once; and the links that lead nowhere, with a reason."""
    found, broken = [], []
    seen: set[tuple[int, int]] = set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.stat(root)
        if (real.st_dev, real.st_ino) in seen:
            dirs.clear()  # a link back to a folder already walked
            continue
        seen.add((real.st_dev, real.st_ino))
        dirs.sort()
        for name in names:
            path = Path(root) / name
            if path.suffix.lower() != ".pdf":
                continue
            source = display_name(path.relative_to(folder))
            if path.is_file():
                found.append(FoundFile(source, path))
            elif path.is_symlink() and not path.exists():
                broken.append((source, f"broken link to {display_name(path.readlink())}"))
            else:
                broken.append((source, "not a regular file"))
    return sorted(found, key=lambda f: f.source), sorted(broken)


def display_name(path: Path) -> str:
    """`path` as '/'-separated text; bytes that are not UTF-8 become \\x escapes."""
    raw = os.fsencode(path.as_posix())
    return raw.decode("utf-8", "backslashreplace")


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PdfReadError(f"cannot read the file ({exc.strerror})") from exc


def open_pdf(source: str, data: bytes) -> PdfFile:
    """Open one PDF from its bytes (decrypting it with an empty password if needed), or say
    why not."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # font warnings are noise for users
    if not data:
        raise PdfReadError("empty file (0 bytes)")
    if b"%PDF-" not in data[:1024]:
        raise PdfReadError("not a PDF (no %PDF header: another kind of file named .pdf?)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise PdfReadError("encrypted, and it needs a password: save a copy without one")
        page_count = len(reader.pages)
    except DependencyError as exc:
        raise PdfReadError(f"encrypted in a way docqa cannot decrypt ({exc})") from exc
    except (PyPdfError, ValueError, TypeError, KeyError, OSError) as exc:
        raise PdfReadError(f"not a readable PDF ({exc})") from exc
    return PdfFile(source, page_count, reader)


_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_DOT_LEADERS = re.compile(r"(?:\s?\.){4,}")  # "Revenue ........ 583.2": table-of-contents dots
_BLANK_LINES = re.compile(r"\n{3,}")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff\u200b]")
_LONE_SURROGATES = re.compile(r"[\ud800-\udfff]")
_LIGATURES = str.maketrans(
    dict(
        zip(
            "\ufb00\ufb01\ufb02\ufb03\ufb04\ufb06",
            ["ff", "fi", "fl", "ffi", "ffl", "st"],
            strict=True,
        )
    )
)


def normalise(text: str) -> str:
    """Tidy extracted text: composed Unicode without ligatures, control characters or broken
    surrogates; one space between words, at most one blank line, and no dot leaders (each dot
    would cost the embedding model a word piece)."""
    text = _LONE_SURROGATES.sub("\ufffd", text).replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", _CONTROLS.sub("", text).translate(_LIGATURES))
    text = _DOT_LEADERS.sub(" ", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
