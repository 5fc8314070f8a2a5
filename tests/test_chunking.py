"""Token-aware chunking with the embedding model's real tokenizer: no chunk is ever truncated."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from docqa.index.chunking import Chunker
from docqa.index.embeddings import Embedder
from docqa.index.formats.pdf import open_pdf
from docqa.index.loading import Page

WORDS = [
    *("the", "revenue", "of", "£583.2", "million,", "rose", "by", "18.0%"),
    *("(2021:", "£494.1m)", "broadcasting", "sponsorship"),
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder("all-MiniLM-L6-v2")


def random_text(seed: int, words: int) -> str:
    rng = random.Random(seed)
    parts = []
    for i in range(words):
        parts.append(rng.choice(WORDS))
        if i % 17 == 16:
            parts.append(".\n" if i % 3 else ".\n\n")
    return " ".join(parts)


def assert_fits(embedder: Embedder, chunks: list, limit: int) -> None:
    for chunk in chunks:
        pieces = len(embedder.tokenizer.encode(chunk.text, add_special_tokens=False).ids)
        assert pieces <= limit, f"{pieces} word pieces: {chunk.text[:80]!r}"
        assert len(embedder.tokenizer.encode(chunk.text).ids) <= embedder.max_tokens + 2


@pytest.mark.parametrize("seed", range(5))
def test_chunks_fit_and_cover_the_page(embedder: Embedder, seed: int) -> None:
    page = Page("doc.pdf", 3, random_text(seed, 900))
    chunker = Chunker(embedder.tokenizer, chunk_tokens=120, overlap_tokens=20)
    chunks = chunker.split(page)
    assert len(chunks) > 5
    assert_fits(embedder, chunks, 120)
    assert all((c.source, c.page) == ("doc.pdf", 3) for c in chunks)
    covered = " ".join(c.text for c in chunks).split()
    assert set(page.text.split()) <= set(covered)
    for before, after in itertools.pairwise(chunks):
        assert before.text.split()[-1] in after.text.split()[:40], "neighbours overlap"
        assert page.text[page.text.index(after.text) - 1].isspace(), "chunks start at a word"


def test_cuts_prefer_sentence_ends(embedder: Embedder) -> None:
    text = " ".join(f"Sentence number {i} says something about revenue." for i in range(80))
    chunks = Chunker(embedder.tokenizer, chunk_tokens=100, overlap_tokens=10).split(
        Page("a.pdf", 1, text)
    )
    assert all(c.text.endswith(".") for c in chunks)


def test_text_without_spaces_is_still_split_within_the_limit(embedder: Embedder) -> None:
    page = Page("a.pdf", 1, "x" * 5000)
    chunks = Chunker(embedder.tokenizer, chunk_tokens=64, overlap_tokens=8).split(page)
    assert_fits(embedder, chunks, 64)
    assert "".join(c.text for c in chunks).count("x") >= 5000


def test_empty_page_has_no_chunks(embedder: Embedder) -> None:
    assert Chunker(embedder.tokenizer, 64, 8).split(Page("a.pdf", 1, "")) == []


def test_overlap_must_be_less_than_half(embedder: Embedder) -> None:
    with pytest.raises(ValueError, match="overlap_tokens"):
        Chunker(embedder.tokenizer, chunk_tokens=64, overlap_tokens=32)


@pytest.mark.slow
def test_no_chunk_of_the_showcase_document_is_truncated(
    embedder: Embedder, showcase_pdf: Path
) -> None:
    pdf = open_pdf(showcase_pdf.name, showcase_pdf.read_bytes())
    chunker = Chunker(embedder.tokenizer, chunk_tokens=embedder.max_tokens, overlap_tokens=32)
    chunks = [chunk for page in pdf.pages() for chunk in chunker.split(page)]
    assert pdf.page_count == 177
    assert len(chunks) > 600
    assert_fits(embedder, chunks, embedder.max_tokens)
