"""The ingest service: bring the index up to date with the PDFs in the data folder.

Files are matched with the last ingest by content (SHA-256). Only new content is read and
embedded; renamed, moved and copied files reuse the chunks already made, and a file whose
size and times are unchanged is not even re-read. Each document is kept as soon as it is
embedded (docqa.index.documents), so an interrupted ingest resumes where it stopped; the index
itself is replaced by one atomic switch, under a lock that admits one ingest at a time.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from docqa import __version__
from docqa.config import Settings
from docqa.errors import ConfigError, IngestInterrupted, NoDocumentsError, VectorStoreError
from docqa.index.chunking import Chunk, max_overlap
from docqa.index.corrections import Corrections
from docqa.index.documents import Document, DocumentStore
from docqa.index.embeddings import Embedder, Runtime, ingest_runtime
from docqa.index.loading import (
    FoundFile,
    PdfReadError,
    find_pdfs,
    page_count,
    read_file,
)
from docqa.index.reading import Planned, Reading, ReadProgress, read_ahead
from docqa.index.store import (
    CURRENT,
    FORMAT_VERSION,
    EmbeddingInfo,
    FailedFile,
    FileEntry,
    Manifest,
    index_size,
    read_manifest,
    write_store,
    writer_lock,
)

if TYPE_CHECKING:
    import numpy as np

EMBED_SLICE = 64  # chunks embedded per call, so progress moves every second or so
RACY_NS = 2_000_000_000  # files modified this close to the last scan are re-hashed


class IngestProgress(ReadProgress):
    """Told how far an ingest has got; this base ignores it, a user interface shows it."""

    def start(self, files: int) -> None:
        """About to check `files` PDF files."""

    def planned(self, files: int, pages: int) -> None:
        """Of them, `files` holding `pages` pages are to be read."""

    def embedded(self, chunks: int) -> None:
        """Embedded `chunks` more chunks."""

    def skipped(self) -> None:
        """Checked one file whose content is already known."""


@dataclass
class IngestReport:
    vectorstore: Path
    manifest: Manifest | None = None  # the index in use after the ingest
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)  # (old name, new name)
    copies: list[tuple[str, str]] = field(default_factory=list)  # (copy, file it repeats)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    resumed: int = 0  # documents an interrupted ingest had finished
    failed: list[FailedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    written: bool = False  # False when the index was already up to date
    rebuilt_because: str | None = None
    seconds: float = 0.0
    pages_read: int = 0  # by this ingest (a file known by its content is not read again)
    chunks_made: int = 0  # embedded by this ingest

    @property
    def files(self) -> list[FileEntry]:
        return self.manifest.files if self.manifest else []

    @property
    def pages(self) -> int:
        return self.manifest.pages if self.manifest else 0

    @property
    def chunks(self) -> int:
        return self.manifest.chunks if self.manifest else 0


@dataclass(frozen=True)
class _Seen:
    """A file found in the data folder, identified by content."""

    found: FoundFile
    size: int
    mtime_ns: int
    sha256: str | None  # None when it could not be read
    error: str | None = None


def ingest(
    settings: Settings, progress: IngestProgress | None = None, rebuild: bool = False
) -> IngestReport:
    """Bring the index up to date with the data folder (`rebuild`: make everything anew)."""
    started = time.perf_counter()
    progress = progress or IngestProgress()
    data, folder = settings.paths.data, settings.paths.vectorstore
    chunking = settings.chunking
    # Before any work: the chunker would only find out at the first new document.
    if chunking.overlap_tokens > max_overlap(chunking.chunk_tokens):
        raise ConfigError(
            f"chunking.overlap_tokens is {chunking.overlap_tokens}, but it must be less than "
            f"half of chunking.chunk_tokens ({chunking.chunk_tokens}): set it to at most "
            f"{max_overlap(chunking.chunk_tokens)}, or raise chunking.chunk_tokens"
        )
    if not data.is_dir():
        raise NoDocumentsError(f"data folder {data} does not exist: create it and put PDFs in it")
    embedder = shared_embedder(
        settings.embedding.model,
        settings.embedding.batch_size,
        ingest_runtime(settings.embedding.precision),
    )
    if chunking.chunk_tokens > embedder.max_tokens:
        raise ConfigError(
            f"chunking.chunk_tokens is {chunking.chunk_tokens}, but {embedder.model_id} reads "
            f"at most {embedder.max_tokens} word pieces: lower it so no chunk is truncated"
        )
    found, broken = find_pdfs(data)
    if not found and not broken:
        raise NoDocumentsError(
            f"no PDF files in {data}: put some there and run ingest again"
            + (" (the index is unchanged)" if (folder / CURRENT).exists() else "")
        )
    embedding = EmbeddingInfo(
        model=embedder.model_id,
        dimension=embedder.dimension,
        max_tokens=embedder.max_tokens,
        precision=embedder.precision,
    )
    report = IngestReport(folder)
    corrections = Corrections.read(data)
    try:
        with writer_lock(folder):
            previous, report.rebuilt_because = _previous(folder, embedding, settings, rebuild)
            scanned_at_ns = time.time_ns()
            progress.start(len(found))
            # A document's header is mixed into its chunks' vectors as the index is written:
            # the weight can change without reading or embedding anything again.
            made_with = chunking.model_dump(exclude={"header_weight"})
            store = DocumentStore(folder, {"embedding": embedding.model_dump(), **made_with})
            maker = _DocumentMaker(embedder, settings, progress, store, rebuild, corrections)
            seen, documents = maker.documents(found, previous, report)

            files, failed = _entries(seen, documents, broken, corrections)
            report.failed = failed
            _describe_changes(report, previous, files)
            if not files:
                raise NoDocumentsError(
                    f"none of the {len(found) + len(broken)} PDF files in {data} has readable text"
                    + (" (the index is unchanged)" if previous else "")
                    + ": "
                    + "; ".join(f"{f.source}: {f.reason}" for f in failed)
                )
            if previous is not None and _same_files(previous, files, failed):
                report.manifest = previous
            else:
                manifest = Manifest(
                    docqa_version=__version__,
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    scanned_at_ns=scanned_at_ns,
                    embedding=embedding,
                    chunking=chunking.model_dump(),
                    files=files,
                    failed=failed,
                )
                write_store(
                    folder,
                    manifest,
                    _parts(store, manifest, chunking.header_weight),
                    settings.retrieval.exact_max_chunks,
                )
                report.manifest, report.written = manifest, True
            store.prune({entry.sha256 for entry in files} | {f.sha256 for f in failed if f.sha256})
    except KeyboardInterrupt:
        raise IngestInterrupted(
            "interrupted: the previous index is unchanged, and the files finished so far are "
            "kept: run ingest again to resume"
        ) from None
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class IndexStatus:
    manifest: Manifest
    generation_bytes: int  # the index in use
    total_bytes: int  # everything in the index folder, kept documents included
    new: list[str]  # files in the data folder not yet ingested
    changed: list[str]
    removed: list[str]  # ingested files no longer in the data folder
    data_folder_missing: bool = False  # then nothing is pending: there is nothing to compare
    corrected: list[str] = field(default_factory=list)  # docqa-meta.yml changed for these

    def listing(self) -> list[dict[str, object]]:
        """Every file, indexed, failed or pending, by name: what became of each."""
        pending = {name: "new" for name in self.new} | {name: "changed" for name in self.changed}
        pending |= {name: "removed" for name in self.removed}
        rows: dict[str, dict[str, object]] = {}
        for entry in self.manifest.files:
            rows[entry.source] = {
                "source": entry.source,
                "state": "indexed",
                "pages": entry.pages,
                "chunks": entry.chunks,
                "ocr_pages": entry.ocr_pages,
                "parser": entry.parser,
                "document": entry.identity.as_dict(),
            }
        for name in self.corrected:
            rows[name].update(state="pending", change="corrected")
        for failure in self.manifest.failed:
            rows[failure.source] = {
                "source": failure.source,
                "state": "failed",
                "reason": failure.reason,
            }
        for name, change in pending.items():
            rows.setdefault(name, {"source": name}).update(state="pending", change=change)
        return [rows[name] for name in sorted(rows)]


def index_status(settings: Settings) -> IndexStatus:
    """What the index holds, verified, and what an ingest would change."""
    folder, data = settings.paths.vectorstore, settings.paths.data
    manifest, generation_bytes = read_manifest(folder, verify=True)
    status = IndexStatus(manifest, generation_bytes, index_size(folder), [], [], [])
    if not data.is_dir():
        # A data folder moved or not mounted is not every file removed: ingest would refuse
        # to run, and the index stays as it is.
        status.data_folder_missing = True
        return status
    corrections = Corrections.read(data)
    status.corrected = [
        entry.source
        for entry in manifest.files
        if corrections.outdated(entry.source, entry.identity)
    ]
    found, broken = find_pdfs(data)
    before = {e.source: e.sha256 for e in manifest.files + manifest.failed}
    now = {item.found.source: item.sha256 for item in _identify_all(found, manifest)}
    now.update({name: None for name, _ in broken})
    status.new = sorted(name for name in now if name not in before)
    status.changed = sorted(
        name for name, sha in now.items() if name in before and before[name] != sha
    )
    status.removed = sorted(name for name in before if name not in now)
    return status


@cache
def shared_embedder(model: str, batch_size: int, runtime: Runtime) -> Embedder:
    """One embedding model per process, however many ingests it runs."""
    return Embedder(model, batch_size, runtime)


class _DocumentMaker:
    """Reads, chunks and embeds documents, and keeps them in the document store."""

    def __init__(
        self,
        embedder: Embedder,
        settings: Settings,
        progress: IngestProgress,
        store: DocumentStore,
        rebuild: bool,
        corrections: Corrections,
    ) -> None:
        self.embedder = embedder
        self.chunking = settings.chunking
        self.ocr = settings.loading.ocr
        self.progress = progress
        self.store = store
        self.rebuild = rebuild
        self.corrections = corrections

    def documents(
        self, found: list[FoundFile], previous: Manifest | None, report: IngestReport
    ) -> tuple[list[_Seen], dict[str, Document]]:
        """Each file identified, and the document of each distinct content: kept from before,
        or made now — read a file or two ahead, in a thread, while this one embeds."""
        before = {e.sha256 for e in previous.files + previous.failed} if previous else set()
        known = {e.source: e for e in previous.files + previous.failed} if previous else {}
        scanned_at_ns = previous.scanned_at_ns if previous else 0
        seen: list[_Seen] = []
        documents: dict[str, Document] = {}
        planned: dict[str, Planned] = {}  # content -> the first file that has it, to be read
        pages = 0
        for found_file in found:
            item, data = _identify(found_file, known.get(found_file.source), scanned_at_ns)
            seen.append(item)
            sha = item.sha256
            if sha is None or sha in documents or sha in planned:
                self.progress.skipped()
                continue
            kept = None if self.rebuild else self.store.info(sha)
            if kept is not None and kept.read_alike(self.ocr):
                self.progress.skipped()
                documents[sha] = self._kept(kept, item.found.source)
                report.resumed += sha not in before  # made by an ingest that did not finish
                continue
            planned[sha] = Planned(sha, found_file.source, found_file.path)
            pages += page_count(data if data is not None else read_file(found_file.path))
        if planned:
            self.embedder.load()  # a model that loads beside this process loads while it reads
            self.progress.planned(len(planned), pages)
        reading = Reading(self.chunking, self.ocr, self.embedder.model_dir)
        for document, chunks in read_ahead(list(planned.values()), reading, self.progress):
            vectors = self._embed(chunks) if chunks else None
            document = self._described(document, planned[document.sha256].source)
            self.store.put(document, chunks, vectors)
            documents[document.sha256] = document
            report.warnings.extend(document.warnings)
            report.pages_read += document.pages
            report.chunks_made += document.chunks
        return seen, documents

    def _embed(self, chunks: list[Chunk]) -> np.ndarray:
        """The chunks' vectors, shortest first, so each batch pads its texts very little."""
        import numpy as np

        order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].text))
        vectors = np.empty((len(chunks), self.embedder.dimension), np.float32)
        for start in range(0, len(order), EMBED_SLICE):
            rows = order[start : start + EMBED_SLICE]
            vectors[rows] = self.embedder.embed([chunks[i].text for i in rows])
            self.progress.embedded(len(rows))
        return vectors

    def _described(self, document: Document, source: str) -> Document:
        """The document with the header its identity (as corrected now) gives, and that
        header's vector: embedded when the header is new."""
        if document.identity is None:
            return document
        header = self.corrections.apply(source, document.identity).header()
        if header == document.header and document.header_vector:
            return document
        vector = self.embedder.embed([header])[0].astype("<f4")
        return replace(document, header=header, header_vector=_base64(vector))

    def _kept(self, kept: Document, source: str) -> Document:
        """A kept document, its description brought up to date (a correction) and stored."""
        document = kept if kept.failure else self._described(kept, source)
        if document is not kept:
            self.store.put_header(document)
        return document


