"""A page of a PDF as an image, with the passage an answer used highlighted.

The page is rendered with pypdfium2. The passage is found among the page's words: the text
layer's, each boxed by its characters, or on a page without one (a scan) the OCR models'
lines, each word given its share of its line's box. Quote and page are compared as runs of
lower-case words, so the line breaks, hyphens and spacing of the extracted text do not matter,
and the words found are tinted where they stand. Pages are rendered in a reading process
(docqa.index.readers), within the reading limits: a hostile file is no more dangerous shown
than read.
"""

from __future__ import annotations

import base64
import io
import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import asdict, dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docqa.errors import DocqaError, UsageError

if TYPE_CHECKING:
    from PIL import Image

    from docqa.config import LoadingSettings
    from docqa.index.readers import ReaderProcess

DEFAULT_DPI = 110
MIN_DPI = 36
MAX_DPI = 300
MAX_PIXELS = 12_000_000  # whatever the page's size and the dpi asked, no larger rendering
MAX_QUOTE_CHARS = 2000
RENDER_SECONDS = 120  # longest a page may take to render (an OCR'd one takes ~10 s here)
CACHED = 32  # renderings kept by a PageRenderer
MIN_RUN = 3  # words in a row a quote and a page must share (fewer if the quote is shorter)
SLACK = 3  # words a page may have beyond the quote between two shared runs
PAD = 2  # pixels around each highlighted line
TINT = (255, 214, 64)  # multiplied into the highlighted pixels: paper turns yellow, ink stays
_WORD = re.compile(r"[£$€¥]?\w+%?")  # a word, with its currency sign or per cent

Box = tuple[int, int, int, int]  # left, top, right, bottom, in the image's pixels


class NoSuchPage(UsageError):
    """A page number past the document's pages."""


class RenderError(DocqaError):
    """A page that could not be rendered (a damaged file, or one past the reading limits)."""


@dataclass(frozen=True)
class PageImage:
    png: bytes
    width: int
    height: int
    pages: int  # the document's page count
    highlights: list[Box]  # one rectangle per line of the passage found
    ocr: bool  # the passage was looked for in the page's OCR'd words

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "png": base64.b64encode(self.png).decode()}

    @classmethod
    def from_json(cls, found: dict[str, Any]) -> PageImage:
        boxes = [(left, top, right, bottom) for left, top, right, bottom in found["highlights"]]
        return cls(**{**found, "png": base64.b64decode(found["png"]), "highlights": boxes})


@dataclass(frozen=True)
class _Word:
    text: str  # folded
    box: tuple[float, float, float, float]


def render_page(path: Path, number: int, dpi: int, quote: str) -> PageImage:
    """Page `number` (from 1) of the PDF at `path`, at `dpi` (less for a page so large it
    would pass MAX_PIXELS), with `quote` highlighted where it is found."""
    import pypdfium2

    document = pypdfium2.PdfDocument(path)
    try:
        if not 1 <= number <= len(document):
            raise NoSuchPage(f"there is no page {number}: the document has {len(document)}")
        page = document[number - 1]
        width, height = page.get_size()
        scale = min(dpi / 72, (MAX_PIXELS / max(width * height, 1.0)) ** 0.5)
        image = page.render(scale=scale).to_pil().convert("RGB")
        wanted = _folded_words(quote)
        words, ocr = _text_layer_words(page, image.size), False
        if wanted and not words:
            words, ocr = _ocr_words(page, image.width), True
        found = _passage([word.text for word in words], wanted)
        highlights = _lines([words[i].box for i in found])
        _tint(image, highlights)
        png = io.BytesIO()
        image.save(png, "PNG")
        return PageImage(png.getvalue(), image.width, image.height, len(document), highlights, ocr)
    finally:
        document.close()


def _folded_words(text: str) -> list[str]:
    return [_fold(word) for word in _WORD.findall(text)]


def _fold(word: str) -> str:
    return unicodedata.normalize("NFKC", word).casefold()


