"""The index on disk: a FAISS file, chunk texts as JSON lines and a JSON manifest. No pickle.

Layout of the vectorstore folder:

    CURRENT                  name of the generation in use, replaced atomically
    gen-<time>-<id>/         one complete index: manifest.json, index.faiss, chunks.jsonl
                             with its line offsets (chunks-offsets.npy), and the keyword
                             index (bm25-*.npy, bm25-terms.json)
    documents/<settings>/    each document's chunks and vectors (docqa.index.documents)
    .lock                    held by the one ingest allowed to write at a time

A new index is written beside the old one, flushed to disk, then CURRENT is switched, so a
crash at any moment leaves the previous index usable; the generation before it is kept too,
for readers still loading it. Loading checks the manifest's format version, embedding model
and the checksums of the data files before FAISS reads anything; then it maps the files
rather than reading them, so a question at 100,000 chunks parses only the chunks it uses.
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import re
import secrets
import shutil
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
from pydantic import BaseModel, ValidationError

from docqa.errors import IndexBusyError, IndexWriteError, VectorStoreError
from docqa.files import fsync
from docqa.index import bm25
from docqa.index.bm25 import BM25Index
from docqa.index.chunking import Chunk
from docqa.index.embeddings import Precision
from docqa.index.identity import DocumentIdentity

FORMAT_VERSION = 5  # 5: each file's identity, which its chunks' keyword entries carry
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
INDEX = "index.faiss"
CHUNKS = "chunks.jsonl"
CHUNK_OFFSETS = "chunks-offsets.npy"  # where each line of chunks.jsonl starts, and the end
DATA_FILES = (INDEX, CHUNKS, CHUNK_OFFSETS, *bm25.FILES)
LOCK = ".lock"
KEEP_GENERATIONS = 2  # the current one and the one before, which a reader may still be loading
_GENERATION = re.compile(r"gen-[0-9A-Za-z-]{1,64}")
_RERUN = "run `python ingest.py` to rebuild it"
# Vector search is exact while it is fast: ~14 ms a question at 100,000 chunks on 2 cores,
# ~40 ms at 300,000. Beyond, HNSW: ~1.5 ms, recall@50 against exact 0.99 at 100,000 and 1.00
# at 300,000 with these settings (bench/scaling.py).
EXACT_MAX_CHUNKS = 100_000
HNSW_LINKS, HNSW_BUILD_DEPTH, HNSW_SEARCH_DEPTH = 32, 80, 256
READ_ATTEMPTS = 3

T = TypeVar("T")


class EmbeddingInfo(BaseModel):
    model: str
    dimension: int
    max_tokens: int
    precision: Precision = "fp32"  # of the chunks' vectors; indexes before bf16 were fp32


class FileEntry(BaseModel):
    """One indexed file name. Copies of a file share its sha256, and its chunks, once."""

    source: str
    sha256: str
    size: int
    mtime_ns: int
    pages: int
    chunks: int
    parser: str = "pypdf"  # the library that read it
    ocr_pages: list[int] = []  # pages whose text was read from their image
    identity: DocumentIdentity  # what it is, as corrected by the user


class FailedFile(BaseModel):
    source: str
    reason: str
    sha256: str | None = None  # None when the file could not even be read
    size: int = 0
    mtime_ns: int = 0


class Manifest(BaseModel):
    """What an index was built from and with; checked before the index is used."""

    format_version: int = FORMAT_VERSION
    docqa_version: str
    created_at: str
    scanned_at_ns: int  # when the data folder was scanned; files changed after are re-hashed
    embedding: EmbeddingInfo
    chunking: dict[str, int | bool | float]
    files: list[FileEntry]
    failed: list[FailedFile] = []
    checksums: dict[str, str] = {}  # xxh3-128 of each data file

    @property
    def ocr_pages(self) -> int:
        """Pages whose text was read by OCR, each distinct content counted once."""
        return sum(len(group[0].ocr_pages) for group in self.documents().values())

    def documents(self) -> dict[str, list[FileEntry]]:
        """Indexed files grouped by content, each group sorted by name."""
        groups: dict[str, list[FileEntry]] = {}
        for entry in sorted(self.files, key=lambda e: e.source):
            groups.setdefault(entry.sha256, []).append(entry)
        return groups

    def in_index_order(self) -> list[FileEntry]:
        """The first file of each content, in the order the index holds their chunks."""
        return sorted((group[0] for group in self.documents().values()), key=lambda e: e.source)

    def headers(self) -> dict[str, str]:
        """The identity header the chunks of each content carry (by its first file's name)."""
        return {entry.source: entry.identity.header() for entry in self.in_index_order()}

    @property
    def pages(self) -> int:
        return sum(group[0].pages for group in self.documents().values())

    @property
    def chunks(self) -> int:
        return sum(group[0].chunks for group in self.documents().values())


class ChunkFile(Sequence[Chunk]):
    """The chunks of a generation's chunks.jsonl, each parsed when it is read."""

    def __init__(self, generation: Path) -> None:
        self._lines = _map(generation / CHUNKS)
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
        return _read_current(
            folder, lambda generation: cls._open(folder, generation, embedding_model)
        )

    @classmethod
    def _open(cls, folder: Path, generation: Path, embedding_model: str) -> VectorStore:
        manifest = _read_manifest(generation)
        _check_model(folder, manifest, embedding_model)
        _verify(generation, manifest)
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
                f"chunks): {_RERUN}"
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
        import numpy as np

        return np.vstack([self._index.reconstruct(chunk_id) for chunk_id in chunk_ids])

    def hit(self, chunk_id: int, score: float) -> Hit:
        chunk = self.chunks[chunk_id]
        also = self._also.get(chunk.source, ())
        ocr = chunk.page in self._ocr_pages.get(chunk.source, ())
        identity = self._identities.get(chunk.source)
        return Hit(chunk.source, chunk.page, chunk.text, score, chunk_id, also, ocr, identity)

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


def write_store(
    folder: Path,
    manifest: Manifest,
    parts: Iterable[tuple[list[Chunk], np.ndarray]],
    exact_max_chunks: int = EXACT_MAX_CHUNKS,
) -> Path:
    """Write a new generation from (chunks, their vectors) parts beside the current one, then
    switch CURRENT to it atomically. A failed write leaves the current one as it was."""
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    name = f"gen-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}"  # sorts by time
    staging = folder / f".staging-{name}"
    try:
        staging.mkdir()
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
        checksums = {part: _checksum(staging / part) for part in DATA_FILES}
        (staging / MANIFEST).write_text(
            manifest.model_copy(update={"checksums": checksums}).model_dump_json(indent=2),
            encoding="utf-8",
        )
        for path in staging.iterdir():
            fsync(path)
        fsync(staging)
        os.rename(staging, folder / name)
        fsync(folder)
        pointer = folder / f".{CURRENT}.{name}"
        pointer.write_text(name + "\n", encoding="utf-8")
        fsync(pointer)
        os.replace(pointer, folder / CURRENT)
        fsync(folder)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in DISK_ERRORS:
            raise write_error(folder, exc) from exc
        raise
    _remove_old_generations(folder, keep=name)
    return folder / name


def vector_index(dimension: int, chunks: int, exact_max_chunks: int) -> Any:
    """An empty FAISS index for `chunks` vectors: exact up to `exact_max_chunks`, HNSW beyond."""
    import faiss

    if chunks <= exact_max_chunks:
        return faiss.IndexFlatIP(dimension)
    index = faiss.IndexHNSWFlat(dimension, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_BUILD_DEPTH
    index.hnsw.efSearch = HNSW_SEARCH_DEPTH  # saved in the file, so loading keeps it
    return index


DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES}


def write_error(folder: Path, exc: OSError) -> IndexWriteError:
    return IndexWriteError(
        f"cannot write the index in {folder} ({exc.strerror}); the previous index is "
        "unchanged and finished files are kept: free some space and run ingest again"
    )


def read_manifest(folder: Path, verify: bool = False) -> tuple[Manifest, int]:
    """The current index's manifest and the bytes its generation takes, refused like the index
    itself when unreadable (`verify`: or when a data file does not match its checksum)."""

    def read(generation: Path) -> tuple[Manifest, int]:
        manifest = _read_manifest(generation)
        if verify:
            _verify(generation, manifest)
        return manifest, sum(path.stat().st_size for path in generation.iterdir())

    return _read_current(folder, read)


def _verify(generation: Path, manifest: Manifest) -> None:
    for name in DATA_FILES:
        if _checksum(generation / name) != manifest.checksums.get(name):
            raise VectorStoreError(
                f"the index in {generation.parent} is damaged ({name} does not match its "
                f"checksum): {_RERUN}"
            )


@contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """Hold the index's write lock, or refuse at once when another ingest holds it."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            raise IndexBusyError(
                f"another ingest (process {holder}) is writing the index in {folder}: wait "
                "for it to finish, then run ingest again"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield
        finally:
            lock.truncate(0)


def index_size(folder: Path) -> int:
    """Bytes on disk under the index folder (every generation and the document store)."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _merge_overlap(before: str, after: str) -> str:
    """`before` + `after`, without the text `after` repeats from the end of `before`."""
    for size in range(min(len(before), len(after)), 0, -1):
        if before.endswith(after[:size]):
            return before + after[size:]
    return before + "\n" + after


def _read_current(folder: Path, read: Callable[[Path], T]) -> T:
    """`read` of the current generation, read again from the newest one when CURRENT moved on
    meanwhile: ingest keeps only the newest two generations, so when two finish during a read
    its files vanish, whatever error that raises (a missing file, a "damaged" manifest, FAISS's
    RuntimeError). With CURRENT unchanged, the error is the index's own."""
    for attempt in range(READ_ATTEMPTS):
        name = current_generation(folder)
        try:
            if not (folder / name).is_dir():
                raise _bad_current(folder)
            return read(folder / name)
        except Exception:
            if attempt == READ_ATTEMPTS - 1 or not _replaced(folder, name):
                raise
    raise AssertionError("unreachable")


def current_generation(folder: Path) -> str:
    """The name of the generation CURRENT points to: a new one after each ingest that wrote."""
    try:
        name = (folder / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise VectorStoreError(
            f"no index in {folder}: run `python ingest.py` first (it reads PDFs from data/)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VectorStoreError(f"cannot read the index in {folder} ({exc}): {_RERUN}") from exc
    if not _GENERATION.fullmatch(name):
        raise _bad_current(folder)
    return name


def _replaced(folder: Path, name: str) -> bool:
    """Whether CURRENT no longer points to generation `name`."""
    try:
        return current_generation(folder) != name
    except VectorStoreError:
        return True  # read it again, to report what is wrong now


def _bad_current(folder: Path) -> VectorStoreError:
    return VectorStoreError(f"the index in {folder} is damaged (bad {CURRENT}): {_RERUN}")


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


def _map(path: Path) -> mmap.mmap | bytes:
    """A file's bytes, memory-mapped (b"" when empty: an empty file cannot be mapped)."""
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return b""
        return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


def _checksum(path: Path) -> str:
    """xxh3-128 of a file: it finds damage, as sha256 did, at memory speed (~25 ms for the
    250 MB of a 100,000-chunk index, against 0.2 s), so every load can check every byte.
    Tampering is not its concern: whoever can write the files can write the manifest."""
    import xxhash

    return xxhash.xxh3_128_hexdigest(_map(path))


def _remove_old_generations(folder: Path, keep: str) -> None:
    """Remove every generation but the newest KEEP_GENERATIONS, and leftovers of crashes."""
    generations = sorted(
        (path for path in folder.iterdir() if _GENERATION.fullmatch(path.name)),
        key=lambda path: (path.name == keep, path.name),
        reverse=True,
    )
    leftovers = [
        path for path in folder.iterdir() if path.name.startswith((".staging-", f".{CURRENT}."))
    ]
    for path in generations[KEEP_GENERATIONS:] + leftovers:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