def _previous(
    folder: Path, embedding: EmbeddingInfo, settings: Settings, rebuild: bool
) -> tuple[Manifest | None, str | None]:
    """The last ingest's manifest if the new index can build on it, else why not."""
    if rebuild:
        return None, "--rebuild"
    if not (folder / CURRENT).exists():
        return None, None
    try:
        manifest, _ = read_manifest(folder)
    except VectorStoreError:
        return None, (
            f"the index was damaged or from another docqa (this one writes format "
            f"{FORMAT_VERSION}); documents read before are kept, not read again"
        )
    if manifest.embedding.precision != embedding.precision:
        return None, (
            f"the embedding precision changed from {manifest.embedding.precision} to "
            f"{embedding.precision}"
        )
    if manifest.embedding != embedding:
        return None, f"the embedding model changed from {manifest.embedding.model}"
    if manifest.chunking != settings.chunking.model_dump():
        return None, "the chunking settings changed"
    return manifest, None


def _identify_all(found: list[FoundFile], previous: Manifest) -> list[_Seen]:
    known = {e.source: e for e in previous.files + previous.failed}
    return [_identify(f, known.get(f.source), previous.scanned_at_ns)[0] for f in found]


def _identify(
    found: FoundFile, known: FileEntry | FailedFile | None, scanned_at_ns: int
) -> tuple[_Seen, bytes | None]:
    """Who the file is: its SHA-256, from the last ingest when its size and modification time
    are the same and it was not changed just before that ingest's scan, else read from disk
    (and then its bytes too, so they are not read twice)."""
    try:
        stat = os.stat(found.path)
    except OSError as exc:
        return _Seen(found, 0, 0, None, f"cannot read the file ({exc.strerror})"), None
    if (
        known is not None
        and known.sha256 is not None
        and (known.size, known.mtime_ns) == (stat.st_size, stat.st_mtime_ns)
        and max(stat.st_mtime_ns, stat.st_ctime_ns) < scanned_at_ns - RACY_NS
    ):
        return _Seen(found, stat.st_size, stat.st_mtime_ns, known.sha256), None
    try:
        data = read_file(found.path)
    except PdfReadError as exc:
        return _Seen(found, stat.st_size, stat.st_mtime_ns, None, str(exc)), None
    return _Seen(found, stat.st_size, stat.st_mtime_ns, hashlib.sha256(data).hexdigest()), data


