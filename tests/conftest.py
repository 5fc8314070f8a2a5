"""Shared fixtures. Every test runs in its own temporary folder with no DOCQA_* variables,
so no test reads or writes the user's data/, models/, vectorstore/, config.yml or the record
of notices shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.ggml import write_tiny_llama
from tests.fixtures.pdfs import SAMPLE_NAME, write_pdf

REPO = Path(__file__).resolve().parents[1]
# Session fixtures run before each test's own record (below): theirs is kept here, not in ~.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="docqa-state-")
SHOWCASE_PDF = REPO.parent / "shared" / "data" / "manu-20f-2022-09-24.pdf"

# Fixture documents: each fact sits on a known 1-based page.
DOCUMENTS = {
    "orchard.pdf": [
        "Harbour Lane Orchard Cooperative\nMember handbook, 2025 edition.\n"
        "The cooperative was founded in 1987 and has 64 member farms.",
        "Harvest\nThe annual harvest festival takes place on 14 September in the old cider barn.\n"
        "Members bring one basket of apples each.",
        "Contracts\nThe cooperative sells its juice to Brightwater Foods. The minimum guarantee "
        "payable by Brightwater Foods over the five-year term of the agreement is £18 million.",
    ],
    "travel/ferries.pdf": [
        "Island ferries\nThe ferry from Oban to Craignure takes 46 minutes.",
        "Timetable\nThe first sailing leaves Oban at 07:15 on weekdays.",
    ],
}
FACTS = [  # (question, answer text, file, page)
    (
        "How much is the minimum guarantee payable by Brightwater Foods?",
        "£18 million",
        "orchard.pdf",
        3,
    ),
    ("How long does the ferry from Oban to Craignure take?", "46 minutes", "travel/ferries.pdf", 1),
    ("When is the annual harvest festival?", "14 September", "orchard.pdf", 2),
]
BROKEN_PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"  # cut short


def run_probe(script: str, *args: str, timeout: float = 600) -> Any:
    """Run a Python script in a fresh process (a native abort there fails the test instead of
    killing pytest) and return the JSON it prints."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def write_documents(folder: Path, broken: bool = True) -> Path:
    """The fixture PDFs under `folder` (plus one broken file), returning `folder`."""
    for name, pages in DOCUMENTS.items():
        write_pdf(folder / name, pages)
    if broken:
        (folder / "broken.pdf").write_bytes(BROKEN_PDF)
    return folder


def run_cli(
    script: str,
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    wrapper: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ingest.py or main.py (or "-m", "docqa") as a user would, in `cwd`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DOCQA_")}
    program = [str(REPO / script)] if script.endswith(".py") else [script]
    return subprocess.run(
        [*wrapper, sys.executable, *program, *args],
        cwd=cwd,
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("DOCQA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # notices shown once


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder whose data/ was ingested once by `python ingest.py`."""
    folder = tmp_path_factory.mktemp("project")
    write_documents(folder / "data")
    result = run_cli("ingest.py", cwd=folder)
    assert result.returncode == 3, result.stderr  # 3: index built, broken.pdf skipped
    return folder


@pytest.fixture(scope="session")
def sample_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder whose index holds the bundled sample PDF."""
    folder = tmp_path_factory.mktemp("sample")
    (folder / "data").mkdir()
    (folder / "data" / SAMPLE_NAME).symlink_to(REPO / "data" / SAMPLE_NAME)
    result = run_cli("ingest.py", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture(scope="session")
def tiny_ggml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama.ggmlv3.f32.bin")


@pytest.fixture(scope="session")
def showcase_pdf() -> Path:
    if not SHOWCASE_PDF.is_file():
        pytest.skip(f"showcase document not present at {SHOWCASE_PDF}")
    return SHOWCASE_PDF
