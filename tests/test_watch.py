"""`docqa ingest --watch` and `docqa serve --watch`: the index follows the data folder — a file
dropped in, changed, half-copied or deleted — without anyone running ingest; the server
follows every collection's folder, one made while it runs included."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from docqa.errors import VectorStoreError
from docqa.index.manifest import Manifest, read_manifest
from tests.fixtures.pdfs import write_pdf
from tests.fixtures.projects import DOCUMENTS, run_cli
from tests.fixtures.services import serving, start_docqa

pytestmark = pytest.mark.slow

WAIT_S = 120  # generous: the watcher normally follows within seconds


def indexed(project: Path) -> Manifest | None:
    try:
        return read_manifest(project / "vectorstore")[0]
    except VectorStoreError:
        return None


def wait_until(project: Path, done: Callable[[Manifest], bool], seen: list[Manifest]) -> float:
    """Seconds until the index satisfies `done`; every index seen meanwhile goes to `seen`."""
    started = time.monotonic()
    while time.monotonic() - started < WAIT_S:
        manifest = indexed(project)
        if manifest is not None:
            seen.append(manifest)
            if done(manifest):
                return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"the index did not follow the folder in {WAIT_S} s")


def sources(manifest: Manifest) -> set[str]:
    return {entry.source for entry in manifest.files}


def test_the_index_follows_the_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_pdf(data / "orchard.pdf", DOCUMENTS["orchard.pdf"])
    watcher = start_docqa(tmp_path, "ingest", "--watch", log_name="watch")
    seen: list[Manifest] = []
    try:
        wait_until(tmp_path, lambda m: sources(m) == {"orchard.pdf"}, seen)
        pdf = write_pdf(tmp_path / "ferries.pdf", DOCUMENTS["travel/ferries.pdf"])
        (data / "travel").mkdir()
        (data / "travel" / "ferries.pdf").write_bytes(pdf.read_bytes())
        took = wait_until(tmp_path, lambda m: "travel/ferries.pdf" in sources(m), seen)
        print(f"a dropped file was in the index {took:.1f} s later")

        before = next(e.sha256 for e in seen[-1].files if e.source == "orchard.pdf")
        write_pdf(data / "orchard.pdf", ["The orchard now grows 80 quince trees."])
        wait_until(
            tmp_path,
            lambda m: any(e.source == "orchard.pdf" and e.sha256 != before for e in m.files),
            seen,
        )

        # A file copied slowly is read once it is whole, never as the half that came first.
        whole = write_pdf(tmp_path / "big.pdf", ["Ledger"] + ["A line of the ledger."] * 40)
        content = whole.read_bytes()
        with open(data / "ledger.pdf", "wb") as copy:
            copy.write(content[: len(content) // 2])
            copy.flush()
            time.sleep(0.6)
            copy.write(content[len(content) // 2 :])
        wait_until(tmp_path, lambda m: "ledger.pdf" in sources(m), seen)
        assert all("ledger.pdf" not in {f.source for f in m.failed} for m in seen)

        (data / "travel" / "ferries.pdf").unlink()
        wait_until(tmp_path, lambda m: sources(m) == {"orchard.pdf", "ledger.pdf"}, seen)
    finally:
        watcher.stop()
    assert "watching" in watcher.output()
    assert "Traceback" not in watcher.output()


def test_the_server_follows_every_collection_s_folder(tmp_path: Path) -> None:
    write_pdf(tmp_path / "data" / "orchard.pdf", DOCUMENTS["orchard.pdf"])
    assert run_cli("ingest.py", cwd=tmp_path).returncode == 0
    ferries = write_pdf(tmp_path / "ferries.pdf", DOCUMENTS["travel/ferries.pdf"])

    def listed(url: str, collection: str) -> set[str]:
        reply = httpx.get(f"{url}/v1/documents", params={"collection": collection})
        return {source for d in reply.json().get("data", []) for source in d["sources"]}

    def wait_for(check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not check():
            assert time.monotonic() < deadline, "the server did not follow the folder"
            time.sleep(0.2)

    with serving(tmp_path, "--watch") as (url, _):
        # A collection made while the server follows the folders is followed too.
        assert httpx.post(f"{url}/v1/collections", json={"name": "farm"}).status_code == 201
        farm = tmp_path / "collections" / "farm" / "data"
        (farm / "ferries.pdf").write_bytes(ferries.read_bytes())  # at once: nothing is missed
        wait_for(lambda: listed(url, "farm") == {"ferries.pdf"})
        (tmp_path / "data" / "ferries.pdf").write_bytes(ferries.read_bytes())
        wait_for(lambda: listed(url, "default") == {"orchard.pdf", "ferries.pdf"})
        reply = httpx.post(
            f"{url}/v1/ask",
            json={"question": "How long is the ferry to Craignure?", "collection": "farm"},
            timeout=120,
        ).json()
        assert reply["sources"][0]["source"] == "ferries.pdf"
