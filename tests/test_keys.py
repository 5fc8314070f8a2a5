"""A server a team shares: keys per person (made, listed, revoked with `docqa keys`, kept
hashed), roles and collection scopes enforced by one dependency over every route, jobs and
conversations each key's own — against real `docqa serve` processes."""

from __future__ import annotations

import re
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from docqa.server.access import RULES
from docqa.server.keys import KeyStore
from tests.fixtures.pdfs import write_pdf
from tests.fixtures.projects import FACTS, ingested_project, run_cli
from tests.fixtures.routes import api_routes
from tests.fixtures.services import Process, redis_server, serving, wait_for_job

QUESTION = FACTS[0][0]


def keys(project: Path, *args: str) -> str:
    """`docqa keys ARGS` in the project: what it printed (it must succeed)."""
    done = run_cli("-m", "docqa", "keys", *args, cwd=project)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_is_shown_once_and_kept_only_as_a_salted_hash(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "state")
    token = store.add("alice", "editor", ["hr"])
    assert re.fullmatch(r"dq_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    secret = token[len("dq_0123456789ab_") :]
    kept = (tmp_path / "state" / "keys.sqlite3").read_bytes()
    assert token.encode() not in kept
    assert secret.encode() not in kept
    with sqlite3.connect(tmp_path / "state" / "keys.sqlite3") as db:
        (stored,) = db.execute("SELECT hash FROM keys").fetchone()
    assert len(stored) == 32
    assert stat.S_IMODE((tmp_path / "state" / "keys.sqlite3").stat().st_mode) == 0o600
    alice = store.verify(token)
    assert alice is not None
    assert (alice.name, alice.role, alice.collections) == ("alice", "editor", frozenset({"hr"}))
    assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert KeyStore(tmp_path / "state").verify(token) == alice  # another process checks it too
    assert [key.name for key in store.listing()] == ["alice"]
    assert store.revoke("alice")
    assert store.verify(token) is None
    assert not store.revoke("alice")


def test_every_route_of_the_app_has_an_access_rule(tmp_path: Path) -> None:
    from docqa.config import load_settings
    from docqa.server.app import create_app
    from docqa.server.executors import Executor

    class NoExecutor(Executor):
        def waiting(self) -> int:
            return 0

    settings = load_settings(overrides={"paths": {"state": str(tmp_path / "state")}})
    app = create_app(settings, NoExecutor(settings, board=None), None)  # type: ignore[arg-type]
    routes = {
        (method, route.path) for route in api_routes(app.routes) for method in route.methods or ()
    }
    assert routes == set(RULES)


# A real server: collections hr and finance, and keys of each role.


@dataclass
class Team:
    url: str
    project: Path
    tokens: dict[str, str]  # name -> token
    server: Process

    def client(self, name: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=bearer(self.tokens[name]), timeout=120)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    project = tmp_path_factory.mktemp("team")
    ingested_project(project)
    for name, text in (
        ("hr", "Leave\nStaff get 28 days of annual leave."),
        ("finance", "Budget\nThe travel budget for 2027 is £40,000."),
    ):
        assert run_cli("-m", "docqa", "collections", "create", name, cwd=project).returncode == 0
        write_pdf(project / "collections" / name / "data" / f"{name}.pdf", [text])
        assert run_cli("ingest.py", "--collection", name, cwd=project).returncode == 0
    tokens = {
        "reader": keys(project, "add", "reader", "--role", "reader", "--all"),
        "editor": keys(project, "add", "editor", "--role", "editor", "--all"),
        "admin": keys(project, "add", "admin", "--role", "admin", "--all"),
        "intern": keys(project, "add", "intern", "--collections", "hr"),
    }
    with serving(project) as (url, server):
        yield Team(url, project, tokens, server)


ROLES = ("reader", "editor", "admin")


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), sorted(RULES))
def test_each_role_against_every_route(team: Team, method: str, path: str) -> None:
    rule = RULES[(method, path)]
    concrete = re.sub(r"{[^}]+}", lambda m: "1" if m[0] == "{number}" else "nothing", path)
    for role in ROLES:
        with team.client(role) as client:
            answered = client.request(method, concrete, json={} if method != "GET" else None)
        allowed = rule.role is None or ROLES.index(role) >= ROLES.index(rule.role)
        if allowed:
            assert answered.status_code not in (401, 403), (role, answered.text)
        else:
            assert answered.status_code == 403, (role, answered.text)
            assert f"the key of {role} ({role}) may not" in answered.json()["error"]["message"]
    anonymous = httpx.request(method, team.url + concrete)
    assert anonymous.status_code == (401 if rule.role else anonymous.status_code)


