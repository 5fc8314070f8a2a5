"""An ingest job over HTTP cancelled while it OCRs a long scan: it stops (its reading
processes ended), the index stays as it was, and the next ingest is not kept waiting."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.pdfs import SAMPLE_PAGES, write_pdf
from tests.fixtures.projects import ingested_project
from tests.fixtures.services import serving, wait_for_job

pytestmark = pytest.mark.slow

SCAN_PAGES = 60  # about a second of OCR each: a minute when nothing stops it


def readers_of(pid: int) -> list[int]:
    """The reading processes `pid` has started, still running."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
            command = (status.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # ended meanwhile
        if fields.get("PPid", "").strip() == str(pid) and b"docqa.index.readers" in command:
            found.append(int(status.parent.name))
    return found


def test_cancelling_an_ingest_mid_ocr_stops_it_and_keeps_the_index(tmp_path: Path) -> None:
    project = tmp_path / "project"
    ingested_project(project)
    pages = [SAMPLE_PAGES[1]] * SCAN_PAGES
    scan = write_pdf(tmp_path / "scan.pdf", pages, images=frozenset(range(1, SCAN_PAGES + 1)))
    with serving(project) as (url, server):
        indexed = httpx.get(f"{url}/v1/documents").json()["data"]
        upload = httpx.post(f"{url}/v1/documents", files={"file": ("scan.pdf", scan.read_bytes())})
        job_id = upload.json()["job_id"]
        while (httpx.get(f"{url}/v1/jobs/{job_id}").json().get("progress") or {}).get(
            "ocr_pages", 0
        ) < 2:
            time.sleep(0.1)
        assert readers_of(server.process.pid)
        assert httpx.delete(f"{url}/v1/jobs/{job_id}").status_code == 200
        record = wait_for_job(url, job_id)
        assert record["status"] == "cancelled", record
        assert record["progress"]["ocr_pages"] < SCAN_PAGES
        assert readers_of(server.process.pid) == []
        assert httpx.get(f"{url}/v1/documents").json()["data"] == indexed
        # The writer lock is free: deleting the upload runs its ingest to the end.
        deleted = httpx.delete(f"{url}/v1/documents/{upload.json()['id']}").json()
        assert wait_for_job(url, deleted["job_id"])["status"] == "done"
