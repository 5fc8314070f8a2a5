"""The index on disk: a FAISS file, chunk texts as JSON lines and a JSON manifest. No pickle.

Layout of the vectorstore folder:

    CURRENT                  name of the generation in use, replaced atomically
    gen-<time>-<id>/         one complete index: manifest.json, index.faiss, chunks.jsonl,
                             and the keyword index (bm25.npz, bm25-terms.json)

A new index is written beside the old one, flushed to disk, then CURRENT is switched, so a
crash at any moment leaves the previous index usable. Loading checks the manifest's format
version, embedding model and the checksums of the data files before FAISS reads anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from docqa.bm25 import BM25Index
from docqa.chunking import Chunk
from docqa.errors import VectorStoreError

if TYPE_CHECKING:
    import numpy as np

FORMAT_VERSION = 2
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
INDEX = "index.faiss"
CHUNKS = "chunks.jsonl"
KEYWORDS = "bm25.npz"
KEYWORD_TERMS = "bm25-terms.json"
DATA_FILES = (INDEX, CHUNKS, KEYWORDS, KEYWORD_TERMS)
_GENERATION = re.compile(r"gen-[0-9A-Za-z-]{1,64}")
_RERUN = "run `python ingest.py` to rebuild it"


class EmbeddingInfo(BaseModel):
    model: str
    dimension: int
    max_tokens: int


class FileEntry(BaseModel):
    source: str
    sha256: str
    pages: int
    chunks: int


class Manifest(BaseModel):
    """What an index was built from and with; checked before the index is used."""

    format_version: int = FORMAT_VERSION
    docqa_version: str
    created_at: str
    embedding: EmbeddingInfo
    chunking: dict[str, int | bool]
    files: list[FileEntry]
    checksums: dict[str, str] = {}

    @property
    def pages(self) -> int:
        return sum(entry.pages for entry in self.files)


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk and its cosine similarity to the question."""

    source: str
    page: int
    text: str
    score: float
    chunk_id: int = -1  # position in the index; -1 for hits from elsewhere


