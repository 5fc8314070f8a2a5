"""A source's page written as an image, its passage highlighted (`ask --open N`, chat's
`/open N`)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from docqa.errors import UsageError

if TYPE_CHECKING:
    from docqa.answer.results import Answer
    from docqa.config import Settings

DPI = 150
FOLDER = "docqa-pages"  # in the system's temporary folder, readable by its owner only


def write_page_image(settings: Settings, answer: Answer, n: int) -> Path:
    """Source [n]'s page, the sentence the answer rests on highlighted, as a PNG: its path."""
    from docqa.index.pageview import PageRenderer

    source = next((s for s in answer.sources if s.n == n), None)
    if source is None:
        raise UsageError(f"there is no source [{n}]: the answer has {len(answer.sources)}")
    if not source.paged:
        raise UsageError(f"[{n}] {source.source} has no pages to show: it is not a PDF")
    renderer = PageRenderer(settings.loading)
    try:
        image = renderer.render(settings.paths.data / source.source, source.page, DPI, source.quote)
    finally:
        renderer.close()
    folder = Path(tempfile.gettempdir()) / FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{Path(source.source).stem}-page-{source.page}.png"
    path.write_bytes(image.png)
    return path
