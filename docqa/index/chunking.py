"""Token-aware chunking: every chunk fits the embedding model's input, so none is truncated.

A page is tokenised once with the embedding model's own tokenizer (offsets kept); chunks are
cut at token boundaries that fall between words, preferring a blank line, then a sentence
end, then a line break, in the second half of the window.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from docqa.index.loading import Page

if TYPE_CHECKING:
    from tokenizers import Tokenizer


@dataclass(frozen=True)
class Chunk:
    source: str
    page: int
    text: str
    tokens: int  # word pieces of the embedding model, without its special tokens
    locator: str = ""  # where in the file ("slide 3: Budget", "Sheet1, rows 2-40"); "" for a page


_PAGE_BREAK = "\n\n"

# Boundary classes, best first.
_PARAGRAPH, _SENTENCE, _LINE, _WORD = range(4)
_SENTENCE_ENDS = (".", "!", "?", ":", ";")


def max_overlap(chunk_tokens: int) -> int:
    """The largest overlap a chunk size allows: less than half, since a chunk may end halfway
    through its window and the next must still move on."""
    return chunk_tokens // 2 - 1


class Chunker:
    """Splits pages into chunks of at most `chunk_tokens` word pieces, overlapping by `overlap`.

    With `cross_page`, a document's pages are chunked as one text (a page break counts as a
    paragraph break) and each chunk is attributed to the page it starts on.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        chunk_tokens: int,
        overlap_tokens: int,
        cross_page: bool = False,
    ) -> None:
        if overlap_tokens > max_overlap(chunk_tokens):
            raise ValueError("overlap_tokens must be less than half of chunk_tokens")
        self._tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.cross_page = cross_page

    def split(self, page: Page) -> list[Chunk]:
        return [
            Chunk(page.source, page.number, page.text[start:end], tokens, page.locator(start, end))
            for start, end, tokens in self._spans(page.text)
        ]

    def split_document(self, pages: list[Page]) -> list[Chunk]:
        if not self.cross_page:
            return [chunk for page in pages for chunk in self.split(page)]
        starts, parts, length = [], [], 0
        for page in pages:
            starts.append(length)
            parts.append(page.text)
            length += len(page.text) + len(_PAGE_BREAK)
        text = _PAGE_BREAK.join(parts)
        chunks = []
        for start, end, tokens in self._spans(text):
            at = bisect_right(starts, start) - 1
            page, offset = pages[at], starts[at]
            locator = page.locator(start - offset, min(end - offset, len(page.text)))
            chunks.append(Chunk(page.source, page.number, text[start:end], tokens, locator))
        return chunks

    def _spans(self, text: str) -> list[tuple[int, int, int]]:
        """(start, end, word pieces) of each chunk of `text`, in characters."""
        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        spans: list[tuple[int, int, int]] = []
        start, count = 0, len(offsets)
        while start < count:
            end = min(start + self.chunk_tokens, count)
            if end < count:
                end = self._cut(text, offsets, start, end)
            spans.append((offsets[start][0], offsets[end - 1][1], end - start))
            if end == count:
                break
            start = self._next_start(text, offsets, start, end)
        return spans

    def _cut(self, text: str, offsets: list[tuple[int, int]], start: int, end: int) -> int:
        """The best token index to end a chunk at, within the second half of the window."""
        best, best_class = end, _WORD + 1
        for index in range(end, start + (end - start) // 2, -1):
            boundary = _boundary_class(text, offsets, index)
            if boundary is not None and boundary < best_class:
                best, best_class = index, boundary
                if boundary == _PARAGRAPH:
                    break
        return best

    def _next_start(self, text: str, offsets: list[tuple[int, int]], start: int, end: int) -> int:
        """Step back by the overlap, then forward to the start of a word."""
        index = max(end - self.overlap_tokens, start + 1)
        while index < end and _boundary_class(text, offsets, index) is None:
            index += 1
        return index


def _boundary_class(text: str, offsets: list[tuple[int, int]], index: int) -> int | None:
    """How good a cut before token `index` is; None inside a word."""
    gap = text[offsets[index - 1][1] : offsets[index][0]]
    if not gap:
        return None
    if "\n\n" in gap:
        return _PARAGRAPH
    if text[offsets[index - 1][1] - 1] in _SENTENCE_ENDS:
        return _SENTENCE
    return _LINE if "\n" in gap else _WORD


def strip_boilerplate(pages: list[Page], share: float = 0.2) -> list[Page]:
    """Pages without running headers and footers: lines of 12+ characters repeated on at
    least `share` of a document's pages (and 3 or more), and a page number as the last line.
    A document that holds nothing else keeps them: the same few words on every page are
    still its text."""
    seen = Counter(line for page in pages for line in set(page.text.split("\n")) if len(line) >= 12)
    repeated = {line for line, count in seen.items() if count >= max(3, share * len(pages))}
    cleaned = []
    for page in pages:
        lines = [line for line in page.text.split("\n") if line not in repeated]
        if lines and lines[-1].isdigit():
            lines.pop()
        cleaned.append(replace(page, text="\n".join(lines).strip()))
    if not any(page.text for page in cleaned):
        return pages
    return cleaned
