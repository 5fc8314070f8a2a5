"""The data folder against the last ingest: each file known by its content (SHA-256), hashed
again only when it may have changed, and what changed described by name (added, updated,
moved, copied, removed)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from docqa.index.corrections import Corrections
from docqa.index.documents import Document
from docqa.index.loading import FoundFile, ReadError, read_file
from docqa.index.manifest import FailedFile, FileEntry, Manifest
from docqa.index.report import IngestReport

RACY_NS = 2_000_000_000  # files modified this close to the last scan are re-hashed


@dataclass(frozen=True)
class SeenFile:
    """A file found in the data folder, identified by content."""

    found: FoundFile
    size: int
    mtime_ns: int
    sha256: str | None  # None when it could not be read
    error: str | None = None


def identify_all(found: list[FoundFile], previous: Manifest) -> list[SeenFile]:
    known = {e.source: e for e in previous.files + previous.failed}
    return [identify(f, known.get(f.source), previous.scanned_at_ns) for f in found]


def identify(
    found: FoundFile, known: FileEntry | FailedFile | None, scanned_at_ns: int
) -> SeenFile:
    """Who the file is: its SHA-256, from the last ingest when its size and modification time
    are the same and it was not changed just before that ingest's scan, else read from disk."""
    try:
        stat = os.stat(found.path)
    except OSError as exc:
        return SeenFile(found, 0, 0, None, f"cannot read the file ({exc.strerror})")
    if (
        known is not None
        and known.sha256 is not None
        and (known.size, known.mtime_ns) == (stat.st_size, stat.st_mtime_ns)
        and max(stat.st_mtime_ns, stat.st_ctime_ns) < scanned_at_ns - RACY_NS
    ):
        return SeenFile(found, stat.st_size, stat.st_mtime_ns, known.sha256)
    try:
        data = read_file(found.path)
    except ReadError as exc:
        return SeenFile(found, stat.st_size, stat.st_mtime_ns, None, str(exc))
    return SeenFile(found, stat.st_size, stat.st_mtime_ns, hashlib.sha256(data).hexdigest())


def file_entries(
    seen: list[SeenFile],
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


def same_files(previous: Manifest, files: list[FileEntry], failed: list[FailedFile]) -> bool:
    """Whether the index would hold what it holds: the same contents, read the same way."""

    def read(entries: list[FileEntry] | list[FailedFile]) -> set[str]:
        return {entry.model_dump_json(exclude={"size", "mtime_ns"}) for entry in entries}

    return read(previous.files) == read(files) and read(previous.failed) == read(failed)


def describe_changes(
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
