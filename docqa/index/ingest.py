"""The ingest service: bring the index up to date with the documents in the data folder.

Files are matched with the last ingest by content (SHA-256). Only new content is read and
embedded; renamed, moved and copied files reuse the chunks already made, and a file whose
size and times are unchanged is not even re-read. Each document is kept as soon as it is
embedded (docqa.index.documents), so an interrupted ingest resumes where it stopped; the index
itself is replaced by one atomic switch, under a lock that admits one ingest at a time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
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
from docqa.index.embeddings import Embedder, ingest_runtime
from docqa.index.encoders import Runtime
from docqa.index.generations import CURRENT, writer_lock
from docqa.index.loading import FoundFile, find_files
from docqa.index.manifest import FORMAT_VERSION, EmbeddingInfo, Manifest, read_manifest
from docqa.index.reading import Planned, Reading, read_ahead
from docqa.index.report import IngestProgress, IngestReport
from docqa.index.scanning import SeenFile, describe_changes, file_entries, identify, same_files
from docqa.index.store import write_store

if TYPE_CHECKING:
    import numpy as np

EMBED_SLICE = 64  # chunks embedded per call, so progress moves every second or so


def ingest(
    settings: Settings,
    progress: IngestProgress | None = None,
    rebuild: bool = False,
    embedder: Embedder | None = None,
) -> IngestReport:
    """Bring the index up to date with the data folder (`rebuild`: make everything anew;
    `embedder`: this one rather than the settings' shared one)."""
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
        raise NoDocumentsError(
            f"data folder {data} does not exist: create it and put documents in it"
        )
    embedder = embedder or shared_embedder(
        settings.embedding.model,
        settings.embedding.batch_size,
        ingest_runtime(settings.embedding.precision),
    )
    if chunking.chunk_tokens > embedder.max_tokens:
        raise ConfigError(
            f"chunking.chunk_tokens is {chunking.chunk_tokens}, but {embedder.model_id} reads "
            f"at most {embedder.max_tokens} word pieces: lower it so no chunk is truncated"
        )
    in_folder = find_files(data)
    found, broken = in_folder.found, in_folder.broken
    if not found and not broken:
        raise NoDocumentsError(
            f"no documents in {data}: put some there and run ingest again"
            + (" (the index is unchanged)" if (folder / CURRENT).exists() else "")
            + "".join(f"; {name}: {reason}" for name, reason in in_folder.unsupported)
        )
    embedding = EmbeddingInfo(
        model=embedder.model_id,
        dimension=embedder.dimension,
        max_tokens=embedder.max_tokens,
        precision=embedder.precision,
    )
    report = IngestReport(folder, unsupported=in_folder.unsupported)
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

            files, failed = file_entries(seen, documents, broken, corrections)
            report.failed = failed
            describe_changes(report, previous, files)
            if not files:
                raise NoDocumentsError(
                    f"none of the {len(found) + len(broken)} documents in {data} has readable text"
                    + (" (the index is unchanged)" if previous else "")
                    + ": "
                    + "; ".join(f"{f.source}: {f.reason}" for f in failed)
                )
            if previous is not None and same_files(previous, files, failed):
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
        self.loading = settings.loading
        self.progress = progress
        self.store = store
        self.rebuild = rebuild
        self.corrections = corrections

    def documents(
        self, found: list[FoundFile], previous: Manifest | None, report: IngestReport
    ) -> tuple[list[SeenFile], dict[str, Document]]:
        """Each file identified, and the document of each distinct content: kept from before,
        or made now — read a file or two ahead, in a thread, while this one embeds."""
        before = {e.sha256 for e in previous.files + previous.failed} if previous else set()
        known = {e.source: e for e in previous.files + previous.failed} if previous else {}
        scanned_at_ns = previous.scanned_at_ns if previous else 0
        seen: list[SeenFile] = []
        documents: dict[str, Document] = {}
        planned: dict[str, Planned] = {}  # content -> the first file that has it, to be read
        for found_file in found:
            item = identify(found_file, known.get(found_file.source), scanned_at_ns)
            seen.append(item)
            sha = item.sha256
            if sha is None or sha in documents or sha in planned:
                self.progress.skipped()
                continue
            kept = None if self.rebuild else self.store.info(sha)
            if kept is not None and kept.read_alike(self.loading):
                self.progress.skipped()
                documents[sha] = self._kept(kept, item.found.source)
                report.resumed += sha not in before  # made by an ingest that did not finish
                continue
            planned[sha] = Planned(sha, found_file.source, found_file.path)
        if planned:
            self.embedder.load()  # a model that loads beside this process loads while it reads
        reading = Reading(self.chunking, self.loading, self.embedder.model_dir)
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
            if self.progress.stop_requested():
                raise IngestInterrupted("stopped")
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