def _entries(
    seen: list[_Seen],
    documents: dict[str, Document],
    broken: list[tuple[str, str]],
    corrections: Corrections,
) -> tuple[list[FileEntry], list[FailedFile]]:
    files, failed = [], [FailedFile(source=name, reason=reason) for name, reason in broken]
    for item in seen:
        common = {"source": item.found.source, "size": item.size, "mtime_ns": item.mtime_ns}
        document = documents.get(item.sha256 or "")
        if document is None:
            failed.append(FailedFile(**common, reason=item.error or "unreadable"))
        elif document.failure:
            failed.append(FailedFile(**common, sha256=item.sha256, reason=document.failure))
        else:
            assert document.identity is not None  # every document read has one
            files.append(
                FileEntry(
                    **common,
                    sha256=document.sha256,
                    pages=document.pages,
                    chunks=document.chunks,
                    parser=document.parser,
                    ocr_pages=list(document.ocr_pages),
                    identity=corrections.apply(item.found.source, document.identity),
                )
            )
    return files, sorted(failed, key=lambda f: f.source)


def _same_files(previous: Manifest, files: list[FileEntry], failed: list[FailedFile]) -> bool:
    """Whether the index would hold what it holds: the same contents, read the same way."""

    def read(entries: list[FileEntry] | list[FailedFile]) -> set[str]:
        return {entry.model_dump_json(exclude={"size", "mtime_ns"}) for entry in entries}

    return read(previous.files) == read(files) and read(previous.failed) == read(failed)


