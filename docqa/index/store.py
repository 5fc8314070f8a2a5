"""A loaded index generation: chunk texts read from their mapped file, the FAISS vectors, the
keyword index; and the writing of a new generation (docqa.index.generations switches to it).

Loading checks the manifest first (docqa.index.manifest); then it maps the files rather than
reading them, so a question at 100,000 chunks parses only the chunks it uses.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from docqa.errors import VectorStoreError
from docqa.index.bm25 import BM25Index
from docqa.index.chunking import Chunk
from docqa.index.generations import RERUN, read_current, staged_generation
from docqa.index.identity import DocumentIdentity
from docqa.index.manifest import (
    CHUNK_OFFSETS,
    CHUNKS,
    DATA_FILES,
    INDEX,
    MANIFEST,
    FileEntry,
    Manifest,
    check_model,
    checksum,
    generation_manifest,
    mapped,
    verify_checksums,
)
from docqa.text import as_data

# Beyond retrieval.exact_max_chunks, HNSW with these settings: ~1.5 ms a question, recall@50
# against exact 0.99 at 100,000 chunks and 1.00 at 300,000 (bench/scaling.py).
HNSW_LINKS, HNSW_BUILD_DEPTH, HNSW_SEARCH_DEPTH = 32, 80, 256


class ChunkFile(Sequence[Chunk]):
    """The chunks of a generation's chunks.jsonl, each parsed when it is read."""

    def __init__(self, generation: Path) -> None:
        self._lines = mapped(generation / CHUNKS)
        self._offsets = np.load(generation / CHUNK_OFFSETS, mmap_mode="r", allow_pickle=False)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, index: int) -> Chunk: ...

    @overload
    def __getitem__(self, index: slice) -> list[Chunk]: ...

    def __getitem__(self, index: int | slice) -> Chunk | list[Chunk]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        line = self._lines[self._offsets[index] : self._offsets[index + 1]]
        return Chunk(**json.loads(line))


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk and its cosine similarity to the question."""

    source: str
    page: int
    text: str
    score: float
    chunk_id: int = -1  # position in the index; -1 for hits from elsewhere
    also: tuple[str, ...] = ()  # other names of the same file
    ocr: bool = False  # its page's text was read from the page's image
    document: DocumentIdentity | None = None  # what the file is (None: not from an index)
    locator: str = ""  # where in the file ("slide 3: Budget", "Sheet1, rows 2-40"); "" for a page


class VectorStore:
    """A loaded, verified index: chunks, their vectors, and a keyword index over them."""

    def __init__(
        self,
        folder: Path,
        manifest: Manifest,
        chunks: Sequence[Chunk],
        index: Any,
        keywords: BM25Index,
        generation: str = "",
    ) -> None:
        self.folder = folder
        self.generation = generation  # the generation directory's name
        self.manifest = manifest
        self.chunks = chunks
        self.keywords = keywords
        self._index = index
        self._also = {
            group[0].source: tuple(entry.source for entry in group[1:])
            for group in manifest.documents().values()
        }
        self._ocr_pages = {entry.source: set(entry.ocr_pages) for entry in manifest.files}
        # Each content's chunks are one run of ids, in index order: [start, end).
        self.spans: list[tuple[FileEntry, int, int]] = []
        for entry in manifest.in_index_order():
            start = self.spans[-1][2] if self.spans else 0
            self.spans.append((entry, start, start + entry.chunks))
        self._starts = [start for _, start, _ in self.spans]
        self._identities = {entry.source: entry.identity for entry, _, _ in self.spans}

    @classmethod
    def open(cls, folder: Path, embedding_model: str) -> VectorStore:
        """Load and verify the index in `folder`, refusing one built for another model."""
        return read_current(
            folder, lambda generation: cls._open(folder, generation, embedding_model)
        )

    @classmethod
    def _open(cls, folder: Path, generation: Path, embedding_model: str) -> VectorStore:
        manifest = generation_manifest(generation)
        check_model(folder, manifest, embedding_model)
        verify_checksums(generation, manifest)
        import faiss

        # The vectors stay in the file, mapped (the page cache holds them for every process).
        index = faiss.read_index(str(generation / INDEX), faiss.IO_FLAG_MMAP_IFC)
        chunks = ChunkFile(generation)
        keywords = BM25Index.load(generation)
        sizes = {index.ntotal, len(chunks), len(keywords), manifest.chunks}
        if len(sizes) != 1 or index.d != manifest.embedding.dimension:
            raise VectorStoreError(
                f"the index in {folder} is inconsistent ({index.ntotal} vectors of "
                f"{index.d} dimensions, {len(keywords)} keyword entries for {len(chunks)} "
                f"chunks): {RERUN}"
            )
        return cls(folder, manifest, chunks, index, keywords, generation.name)

    def nearest(
        self, query: np.ndarray, n: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the n chunks nearest a normalised query vector
        (among the `allowed` ones, a mask over chunk ids, when given)."""
        import faiss

        params = None
        if allowed is not None:
            bits = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(bits)  # type: ignore[call-arg, arg-type]
            if isinstance(self._index, faiss.IndexHNSW):
                params = faiss.SearchParametersHNSW(  # type: ignore[attr-defined]
                    sel=selector, efSearch=HNSW_SEARCH_DEPTH
                )
            else:
                params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        count = min(n, len(self.chunks))
        scores, ids = self._index.search(query.reshape(1, -1), count, params=params)
        return [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def document_of(self, chunk_id: int) -> int:
        """The place in `spans` of the document a chunk belongs to."""
        return bisect_right(self._starts, chunk_id) - 1

    def mask(self, documents: frozenset[int]) -> np.ndarray:
        """A mask over chunk ids: True for the chunks of these documents (their places in
        `spans`)."""
        allowed = np.zeros(len(self.chunks), dtype=bool)
        for number in documents:
            _, start, end = self.spans[number]
            allowed[start:end] = True
        return allowed

    def vectors(self, chunk_ids: list[int]) -> np.ndarray:
        """The stored (normalised) vectors of some chunks, one row each."""
        return np.vstack([self._index.reconstruct(chunk_id) for chunk_id in chunk_ids])

    def names_of(self, source: str) -> tuple[str, ...]:
        """Every file name of a document: `source`, and its copies' names."""
        return (source, *self._also.get(source, ()))

    def hit(self, chunk_id: int, score: float) -> Hit:
        chunk = self.chunks[chunk_id]
        also = self._also.get(chunk.source, ())
        ocr = chunk.page in self._ocr_pages.get(chunk.source, ())
        identity = self._identities.get(chunk.source)
        text = as_data(chunk.text)
        return Hit(
            chunk.source, chunk.page, text, score, chunk_id, also, ocr, identity, chunk.locator
        )

    def with_neighbours(self, chunk_id: int, count: int) -> str:
        """The chunk's text joined with up to `count` chunks either side from the same file,
        their overlaps merged (as_data, as every text a search gives)."""
        source = self.chunks[chunk_id].source
        first, last = chunk_id, chunk_id
        while first > 0 and chunk_id - first < count and self.chunks[first - 1].source == source:
            first -= 1
        while (
            last + 1 < len(self.chunks)
            and last - chunk_id < count
            and self.chunks[last + 1].source == source
        ):
            last += 1
        text = self.chunks[first].text
        for chunk in self.chunks[first + 1 : last + 1]:
            text = merge_overlap(text, chunk.text)
        return as_data(text)


def write_store(
    folder: Path,
    manifest: Manifest,
    parts: Iterable[tuple[list[Chunk], np.ndarray]],
    exact_max_chunks: int,
) -> None:
    """Write a new generation from (chunks, their vectors) parts and make it current."""
    import faiss

    with staged_generation(folder) as staging:
        index = vector_index(manifest.embedding.dimension, manifest.chunks, exact_max_chunks)
        offsets = [0]
        with open(staging / CHUNKS, "wb") as out:
            for chunks, vectors in parts:
                index.add(vectors)
                for chunk in chunks:
                    line = json.dumps(chunk.__dict__, ensure_ascii=False).encode() + b"\n"
                    out.write(line)
                    offsets.append(offsets[-1] + len(line))
        with open(staging / CHUNK_OFFSETS, "wb") as out:
            np.save(out, np.array(offsets, dtype=np.int64), allow_pickle=False)
        with open(staging / INDEX, "wb") as out:
            faiss.write_index(index, faiss.PyCallbackIOWriter(out.write))  # type: ignore[attr-defined]
        del index
        headers = manifest.headers()
        BM25Index.build(
            f"{headers.get(chunk.source, '')}\n{chunk.text}" for chunk in ChunkFile(staging)
        ).save(staging)
        checksums = {part: checksum(staging / part) for part in DATA_FILES}
        (staging / MANIFEST).write_text(
            manifest.model_copy(update={"checksums": checksums}).model_dump_json(indent=2),
            encoding="utf-8",
        )


def vector_index(dimension: int, chunks: int, exact_max_chunks: int) -> Any:
    """An empty FAISS index for `chunks` vectors: exact up to `exact_max_chunks`, HNSW beyond."""
    import faiss

    if chunks <= exact_max_chunks:
        return faiss.IndexFlatIP(dimension)
    index = faiss.IndexHNSWFlat(dimension, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_BUILD_DEPTH
    index.hnsw.efSearch = HNSW_SEARCH_DEPTH  # saved in the file, so loading keeps it
    return index


def merge_overlap(before: str, after: str) -> str:
    """`before` + `after`, without the text `after` repeats from the end of `before`."""
    for size in range(min(len(before), len(after)), 0, -1):
        if before.endswith(after[:size]):
            return before + after[size:]
    return before + "\n" + after
