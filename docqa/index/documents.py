"""Each document's chunks and vectors, kept once per content hash: ingest's checkpoints.

    vectorstore/documents/<settings>/<sha256>.doc

<settings> fingerprints the embedding model and the chunk settings, so documents are made
again when those change. A .doc file is written under a temporary name, flushed to disk and
renamed, so it is complete or absent. Its first line (JSON) describes the document and holds
the SHA-256 of the rest: one JSON line per chunk, with its vector as base64 float32. A file
that could not be indexed is kept too, with the reason, so it is not read again unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docqa.files import fsync
from docqa.index.chunking import Chunk
from docqa.index.generations import DISK_ERRORS, write_error
from docqa.index.identity import DocumentIdentity

if TYPE_CHECKING:
    import numpy as np

    from docqa.config import LoadingSettings

FORMAT = 4  # 3: what the document is (its identity), and its identity's vector; 4: locators
SUFFIX = ".doc"


@dataclass(frozen=True)
class Document:
    sha256: str
    pages: int
    chunks: int
    failure: str | None = None  # why it could not be indexed
    warnings: tuple[str, ...] = ()
    parser: str | None = None  # the library that read it; None when none could
    ocr: str = "off"  # the loading.ocr setting it was read with
    ocr_pages: tuple[int, ...] = ()  # pages whose text was read from their image
    textless_pages: tuple[int, ...] = ()  # pages without a text layer
    limit: str = ""  # the reading limit it failed at, as "setting=value" (max_pages=10000)
    identity: DocumentIdentity | None = None  # what ingest read it to be (uncorrected)
    header: str = ""  # its identity as text (as corrected), embedded on its own...
    header_vector: str = ""  # ...to this vector (base64 float32), which its chunks' carry

    def as_json(self) -> dict[str, Any]:
        fields = asdict(self)
        if self.identity is not None:
            fields["identity"] = self.identity.model_dump(mode="json")
        return fields

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> Document:
        for name in ("warnings", "ocr_pages", "textless_pages"):
            fields[name] = tuple(fields[name])
        if fields["identity"] is not None:
            fields["identity"] = DocumentIdentity.model_validate(fields["identity"])
        return cls(**fields)

    def header_array(self) -> np.ndarray | None:
        import numpy as np

        if not self.header_vector:
            return None
        return np.frombuffer(base64.b64decode(self.header_vector), dtype="<f4").astype(np.float32)

    def read_alike(self, loading: LoadingSettings) -> bool:
        """Whether reading the file again with these settings would give the same result:
        the same text, or the same failure."""
        if self.limit:
            setting, _, value = self.limit.partition("=")
            return str(getattr(loading, setting)) == value
        ocr = loading.ocr
        if ocr == self.ocr or self.parser is None:
            return True
        return "always" not in (ocr, self.ocr) and not self.textless_pages


class DocumentStore:
    def __init__(self, vectorstore: Path, settings: dict[str, Any]) -> None:
        key = json.dumps({"format": FORMAT, **settings}, sort_keys=True).encode()
        self.root = vectorstore / "documents"
        self.folder = self.root / hashlib.sha256(key).hexdigest()[:16]

    def info(self, sha256: str) -> Document | None:
        """The stored document, or None when it is absent or damaged."""
        try:
            document, _ = self._read(sha256)
        except (OSError, ValueError, KeyError, TypeError):  # pydantic's errors are ValueErrors
            return None
        return document

    def put(self, document: Document, chunks: list[Chunk], vectors: np.ndarray | None) -> None:
        """Store a document for good: complete, flushed to disk, or not at all."""
        lines = []
        for chunk, vector in zip(chunks, [] if vectors is None else vectors, strict=True):
            encoded = base64.b64encode(vector.astype("<f4").tobytes()).decode()
            lines.append(
                json.dumps(
                    {
                        "page": chunk.page,
                        "text": chunk.text,
                        "tokens": chunk.tokens,
                        "locator": chunk.locator,
                        "v": encoded,
                    },
                    ensure_ascii=False,
                )
            )
        self._write(document, "".join(line + "\n" for line in lines).encode())

    def put_header(self, document: Document) -> None:
        """Store a kept document's new description (its identity, its header), chunks as
        they were."""
        _, body = self._read(document.sha256)
        self._write(document, body)

    def _write(self, document: Document, body: bytes) -> None:
        header = {**document.as_json(), "body_sha256": hashlib.sha256(body).hexdigest()}
        path = self._path(document.sha256)
        temporary = path.with_suffix(".tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as out:
                out.write(json.dumps(header).encode() + b"\n" + body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
            fsync(self.folder)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            if exc.errno in DISK_ERRORS:
                raise write_error(self.root.parent, exc) from exc
            raise

    def load(self, sha256: str, source: str) -> tuple[Document, list[Chunk], np.ndarray]:
        """A stored document, its chunks attributed to `source`, and their vectors."""
        import numpy as np

        document, body = self._read(sha256)
        records = [json.loads(line) for line in body.splitlines()]
        chunks = [Chunk(source, r["page"], r["text"], r["tokens"], r["locator"]) for r in records]
        vectors = [np.frombuffer(base64.b64decode(r["v"]), dtype="<f4") for r in records]
        return document, chunks, np.vstack(vectors).astype(np.float32)

    def prune(self, keep: set[str]) -> None:
        """Remove documents not in `keep`, and everything made with other settings."""
        if self.root.is_dir():
            for other in self.root.iterdir():
                if other != self.folder:
                    shutil.rmtree(other, ignore_errors=True)
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                if path.suffix != SUFFIX or path.stem not in keep:
                    path.unlink(missing_ok=True)

    def _path(self, sha256: str) -> Path:
        return self.folder / f"{sha256}{SUFFIX}"

    def _read(self, sha256: str) -> tuple[Document, bytes]:
        """The header, checked against the body's checksum and chunk count, and the body."""
        raw = self._path(sha256).read_bytes()
        first, _, body = raw.partition(b"\n")
        header = json.loads(first)
        if header.pop("body_sha256") != hashlib.sha256(body).hexdigest():
            raise ValueError(f"damaged document {sha256}")
        document = Document.from_json(header)
        if document.sha256 != sha256 or body.count(b"\n") != document.chunks:
            raise ValueError(f"inconsistent document {sha256}")
        return document, body
