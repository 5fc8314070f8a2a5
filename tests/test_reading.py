"""Reading ahead of the embedding, in reading processes: the same documents and chunks as
reading each file here, in order, and a process that dies fails its file only."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from docqa.config import ChunkingSettings, LoadingSettings
from docqa.index.encoders.folder import resolve_model_dir
from docqa.index.readers import ReaderProcess
from docqa.index.reading import Planned, Reading, ReadProgress, read_ahead, read_document
from tests.fixtures.projects import write_documents

pytestmark = pytest.mark.slow


def planned(data: Path, name: str) -> Planned:
    path = data / name
    return Planned(hashlib.sha256(path.read_bytes()).hexdigest(), name, path)


@pytest.fixture
def reading() -> Reading:
    return Reading(
        ChunkingSettings(), LoadingSettings(ocr="off"), resolve_model_dir("all-MiniLM-L6-v2")
    )


def test_processes_read_what_is_read_here_in_order(tmp_path: Path, reading: Reading) -> None:
    data = write_documents(tmp_path / "data")
    files = [planned(data, name) for name in ("travel/ferries.pdf", "broken.pdf", "orchard.pdf")]
    alone = [read_document(item, reading) for item in files]
    ahead = list(read_ahead(files, reading, ReadProgress()))
    assert ahead == alone
    assert [document.sha256 for document, _ in ahead] == [item.sha256 for item in files]
    assert ahead[1][0].failure is not None
    assert "not a readable PDF" in ahead[1][0].failure
    assert ahead[2][0].identity is not None
    assert [c.page for c in ahead[2][1]] == [1, 2, 3]


def test_a_file_whose_reading_ends_its_process_fails_alone(
    tmp_path: Path, reading: Reading
) -> None:
    data = write_documents(tmp_path / "data", broken=False)
    reader = ReaderProcess(reading)
    try:
        reader._child.kill()  # as a crash in a PDF library would end it
        document, chunks = reader.read(planned(data, "orchard.pdf"))
        assert document.failure is not None
        assert document.failure.startswith("reading it ended its process (SIGKILL)")
        assert (document.limit, chunks) == ("max_memory_mb=3072", [])
        document, chunks = reader.read(planned(data, "orchard.pdf"))  # a new process reads on
        assert document.failure is None
        assert len(chunks) == 3
    finally:
        reader.close()


def test_a_file_changed_while_it_is_read_is_not_indexed_as_what_it_was(
    tmp_path: Path, reading: Reading
) -> None:
    data = write_documents(tmp_path / "data", broken=False)
    item = planned(data, "orchard.pdf")
    (data / "orchard.pdf").write_bytes((data / "orchard.pdf").read_bytes() + b"\n% edited\n")
    document, chunks = read_document(item, reading)
    assert document.failure == "changed while it was being indexed: run ingest again"
    assert chunks == []
