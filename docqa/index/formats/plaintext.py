"""Plain text: one unit of numbered lines, so a source gives the lines it came from. Text in
an encoding other than UTF-8 is recognised by charset-normalizer."""

from __future__ import annotations

import codecs

from docqa.config import LoadingSettings
from docqa.index.formats.units import Units, numbered
from docqa.index.loading import ReadError

_ENCODINGS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
BOMS = tuple(bom for bom, encoding in _ENCODINGS if encoding != "utf-8-sig")  # wide encodings


def read_text(source: str, data: bytes, loading: LoadingSettings) -> Units:
    lines = enumerate(decode_text(data).splitlines(), start=1)
    unit = numbered(source, 1, lines)
    return Units("text", [unit] if unit else [])


def decode_text(data: bytes) -> str:
    """The file's text: UTF-8 (or the encoding its byte order mark names), else the encoding
    charset-normalizer recognises; ReadError for binary content."""
    for bom, encoding in _ENCODINGS:
        if data.startswith(bom):
            return data.decode(encoding, "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\0" not in data:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        if best is not None:
            return str(best)
    raise ReadError("not text: it holds binary data (another kind of file with a text name?)")
