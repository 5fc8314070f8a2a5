"""PowerPoint (.pptx), with python-pptx: one unit per slide — its title, its text frames and
tables (in groups too), and its speaker notes — located as "slide N: title"."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from docqa.config import LoadingSettings
from docqa.index.formats.ooxml import check_package, core_properties
from docqa.index.formats.units import Units, table_text
from docqa.index.loading import LimitReached, Page, normalise


def read_pptx(source: str, data: bytes, loading: LoadingSettings) -> Units:
    check_package(data, loading, "ppt/presentation.xml", ".pptx")
    from pptx import Presentation

    presentation = Presentation(io.BytesIO(data))
    slides = list(presentation.slides)
    meta = core_properties(presentation.core_properties)
    if len(slides) > loading.max_pages:
        raise LimitReached(f"it has {len(slides)} slides", "max_pages")
    units, titles = [], []
    for number, slide in enumerate(slides, start=1):
        title = _title(slide)
        titles.append(title)
        blocks = [title] + [_text(shape) for shape in _shapes(slide.shapes)]
        if slide.has_notes_slide and (notes := slide.notes_slide.notes_text_frame):
            blocks.append(f"Notes: {notes.text}")
        text = normalise("\n\n".join(block for block in blocks if block.strip()))
        if text:
            where = f"slide {number}: {title}" if title else f"slide {number}"
            units.append(Page(source, number, text, where=where))
    headline = meta.get("Title") or next((title for title in titles if title), None)
    return Units("python-pptx", units, meta, headline)


def _title(slide: Any) -> str:
    shape = slide.shapes.title
    return " ".join(shape.text_frame.text.split()) if shape is not None else ""


def _shapes(shapes: Any) -> Iterator[Any]:
    """The shapes that hold text, groups opened, the title left out (it comes first)."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER

    titles = (PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE)
    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shapes(shape.shapes)
        elif not (shape.is_placeholder and shape.placeholder_format.type in titles):
            yield shape


def _text(shape: Any) -> str:
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
        return table_text(rows)
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        return str(shape.text_frame.text)
    return ""
