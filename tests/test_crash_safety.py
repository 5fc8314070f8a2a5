"""Ingests that crash, run out of disk or run twice at once never harm the index in use."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docqa.answer.qa import QAService
from docqa.errors import ExitCode
from docqa.index.generations import LOCK
from docqa.index.manifest import DATA_FILES
from docqa.index.store import VectorStore
from tests.fixtures.pdfs import write_pdf
from tests.fixtures.projects import REPO, run_cli
from tests.test_incremental import MODEL, assert_same_index, run, settings_for, snapshot

pytestmark = pytest.mark.slow
KILL_AT = REPO / "tests" / "fixtures" / "kill_at.py"


def facts(n: int, topic: str) -> list[str]:
    return [
        f"Fact {i} about {topic}: the {topic} register lists {i * 37} entries." for i in range(n)
    ]


def old_and_new(tmp_path: Path) -> tuple[Path, Path]:
    """An index of data/ as it was, and data/ changed since (added, changed, removed files)."""
    data, vs = tmp_path / "data", tmp_path / "vs"
    write_pdf(data / "a.pdf", facts(2, "apples"))
    write_pdf(data / "b.pdf", facts(2, "boats"))
    run(data, vs)
    write_pdf(data / "a.pdf", facts(3, "apricots"))
    (data / "b.pdf").unlink()
    write_pdf(data / "c.pdf", facts(2, "canals"))
    write_pdf(data / "d/e.pdf", facts(2, "eels"))
    return data, vs


# Flushes of an ingest of three new files: each file's document is 2 (file, folder); then the
# new generation: its files, its folder, the index folder, the CURRENT pointer, the index folder.
FLUSHED = 6 + len(DATA_FILES) + 2  # ... and the generation's files (manifest too) and folder
FLUSHES = {
    1: "mid-document",
    2: "one-document",
    6: "all-documents",
    9: "mid-index",
    FLUSHED: "index-flushed",
    FLUSHED + 1: "renamed",
    FLUSHED + 2: "pointer-written",
    FLUSHED + 3: "switched",
}


@pytest.mark.parametrize("flush", list(FLUSHES), ids=FLUSHES.__getitem__)
def test_kill_9_at_any_point_keeps_an_index_and_resumes(tmp_path: Path, flush: int) -> None:
    data, vs = old_and_new(tmp_path)
    before = snapshot(vs)
    killed = run_cli(
        str(KILL_AT), str(flush), "--data", str(data), "--vectorstore", str(vs), cwd=tmp_path
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    switched = flush >= FLUSHED + 3  # CURRENT is replaced after the pointer is written
    if not switched:
        after = snapshot(vs)
        assert (after[0], after[2]) == (before[0], before[2]), "the old index is untouched"
    service = QAService(settings_for(data, vs))
    service.load(with_llm=False)
    answer = service.retrieve_only("How many entries does the apples register list?", 1)
    assert answer.sources, "the index answers after the crash"

    finished = 3 if flush > 6 else flush // 2  # documents stored before the kill
    report, reads = run(data, vs)
    if switched:
        assert (report.written, reads) == (False, [])
    else:
        assert (report.written, report.resumed, len(reads)) == (True, finished, 3 - finished)
    run(data, tmp_path / "fresh")
    assert_same_index(vs, tmp_path / "fresh")


def ingest_with_file_size_limit(
    data: Path, vs: Path, limit: int
) -> subprocess.CompletedProcess[str]:
    """`ingest.py` in a process that may write no file larger than `limit` bytes: the kernel
    refuses the write like a full disk."""

    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, str(REPO / "ingest.py"), "--data", str(data), "--vectorstore", str(vs)],
        preexec_fn=limit_files,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize(
    ("pages", "limit"), [(60, 64_000), (10, 48_000)], ids=["document", "index"]
)
def test_a_full_disk_leaves_the_previous_index_usable(
    tmp_path: Path, pages: int, limit: int
) -> None:
    data, vs = old_and_new(tmp_path)
    before = snapshot(vs)
    for name in ("f", "g", "h"):
        write_pdf(data / f"{name}.pdf", facts(pages, name * 3))
    result = ingest_with_file_size_limit(data, vs, limit)
    assert result.returncode == ExitCode.WRITE, result.stderr
    assert "File too large" in result.stderr
    assert "the previous index is unchanged" in result.stderr
    assert "Traceback" not in result.stderr
    after = snapshot(vs)
    assert after[0] == before[0]
    assert not [p for p in vs.iterdir() if p.name.startswith(".staging-")]
    report, _ = run(data, vs)
    assert report.written
    assert report.chunks > len(before[0])


def test_a_second_ingest_is_refused_and_readers_see_whole_indexes(tmp_path: Path) -> None:
    data, vs = old_and_new(tmp_path)
    old = snapshot(vs)[0]
    for n in range(6):
        write_pdf(data / f"many/{n}.pdf", facts(12, f"topic{n}"))
    first = subprocess.Popen(
        [sys.executable, str(REPO / "ingest.py"), "--data", str(data), "--vectorstore", str(vs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while (vs / LOCK).read_text().strip() != str(first.pid):
        assert time.monotonic() < deadline, "the first ingest never locked"
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        time.sleep(0.05)
    second = run_cli("ingest.py", "--data", str(data), "--vectorstore", str(vs), cwd=tmp_path)
    assert second.returncode == ExitCode.BUSY
    assert f"another ingest (process {first.pid}) is writing the index" in second.stderr

    seen, reads = set(), 0
    while first.poll() is None:
        chunks = tuple(c.text for c in VectorStore.open(vs, MODEL).chunks)
        seen.add(chunks)
        reads += 1
    assert first.wait() == 0, first.stderr.read() if first.stderr else ""
    assert reads > 0, "the ingest finished before the reader read anything: nothing was checked"
    new = tuple(c.text for c in VectorStore.open(vs, MODEL).chunks)
    assert seen <= {tuple(t for _, _, t in old), new}, "a reader saw a mix of two indexes"
    assert os.path.getsize(vs / LOCK) == 0, "the lock is released"