def _text_layer_words(page: Any, size: tuple[int, int]) -> list[_Word]:
    """The words of the page's text layer, each with its characters' box in pixels."""
    import ctypes

    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    text = "".join(
        chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i)) for i in range(textpage.count_chars())
    )
    device_x, device_y = ctypes.c_int(), ctypes.c_int()

    def pixels(x: float, y: float) -> tuple[int, int]:
        pdfium_c.FPDF_PageToDevice(
            page.raw, 0, 0, *size, 0, x, y, ctypes.byref(device_x), ctypes.byref(device_y)
        )
        return device_x.value, device_y.value

    words = []
    for match in _WORD.finditer(text):
        corners = []
        for index in range(match.start(), match.end()):
            left, bottom, right, top = textpage.get_charbox(index)
            if right > left and top > bottom:
                corners += [pixels(left, top), pixels(right, bottom)]
        if corners:
            xs, ys = [x for x, _ in corners], [y for _, y in corners]
            words.append(_Word(_fold(match.group()), (min(xs), min(ys), max(xs), max(ys))))
    return words


def _ocr_words(page: Any, width: int) -> list[_Word]:
    """The words the OCR models read on the page, in reading order, each given its share of
    its line's box (by characters), in the pixels of a rendering `width` wide."""
    from docqa.index.ocr import in_lines, render, text_boxes

    image = render(page)
    ratio = width / image.shape[1]
    words = []
    for line in in_lines(text_boxes(image)):
        for box in line:
            share = (box.right - box.left) / len(box.text)
            for match in _WORD.finditer(box.text):
                left, right = box.left + share * match.start(), box.left + share * match.end()
                scaled = (left * ratio, box.top * ratio, right * ratio, box.bottom * ratio)
                words.append(_Word(_fold(match.group()), scaled))
    return words


def _passage(words: list[str], quote: list[str]) -> range:
    """Which of the page's words the quote is: the longest run they share, joined by the runs
    beside it that follow on in both (the page may have a few words more between them)."""
    if not quote:
        return range(0)
    matcher = SequenceMatcher(None, words, quote, autojunk=False)
    runs = [run for run in matcher.get_matching_blocks() if run.size]
    if not runs:
        return range(0)
    best = max(range(len(runs)), key=lambda i: runs[i].size)
    if runs[best].size < min(MIN_RUN, len(quote)):
        return range(0)
    first = last = best
    while first > 0 and _follows(runs[first - 1], runs[first]):
        first -= 1
    while last + 1 < len(runs) and _follows(runs[last], runs[last + 1]):
        last += 1
    return range(runs[first].a, runs[last].a + runs[last].size)


def _follows(before: Any, after: Any) -> bool:
    page_gap = after.a - (before.a + before.size)
    quote_gap = after.b - (before.b + before.size)
    return page_gap <= quote_gap + SLACK


def _lines(boxes: list[tuple[float, float, float, float]]) -> list[Box]:
    """Word boxes in reading order as one rectangle per line."""
    lines: list[list[float]] = []
    for left, top, right, bottom in boxes:
        line = lines[-1] if lines else None
        if line and line[1] <= (top + bottom) / 2 <= line[3] and left >= line[0]:
            line[1:] = [min(line[1], top), max(line[2], right), max(line[3], bottom)]
        else:
            lines.append([left, top, right, bottom])
    return [
        (int(left) - PAD, int(top) - PAD, int(right) + PAD + 1, int(bottom) + PAD + 1)
        for left, top, right, bottom in lines
    ]


def _tint(image: Image.Image, boxes: list[Box]) -> None:
    from PIL import Image, ImageChops

    for box in boxes:
        region = image.crop(box)
        image.paste(ImageChops.multiply(region, Image.new("RGB", region.size, TINT)), box[:2])


class PageRenderer:
    """Pages rendered in a reading process of their own (started for the first), one at a
    time; the latest CACHED renderings are kept."""

    def __init__(self, loading: LoadingSettings) -> None:
        self.loading = loading
        self._process: ReaderProcess | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[Any, ...], PageImage] = OrderedDict()

    def render(self, path: Path, number: int, dpi: int = DEFAULT_DPI, quote: str = "") -> PageImage:
        """Page `number` of the PDF at `path` (see render_page); NoSuchPage, or RenderError
        when the page cannot be rendered."""
        from docqa.index.readers import ReaderProcess

        if not MIN_DPI <= dpi <= MAX_DPI:
            raise UsageError(f"dpi must be from {MIN_DPI} to {MAX_DPI}")
        stat, quote = path.stat(), quote[:MAX_QUOTE_CHARS]
        key = (str(path), stat.st_mtime_ns, stat.st_size, number, dpi, quote)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            if self._process is None:
                self._process = ReaderProcess(self.loading, seconds=RENDER_SECONDS)
            image = self._process.render(path, number, dpi, quote)
            self._cache[key] = image
            if len(self._cache) > CACHED:
                self._cache.popitem(last=False)
            return image

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                self._process.close()
                self._process = None
