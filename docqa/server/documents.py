"""Documents over HTTP: uploads kept in the data folder under their content hash (the client
never names a path), the index's documents listed, and documents removed — only uploads,
unless server.delete_any_file."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import threading
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

from docqa.config import Settings
from docqa.index.loading import NAME_SUFFIX, UPLOADS
from docqa.index.pageview import MAX_QUOTE_CHARS, PageRenderer
from docqa.server.errors import ApiError

DOCUMENT_ID = re.compile(r"[0-9a-f]{64}")
FREE_SPACE_MARGIN = 256 * 2**20  # a disk is never filled by an upload past this much free room
_CHUNK = 2**20
MAX_NAME_CHARS = 200


class Documents:
    def __init__(self, settings: Settings) -> None:
        self.data = settings.paths.data
        self.settings = settings
        self.uploads = self.data / UPLOADS
        self._writing = threading.Lock()  # uploads at once cannot pass the quota together

    def _check_room(self, size: int) -> None:
        """Refuse an upload of `size` bytes, before anything is written, when it would pass
        the size limit, the upload quota or the disk's free room."""
        limits = self.settings.server
        if size > limits.max_upload_mb * 2**20:
            raise ApiError(413, f"the file is larger than {limits.max_upload_mb} MB", "file")
        used = (
            sum(p.stat().st_size for p in self.uploads.iterdir() if self._is_upload(p))
            if self.uploads.is_dir()
            else 0
        )
        if used + size > limits.upload_quota_mb * 2**20:
            raise ApiError(
                413,
                f"the uploads would pass their quota of {limits.upload_quota_mb} MB "
                f"({used / 2**20:.0f} MB used): delete some documents first",
                "file",
                code="quota_exceeded",
            )
        self.data.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.data).free
        if free - size < FREE_SPACE_MARGIN:
            raise ApiError(507, "the server's disk is nearly full: the upload was refused", "file")

    def save(self, upload: IO[bytes], size: int, name: str) -> tuple[str, bool]:
        """Keep an uploaded document: its document id (SHA-256), and whether it is new.
        `name`, the client's file name, is kept beside it for display only, and tells which
        of the text types (.txt, .md, .csv) a text file is; the content tells the rest."""
        with self._writing:
            document_id, new = self._save(upload, size, name)
            label = self.uploads / f"{document_id}{NAME_SUFFIX}"
            if new or not label.exists():
                label.write_text(name[:MAX_NAME_CHARS], encoding="utf-8")
            return document_id, new

    def _save(self, upload: IO[bytes], size: int, name: str) -> tuple[str, bool]:
        self._check_room(size)
        head = upload.read(1024)
        if not head:
            raise ApiError(415, "the file is empty", "file", "unsupported_type")
        self.uploads.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        partial = self.uploads / f".upload-{secrets.token_hex(8)}.part"
        try:
            with open(partial, "xb") as out:
                block = head
                while block:
                    digest.update(block)
                    out.write(block)
                    block = upload.read(_CHUNK)
                out.flush()
                os.fsync(out.fileno())
            suffix = self._check_type(partial, name)
            document_id = digest.hexdigest()
            if self._upload_of(document_id) is not None:
                return document_id, False
            os.replace(partial, self.uploads / f"{document_id}{suffix}")
            return document_id, True
        except OSError as exc:
            raise ApiError(507, f"the upload could not be stored ({exc.strerror})", "file") from exc
        finally:
            partial.unlink(missing_ok=True)

    def listing(self) -> dict[str, Any]:
        """The index's documents (one per content; its file names), and the files it failed."""
        manifest = self._manifest()
        if manifest is None:
            return {"object": "list", "data": [], "failed": []}
        documents = [
            {
                "id": sha256,
                "object": "document",
                "name": self._name(entries[0].source),
                "sources": [entry.source for entry in entries],
                "pages": entries[0].pages,
                "chunks": entries[0].chunks,
                "bytes": entries[0].size,
                "document": entries[0].identity.as_dict(),
            }
            for sha256, entries in manifest.documents().items()
        ]
        failed = [{"source": f.source, "reason": f.reason, "id": f.sha256} for f in manifest.failed]
        return {"object": "list", "data": documents, "failed": failed}

    def delete(self, document_id: str) -> list[str]:
        """Remove every file with this content from the data folder: the names removed. A
        document that is also a file not uploaded over HTTP (uploads/<its id>.<type>) is
        refused, and nothing removed, unless server.delete_any_file."""
        if not DOCUMENT_ID.fullmatch(document_id):
            raise ApiError(404, "no such document", "id")
        manifest = self._manifest()
        kept = self._upload_of(document_id)
        upload = f"{UPLOADS}/{kept.name if kept else document_id}"
        sources = {upload} | {
            entry.source
            for entry in (manifest.files + manifest.failed if manifest else [])
            if entry.sha256 == document_id
        }
        data = self.data.resolve()
        paths = {source: (self.data / source).resolve() for source in sorted(sources)}
        present = {s: p for s, p in paths.items() if p.is_relative_to(data) and p.is_file()}
        if not present:
            raise ApiError(404, "no such document", "id")
        others = [source for source in present if source != upload]
        if others and not self.settings.server.delete_any_file:
            raise ApiError(
                403,
                f"{others[0]} was not uploaded over HTTP, and the server deletes only uploads "
                "(server.delete_any_file: true lets it delete any file of its data folder)",
                "id",
                code="not_an_upload",
            )
        (self.uploads / f"{document_id}{NAME_SUFFIX}").unlink(missing_ok=True)
        for path in present.values():
            path.unlink()
        return list(present)

    def page_file(self, document_id: str) -> Path:
        """The indexed PDF of this content, for its pages to be shown: a 404 for a document
        not indexed or no longer in the data folder, a 400 for one of another format."""
        from docqa.index.formats import format_of

        manifest = self._manifest()
        entries = manifest.files if manifest and DOCUMENT_ID.fullmatch(document_id) else []
        for source in [entry.source for entry in entries if entry.sha256 == document_id]:
            named = Path(source)  # below the data folder: a file, or a link the ingest read
            if named.is_absolute() or ".." in named.parts or not (self.data / named).is_file():
                continue
            found = format_of(source)
            if found is None or not found.paged:
                raise ApiError(400, f"{self._name(source)} has no pages: it is not a PDF", "id")
            return self.data / named
        raise ApiError(404, "no such document", "id")

    def with_views(self, event: dict[str, Any], collection: str | None) -> dict[str, Any]:
        """An event with sources (sources, answer), each PDF source given `view`: the URL of
        its page as an image, the sentence the answer rests on highlighted (others: None)."""
        if "sources" not in event:
            return event
        manifest = self._manifest()
        ids = {entry.source: entry.sha256 for entry in manifest.files} if manifest else {}
        for source in event["sources"]:
            document_id = ids.get(source["source"])
            source["view"] = None
            if document_id and source["page"] is not None:
                query = {"quote": source.get("quote") or "", "collection": collection or ""}
                shown = urlencode({k: v[:MAX_QUOTE_CHARS] for k, v in query.items() if v})
                path = f"/v1/documents/{document_id}/pages/{source['page']}"
                source["view"] = f"{path}?{shown}" if shown else path
        return event

    def _name(self, source: str) -> str:
        """What to call an indexed file: an upload by the name it was sent with."""
        label = (self.data / source).with_suffix(NAME_SUFFIX)
        if source.startswith(f"{UPLOADS}/") and label.is_file():
            return label.read_text(encoding="utf-8")
        return source

    def _manifest(self) -> Any:
        from docqa.errors import VectorStoreError
        from docqa.index.manifest import read_manifest

        try:
            return read_manifest(self.settings.paths.vectorstore)[0]
        except VectorStoreError:
            return None

    def _upload_of(self, document_id: str) -> Path | None:
        """The kept upload of this content, whatever its type."""
        found = [p for p in self.uploads.glob(f"{document_id}.*") if self._is_upload(p)]
        return found[0] if found else None

    @staticmethod
    def _is_upload(path: Path) -> bool:
        return DOCUMENT_ID.fullmatch(path.stem) is not None and path.suffix != NAME_SUFFIX

    def _check_type(self, path: Path, name: str) -> str:
        """The suffix the upload is kept under, told by its content (a 415 when docqa does
        not read its type); a PDF is opened too, to refuse one that cannot be."""
        from docqa.index.formats import sniff
        from docqa.index.formats.pdf import open_pdf
        from docqa.index.loading import ReadError

        try:
            suffix = sniff(path, name)
            if suffix == ".pdf":
                open_pdf(path.name, path.read_bytes())
        except ReadError as exc:
            raise ApiError(
                415, f"the file is not a type docqa reads: {exc}", "file", "unsupported_type"
            ) from exc
        return suffix


class CollectionDocuments:
    """Each collection's Documents (one per collection: its upload lock guards its quota)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pages = PageRenderer(settings.loading)  # every collection's pages, shown
        self._sets: dict[str, Documents] = {}
        self._lock = threading.Lock()

    def of(self, name: str | None) -> Documents:
        """The documents of collection `name` (None: the default), or a 404."""
        from docqa.collection import DEFAULT, in_collection
        from docqa.errors import UsageError

        name = name or DEFAULT
        try:
            settings = in_collection(self.settings, name)
        except UsageError as exc:
            raise ApiError(404, str(exc), param="collection") from None
        with self._lock:
            if name not in self._sets:
                self._sets[name] = Documents(settings)
            return self._sets[name]
