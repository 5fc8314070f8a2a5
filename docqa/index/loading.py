"""Finding PDF files and reading their text page by page: with pypdf, or with pypdfium2 when
pypdf cannot open a file or read a page; pages with no text layer are OCR'd (docqa.index.ocr).
"""

from __future__ import annotations

import io
import logging
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from docqa.config import OcrMode

log = logging.getLogger(__name__)

Parser = Literal["pypdf", "pypdfium2"]


@dataclass(frozen=True)
class Page:
    source: str  # path relative to the data folder, with forward slashes
    number: int  # 1-based, as printed by PDF viewers
    text: str
    ocr: bool = False  # the text was read from the page's image


@dataclass
class PdfFile:
    """An opened PDF; `pages()` extracts its text one page at a time."""

    source: str
    page_count: int
    parser: Parser
    data: bytes = field(repr=False)
    _reader: Any = field(repr=False)  # a pypdf PdfReader, or a pypdfium2 PdfDocument
    unreadable_pages: list[int] = field(default_factory=list)  # these three filled while reading
    textless_pages: list[int] = field(default_factory=list)  # no text layer at all
    ocr_pages: list[int] = field(default_factory=list)

    def pages(self, ocr: OcrMode = "off", max_ocr_pages: int | None = None) -> Iterator[Page]:
        """Each page's text, OCR'd when it has no text layer (auto) or always; the text layer
        is kept when OCR finds nothing. More than `max_ocr_pages` pages to OCR: LimitReached."""
        tried = 0
        for number in range(1, self.page_count + 1):
            text = self._text(number)
            if not text.strip():
                self.textless_pages.append(number)
            if ocr == "always" or (ocr == "auto" and not text.strip()):
                tried += 1
                if max_ocr_pages is not None and tried > max_ocr_pages:
                    raise LimitReached(
                        f"more than {max_ocr_pages} of its {self.page_count} pages need OCR",
                        "max_ocr_pages",
                    )
                seen = normalise(self._ocr(number))
                if seen:
                    self.ocr_pages.append(number)
                    yield Page(self.source, number, seen, ocr=True)
                    continue
            yield Page(self.source, number, text)

    def _text(self, number: int) -> str:
        """The page's text layer; pypdfium2's when pypdf fails on the page."""
        if self.parser == "pypdf":
            try:
                return normalise(self._reader.pages[number - 1].extract_text() or "")
            except MemoryError:  # past the reading process's limit: the file fails
                raise
            except Exception as exc:  # pypdf raises many types on damaged pages
                log.debug("page %d of %s: %s", number, self.source, exc)
        try:
            textpage = self._pdfium[number - 1].get_textpage()
            return normalise(textpage.get_text_range())
        except MemoryError:
            raise
        except Exception as exc:  # pdfium's errors are as varied
            log.debug("page %d of %s (pypdfium2): %s", number, self.source, exc)
            self.unreadable_pages.append(number)
            return ""

    def _ocr(self, number: int) -> str:
        from docqa.index.ocr import ocr_image, render

        try:
            image = render(self._pdfium[number - 1])
        except MemoryError:
            raise
        except Exception as exc:  # a page pdfium cannot render has nothing to read
            log.debug("rendering page %d of %s: %s", number, self.source, exc)
            return ""
        return ocr_image(image)

    def metadata(self) -> dict[str, str]:
        """The document information: Title, Author, Subject (those present, as text)."""
        try:
            found = self._pdfium.get_metadata_dict(skip_empty=True)
        except Exception as exc:  # damaged metadata is no reason to refuse the file
            log.debug("metadata of %s: %s", self.source, exc)
            return {}
        return {
            key: normalise(str(found[key]))
            for key in ("Title", "Author", "Subject")
            if key in found
        }

    def first_page_lines(self) -> list[tuple[str, float]]:
        """The first page's lines of text, each with the largest font size in it."""
        import pypdfium2.raw as pdfium_c

        try:
            textpage = self._pdfium[0].get_textpage()
        except Exception as exc:
            log.debug("first page of %s: %s", self.source, exc)
            return []
        lines: list[tuple[str, float]] = []
        characters: list[str] = []
        size = 0.0
        for index in range(textpage.count_chars()):
            character = chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, index))
            if character in "\r\n":
                if characters:
                    lines.append(("".join(characters), size))
                characters, size = [], 0.0
                continue
            characters.append(character)
            if not character.isspace():
                size = max(size, pdfium_c.FPDFText_GetFontSize(textpage.raw, index))
        if characters:
            lines.append(("".join(characters), size))
        return lines

    @cached_property
    def _pdfium(self) -> Any:
        """The file opened with pypdfium2: to render pages, or read those pypdf cannot."""
        if self.parser == "pypdfium2":
            return self._reader
        return _open_pdfium(self.data)


class PdfReadError(Exception):
    """A file that cannot be read as a PDF; the message is the reason."""


class LimitReached(PdfReadError):
    """A file past one of the reading limits: `setting` (in loading) names it."""

    def __init__(self, reason: str, setting: str) -> None:
        super().__init__(f"{reason} (limit: loading.{setting})")
        self.setting = setting


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


def page_count(data: bytes) -> int:
    """How many pages a PDF has (pdfium: ~1 ms a file), 0 when it cannot be opened."""
    try:
        return len(_open_pdfium(data))
    except Exception:  # a file that will not open is reported when it is read
        return 0


def open_pdf(source: str, data: bytes) -> PdfFile:
    """Open one PDF from its bytes (decrypting it with an empty password if needed) with
    pypdf, or with pypdfium2 if pypdf cannot, or say why not."""
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
        if not reader.pages:
            raise PyPdfError("no pages found")  # a page tree pypdf cannot follow
        return PdfFile(source, len(reader.pages), "pypdf", data, reader)
    except DependencyError as exc:
        raise PdfReadError(f"encrypted in a way docqa cannot decrypt ({exc})") from exc
    except (PyPdfError, ValueError, TypeError, KeyError, OSError, RecursionError) as exc:
        log.debug("%s: pypdf: %s", source, exc)
        try:
            document = _open_pdfium(data)
        except Exception as second:
            raise PdfReadError(f"not a readable PDF (pypdf: {exc}; pypdfium2: {second})") from exc
        return PdfFile(source, len(document), "pypdfium2", data, document)


def _open_pdfium(data: bytes) -> Any:
    import pypdfium2

    return pypdfium2.PdfDocument(data)


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
