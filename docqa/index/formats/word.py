"""Word (.docx), with python-docx: the body's paragraphs and tables in order, cut into sections
at its headings (the "Heading N" and "Title" styles); tables read as rows with their headers."""

from __future__ import annotations

import io
import re
from typing import Any

from docqa.config import LoadingSettings
from docqa.index.formats.ooxml import check_package, core_properties
from docqa.index.formats.units import Sections, Units, table_text

_HEADING_STYLE = re.compile(r"Heading ([1-9])$")


def read_docx(source: str, data: bytes, loading: LoadingSettings) -> Units:
    check_package(data, loading, "word/document.xml", ".docx")
    import docx
    from docx.table import Table

    sections = Sections(source)
    headings = []
    document = docx.Document(io.BytesIO(data))
    meta = core_properties(document.core_properties)
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            sections.add(table_text(_rows(block)))
            continue
        level = _level(block.style.name if block.style is not None else "")
        if level is None:
            sections.add(block.text)
        else:
            sections.heading(level, block.text)
            headings.append(block.text.strip())
    title = meta.get("Title") or next((heading for heading in headings if heading), None)
    return Units("python-docx", sections.done(), meta, title)


def _level(style: str) -> int | None:
    """The heading level of a paragraph style (Title: 0); None for body text."""
    if style == "Title":
        return 0
    found = _HEADING_STYLE.match(style)
    return int(found.group(1)) if found else None


def _rows(table: Any) -> list[list[str]]:
    """A table's rows of cell texts; a merged cell counted once."""
    rows = []
    for row in table.rows:
        try:
            cells = list(dict.fromkeys(row.cells))  # a merged cell is repeated in row.cells
        except ValueError:  # a vertical merge python-docx cannot follow (seen in real files)
            rows.append([_text(cell) for cell in row._tr.tc_lst])
            continue
        rows.append([cell.text for cell in cells])
    return rows


def _text(cell: Any) -> str:
    """A cell's text from its XML: its paragraphs, one per line."""
    from docx.oxml.ns import qn

    return "\n".join(
        "".join(run.text or "" for run in paragraph.iter(qn("w:t")))
        for paragraph in cell.iter(qn("w:p"))
    )
