"""What an ingest tells its front end: progress as it goes, and a report at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from docqa.index.manifest import FailedFile, FileEntry, Manifest
from docqa.index.reading import ReadProgress


class IngestProgress(ReadProgress):
    """Told how far an ingest has got; this base ignores it, a user interface shows it."""

    def start(self, files: int) -> None:
        """About to check `files` files."""

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
    unsupported: list[tuple[str, str]] = field(default_factory=list)  # (file, why not read)
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
