"""PDF: text read page by page with pypdf, or with pypdfium2 when pypdf cannot open the file or
read a page; pages with no text layer are OCR'd (docqa.index.ocr)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from docqa.config import LoadingSettings, OcrMode
from docqa.index.identifying import headline_of
from docqa.index.inflation import check_inflation
from docqa.index.loading import LimitReached, Page, ReadError, normalise

log = logging.getLogger(__name__)

Parser = Literal["pypdf", "pypdfium2"]


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
    paged = True  # its units are pages

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
            return ocr_image(render(self._pdfium[number - 1]))
        except MemoryError:
            raise
        except Exception as exc:  # a page pdfium cannot render, or the OCR models cannot read
            log.debug("OCR of page %d of %s: %s", number, self.source, exc)
            self.unreadable_pages.append(number)
            return ""

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

    def headline(self) -> str | None:
        """The first page's most prominent line."""
        return headline_of(self.first_page_lines())

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


def page_count(data: bytes) -> int:
    """How many pages a PDF has (pdfium: ~1 ms a file), 0 when it cannot be opened."""
    try:
        return len(_open_pdfium(data))
    except Exception:  # a file that will not open is reported when it is read
        return 0


def read_pdf(source: str, data: bytes, loading: LoadingSettings) -> PdfFile:
    """A PDF opened for reading within the loading limits: what its streams decompress to is
    measured before any PDF library sees them."""
    check_inflation(data, loading.max_stream_mb, loading.max_file_inflated_mb)
    return open_pdf(source, data)


def open_pdf(source: str, data: bytes) -> PdfFile:
    """Open one PDF from its bytes (decrypting it with an empty password if needed) with
    pypdf, or with pypdfium2 if pypdf cannot, or say why not."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # font warnings are noise for users
    if not data:
        raise ReadError("empty file (0 bytes)")
    if b"%PDF-" not in data[:1024]:
        raise ReadError("not a PDF (no %PDF header: another kind of file named .pdf?)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ReadError("encrypted, and it needs a password: save a copy without one")
        if not reader.pages:
            raise PyPdfError("no pages found")  # a page tree pypdf cannot follow
        return PdfFile(source, len(reader.pages), "pypdf", data, reader)
    except DependencyError as exc:
        raise ReadError(f"encrypted in a way docqa cannot decrypt ({exc})") from exc
    except (PyPdfError, ValueError, TypeError, KeyError, OSError, RecursionError) as exc:
        log.debug("%s: pypdf: %s", source, exc)
        try:
            document = _open_pdfium(data)
        except Exception as second:
            raise ReadError(f"not a readable PDF (pypdf: {exc}; pypdfium2: {second})") from exc
        return PdfFile(source, len(document), "pypdfium2", data, document)


def _open_pdfium(data: bytes) -> Any:
    import pypdfium2

    return pypdfium2.PdfDocument(data)
