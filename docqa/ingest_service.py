"""The ingest service: PDFs in a folder -> chunks -> embeddings -> a new index on disk."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from docqa import __version__
from docqa.chunking import Chunk, Chunker, strip_boilerplate
from docqa.config import Settings
from docqa.embeddings import Embedder
from docqa.errors import ConfigError, NoDocumentsError
from docqa.loading import PdfReadError, find_pdfs, open_pdf
from docqa.store import EmbeddingInfo, FileEntry, Manifest, write_store

EMBED_SLICE = 64  # chunks embedded per call, so progress moves every second or so


class IngestProgress:
    """Told how far an ingest has got; this base ignores it, a user interface shows it."""

    def start(self, files: int) -> None:
        """About to read `files` PDF files."""

    def file(self, source: str, pages: int) -> None:
        """Opened one file (0 pages when it could not be read)."""

    def page(self) -> None:
        """Read one more page."""

    def chunked(self, chunks: int) -> None:
        """Split one more file into `chunks` chunks."""

    def embedded(self, chunks: int) -> None:
        """Embedded `chunks` more chunks."""


@dataclass
class IngestReport:
    vectorstore: Path
    files: list[FileEntry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def pages(self) -> int:
        return sum(entry.pages for entry in self.files)

    @property
    def chunks(self) -> int:
        return sum(entry.chunks for entry in self.files)


def ingest(settings: Settings, progress: IngestProgress | None = None) -> IngestReport:
    """Read every PDF under the data folder and replace the index with one built from them."""
    started = time.perf_counter()
    progress = progress or IngestProgress()
    data = settings.paths.data
    if not data.is_dir():
        raise NoDocumentsError(f"data folder {data} does not exist: create it and put PDFs in it")
    pdfs = find_pdfs(data)
    if not pdfs:
        raise NoDocumentsError(f"no PDF files in {data}: put some there and run ingest again")

    embedder = Embedder(settings.embedding.model, settings.embedding.batch_size)
    chunking = settings.chunking
    if chunking.chunk_tokens > embedder.max_tokens:
        raise ConfigError(
            f"chunking.chunk_tokens is {chunking.chunk_tokens}, but {embedder.model_id} reads "
            f"at most {embedder.max_tokens} word pieces: lower it so no chunk is truncated"
        )
    chunker = Chunker(
        embedder.tokenizer, chunking.chunk_tokens, chunking.overlap_tokens, chunking.cross_page
    )

    report = IngestReport(settings.paths.vectorstore)
    all_chunks: list[Chunk] = []
    vectors = []
    progress.start(len(pdfs))
    for path in pdfs:
        source = path.relative_to(data).as_posix()
        try:
            pdf = open_pdf(path, data)
        except PdfReadError as exc:
            report.skipped.append((source, str(exc)))
            progress.file(source, 0)
            continue
        progress.file(source, pdf.page_count)
        pages = []
        for page in pdf.pages():
            pages.append(page)
            progress.page()
        if chunking.strip_boilerplate:
            pages = strip_boilerplate(pages)
        chunks = chunker.split_document(pages)
        progress.chunked(len(chunks))
        if pdf.unreadable_pages:
            report.warnings.append(
                f"{source}: no text from pages {_ranges(pdf.unreadable_pages)} (damaged)"
            )
        if not chunks:
            report.skipped.append(
                (
                    source,
                    f"no extractable text on its {pdf.page_count} pages "
                    "(scanned? docqa does not do OCR)",
                )
            )
            continue
        for start in range(0, len(chunks), EMBED_SLICE):
            batch = chunks[start : start + EMBED_SLICE]
            vectors.append(embedder.embed([chunk.text for chunk in batch]))
            progress.embedded(len(batch))
        all_chunks.extend(chunks)
        report.files.append(
            FileEntry(source=source, sha256=pdf.sha256, pages=pdf.page_count, chunks=len(chunks))
        )

    if not all_chunks:
        raise NoDocumentsError(
            f"none of the {len(pdfs)} PDF files in {data} has readable text: "
            + "; ".join(f"{name}: {reason}" for name, reason in report.skipped)
        )
    import numpy as np

    manifest = Manifest(
        docqa_version=__version__,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        embedding=EmbeddingInfo(
            model=embedder.model_id, dimension=embedder.dimension, max_tokens=embedder.max_tokens
        ),
        chunking=chunking.model_dump(),
        files=report.files,
    )
    write_store(settings.paths.vectorstore, manifest, all_chunks, np.vstack(vectors))
    report.seconds = time.perf_counter() - started
    return report


def _ranges(numbers: list[int]) -> str:
    """'1-3, 7' for [1, 2, 3, 7]."""
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
