"""Reading pages that are pictures of text: render them with pypdfium2, read them with RapidOCR.

RapidOCR (the rapidocr package) runs PaddleOCR's PP-OCRv6 models on ONNX Runtime, the models
inside its wheel, so OCR works offline and needs no system package. Its recogniser keeps the
spaces between words and reads currency signs: on 12 pages of the 20-F, word error rate 0.8%
counting spaces, against 3.9% with rapidocr-onnxruntime's PP-OCRv4 (words run together, £ read
as f); Tesseract from Debian reached 1.6% and needs a system package, and dictionary word
segmenters left 2-3% and cannot mend a £. Its text boxes are put back in reading order: boxes
whose middles share a band are one line, read left to right; a gap wider than a line starts a
new paragraph; a word hyphenated at a line's end is joined again.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

RENDER_DPI = 300  # the bundled sample's pages: CER 3.1% at 200 dpi, 2.2% at 300 (bench.ocr)
MAX_PIXELS = 36_000_000  # a page larger than A2 at 300 dpi is rendered at a lower resolution
PARAGRAPH_GAP = 1.0  # a vertical gap this many line heights wide starts a paragraph
_HYPHENATED = re.compile(r"(?<=[a-z])-\n(?=[a-z])")


@dataclass(frozen=True)
class TextBox:
    """A line (or part of one) the OCR models read, and where it is in the image's pixels."""

    left: float
    top: float
    right: float
    bottom: float
    text: str

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


def ocr_image(image: np.ndarray) -> str:
    """The text of a page image (height x width x 3, uint8), in reading order."""
    return layout(text_boxes(image))


def text_boxes(image: np.ndarray) -> list[TextBox]:
    """The text boxes the OCR models find in a page image (height x width x 3, uint8)."""
    if image.min() == image.max():  # a blank page: nothing for the OCR models to find
        return []
    try:
        found = _engine()(image)
    except Exception as exc:  # ONNX Runtime's own error, for an allocation past the limit too
        if "bad_alloc" in str(exc):
            raise MemoryError(str(exc)) from exc
        raise
    if found.boxes is None:
        return []
    return [
        TextBox(
            float(corners[:, 0].min()),
            float(corners[:, 1].min()),
            float(corners[:, 0].max()),
            float(corners[:, 1].max()),
            text.strip(),
        )
        for corners, text in zip(found.boxes, found.txts, strict=True)
        if text.strip()
    ]


def render(page: Any, dpi: int = RENDER_DPI) -> np.ndarray:
    """A pypdfium2 page as an RGB image at `dpi`, or less for a page so large that it would
    have more than MAX_PIXELS (a PDF page may be 200 inches wide)."""
    width, height = page.get_size()  # in points
    scale = min(dpi / 72, (MAX_PIXELS / max(width * height, 1.0)) ** 0.5)
    return page.render(scale=scale).to_numpy()[:, :, :3]


def in_lines(boxes: Sequence[TextBox]) -> list[list[TextBox]]:
    """Text boxes grouped into lines (boxes whose middles share a band), top to bottom, each
    line left to right."""
    lines: list[list[TextBox]] = []
    for box in sorted(boxes, key=lambda b: b.middle):
        line = lines[-1] if lines else None
        if line and line[0].top <= box.middle <= line[0].bottom:
            line.append(box)
        else:
            lines.append([box])
    return [sorted(line, key=lambda b: b.left) for line in lines]


def layout(boxes: Sequence[TextBox]) -> str:
    """Text boxes as lines and paragraphs, top to bottom and left to right."""
    lines = in_lines(boxes)
    if not lines:
        return ""
    height = statistics.median(line[0].bottom - line[0].top for line in lines)
    text = ""
    for i, line in enumerate(lines):
        if i:
            gap = line[0].top - lines[i - 1][0].bottom
            text += "\n\n" if gap > PARAGRAPH_GAP * height else "\n"
        text += " ".join(box.text for box in line)
    return _HYPHENATED.sub("", text)


@cache
def _engine() -> Any:
    """One OCR engine per process (loading its three models takes about a second)."""
    from rapidocr import RapidOCR

    # Its angle classifier turned upright lines of English upside down (on the bundled
    # sample, 91% of the words found with it, 99.8% without): pages are taken as upright.
    return RapidOCR(params={"Global.use_cls": False, "Global.log_level": "error"})