@pytest.mark.slow
def test_a_reader_of_hr_gets_404_for_finance_everywhere(team: Team) -> None:
    hidden = "no collection 'finance': there are hr"
    with team.client("intern") as intern:
        refusals = [
            intern.get("/v1/documents", params={"collection": "finance"}),
            intern.post(
                "/v1/ask", json={"question": "What is the travel budget?", "collection": "finance"}
            ),
            intern.post(
                "/v1/jobs", json={"question": "What is the travel budget?", "collection": "finance"}
            ),
            intern.post(
                "/v1/chat/completions",
                json={
                    "model": "docqa/finance",
                    "messages": [{"role": "user", "content": "Budget?"}],
                },
            ),
            intern.post("/v1/conversations", json={"collection": "finance"}),
            intern.get("/v1/documents", params={"collection": "nonexistent"}),
            intern.get("/v1/documents"),  # the default collection is not theirs either
        ]
        for refused in refusals:
            assert refused.status_code == 404, refused.text
        assert refusals[0].json()["error"]["message"] == hidden
        assert [c["name"] for c in intern.get("/v1/collections").json()["data"]] == ["hr"]
        assert [m["id"] for m in intern.get("/v1/models").json()["data"]] == ["docqa/hr"]
        answered = intern.post(
            "/v1/ask", json={"question": "How many days of leave?", "collection": "hr"}
        )
        assert answered.status_code == 200
        assert answered.json()["sources"][0]["source"] == "hr.pdf"
        assert intern.post("/v1/collections", json={"name": "x"}).status_code == 403
    with team.client("admin") as admin:
        job = admin.post("/v1/jobs", json={"question": "Budget?", "collection": "finance"}).json()
        conversation = admin.post("/v1/conversations", json={"collection": "finance"}).json()
    with team.client("intern") as intern:
        assert intern.get(f"/v1/jobs/{job['job_id']}").status_code == 404
        assert intern.delete(f"/v1/jobs/{job['job_id']}").status_code == 404
        assert intern.get(f"/v1/conversations/{conversation['id']}").status_code == 404
        assert conversation["id"] not in intern.get("/v1/conversations").text
        chat = {
            "messages": [{"role": "user", "content": "Budget?"}],
            "docqa": {"conversation": conversation["id"]},
        }
        assert intern.post("/v1/chat/completions", json=chat).status_code == 404
    with team.client("reader") as reader:  # every collection, but another key's job
        assert reader.get(f"/v1/jobs/{job['job_id']}").status_code == 404
    with team.client("admin") as admin:  # an admin sees every job and conversation
        assert admin.get(f"/v1/jobs/{job['job_id']}").status_code == 200


@pytest.mark.slow
def test_an_editor_uploads_and_deletes_in_its_collections_and_the_audit_names_it(
    team: Team, tmp_path: Path
) -> None:
    pdf = write_pdf(tmp_path / "rota.pdf", ["Rota\nThe rota changes every Monday."])
    with team.client("editor") as editor, pdf.open("rb") as file:
        uploaded = editor.post("/v1/documents?collection=hr", files={"file": ("rota.pdf", file)})
        assert uploaded.status_code == 202, uploaded.text
        job = uploaded.json()["job_id"]
        done = wait_for_job(team.url, job, headers=bearer(team.tokens["editor"]))
        assert done["status"] == "done"
        assert editor.delete(f"/v1/documents/{uploaded.json()['id']}?collection=hr").is_success
    with team.client("intern") as intern:  # an ingest of its collection: visible to a reader
        assert intern.get(f"/v1/jobs/{job}").status_code == 200
        assert intern.delete(f"/v1/jobs/{job}").status_code == 403  # but not theirs to cancel
    audited = run_cli("-m", "docqa", "audit", "--json", cwd=team.project).stdout
    assert '"action": "upload", "who": "editor"' in audited
    assert '"action": "delete", "who": "editor"' in audited
    assert '"action": "key added"' in audited  # made on the command line, by the system's user
    assert (
        '"from": "command line", "key": "intern", "role": "reader", "collections": ["hr"]'
        in audited
    )
    assert '"action": "collection created"' in audited
    assert all(token not in team.server.output() for token in team.tokens.values())
    listed = keys(team.project, "list")
    assert "editor               editor  all collections" in listed
    assert "intern               reader  hr" in listed
    assert all(token not in listed + audited for token in team.tokens.values())


@pytest.mark.slow
def test_revoking_a_key_takes_effect_at_once_on_every_api_process(tmp_path: Path) -> None:
    project = tmp_path / "project"
    ingested_project(project)
    token = keys(project, "add", "temp", "--all")
    with redis_server(tmp_path / "redis") as redis:
        queue = ("--queue", redis.url)
        with (
            serving(project, *queue, ready=False) as (first, _),
            serving(project, *queue, ready=False) as (second, _),
        ):
            for url in (first, second):
                assert httpx.get(f"{url}/v1/documents", headers=bearer(token)).status_code == 200
            keys(project, "revoke", "temp")
            for url in (first, second):
                refused = httpx.get(f"{url}/v1/documents", headers=bearer(token))
                assert refused.status_code == 401
    assert "temp" not in keys(project, "list")
    with serving(project, ready=False) as (url, _):  # every key revoked: still none is open
        assert httpx.get(f"{url}/v1/documents").status_code == 401
