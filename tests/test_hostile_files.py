"""Files made to exhaust an ingest — a decompression bomb, ten thousand pages, a page that
takes forever — fail alone, each with its reason and the limit that stopped it, while the
reading process stays within its memory limit and the rest of the data folder is indexed."""

from __future__ import annotations

import hashlib
import json
import resource
from pathlib import Path
from typing import Any

import pytest

from docqa.config import ChunkingSettings, LoadingSettings
from docqa.index.documents import Document
from docqa.index.encoders.folder import resolve_model_dir
from docqa.index.readers import ReaderProcess
from docqa.index.reading import Planned, Reading
from tests.fixtures.pdfs import SAMPLE_PAGES, write_inflating_pdf, write_pdf
from tests.fixtures.projects import run_cli, run_probe, write_documents

pytestmark = pytest.mark.slow

MB = 2**20


def read_alone(path: Path, **limits: int | str) -> Document:
    """The document a reading process with these loading settings makes of `path`."""
    reading = Reading(
        ChunkingSettings(),
        LoadingSettings.model_validate(limits),
        resolve_model_dir("all-MiniLM-L6-v2"),
    )
    reader = ReaderProcess(reading)
    try:
        item = Planned(hashlib.sha256(path.read_bytes()).hexdigest(), path.name, path)
        document, _ = reader.read(item)
        return document
    finally:
        reader.close()


def ingested_in_a_process(data: Path, vectorstore: Path) -> dict[str, Any]:
    """What an ingest in a process of its own reports, and the largest memory it and its
    reading processes had (MB)."""
    return run_probe(
        "import json, resource, sys\n"
        "from docqa.config import load_settings\n"
        "from docqa.index.ingest import ingest\n"
        "report = ingest(load_settings(overrides={'paths': {'data': sys.argv[1], "
        "'vectorstore': sys.argv[2]}}))\n"
        "print(json.dumps({\n"
        "    'failed': {f.source: f.reason for f in report.failed},\n"
        "    'files': [f.source for f in report.files],\n"
        "    'own_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,\n"
        "    'readers_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,\n"
        "}))",
        str(data),
        str(vectorstore),
    )


def test_a_decompression_bomb_fails_and_the_rest_is_indexed_within_the_memory_limit(
    tmp_path: Path,
) -> None:
    data = write_documents(tmp_path / "data", broken=False)
    without = ingested_in_a_process(data, tmp_path / "without")
    bomb = write_inflating_pdf(data / "bomb.pdf", pages=1, inflated_mb=1024)
    assert bomb.stat().st_size < 2 * MB
    measured = ingested_in_a_process(data, tmp_path / "with")
    assert measured["failed"] == {
        "bomb.pdf": "a stream at byte 259 decompresses past 256 MB (limit: loading.max_stream_mb)"
    }
    assert measured["files"] == without["files"] == ["orchard.pdf", "travel/ferries.pdf"]
    # The reading processes cannot pass their address-space limit, and the ingest process
    # itself needs no more than it does without the bomb (which inflates to 1,024 MB).
    assert measured["readers_mb"] <= LoadingSettings().max_memory_mb
    assert measured["own_mb"] - without["own_mb"] < 256, (measured, without)


def test_streams_that_inflate_past_the_file_limit_together_fail_it(tmp_path: Path) -> None:
    pdf = write_inflating_pdf(tmp_path / "many.pdf", pages=5, inflated_mb=8)
    document = read_alone(pdf, max_stream_mb=16, max_file_inflated_mb=32)
    assert document.failure == (
        "its streams decompress past 32 MB (limit: loading.max_file_inflated_mb)"
    )
    assert read_alone(pdf, max_stream_mb=16, max_file_inflated_mb=64).limit == ""


def test_ten_thousand_pages_are_refused_or_stop_at_the_ocr_limit(tmp_path: Path) -> None:
    pdf = write_inflating_pdf(tmp_path / "blank.pdf", pages=10_000)
    assert pdf.stat().st_size < 2 * MB
    document = read_alone(pdf, max_pages=5000)
    assert document.failure == "it has 10000 pages (limit: loading.max_pages)"
    assert document.limit == "max_pages=5000"
    document = read_alone(pdf, max_ocr_pages=3)
    assert document.failure == (
        "more than 3 of its 10000 pages need OCR (limit: loading.max_ocr_pages)"
    )
    assert document.limit == "max_ocr_pages=3"


def test_memory_cpu_time_and_wall_time_are_limited(tmp_path: Path) -> None:
    scan = write_pdf(tmp_path / "scan.pdf", SAMPLE_PAGES[:3], images=frozenset({1, 2, 3}))
    # OCR's model needs more than 1 GB of address space: past the limit, the file fails.
    document = read_alone(scan, max_memory_mb=1024)
    assert document.failure == (
        "reading it needed more than 1024 MB (limit: loading.max_memory_mb)"
    )
    document = read_alone(scan, max_file_seconds=1)
    assert document.failure == ("reading it took longer than 1 s (limit: loading.max_file_seconds)")
    document = read_alone(scan, max_file_cpu_seconds=1)
    assert document.failure == (
        "reading it took more than 1 s of CPU time (limit: loading.max_file_cpu_seconds)"
    )
    assert read_alone(scan).ocr_pages == (1, 2, 3)  # within the default limits it is read


def test_a_file_failed_at_a_limit_is_read_again_when_the_limit_changes(tmp_path: Path) -> None:
    data = write_documents(tmp_path / "data", broken=False)
    write_inflating_pdf(data / "blank.pdf", pages=20)

    def reasons(**env: str) -> dict[str, str]:
        variables = {"DOCQA_LOADING__OCR": "off", **env}
        assert run_cli("ingest.py", cwd=tmp_path, env=variables).returncode == 3  # one failed
        status = run_cli("-m", "docqa", "status", "--json", cwd=tmp_path, env=variables)
        return {f["source"]: f["reason"] for f in json.loads(status.stdout)["failed"]}

    assert reasons(DOCQA_LOADING__MAX_PAGES="10") == {
        "blank.pdf": "it has 20 pages (limit: loading.max_pages)"
    }
    assert reasons()["blank.pdf"].startswith("no text layer on its 20 pages")
    failed = Document("0" * 64, 0, 0, failure="it has 20 pages", limit="max_pages=10")
    assert failed.read_alike(LoadingSettings(max_pages=10))
    assert not failed.read_alike(LoadingSettings(max_pages=30))


def test_reading_processes_run_with_their_limits(tmp_path: Path) -> None:
    """The limits are the process's own (what a PDF library's allocations meet), not checks
    of docqa's code."""
    reading = Reading(
        ChunkingSettings(),
        LoadingSettings(max_memory_mb=1536),
        resolve_model_dir("all-MiniLM-L6-v2"),
    )
    reader = ReaderProcess(reading)
    try:
        pdf = write_pdf(tmp_path / "one.pdf", ["One page."])
        reader.read(Planned(hashlib.sha256(pdf.read_bytes()).hexdigest(), "one.pdf", pdf))
        limits = Path(f"/proc/{reader._child.pid}/limits").read_text()
    finally:
        reader.close()
    address_space = next(line for line in limits.splitlines() if "address space" in line)
    assert address_space.split()[3] == str(1536 * MB)
    cpu = next(line for line in limits.splitlines() if line.startswith("Max cpu time"))
    assert cpu.split()[3] != "unlimited"
    assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY  # ours: none