def _describe_changes(
    report: IngestReport, previous: Manifest | None, files: list[FileEntry]
) -> None:
    """Fill the report's added, updated, moved, copies, removed and unchanged."""
    before = {entry.source: entry.sha256 for entry in previous.files} if previous else {}
    now = {entry.source: entry.sha256 for entry in files}
    gone = {name: sha for name, sha in before.items() if name not in now}
    first_name: dict[str, str] = {}
    for name, sha in sorted(now.items()):
        if before.get(name) == sha:
            report.unchanged += 1
        elif name in before:
            report.updated.append(name)
        elif old := next((old for old, s in gone.items() if s == sha), None):
            report.moved.append((old, name))
            del gone[old]
        elif sha in first_name or sha in before.values():
            original = first_name.get(sha) or next(n for n, s in before.items() if s == sha)
            report.copies.append((name, original))
        else:
            report.added.append(name)
        first_name.setdefault(sha, name)
    report.removed = sorted(gone)


def _parts(
    store: DocumentStore, manifest: Manifest, header_weight: float
) -> Iterator[tuple[list[Chunk], np.ndarray]]:
    """Each document's chunks and vectors, in index order, one document in memory at a time;
    each vector carries `header_weight` times its document's header vector (renormalised)."""
    import numpy as np

    for entry in manifest.in_index_order():
        document, chunks, vectors = store.load(entry.sha256, entry.source)
        header = document.header_array()
        if header is not None and header_weight:
            vectors += header_weight * header
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        yield chunks, vectors


def _base64(vector: np.ndarray) -> str:
    import base64

    return base64.b64encode(vector.tobytes()).decode()
