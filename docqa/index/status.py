"""What the index holds, verified, and what an ingest would change (docqa status)."""

from __future__ import annotations

from dataclasses import dataclass, field

from docqa.config import Settings
from docqa.index.corrections import Corrections
from docqa.index.generations import index_size
from docqa.index.loading import find_files
from docqa.index.manifest import Manifest, read_manifest
from docqa.index.scanning import identify_all


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
    unsupported: list[tuple[str, str]] = field(default_factory=list)  # (file, why not read)

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
        for name, reason in self.unsupported:
            rows[name] = {"source": name, "state": "unsupported", "reason": reason}
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
    in_folder = find_files(data)
    found, broken = in_folder.found, in_folder.broken
    status.unsupported = in_folder.unsupported
    before = {e.source: e.sha256 for e in manifest.files + manifest.failed}
    now = {item.found.source: item.sha256 for item in identify_all(found, manifest)}
    now.update({name: None for name, _ in broken})
    status.new = sorted(name for name in now if name not in before)
    status.changed = sorted(
        name for name, sha in now.items() if name in before and before[name] != sha
    )
    status.removed = sorted(name for name in before if name not in now)
    return status
