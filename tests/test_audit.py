"""The audit trail: a real server records uploads, deletes, collections made and removed and
refused requests — who, what, when, from where — and counts questions without their text;
`docqa audit` reads it back. The log itself: counts, question texts when asked, rotation."""

from __future__ import annotations

import json
import secrets
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from docqa.server import audit
from docqa.server.audit import AuditLog, read_audit
from tests.fixtures.pdfs import write_pdf
from tests.fixtures.projects import FACTS, ingested_project, run_cli
from tests.fixtures.services import serving, wait_for_job

QUESTION = FACTS[0][0]


def test_questions_are_counted_a_line_a_minute_per_owner_and_collection(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state", questions=False)
    for who, collection in [("key:a", "default"), ("key:a", "default"), ("key:b", "hr")]:
        log.question(who, "127.0.0.1", collection, "What is the salary of Jane Doe?")
    assert read_audit(tmp_path / "state") == []  # not a minute yet
    log._counting_since -= timedelta(seconds=audit.COUNT_EVERY_S)
    log.question("key:a", "127.0.0.1", "default", "And of John Roe?")
    counted = {
        (line["who"], line["collection"]): line["count"] for line in read_audit(tmp_path / "state")
    }
    assert counted == {("key:a", "default"): 3, ("key:b", "hr"): 1}
    log.close()
    assert "Jane" not in (tmp_path / "state" / "audit.log").read_text()


def test_with_audit_questions_each_question_is_written_and_the_log_rotates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "ROTATE_BYTES", 2000)
    log = AuditLog(tmp_path, questions=True)
    for n in range(40):
        log.question("key:a", "10.0.0.7", "default", f"Question {n}: what is line\nbreak?")
    log.close()
    assert (tmp_path / "audit.log.1").is_file()  # rotated...
    lines = read_audit(tmp_path)
    kept = [line["question"] for line in lines]
    assert kept == [f"Question {n}: what is line\nbreak?" for n in range(40 - len(kept), 40)]
    assert len(kept) > 20  # ...and read back across the files, oldest first
    assert all(line["from"] == "10.0.0.7" for line in lines)
    future = datetime.now(UTC) + timedelta(minutes=1)
    assert read_audit(tmp_path, since=future) == []


@pytest.mark.slow
def test_a_server_audits_uploads_deletes_collections_refusals_and_counts_questions(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    ingested_project(project)
    key = secrets.token_urlsafe(32)
    auth = {"Authorization": f"Bearer {key}"}
    leaflet = write_pdf(tmp_path / "leaflet.pdf", ["Leaflet\nThe leaflet lists 12 walks."])
    with serving(project, env={"DOCQA_API_KEY": key}) as (url, _):
        with leaflet.open("rb") as file:
            sent = {"file": ("leaflet.pdf", file)}
            uploaded = httpx.post(f"{url}/v1/documents", files=sent, headers=auth).json()
        assert wait_for_job(url, uploaded["job_id"], headers=auth)["status"] == "done"
        deleted = httpx.delete(f"{url}/v1/documents/{uploaded['id']}", headers=auth).json()
        assert wait_for_job(url, deleted["job_id"], headers=auth)["status"] == "done"
        wrong = {"Authorization": "Bearer not-the-key"}
        assert httpx.get(f"{url}/v1/documents", headers=wrong).status_code == 401
        assert httpx.post(f"{url}/v1/collections", json={"name": "hr"}, headers=auth).is_success
        assert httpx.delete(f"{url}/v1/collections/hr", headers=auth).is_success
        for _ in range(2):
            asked = httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, headers=auth)
            assert asked.is_success
    # Stopped: the questions counted since the last line are written at shutdown.
    shown = run_cli("-m", "docqa", "audit", "--json", cwd=project)
    assert shown.returncode == 0, shown.stderr
    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    owner = "DOCQA_API_KEY"  # its name: the key of one-person use
    by_action = {line["action"]: line for line in lines}
    assert by_action["upload"] | {"time": None} == {
        "time": None,
        "action": "upload",
        "who": owner,
        "from": "127.0.0.1",
        "collection": "default",
        "document": uploaded["id"],
        "name": "leaflet.pdf",
    }
    assert by_action["delete"]["files"] == [f"uploads/{uploaded['id']}.pdf"]
    assert by_action["delete"]["who"] == owner
    refused = by_action["refused"]
    assert (refused["status"], refused["who"], refused["path"]) == (401, None, "/v1/documents")
    assert by_action["collection created"]["collection"] == "hr"
    assert by_action["collection deleted"]["collection"] == "hr"
    counted = by_action["questions"]
    assert (counted["who"], counted["collection"], counted["count"]) == (owner, "default", 2)
    assert QUESTION not in shown.stdout  # counted, never written
    assert key not in shown.stdout
    times = [datetime.fromisoformat(line["time"]) for line in lines]
    assert times == sorted(times)
    log = project / "state" / "audit.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700

    text = run_cli("-m", "docqa", "audit", "--since", "1h", cwd=project).stdout
    assert f"upload             {owner:<20} 127.0.0.1" in text
    assert "name=leaflet.pdf" in text
    later = run_cli("-m", "docqa", "audit", "--since", "2999-01-01", cwd=project)
    assert (later.returncode, later.stdout) == (0, "")
    assert "nothing in the audit log" in later.stderr
    bad = run_cli("-m", "docqa", "audit", "--since", "yesterday", cwd=project)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "error: --since 'yesterday': give a time ago (30m, 2h, 7d) or a date (2026-12-07)"
    )
