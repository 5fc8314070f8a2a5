"""Token-aware chunking: every chunk fits the embedding model's input, so none is truncated.

A page is tokenised once with the embedding model's own tokenizer (offsets kept); chunks are
cut at token boundaries that fall between words, preferring a blank line, then a sentence
end, then a line break, in the second half of the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from docqa.loading import Page

if TYPE_CHECKING:
    from tokenizers import Tokenizer


@dataclass(frozen=True)
class Chunk:
    source: str
    page: int
    text: str
    tokens: int  # word pieces of the embedding model, without its special tokens


# Boundary classes, best first.
_PARAGRAPH, _SENTENCE, _LINE, _WORD = range(4)
_SENTENCE_ENDS = (".", "!", "?", ":", ";")


class Chunker:
    """Splits pages into chunks of at most `chunk_tokens` word pieces, overlapping by `overlap`."""

    def __init__(self, tokenizer: Tokenizer, chunk_tokens: int, overlap_tokens: int) -> None:
        if overlap_tokens >= chunk_tokens // 2:
            raise ValueError("overlap_tokens must be less than half of chunk_tokens")
        self._tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens

    def split(self, page: Page) -> list[Chunk]:
        text = page.text
        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        chunks: list[Chunk] = []
        start, count = 0, len(offsets)
        while start < count:
            end = min(start + self.chunk_tokens, count)
            if end < count:
                end = self._cut(text, offsets, start, end)
            piece = text[offsets[start][0] : offsets[end - 1][1]]
            chunks.append(Chunk(page.source, page.number, piece, end - start))
            if end == count:
                break
            start = self._next_start(text, offsets, start, end)
        return chunks

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
