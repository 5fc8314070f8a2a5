"""Finding the files to read in a data folder, and what reading gives: pages (or a format's
other units: slides, sections, sheet regions) of normalised text, each with its locator. The
readers themselves are in docqa.index.formats."""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from docqa.index.corrections import FILE_NAME as CORRECTIONS_FILE

UPLOADS = "uploads"  # the data folder's subfolder that holds files uploaded over HTTP
NAME_SUFFIX = ".name"  # beside each upload: the file name it was sent with, for display


@dataclass(frozen=True)
class Page:
    """One unit of a document's text: a PDF's page, a slide, a section under a heading, a
    sheet's region, a text file. Its locator tells a reader where the text is."""

    source: str  # path relative to the data folder, with forward slashes
    number: int  # 1-based: the page as printed by PDF viewers, or the unit's place in the file
    text: str
    ocr: bool = False  # the text was read from the page's image
    where: str = ""  # the unit's locator ("slide 3: Budget", "Terms > Payment"); "" for a page
    lines: tuple[int, ...] = field(default=(), repr=False)  # each text line's row or line number
    line_word: str = "lines"  # what `lines` counts: "rows" of a sheet, "lines" of a file

    def locator(self, start: int, end: int) -> str:
        """Where the text from character `start` to `end` is: the unit, and for a unit of
        numbered lines the rows or lines it spans; "" on a PDF's page (its number says it)."""
        if not self.lines:
            return self.where
        first = self.lines[self.text.count("\n", 0, start)]
        last = self.lines[min(self.text.count("\n", 0, max(end - 1, start)), len(self.lines) - 1)]
        span = f"{self.line_word} {first}" + (f"-{last}" if last != first else "")
        return f"{self.where}, {span}" if self.where else span


class ReadError(Exception):
    """A file that cannot be read; the message is the reason."""


class LimitReached(ReadError):
    """A file past one of the reading limits: `setting` (in loading) names it."""

    def __init__(self, reason: str, setting: str) -> None:
        super().__init__(f"{reason} (limit: loading.{setting})")
        self.setting = setting


@dataclass(frozen=True)
class FoundFile:
    source: str  # path below the data folder, '/'-separated, always valid UTF-8
    path: Path


@dataclass
class FolderFiles:
    """What a data folder holds: the files to read, the names that lead nowhere and the files
    of types docqa does not read, each with its reason."""

    found: list[FoundFile] = field(default_factory=list)
    broken: list[tuple[str, str]] = field(default_factory=list)
    unsupported: list[tuple[str, str]] = field(default_factory=list)


def find_files(folder: Path) -> FolderFiles:
    """Every file below `folder` in a stable order, following symbolic links but visiting each
    real folder once: those of a type docqa reads, the links that lead nowhere, the rest.
    Hidden files and docqa's own (corrections, upload names) are not documents."""
    from docqa.index.formats import format_of, unsupported_reason

    files = FolderFiles()
    seen: set[tuple[int, int]] = set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.stat(root)
        if (real.st_dev, real.st_ino) in seen:
            dirs.clear()  # a link back to a folder already walked
            continue
        seen.add((real.st_dev, real.st_ino))
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        for name in names:
            path = Path(root) / name
            relative = path.relative_to(folder)
            if name.startswith(".") or _own_file(PurePosixPath(relative.as_posix())):
                continue
            source = display_name(relative)
            if not path.is_file():
                if path.is_symlink() and not path.exists():
                    reason = f"broken link to {display_name(path.readlink())}"
                else:
                    reason = "not a regular file"
                files.broken.append((source, reason))
            elif format_of(source) is None:
                files.unsupported.append((source, unsupported_reason(source)))
            else:
                files.found.append(FoundFile(source, path))
    files.found.sort(key=lambda f: f.source)
    files.broken.sort()
    files.unsupported.sort()
    return files


def _own_file(relative: PurePosixPath) -> bool:
    """docqa's files in a data folder: its corrections, and the names of uploads."""
    if relative == PurePosixPath(CORRECTIONS_FILE):
        return True
    return relative.parent == PurePosixPath(UPLOADS) and relative.suffix == NAME_SUFFIX


def display_name(path: Path) -> str:
    """`path` as '/'-separated text; bytes that are not UTF-8 become \\x escapes."""
    raw = os.fsencode(path.as_posix())
    return raw.decode("utf-8", "backslashreplace")


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ReadError(f"cannot read the file ({exc.strerror})") from exc


_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_DOT_LEADERS = re.compile(r"(?:\s?\.){4,}")  # "Revenue ........ 583.2": table-of-contents dots
_BLANK_LINES = re.compile(r"\n{3,}")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff\u200b]")
_LONE_SURROGATES = re.compile(r"[\ud800-\udfff]")
_LIGATURES = str.maketrans(
    dict(
        zip(
            "\ufb00\ufb01\ufb02\ufb03\ufb04\ufb06",
            ["ff", "fi", "fl", "ffi", "ffl", "st"],
            strict=True,
        )
    )
)


def normalise(text: str) -> str:
    """Tidy extracted text: composed Unicode without ligatures, control characters or broken
    surrogates; one space between words, at most one blank line, and no dot leaders (each dot
    would cost the embedding model a word piece)."""
    text = _LONE_SURROGATES.sub("\ufffd", text).replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", _CONTROLS.sub("", text).translate(_LIGATURES))
    text = _DOT_LEADERS.sub(" ", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
