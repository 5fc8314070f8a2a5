"""The index on disk: round trip, no pickle, refusing damaged or foreign indexes, atomic switch."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from docqa.config import RetrievalSettings
from docqa.errors import IndexWriteError, VectorStoreError
from docqa.index import manifest as manifest_module
from docqa.index import store as store_module
from docqa.index.chunking import Chunk
from docqa.index.generations import CURRENT
from docqa.index.identity import DocumentIdentity
from docqa.index.manifest import (
    CHUNK_OFFSETS,
    CHUNKS,
    DATA_FILES,
    FORMAT_VERSION,
    INDEX,
    MANIFEST,
    EmbeddingInfo,
    FileEntry,
    Manifest,
    read_manifest,
)
from docqa.index.store import VectorStore, write_store

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EXACT = RetrievalSettings().exact_max_chunks  # the default: an exact index


def manifest_for(chunks: int) -> Manifest:
    """The manifest of one file, a.pdf, of `chunks` chunks of 8-dimension vectors."""
    entry = FileEntry(
        source="a.pdf",
        sha256="0" * 64,
        size=1,
        mtime_ns=0,
        pages=chunks,
        chunks=chunks,
        identity=DocumentIdentity(title="a"),
    )
    return Manifest(
        docqa_version="test",
        created_at="2026-01-01T00:00:00+00:00",
        scanned_at_ns=0,
        embedding=EmbeddingInfo(model=MODEL, dimension=8, max_tokens=254),
        chunking={"chunk_tokens": 200, "overlap_tokens": 32},
        files=[entry],
    )


def build(folder: Path, texts: list[str], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((len(texts), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk("a.pdf", i + 1, text, 3) for i, text in enumerate(texts)]
    write_store(folder, manifest_for(len(texts)), [(chunks, vectors)], EXACT)
    return vectors


def generation(folder: Path) -> Path:
    return folder / (folder / CURRENT).read_text().strip()


def test_round_trip_and_search(tmp_path: Path) -> None:
    vectors = build(tmp_path, ["alpha", "beta", "gamma"])
    store = VectorStore.open(tmp_path, MODEL)
    nearest = store.nearest(vectors[1], 2)
    assert nearest[0][0] == 1
    assert nearest[0][1] == pytest.approx(1.0, abs=1e-5)
    assert nearest[1][1] < nearest[0][1]
    assert len(store.nearest(vectors[0], 10)) == 3
    hit = store.hit(1, 0.5)
    assert (hit.text, hit.page, hit.chunk_id) == ("beta", 2, 1)
    assert np.allclose(store.vectors([2, 0]), vectors[[2, 0]])
    assert store.keywords.search("gamma", 5) == [2]


def test_chunks_are_read_one_at_a_time_in_any_script(tmp_path: Path) -> None:
    texts = ["Café £42m — 北京", "plain", "Ünïcödé\nline two", '"quoted" {json}']
    build(tmp_path, texts)
    chunks = VectorStore.open(tmp_path, MODEL).chunks
    assert [chunk.text for chunk in chunks] == texts
    assert chunks[-1].text == texts[-1]
    assert [chunk.page for chunk in chunks[1:3]] == [2, 3]
    with pytest.raises(IndexError):
        chunks[len(texts)]


def test_loading_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(tmp_path, ["alpha", "beta"])

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the index must not be unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    assert len(VectorStore.open(tmp_path, MODEL).chunks) == 2
    files = sorted(p.name for p in generation(tmp_path).iterdir())
    assert files == sorted([*DATA_FILES, MANIFEST])


def damage_chunks(path: Path) -> None:
    path.write_text(path.read_text().replace("alpha", "omega"))


def tamper_checksum(path: Path) -> None:
    manifest = json.loads(path.read_text())
    manifest["checksums"][CHUNKS] = "0" * 64
    path.write_text(json.dumps(manifest))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        (CHUNKS, damage_chunks, "chunks.jsonl does not match its checksum"),
        (INDEX, truncate, "index.faiss does not match its checksum"),
        ("bm25-counts.npy", truncate, "bm25-counts.npy does not match its checksum"),
        (CHUNK_OFFSETS, truncate, "chunks-offsets.npy does not match its checksum"),
        (MANIFEST, truncate, "unreadable manifest.json"),
        (MANIFEST, lambda p: p.write_text("[]"), "format version None"),
        (
            MANIFEST,
            lambda p: p.write_text(p.read_text().replace('"dimension": 8', '"dimension": "eight"')),
            "unreadable manifest.json",
        ),
        (MANIFEST, tamper_checksum, "chunks.jsonl does not match its checksum"),
    ],
)
def test_damaged_index_is_refused(
    tmp_path: Path, name: str, damage: Callable[[Path], None], message: str
) -> None:
    build(tmp_path, ["alpha", "beta"])
    damage(generation(tmp_path) / name)
    with pytest.raises(VectorStoreError, match=message) as error:
        VectorStore.open(tmp_path, MODEL)
    assert "run `python ingest.py`" in str(error.value)


def edit_manifest(folder: Path, **changes: object) -> None:
    path = generation(folder) / MANIFEST
    manifest = json.loads(path.read_text())
    for dotted, value in changes.items():
        target = manifest
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[key]
        target[last] = value
    path.write_text(json.dumps(manifest))


def test_other_format_version_is_refused(tmp_path: Path) -> None:
    build(tmp_path, ["alpha"])
    edit_manifest(tmp_path, format_version=99)
    expected = f"format version 99, and this docqa reads version {FORMAT_VERSION}"
    with pytest.raises(VectorStoreError, match=expected):
        VectorStore.open(tmp_path, MODEL)


def test_other_embedding_model_is_refused(tmp_path: Path) -> None:
    build(tmp_path, ["alpha"])
    with pytest.raises(VectorStoreError, match=r"built with embedding model .*all-MiniLM-L6-v2"):
        VectorStore.open(tmp_path, "intfloat/e5-small")


def test_inconsistent_dimension_is_refused(tmp_path: Path) -> None:
    build(tmp_path, ["alpha"])
    edit_manifest(tmp_path, embedding__dimension=384)
    with pytest.raises(VectorStoreError, match="inconsistent"):
        VectorStore.open(tmp_path, MODEL)


@pytest.mark.parametrize("pointer", ["../../etc", "gen-missing", "", "gen-a/../../x"])
def test_current_pointer_cannot_leave_the_folder(tmp_path: Path, pointer: str) -> None:
    build(tmp_path, ["alpha"])
    (tmp_path / CURRENT).write_text(pointer)
    with pytest.raises(VectorStoreError, match="bad CURRENT"):
        VectorStore.open(tmp_path, MODEL)


def test_missing_index_says_run_ingest(tmp_path: Path) -> None:
    with pytest.raises(VectorStoreError, match=r"no index in .*: run `python ingest.py` first"):
        VectorStore.open(tmp_path / "vectorstore", MODEL)


def test_new_index_replaces_the_old_one_whole(tmp_path: Path) -> None:
    build(tmp_path, ["old"])
    first = generation(tmp_path)
    build(tmp_path, ["middle"])
    second = generation(tmp_path)
    assert first.exists(), "the previous generation stays for readers still loading it"
    build(tmp_path, ["new one", "new two"], seed=1)
    assert not first.exists(), "older generations are removed after the switch"
    assert [c.text for c in VectorStore.open(tmp_path, MODEL).chunks] == ["new one", "new two"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [CURRENT, second.name, generation(tmp_path).name]
    )


def race_two_ingests(folder: Path, monkeypatch: pytest.MonkeyPatch, moment: str) -> list[str]:
    """At `moment` of the first read of the index, two ingests finish: CURRENT names a newer
    generation and the one being read is removed. Returns the generations seen, in order."""
    import faiss

    read: list[str] = []

    def ingests_finish(generation: Path) -> None:
        read.append(generation.name)
        if len(read) == 1:
            build(folder, ["middle"])
            build(folder, ["new"])
            assert not generation.exists()

    if moment == "CURRENT":  # between reading CURRENT and looking at what it names
        read_text = Path.read_text

        def reading(path: Path, *args: object, **kwargs: object) -> str:
            text = read_text(path, *args, **kwargs)  # type: ignore[arg-type]
            if path == folder / CURRENT:
                ingests_finish(folder / text.strip())
            return text

        monkeypatch.setattr(Path, "read_text", reading)
    elif moment == "manifest":
        read_manifest_of = manifest_module.generation_manifest

        def reading_manifest(generation: Path) -> Manifest:
            ingests_finish(generation)
            return read_manifest_of(generation)

        patch_manifest_reader(monkeypatch, reading_manifest)
    else:  # after the checksums were verified, as FAISS opens its file
        read_index = faiss.read_index

        def reading_index(path: str, *args: Any) -> Any:
            ingests_finish(Path(path).parent)
            return read_index(path, *args)

        monkeypatch.setattr(faiss, "read_index", reading_index)
    return read


def patch_manifest_reader(
    monkeypatch: pytest.MonkeyPatch, reader: Callable[[Path], Manifest]
) -> None:
    """`reader` in place of generation_manifest, for the store and for read_manifest."""
    for module in (store_module, manifest_module):
        monkeypatch.setattr(module, "generation_manifest", reader)


@pytest.mark.parametrize("moment", ["CURRENT", "manifest", "faiss"])
def test_a_generation_removed_while_it_is_read_is_read_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    build(tmp_path, ["old"])
    old = generation(tmp_path).name
    read = race_two_ingests(tmp_path, monkeypatch, moment)
    assert [c.text for c in VectorStore.open(tmp_path, MODEL).chunks] == ["new"]
    assert read[0] == old
    assert set(read[1:]) == {generation(tmp_path).name}


def test_status_reads_a_generation_removed_meanwhile_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(tmp_path, ["old"])
    read = race_two_ingests(tmp_path, monkeypatch, "manifest")
    manifest, _ = read_manifest(tmp_path, verify=True)
    assert manifest.chunks == 1
    assert read[-1] == generation(tmp_path).name != read[0]


def test_a_damaged_index_is_refused_without_reading_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(tmp_path, ["alpha"])
    truncate(generation(tmp_path) / INDEX)
    read: list[Path] = []
    read_manifest_of = manifest_module.generation_manifest

    def reading_manifest(path: Path) -> Manifest:
        read.append(path)
        return read_manifest_of(path)

    patch_manifest_reader(monkeypatch, reading_manifest)
    with pytest.raises(VectorStoreError, match=r"index\.faiss does not match its checksum"):
        VectorStore.open(tmp_path, MODEL)
    assert read == [generation(tmp_path)]


def test_failed_write_leaves_the_previous_index_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faiss

    build(tmp_path, ["old"])

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(faiss, "write_index", disk_full)
    with pytest.raises(IndexWriteError, match=r"No space left.*previous index is unchanged"):
        build(tmp_path, ["new"])
    assert [c.text for c in VectorStore.open(tmp_path, MODEL).chunks] == ["old"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".staging-")]


def test_neighbours_are_merged_without_repeating_overlaps(tmp_path: Path) -> None:
    build(tmp_path, ["one two three", "three four five", "five six"])
    store = VectorStore.open(tmp_path, MODEL)
    assert store.with_neighbours(1, 0) == "three four five"
    assert store.with_neighbours(1, 1) == "one two three four five six"
    assert store.with_neighbours(0, 3) == "one two three four five six"


@pytest.mark.parametrize("exact_max_chunks", [10_000, 100])
def test_large_indexes_are_approximate_yet_find_the_nearest(
    tmp_path: Path, exact_max_chunks: int
) -> None:
    import faiss

    rng = np.random.default_rng(0)
    topics = rng.standard_normal((40, 8)).astype(np.float32)
    vectors = topics[rng.integers(0, 40, 2000)] + rng.standard_normal((2000, 8)).astype(
        np.float32
    ) * np.float32(0.5)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk("a.pdf", 1, f"chunk {i}", 2) for i in range(len(vectors))]
    write_store(tmp_path, manifest_for(len(vectors)), [(chunks, vectors)], exact_max_chunks)
    store = VectorStore.open(tmp_path, MODEL)
    index = store._index
    queries = vectors[:50] + rng.standard_normal((50, 8)).astype(np.float32) * np.float32(0.1)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :4]
    found = [[chunk_id for chunk_id, _ in store.nearest(query, 4)] for query in queries]
    recall = np.mean([len(set(f) & set(t)) / 4 for f, t in zip(found, truth, strict=True)])
    if exact_max_chunks >= len(vectors):
        assert isinstance(index, faiss.IndexFlatIP)
        assert found == truth.tolist()
    else:
        assert isinstance(index, faiss.IndexHNSWFlat)
        assert index.hnsw.efSearch == 256  # kept through save and load
        assert recall >= 0.95
        assert np.allclose(store.vectors([5, 7]), vectors[[5, 7]])
