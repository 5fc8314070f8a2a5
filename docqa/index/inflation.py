"""What a PDF's compressed streams decompress to, measured before any PDF library opens it.

A few megabytes of Flate data can inflate to gigabytes of zeros (a decompression bomb).
pypdf stops a stream at its own limit, but pypdfium2, which reads the pages pypdf cannot and
renders them for OCR, has no limit at all. So every Flate stream of the file is inflated
here first, a piece at a time and thrown away, and a file whose one stream or whose streams
together would inflate past the limits is refused before either library sees it. Streams
that are not Flate (images in JPEG, encrypted data) are not measured: the reading process's
memory and time limits bound those.
"""

from __future__ import annotations

import zlib

from docqa.index.loading import LimitReached

PIECE = 64 * 1024  # compressed bytes fed at a time
OUTPUT = 1 << 20  # decompressed bytes produced (and dropped) at a time
MB = 1 << 20


def check_inflation(data: bytes, stream_limit_mb: int, file_limit_mb: int) -> None:
    """Raise LimitReached when one Flate stream of `data` decompresses past `stream_limit_mb`
    or all of them together past `file_limit_mb`."""
    view = memoryview(data)
    total = 0
    position = 0
    while (start := data.find(b"stream", position)) != -1:
        position = start + len(b"stream")
        if data[start - 3 : start] == b"end":
            continue
        if data[position : position + 2] == b"\r\n":
            body = position + 2
        elif data[position : position + 1] in (b"\n", b"\r"):
            body = position + 1
        else:
            continue  # the word inside some text, not a stream's start
        size = _inflated_size(view[body:], stream_limit_mb * MB + 1)
        if size > stream_limit_mb * MB:
            raise LimitReached(
                f"a stream at byte {body} decompresses past {stream_limit_mb} MB",
                "max_stream_mb",
            )
        total += size
        if total > file_limit_mb * MB:
            raise LimitReached(
                f"its streams decompress past {file_limit_mb} MB", "max_file_inflated_mb"
            )


def _inflated_size(compressed: memoryview, limit: int) -> int:
    """How many bytes the zlib stream at the start of `compressed` inflates to, counting at
    most to `limit`; 0 when it is not one."""
    inflater = zlib.decompressobj()
    size = 0
    try:
        for offset in range(0, len(compressed), PIECE):
            pending: bytes | memoryview = compressed[offset : offset + PIECE]
            while pending and not inflater.eof:
                size += len(inflater.decompress(pending, OUTPUT))
                if size >= limit:
                    return size
                pending = inflater.unconsumed_tail
            if inflater.eof:
                break
    except zlib.error:  # not Flate data, or damaged where it ends: measured so far
        pass
    return size
