"""Checks on an Office Open XML file (.docx, .pptx, .xlsx: a zip of XML parts) before its
library opens it: that it is one (not an encrypted or older binary Office file under the
name), what its parts decompress to (within the loading limits, as for a PDF's streams), and
that no part declares a DTD — Office never writes one, and it is how XML entity attacks
(external entities, entity expansion) begin."""

from __future__ import annotations

import io
import zipfile
import zlib

from docqa.config import LoadingSettings
from docqa.index.loading import LimitReached, ReadError

MB = 1 << 20
MAX_PARTS = 10_000
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a Compound File: .doc, .xls, encrypted OOXML
_DTD = (b"<!DOCTYPE", b"<!ENTITY", "<!DOCTYPE".encode("utf-16-le"), "<!ENTITY".encode("utf-16-le"))


def check_package(data: bytes, loading: LoadingSettings, main_part: str, suffix: str) -> None:
    """ReadError or LimitReached when the file is not a safe Office Open XML package holding
    `main_part` (word/document.xml for a .docx)."""
    if data.startswith(OLE_MAGIC):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise ReadError("encrypted, and it needs a password: save a copy without one")
        raise ReadError(f"an older binary Office file named {suffix}: save it as {suffix}")
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
        parts = package.infolist()
        if len(parts) > MAX_PARTS:
            raise ReadError(f"a package of more than {MAX_PARTS} parts (a damaged file?)")
        if main_part not in package.namelist():
            raise ReadError(f"not a {suffix} file: it has no {main_part}")
        total = 0
        for part in parts:
            if part.file_size > loading.max_stream_mb * MB:
                reason = f"its part {part.filename} decompresses past {loading.max_stream_mb} MB"
                raise LimitReached(reason, "max_stream_mb")
            total += part.file_size
            if total > loading.max_file_inflated_mb * MB:
                reason = f"its parts decompress past {loading.max_file_inflated_mb} MB"
                raise LimitReached(reason, "max_file_inflated_mb")
        for part in parts:
            if part.filename.endswith((".xml", ".rels")):
                body = package.read(part)
                if any(marker in body for marker in _DTD):
                    raise ReadError(
                        f"its part {part.filename} declares XML entities (a DTD), which Office "
                        "never writes: refused"
                    )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError) as exc:
        raise ReadError(f"not a readable {suffix} file (a damaged zip package: {exc})") from exc


def core_properties(properties: object) -> dict[str, str]:
    """A package's Title, Author and Subject (python-docx's and python-pptx's core
    properties), those it has."""
    found = {
        "Title": getattr(properties, "title", ""),
        "Author": getattr(properties, "author", ""),
        "Subject": getattr(properties, "subject", ""),
    }
    return {key: " ".join(str(value).split()) for key, value in found.items() if value}
