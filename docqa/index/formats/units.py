"""What every format's reader gives (Opened), and the pieces the readers of formats other than
PDF share: a document read whole (Units), text gathered under its headings (Sections), lines
or rows kept with their numbers (numbered), a table's rows with their headers (table_lines)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from docqa.config import OcrMode
from docqa.index.loading import Page, normalise


class Opened(Protocol):
    """A file opened by its format's reader, ready to give its units one at a time."""

    parser: str  # the library that read it
    page_count: int  # its units: pages, slides, sections, sheet regions
    paged: bool
    unreadable_pages: list[int]
    textless_pages: list[int]
    ocr_pages: list[int]

    def pages(self, ocr: OcrMode = "off", max_ocr_pages: int | None = None) -> Iterator[Page]:
        """Its units' text, in order."""
        ...

    def metadata(self) -> dict[str, str]:
        """What the file says of itself: Title, Author, Subject (those it has)."""
        ...

    def headline(self) -> str | None:
        """Its most prominent line (a PDF's cover title, a document's first heading)."""
        ...


@dataclass
class Units:
    """A document read whole into units (every format but PDF)."""

    parser: str
    units: list[Page]
    meta: dict[str, str] = field(default_factory=dict)
    title: str | None = None
    paged = False
    unreadable_pages: list[int] = field(default_factory=list)
    textless_pages: list[int] = field(default_factory=list)
    ocr_pages: list[int] = field(default_factory=list)

    @property
    def page_count(self) -> int:
        return len(self.units)

    def pages(self, ocr: OcrMode = "off", max_ocr_pages: int | None = None) -> Iterator[Page]:
        return iter(self.units)

    def metadata(self) -> dict[str, str]:
        return self.meta

    def headline(self) -> str | None:
        return self.title


class Sections:
    """Text gathered under its headings: each heading starts a unit, located by its heading
    path ("Terms > Payment"); text before the first heading is at `opening`."""

    def __init__(self, source: str, opening: str = "start of the document") -> None:
        self.source = source
        self.opening = opening
        self.units: list[Page] = []
        self._path: list[tuple[int, str]] = []
        self._blocks: list[str] = []

    def heading(self, level: int, text: str) -> None:
        text = normalise(text).replace("\n", " ")
        if not text:
            return
        self._close()
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        self._path.append((level, text))
        self._blocks.append(text)

    def add(self, text: str) -> None:
        """A paragraph, list item or table (its rows on lines of their own)."""
        if text := normalise(text):
            self._blocks.append(text)

    def done(self) -> list[Page]:
        self._close()
        return self.units

    def _close(self) -> None:
        text = "\n\n".join(self._blocks)
        self._blocks = []
        if text:
            where = " > ".join(name for _, name in self._path) or self.opening
            self.units.append(Page(self.source, len(self.units) + 1, text, where=where))


def numbered(
    source: str,
    number: int,
    lines: Iterable[tuple[int, str]],
    where: str = "",
    line_word: str = "lines",
) -> Page | None:
    """A unit of numbered lines (a text file's lines, a sheet's rows), each normalised; runs
    of blank lines kept as one. None when no line holds text."""
    kept: list[tuple[int, str]] = []
    for line_number, line in lines:
        line = " ".join(normalise(line).split())
        if line or (kept and kept[-1][1]):
            kept.append((line_number, line))
    while kept and not kept[-1][1]:
        kept.pop()
    if not kept:
        return None
    text = "\n".join(line for _, line in kept)
    numbers = tuple(line_number for line_number, _ in kept)
    return Page(source, number, text, where=where, lines=numbers, line_word=line_word)


def row_text(headers: Sequence[str], cells: Sequence[str]) -> str:
    """A table row as one sentence, "Header: value, Header: value." (a cell under no header:
    its value), so that evidence and quotes take whole rows."""
    parts = []
    for index, cell in enumerate(cells):
        cell = " ".join(cell.split())
        if not cell:
            continue
        header = " ".join(headers[index].split()) if index < len(headers) else ""
        parts.append(f"{header}: {cell}" if header and header != cell else cell)
    return ", ".join(parts) + "." if parts else ""


def table_text(rows: Sequence[Sequence[str]]) -> str:
    """A table as text, a line for each row that holds something (table_lines)."""
    return "\n".join(table_lines([row for row in rows if any(cell.strip() for cell in row)]))


def table_lines(rows: Sequence[Sequence[str]]) -> list[str]:
    """A table's lines: its header row ("Vendor · Limit"), then each row with its headers."""
    if not rows:
        return []
    headers = rows[0]
    first = " · ".join(" ".join(cell.split()) for cell in headers if cell.strip())
    return [first] + [row_text(headers, row) for row in rows[1:]]