class VectorStore:
    """A loaded, verified index: chunks, their vectors, and a keyword index over them."""

    def __init__(
        self,
        folder: Path,
        manifest: Manifest,
        chunks: list[Chunk],
        index: Any,
        keywords: BM25Index,
    ) -> None:
        self.folder = folder
        self.manifest = manifest
        self.chunks = chunks
        self.keywords = keywords
        self._index = index

    @classmethod
    def open(cls, folder: Path, embedding_model: str) -> VectorStore:
        """Load and verify the index in `folder`, refusing one built for another model."""
        generation = _current_generation(folder)
        manifest = _read_manifest(generation)
        _check_model(folder, manifest, embedding_model)
        for name in DATA_FILES:
            if _sha256(generation / name) != manifest.checksums.get(name):
                raise VectorStoreError(
                    f"the index in {folder} is damaged ({name} does not match its checksum): "
                    f"{_RERUN}"
                )
        import faiss

        index = faiss.read_index(str(generation / INDEX))
        chunks = [Chunk(**json.loads(line)) for line in _read_lines(generation / CHUNKS)]
        keywords = BM25Index.load(generation / KEYWORDS, generation / KEYWORD_TERMS)
        sizes = {index.ntotal, len(chunks), len(keywords)}
        if len(sizes) != 1 or index.d != manifest.embedding.dimension:
            raise VectorStoreError(
                f"the index in {folder} is inconsistent ({index.ntotal} vectors of "
                f"{index.d} dimensions, {len(keywords)} keyword entries for {len(chunks)} "
                f"chunks): {_RERUN}"
            )
        return cls(folder, manifest, chunks, index, keywords)

    def nearest(self, query: np.ndarray, n: int) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the n chunks nearest a normalised query vector."""
        scores, ids = self._index.search(query.reshape(1, -1), min(n, len(self.chunks)))
        return [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def vectors(self, chunk_ids: list[int]) -> np.ndarray:
        """The stored (normalised) vectors of some chunks, one row each."""
        import numpy as np

        return np.vstack([self._index.reconstruct(chunk_id) for chunk_id in chunk_ids])

    def hit(self, chunk_id: int, score: float) -> Hit:
        chunk = self.chunks[chunk_id]
        return Hit(chunk.source, chunk.page, chunk.text, score, chunk_id)

    def with_neighbours(self, chunk_id: int, count: int) -> str:
        """The chunk's text joined with up to `count` chunks either side from the same file,
        their overlaps merged."""
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
            text = _merge_overlap(text, chunk.text)
        return text


def write_store(folder: Path, manifest: Manifest, chunks: list[Chunk], vectors: np.ndarray) -> Path:
    """Write a new generation beside the current one, then switch CURRENT to it atomically."""
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    name = f"gen-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    staging = folder / f".staging-{name}"
    staging.mkdir()
    try:
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        faiss.write_index(index, str(staging / INDEX))
        with open(staging / CHUNKS, "w", encoding="utf-8") as out:
            for chunk in chunks:
                out.write(json.dumps(chunk.__dict__, ensure_ascii=False) + "\n")
        BM25Index.build(chunk.text for chunk in chunks).save(
            staging / KEYWORDS, staging / KEYWORD_TERMS
        )
        checksums = {part: _sha256(staging / part) for part in DATA_FILES}
        (staging / MANIFEST).write_text(
            manifest.model_copy(update={"checksums": checksums}).model_dump_json(indent=2),
            encoding="utf-8",
        )
        for path in staging.iterdir():
            _fsync(path)
        _fsync(staging)
        os.rename(staging, folder / name)
        _fsync(folder)
        pointer = folder / f".{CURRENT}.{name}"
        pointer.write_text(name + "\n", encoding="utf-8")
        _fsync(pointer)
        os.replace(pointer, folder / CURRENT)
        _fsync(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _remove_old_generations(folder, keep=name)
    return folder / name


def _merge_overlap(before: str, after: str) -> str:
    """`before` + `after`, without the text `after` repeats from the end of `before`."""
    for size in range(min(len(before), len(after)), 0, -1):
        if before.endswith(after[:size]):
            return before + after[size:]
    return before + "\n" + after


def _current_generation(folder: Path) -> Path:
    try:
        name = (folder / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise VectorStoreError(
            f"no index in {folder}: run `python ingest.py` first (it reads PDFs from data/)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VectorStoreError(f"cannot read the index in {folder} ({exc}): {_RERUN}") from exc
    if not _GENERATION.fullmatch(name) or not (folder / name).is_dir():
        raise VectorStoreError(f"the index in {folder} is damaged (bad {CURRENT}): {_RERUN}")
    return folder / name


def _read_manifest(generation: Path) -> Manifest:
    """The manifest, refusing another format version before looking at its fields."""
    folder = generation.parent
    try:
        raw = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
        version = raw.get("format_version") if isinstance(raw, dict) else None
        if version != FORMAT_VERSION:
            raise VectorStoreError(
                f"the index in {folder} has format version {version}, and this docqa reads "
                f"version {FORMAT_VERSION}: {_RERUN}"
            )
        return Manifest.model_validate(raw)
    except (OSError, ValueError, ValidationError) as exc:
        raise VectorStoreError(
            f"the index in {folder} is damaged (unreadable {MANIFEST}): {_RERUN}"
        ) from exc


def _check_model(folder: Path, manifest: Manifest, embedding_model: str) -> None:
    if manifest.embedding.model != embedding_model:
        raise VectorStoreError(
            f"the index in {folder} was built with embedding model {manifest.embedding.model}, "
            f"but embedding.model is {embedding_model}: {_RERUN}, or set embedding.model back"
        )


def _read_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as lines:
        return [line for line in lines if line.strip()]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_old_generations(folder: Path, keep: str) -> None:
    for path in folder.iterdir():
        if path.name != keep and (path.name.startswith(("gen-", ".staging-", f".{CURRENT}."))):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
