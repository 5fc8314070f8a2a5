"""What an index generation holds and was built from: its manifest, and the checks a reader
makes before FAISS reads anything (format version, embedding model, each data file's checksum).

A generation folder: manifest.json, index.faiss, chunks.jsonl with its line offsets
(chunks-offsets.npy), and the keyword index (bm25-*.npy, bm25-terms.json). No pickle.
"""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path

from pydantic import BaseModel, ValidationError

from docqa.errors import VectorStoreError
from docqa.index import bm25
from docqa.index.encoders import Precision
from docqa.index.generations import RERUN, read_current
from docqa.index.identity import DocumentIdentity

FORMAT_VERSION = 5  # 5: each file's identity, which its chunks' keyword entries carry
MANIFEST = "manifest.json"
INDEX = "index.faiss"
CHUNKS = "chunks.jsonl"
CHUNK_OFFSETS = "chunks-offsets.npy"  # where each line of chunks.jsonl starts, and the end
DATA_FILES = (INDEX, CHUNKS, CHUNK_OFFSETS, *bm25.FILES)


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


def read_manifest(folder: Path, verify: bool = False) -> tuple[Manifest, int]:
    """The current index's manifest and the bytes its generation takes, refused like the index
    itself when unreadable (`verify`: or when a data file does not match its checksum)."""

    def read(generation: Path) -> tuple[Manifest, int]:
        manifest = generation_manifest(generation)
        if verify:
            verify_checksums(generation, manifest)
        return manifest, sum(path.stat().st_size for path in generation.iterdir())

    return read_current(folder, read)


def generation_manifest(generation: Path) -> Manifest:
    """A generation's manifest, refusing another format version before looking at its
    fields."""
    folder = generation.parent
    try:
        raw = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
        version = raw.get("format_version") if isinstance(raw, dict) else None
        if version != FORMAT_VERSION:
            raise VectorStoreError(
                f"the index in {folder} has format version {version}, and this docqa reads "
                f"version {FORMAT_VERSION}: {RERUN}"
            )
        return Manifest.model_validate(raw)
    except (OSError, ValueError, ValidationError) as exc:
        raise VectorStoreError(
            f"the index in {folder} is damaged (unreadable {MANIFEST}): {RERUN}"
        ) from exc


def check_model(folder: Path, manifest: Manifest, embedding_model: str) -> None:
    if manifest.embedding.model != embedding_model:
        raise VectorStoreError(
            f"the index in {folder} was built with embedding model {manifest.embedding.model}, "
            f"but embedding.model is {embedding_model}: {RERUN}, or set embedding.model back"
        )


def verify_checksums(generation: Path, manifest: Manifest) -> None:
    for name in DATA_FILES:
        if checksum(generation / name) != manifest.checksums.get(name):
            raise VectorStoreError(
                f"the index in {generation.parent} is damaged ({name} does not match its "
                f"checksum): {RERUN}"
            )


def checksum(path: Path) -> str:
    """xxh3-128 of a file: it finds damage, as sha256 did, at memory speed (~25 ms for the
    250 MB of a 100,000-chunk index, against 0.2 s), so every load can check every byte.
    Tampering is not its concern: whoever can write the files can write the manifest."""
    import xxhash

    return xxhash.xxh3_128_hexdigest(mapped(path))


def mapped(path: Path) -> mmap.mmap | bytes:
    """A file's bytes, memory-mapped (b"" when empty: an empty file cannot be mapped)."""
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return b""
        return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
