"""Incremental ingest in-process: only new content is read, the index always equals a rebuild,
and messy folders (bad files, copies, links, odd names) are indexed with a reason for each
file left out."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from docqa.config import Settings, load_settings
from docqa.errors import IndexBusyError, IngestInterrupted, NoDocumentsError
from docqa.index import ingest as ingest_service
from docqa.index.encoders.openvino_runtime import cpu_has_bf16
from docqa.index.generations import writer_lock
from docqa.index.ingest import ingest
from docqa.index.report import IngestProgress, IngestReport
from docqa.index.scanning import RACY_NS
from docqa.index.store import VectorStore
from tests.fixtures.pdfs import write_pdf
from tests.fixtures.projects import BROKEN_PDF, write_documents

pytestmark = pytest.mark.slow
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
RACY_S = RACY_NS / 1e9


class Reads(IngestProgress):
    """Names of the files an ingest read and embedded."""

    def __init__(self) -> None:
        self.files: list[str] = []

    def file(self, source: str, pages: int) -> None:
        self.files.append(source)


def settings_for(data: Path, vectorstore: Path, **chunking: object) -> Settings:
    overrides = {"paths": {"data": data, "vectorstore": vectorstore}, "chunking": chunking}
    return load_settings(None, overrides, environ={})


def run(
    data: Path, vs: Path, rebuild: bool = False, **chunking: object
) -> tuple[IngestReport, list[str]]:
    reads = Reads()
    report = ingest(settings_for(data, vs, **chunking), reads, rebuild=rebuild)
    return report, reads.files


def settle() -> None:
    """Wait until files just written are old enough to be trusted by their size and time."""
    time.sleep(RACY_S + 0.1)


def snapshot(vs: Path) -> tuple[list[tuple[str, int, str]], np.ndarray, list[tuple[str, str]]]:
    """What an index holds: chunks, vectors, and the files with their content hashes."""
    store = VectorStore.open(vs, MODEL)
    chunks = [(c.source, c.page, c.text) for c in store.chunks]
    files = sorted((f.source, f.sha256) for f in store.manifest.files)
    return chunks, store.vectors(list(range(len(store.chunks)))), files


def assert_same_index(a: Path, b: Path) -> None:
    chunks_a, vectors_a, files_a = snapshot(a)
    chunks_b, vectors_b, files_b = snapshot(b)
    assert (chunks_a, files_a) == (chunks_b, files_b)
    np.testing.assert_array_equal(vectors_a, vectors_b)


def test_add_change_remove_rename_and_copy(tmp_path: Path) -> None:
    data, vs = write_documents(tmp_path / "data", broken=False), tmp_path / "vs"
    report, reads = run(data, vs)
    assert (report.added, report.chunks, reads) == (
        ["orchard.pdf", "travel/ferries.pdf"],
        5,
        ["orchard.pdf", "travel/ferries.pdf"],
    )
    settle()

    report, reads = run(data, vs)
    assert (report.written, report.unchanged, reads) == (False, 2, [])

    write_pdf(data / "new.pdf", ["The lighthouse keeper rings the bell at dawn."])
    write_pdf(data / "orchard.pdf", ["The orchard now grows pears only."])
    (data / "travel").rename(data / "journeys")
    report, reads = run(data, vs)
    assert report.added == ["new.pdf"]
    assert report.updated == ["orchard.pdf"]
    assert report.moved == [("travel/ferries.pdf", "journeys/ferries.pdf")]
    assert reads == ["new.pdf", "orchard.pdf"], "a moved file is not embedded again"
    assert (report.pages, report.chunks) == (4, 4)

    shutil.copy(data / "new.pdf", data / "copy of new.pdf")
    (data / "journeys" / "ferries.pdf").unlink()
    report, reads = run(data, vs)
    assert report.copies == [("copy of new.pdf", "new.pdf")]
    assert report.removed == ["journeys/ferries.pdf"]
    assert (reads, report.pages, report.chunks) == ([], 2, 2)
    store = VectorStore.open(vs, MODEL)
    assert [c.source for c in store.chunks] == ["copy of new.pdf", "orchard.pdf"]
    assert store.hit(0, 1.0).also == ("new.pdf",), "one copy indexed, both names listed"

    run(data, tmp_path / "fresh")
    assert_same_index(vs, tmp_path / "fresh")


def test_rebuild_and_changed_settings_read_everything_again(tmp_path: Path) -> None:
    data, vs = write_documents(tmp_path / "data", broken=False), tmp_path / "vs"
    run(data, vs)
    report, reads = run(data, vs, rebuild=True)
    assert (report.written, report.rebuilt_because, len(reads)) == (True, "--rebuild", 2)
    report, reads = run(data, vs, chunk_tokens=64, overlap_tokens=8)
    assert report.rebuilt_because == "the chunking settings changed"
    assert len(reads) == 2
    assert [p.name for p in (vs / "documents").iterdir()] == [report_store_folder(vs)]


@pytest.mark.skipif(not cpu_has_bf16(), reason="no bf16 units: ingest embeds in fp32 here")
def test_a_change_of_embedding_precision_embeds_everything_again(tmp_path: Path) -> None:
    data, vs = write_documents(tmp_path / "data", broken=False), tmp_path / "vs"
    for precision, because, files_read in [
        ("fp32", None, 2),
        ("auto", "the embedding precision changed from fp32 to bf16", 2),
        ("bf16", None, 0),  # what auto chose here
    ]:
        overrides = {
            "paths": {"data": data, "vectorstore": vs},
            "embedding": {"precision": precision},
        }
        reads = Reads()
        report = ingest(load_settings(None, overrides, environ={}), reads)
        assert (report.rebuilt_because, len(reads.files)) == (because, files_read)
    assert VectorStore.open(vs, MODEL).manifest.embedding.precision == "bf16"


def report_store_folder(vs: Path) -> str:
    (folder,) = (vs / "documents").iterdir()
    return folder.name


def test_an_interrupted_ingest_resumes_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, vs = write_documents(tmp_path / "data", broken=False), tmp_path / "vs"
    calls = []

    def interrupt(*args: object) -> None:
        calls.append(args)
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_service, "write_store", interrupt)
    with pytest.raises(IngestInterrupted, match="run ingest again to resume"):
        run(data, vs)
    monkeypatch.undo()
    report, reads = run(data, vs)
    assert calls, "the ingest was interrupted before its switch"
    assert (report.resumed, reads, report.chunks) == (2, [], 5)


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    data, vs = write_documents(tmp_path / "data", broken=False), tmp_path / "vs"
    with writer_lock(vs), pytest.raises(IndexBusyError, match=f"process {os.getpid()}"):
        run(data, vs)
    assert run(data, vs)[0].written


def test_a_folder_of_bad_files_is_indexed_with_a_reason_for_each(tmp_path: Path) -> None:
    data, vs = tmp_path / "data", tmp_path / "vs"
    good = write_pdf(data / "deep/er/still/good.pdf", ["The ferry to Lundy leaves at nine."])
    write_pdf(data / "locked.pdf", ["The vault code is 4471."], password="secret")
    write_pdf(data / "owner-only.pdf", ["The quarry closed in 1961."], password="")
    whole = write_pdf(tmp_path / "whole.pdf", ["Page one text. " * 40, "Page two text. " * 40])
    (data / "truncated.pdf").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (data / "zero.pdf").write_bytes(b"")
    (data / "picture.pdf").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    (data / "cut.pdf").write_bytes(BROKEN_PDF)
    write_pdf(data / "scan.pdf", ["", "", "", ""])
    huge_text = " ".join(f"Item {i} of the inventory weighs {i * 7} grams." for i in range(1200))
    write_pdf(data / "huge.pdf", [huge_text], page_size=(5000, 5000), font_size=4)
    write_pdf(data / "naïve café 文件 😀.pdf", ["Zürich \u2013 “quoted” œuvre costs € 5 ‰."])
    odd = os.fsdecode(b"latin1-\xe9.pdf")
    shutil.copy(good, data / odd)
    (data / "link-to-good.pdf").symlink_to(good)
    (data / "dangling.pdf").symlink_to(tmp_path / "nowhere.pdf")
    (data / "deep/er/loop").symlink_to(data, target_is_directory=True)

    report, _ = run(data, vs)
    failed = {f.source: f.reason for f in report.failed}
    assert failed == {
        "cut.pdf": failed["cut.pdf"],
        "dangling.pdf": f"broken link to {tmp_path / 'nowhere.pdf'}",
        "locked.pdf": "encrypted, and it needs a password: save a copy without one",
        "picture.pdf": "not a PDF (no %PDF header: another kind of file named .pdf?)",
        "scan.pdf": "no text on its 4 pages, even by OCR",
        "truncated.pdf": failed["truncated.pdf"],
        "zero.pdf": "empty file (0 bytes)",
    }
    assert failed["cut.pdf"].startswith("not a readable PDF")
    assert failed["truncated.pdf"].startswith("not a readable PDF")
    names = sorted(f.source for f in report.files)
    assert names == sorted(
        [
            "deep/er/still/good.pdf",
            "huge.pdf",
            "latin1-\\xe9.pdf",
            "link-to-good.pdf",
            "naïve café 文件 😀.pdf",
            "owner-only.pdf",
        ]
    ), "the loop through deep/er/loop is walked once"
    assert [name for name, _ in report.copies] == ["latin1-\\xe9.pdf", "link-to-good.pdf"]

    store = VectorStore.open(vs, MODEL)
    by_source: dict[str, list[str]] = {}
    for chunk in store.chunks:
        by_source.setdefault(chunk.source, []).append(chunk.text)
    assert len(by_source["deep/er/still/good.pdf"]) == 1, "three names, one copy indexed"
    assert "The quarry closed in 1961." in by_source["owner-only.pdf"]
    assert "Zürich \u2013 “quoted” œuvre costs € 5 ‰." in by_source["naïve café 文件 😀.pdf"]
    assert len(by_source["huge.pdf"]) > 50
    assert all(chunk.tokens <= 200 for chunk in store.chunks), "no chunk is truncated"
    assert "Item 1199 of the inventory weighs 8393 grams." in " ".join(by_source["huge.pdf"])

    settle()
    again, reads = run(data, vs)
    assert (again.written, reads, len(again.failed)) == (False, [], 7)


def test_no_readable_file_leaves_the_index_alone(tmp_path: Path) -> None:
    data, vs = write_documents(tmp_path / "data", broken=False), tmp_path / "vs"
    run(data, vs)
    for pdf in data.rglob("*.pdf"):
        pdf.write_bytes(b"")
    with pytest.raises(NoDocumentsError, match="the index is unchanged"):
        run(data, vs)
    assert len(VectorStore.open(vs, MODEL).chunks) == 5


VARIANTS = [
    ["The lighthouse keeper rings the bell at dawn."],
    ["The miller grinds 40 sacks of flour a day.", "The mill closed in 1921."],
    ["Ferries to the island leave every 46 minutes."],
]
NAMES = ["a.pdf", "b.pdf", "sub/c.pdf"]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(NAMES), st.integers(0, len(VARIANTS))),
        st.tuples(st.just("remove"), st.sampled_from(NAMES)),
        st.tuples(st.just("rename"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
        st.tuples(st.just("ingest")),
    ),
    max_size=12,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
@example([("put", "a.pdf", 0), ("ingest",), ("put", "a.pdf", 1)])
@example([("put", "a.pdf", 0), ("put", "b.pdf", 3), ("ingest",), ("rename", "a.pdf", "b.pdf")])
def test_any_history_of_changes_ends_equal_to_a_rebuild(steps: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        pool = [write_pdf(root / f"variant{i}.pdf", pages) for i, pages in enumerate(VARIANTS)]
        contents = [path.read_bytes() for path in pool] + [b""]  # the last one cannot be read
        data, vs = root / "data", root / "vs"
        data.mkdir()

        def ingest_now(folder: Path, rebuild: bool = False) -> bool:
            try:
                run(data, folder, rebuild=rebuild)
            except NoDocumentsError:
                return False
            return True

        for step in steps:
            if step[0] == "put":
                (data / step[1]).parent.mkdir(parents=True, exist_ok=True)
                (data / step[1]).write_bytes(contents[step[2]])
            elif step[0] == "remove":
                (data / step[1]).unlink(missing_ok=True)
            elif step[0] == "rename" and (data / step[1]).exists():
                (data / step[2]).parent.mkdir(parents=True, exist_ok=True)
                (data / step[1]).rename(data / step[2])
            elif step[0] == "ingest":
                ingest_now(vs)
        if ingest_now(vs):
            assert ingest_now(root / "fresh", rebuild=True)
            assert_same_index(vs, root / "fresh")
            failed = [
                [(f.source, f.reason) for f in VectorStore.open(folder, MODEL).manifest.failed]
                for folder in (vs, root / "fresh")
            ]
            assert failed[0] == failed[1]
        else:
            assert not ingest_now(root / "fresh", rebuild=True)
