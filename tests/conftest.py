"""Shared fixtures. Every test runs in its own temporary folder with no DOCQA_* variables,
so no test reads or writes the user's data/, models/, vectorstore/, config.yml or the record
of notices shown."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.ggml import write_tiny_llama
from tests.fixtures.pdfs import SAMPLE_NAME
from tests.fixtures.projects import (
    REPO,
    SHOWCASE_PDF,
    fake_settings,
    run_cli,
    write_documents,
)


@pytest.fixture(scope="session", autouse=True)
def _session_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Where session fixtures keep their record of notices shown, before each test's own
    (below): not in ~."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
        yield


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
def fake_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder whose data/ was ingested in this process with the fake embedding
    (tests.fixtures.fakes): for the fast tier."""
    from docqa.index.ingest import ingest
    from tests.fixtures.fakes import fake_embedder

    folder = tmp_path_factory.mktemp("fake")
    write_documents(folder / "data", broken=False)
    ingest(fake_settings(folder), embedder=fake_embedder())
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
