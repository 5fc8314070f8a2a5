"""Collections: separate document sets, each a name with its own data folder and its own index.

The default collection is the settings' own `paths.data` and `paths.vectorstore`, so one user
with one folder never meets the word. Every other lives in `paths.collections`:

    collections/<name>/collection.yml   where its data folder is
    collections/<name>/index/           its index (as vectorstore/ is the default's)

A collection is used by giving every service the settings `in_collection` makes: the same
ingest, questions and status, on its folders. Each index has its own writer lock, so one
collection's ingest never waits for another's, nor keeps another's questions waiting.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from docqa.config import Settings
from docqa.errors import UsageError, VectorStoreError

DEFAULT = "default"
REGISTRY = "collection.yml"
INDEX = "index"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class CollectionExists(UsageError):
    """A collection of that name is there already."""


@dataclass(frozen=True)
class Collection:
    name: str
    data: Path
    vectorstore: Path


def checked_name(name: str) -> str:
    """A collection's name, or a UsageError saying what names may be."""
    if not _NAME.fullmatch(name):
        shown = name if len(name) <= 40 else name[:40] + "…"
        raise UsageError(
            f"{shown!r} is not a collection name: use 1-64 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def collections(settings: Settings) -> list[Collection]:
    """The default collection, then the others by name."""
    root = settings.paths.collections
    named = sorted(p.parent.name for p in root.glob(f"*/{REGISTRY}")) if root.is_dir() else []
    return [find(settings, DEFAULT), *(find(settings, name) for name in named)]


def find(settings: Settings, name: str) -> Collection:
    """The collection `name`, or a UsageError naming those there are."""
    if name == DEFAULT:
        return Collection(DEFAULT, settings.paths.data, settings.paths.vectorstore)
    folder = settings.paths.collections / checked_name(name)
    try:
        described = yaml.safe_load((folder / REGISTRY).read_text(encoding="utf-8"))
        data = Path(described["data"])
    except (OSError, yaml.YAMLError, TypeError, KeyError) as exc:
        if (folder / REGISTRY).exists():
            raise UsageError(f"collection {name!r}: {folder / REGISTRY} is damaged") from exc
        known = ", ".join(c.name for c in collections(settings))
        raise UsageError(f"no collection {name!r}: there are {known}") from None
    return Collection(name, data if data.is_absolute() else folder / data, folder / INDEX)


def create(settings: Settings, name: str, data: Path | None = None) -> Collection:
    """A new collection, its data folder `data` (made when missing; by default its own)."""
    if checked_name(name) == DEFAULT:
        raise UsageError(f"{DEFAULT!r} is the collection of paths.data: it always exists")
    folder = settings.paths.collections / name
    if (folder / REGISTRY).exists():
        raise CollectionExists(
            f"collection {name!r} exists already (its data: {find(settings, name).data})"
        )
    data = (data or folder / "data").resolve()
    data.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f"{REGISTRY}.tmp"
    temporary.write_text(yaml.safe_dump({"data": str(data)}), encoding="utf-8")
    temporary.replace(folder / REGISTRY)
    return Collection(name, data, folder / INDEX)


def delete(settings: Settings, name: str) -> Collection:
    """Remove a collection and its index; its data folder is left as it is."""
    if checked_name(name) == DEFAULT:
        raise UsageError(f"the {DEFAULT!r} collection cannot be deleted (delete its index folder)")
    collection = find(settings, name)
    folder = settings.paths.collections / name
    (folder / REGISTRY).unlink()
    shutil.rmtree(folder / INDEX, ignore_errors=True)
    if not any(folder.iterdir()):
        folder.rmdir()
    return collection


def in_collection(settings: Settings, name: str | None) -> Settings:
    """The settings with the data folder and index of collection `name` (None: the default)."""
    if name is None or name == DEFAULT:
        return settings
    collection = find(settings, name)
    paths = settings.paths.model_copy(
        update={"data": collection.data, "vectorstore": collection.vectorstore}
    )
    return settings.model_copy(update={"paths": paths})


def described(collection: Collection) -> dict[str, Any]:
    """A collection's name, data folder, and what its index holds (files, chunks), if any."""
    from docqa.index.manifest import read_manifest

    summary = {"name": collection.name, "data": str(collection.data), "indexed": False}
    try:
        manifest, _ = read_manifest(collection.vectorstore)
    except VectorStoreError:
        return summary
    return {**summary, "indexed": True, "files": len(manifest.files), "chunks": manifest.chunks}
