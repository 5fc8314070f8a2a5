"""The HTTP API against clients that probe it (issue #33), on the fake embedding and the
scripted engine: what clients send cannot grow /metrics; questions are checked to be text,
there and on the command line; no response names a path, host name or address of the
server's (every response these tests get is checked); keys are strong beyond loopback, and
not to be found by trying; every response carries the security headers; a delete removes
only what was uploaded, unless the server is told otherwise."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import re
import secrets
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from docqa.answer.qa import QAService
from docqa.cli import app as cli
from docqa.cli.serve import checked_api_key
from docqa.errors import ConfigError, ExitCode
from docqa.server.access import RULES, Rule
from docqa.server.app import create_app
from docqa.server.documents import Documents
from docqa.server.errors import ApiError
from docqa.server.executors import Executor, InlineExecutor, QueueExecutor
from docqa.server.guards import WRONG_KEY_CLIENTS, WrongKeys
from tests.fixtures.fakes import fake_embedder, scripted_llm
from tests.fixtures.pdfs import write_pdf
from tests.fixtures.projects import FACTS, fake_settings
from tests.fixtures.routes import api_routes
from tests.fixtures.services import free_port

QUESTION = FACTS[0][0]
KEY = "kX3v_9QzL2mW8rT4yN6pB1cF7hJ0dS5aGeUoIiRt"
AUTH = {"Authorization": f"Bearer {KEY}"}
LONE = "revenue \ud800?"  # what JSON's "revenue \\ud800?" reads as: no UTF-8 encodes it
REFUSED = "holds an invalid character (a lone surrogate U+D800 at position 8)"
Serve = Callable[..., TestClient]


@pytest.fixture
def serve(
    fake_project: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    """Starts the API on the fake models (or, given server.queue, on a queue): serve(project=,
    api_key=, **server settings) gives a client of it, which checks that no response names
    the test's folders, the model's folder, the home folder, the host or the queue's
    address. Everything started is stopped after the test."""
    model = tmp_path / "models" / "scripted.gguf"
    private = [str(tmp_path_factory.getbasetemp()), str(model.parent), str(Path.home())]
    with ExitStack() as started:

        def start(
            project: Path = fake_project, api_key: str | None = None, **server: Any
        ) -> TestClient:
            settings = fake_settings(project)
            settings = settings.model_copy(
                update={"server": settings.server.model_copy(update=server)}
            )
            executor: Executor
            if settings.server.queue:
                executor = QueueExecutor(settings, settings.server.queue)
            else:
                llm = scripted_llm(settings, path=model)
                service = QAService(settings, _embedder=fake_embedder(), _llm=llm)
                service.load_for_serving()
                executor = InlineExecutor(settings, service)
            started.callback(executor.close)
            queue = (
                [httpx.URL(settings.server.queue).netloc.decode()] if settings.server.queue else []
            )

            def names_nothing_private(response: httpx.Response) -> None:
                _assert_private(response.read().decode(errors="replace"), private + queue)

            app = create_app(settings, executor, api_key)
            client = TestClient(app, base_url="http://127.0.0.1:8000")
            client.event_hooks = {"response": [names_nothing_private]}
            return started.enter_context(client)

        yield start


def _assert_private(text: str, private: list[str]) -> None:
    leaked = [name for name in private if name in text]
    host = socket.gethostname()
    leaked += re.findall(rf"\b{re.escape(host)}\b", text)
    assert not leaked, f"{leaked} in {text}"


def _series(client: TestClient) -> set[str]:
    """The names and labels of /metrics' request series (their values left out)."""
    text = client.get("/metrics", headers=AUTH).text
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith("docqa_http")}


@pytest.mark.parametrize("api_key", [None, KEY], ids=["no key", "key"])
def test_metrics_keep_their_series_whatever_methods_and_paths_clients_send(
    serve: Serve, api_key: str | None
) -> None:
    client = serve(api_key=api_key)
    client.request("XWARM", "/probe/warm")
    client.get("/probe/warm")
    _series(client)  # /metrics' own series, counted once it is first answered
    before = _series(client)
    for n in range(1000):
        client.request(f"X{n:04d}" + "M" * 4000, f"/probe/{n}")
        client.get(f"/probe/{n}")
    assert _series(client) == before
    status = "401" if api_key else "404"
    assert f'docqa_http_requests_total{{method="other",route="unmatched",status="{status}"}}' in (
        before
    )
    assert not any("/probe" in series for series in before)


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        ("/v1/ask", {"question": LONE}, "question"),
        ("/v1/jobs", {"question": LONE}, "question"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": LONE}]}, "messages[0]"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": [{"type": "text", "text": LONE}]}]},
            "messages[0]",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "system", "content": LONE}, {"role": "user", "content": "q"}]},
            "messages[0]",
        ),
    ],
    ids=["ask", "job", "chat", "chat in parts", "system message"],
)
def test_a_lone_surrogate_in_a_question_or_message_is_a_400_naming_it(
    serve: Serve, route: str, body: dict, param: str
) -> None:
    reply = serve().post(
        route, content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_character"
    assert error["message"] == f"{error['param']} {REFUSED}"
    assert error["param"].startswith(param)


def test_the_command_line_refuses_a_question_that_is_not_text(tmp_path: Path) -> None:
    jsonl = tmp_path / "questions.jsonl"
    jsonl.write_text('{"question": "fine?"}\n' + json.dumps({"question": LONE}) + "\n")
    not_utf8 = tmp_path / "questions.txt"
    not_utf8.write_bytes(b"revenue \xff?\n")
    for args, message in [
        (["ask", LONE], f"the question {REFUSED}"),
        (["ask", "--questions-file", str(jsonl)], f"{jsonl}, line 2: the question {REFUSED}"),
        (["ask", "--questions-file", str(not_utf8)], f"{not_utf8}, line 1: the question "),
    ]:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == ExitCode.USAGE, result.output
        assert result.stderr.startswith(f"error: {message}")
        assert result.stderr.count("\n") == 1


def test_chat_refuses_input_that_is_not_text(
    fake_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = fake_settings(fake_project)
    service = QAService(settings, _embedder=fake_embedder(), _llm=scripted_llm(settings))
    chat_module = importlib.import_module("docqa.cli.chat")  # docqa.cli.chat is the command
    monkeypatch.setattr(chat_module, "loaded_service", lambda *_, **__: service)
    result = CliRunner().invoke(cli, ["chat"], input=b"revenue \xff?\n")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.stderr == (
        "error: the question holds an invalid character (a lone surrogate U+DCFF at position 8)\n"
    )


def test_no_response_names_a_path_host_or_address_of_the_server(
    serve: Serve, tmp_path: Path
) -> None:
    """Each kind of response, once: `serve`'s clients check every one."""
    client = serve()
    answer = client.post("/v1/ask", json={"question": QUESTION}).json()
    assert answer["model"] == {
        "file": "scripted.gguf",
        "backend": "llamacpp",
        "profile": "evidence",
    }
    client.post("/v1/ask?stream=true", json={"question": QUESTION})
    client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]})
    record = _finished(client, client.post("/v1/jobs", json={"question": QUESTION}).json())
    assert record["status"] == "done"
    assert "worker" not in record
    for path in ("/v1/documents", "/v1/info", "/healthz", "/v1/models", "/metrics", "/v1/no"):
        client.get(path)
    client.delete(f"/v1/documents/{'0' * 64}")

    empty = tmp_path / "empty"
    (empty / "data").mkdir(parents=True)
    client = serve(project=empty)
    refused = client.post("/v1/ask", json={"question": QUESTION})
    assert refused.status_code == 503
    assert "run ingest" in refused.json()["error"]["message"]
    streamed = client.post("/v1/ask?stream=true", json={"question": QUESTION})
    assert "event: error" in streamed.text
    record = _finished(client, client.post("/v1/jobs", json={"question": QUESTION}).json())
    assert "run ingest" in record["error"]["message"]
    assert client.get("/healthz").status_code == 503

    client = serve(project=empty, queue=f"redis://127.0.0.1:{free_port()}/0")  # no Redis
    refused = client.post("/v1/ask", json={"question": QUESTION})
    assert refused.status_code == 503
    assert "the job queue cannot be reached" in refused.json()["error"]["message"]
    assert client.get("/healthz").json()["queue"]["reachable"] is False


def test_health_shows_what_is_loaded_only_with_the_key(serve: Serve) -> None:
    client = serve(api_key=KEY)
    assert client.get("/healthz").json() == {"status": "ok"}
    health = client.get("/healthz", headers=AUTH).json()
    assert health["status"] == "ok"
    assert health["index"]["loaded"]
    assert health["model"]["name"] == "scripted.gguf"
    assert client.get("/healthz", headers={"Authorization": "Bearer wrong"}).status_code == 401


@pytest.mark.parametrize(
    ("key", "weakness"),
    [
        ("x", "it has 1 of the 32 characters needed"),
        ("a" * 40, "its characters repeat too much (about 0 bits; 96 needed)"),
        ("password" * 4, "its characters repeat too much (about 88 bits; 96 needed)"),
    ],
    ids=["short", "one character", "a word four times"],
)
def test_a_weak_key_is_refused_beyond_loopback_and_noted_on_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], key: str, weakness: str
) -> None:
    monkeypatch.setenv("DOCQA_API_KEY", key)
    with pytest.raises(ConfigError) as refused:
        checked_api_key("0.0.0.0")
    assert str(refused.value) == (
        f"refusing to serve on 0.0.0.0 with a weak DOCQA_API_KEY: {weakness}; make one with "
        'python -c "import secrets; print(secrets.token_urlsafe(32))"'
    )
    assert checked_api_key("127.0.0.1") == key
    assert weakness in capsys.readouterr().err


def test_random_keys_serve_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (secrets.token_urlsafe(32), str(uuid.uuid4()), KEY):
        monkeypatch.setenv("DOCQA_API_KEY", key)
        assert checked_api_key("0.0.0.0") == key


def test_wrong_keys_from_one_address_are_refused_for_a_minute(serve: Serve) -> None:
    client = serve(api_key=KEY)  # server.wrong_keys_per_minute: 10
    wrong = {"Authorization": "Bearer wrong"}
    assert {client.get("/v1/models", headers=wrong).status_code for _ in range(10)} == {401}
    refused = client.get("/v1/models", headers=wrong)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert client.get("/v1/models", headers=AUTH).status_code == 429  # not even compared
    assert client.get("/healthz").status_code == 200  # no key sent: nothing to refuse
    other = TestClient(client.app, base_url="http://127.0.0.1:8000", client=("192.0.2.7", 4000))
    assert other.get("/v1/models", headers=AUTH).status_code == 200


def test_wrong_keys_are_kept_for_a_bounded_number_of_addresses() -> None:
    wrong_keys = WrongKeys(limit=1)
    addresses = [
        f"10.{n // 65536}.{n // 256 % 256}.{n % 256}" for n in range(WRONG_KEY_CLIENTS + 9)
    ]
    for address in addresses:
        wrong_keys.add(address)
    assert len(wrong_keys) == WRONG_KEY_CLIENTS
    assert wrong_keys.wait(addresses[0]) == 0  # forgotten
    assert wrong_keys.wait(addresses[-1]) > 0


def test_every_response_says_nosniff_and_html_ones_forbid_framing(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = serve(api_key=KEY)
    app = client.app
    assert isinstance(app, FastAPI)
    replies = [
        client.request(method, re.sub(r"{[^}]+}", "x", route.path), headers=AUTH)
        for route in api_routes(app.routes)
        for method in route.methods or ()
    ]
    assert len(replies) == 23
    replies += [
        client.get("/static/app.js"),
        client.get("/static/index.html"),
        client.get("/v1/models"),  # 401, from the Guard
        client.get("/v1/models", headers={"Host": "evil.test"}),  # 421, from the Guard
        client.post("/v1/ask", content=b"x" * 2**20, headers=AUTH),  # 413, from the Guard
        client.get("/nothing", headers=AUTH),  # 404
        client.put("/v1/ask", headers=AUTH),  # 405
        client.post("/v1/ask?stream=true", json={"question": QUESTION}, headers=AUTH),
    ]

    def fail() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/fail", fail)
    monkeypatch.setitem(RULES, ("GET", "/fail"), Rule("reader"))  # routes without one: 403
    unexpected = TestClient(app, base_url=str(client.base_url), raise_server_exceptions=False)
    replies.append(unexpected.get("/fail", headers=AUTH))
    statuses = {reply.status_code for reply in replies}
    assert {200, 400, 401, 404, 405, 413, 421, 500} <= statuses
    assert any(r.headers["content-type"].startswith("text/event-stream") for r in replies)
    for reply in replies:
        assert reply.headers["x-content-type-options"] == "nosniff", reply.request.url
    pages = [r for r in replies if r.headers["content-type"].startswith("text/html")]
    assert {page.request.url.path for page in pages} == {"/", "/static/index.html"}
    for page in pages:
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_a_file_not_uploaded_is_not_deleted_over_http(
    serve: Serve, fake_project: Path, tmp_path: Path
) -> None:
    project = Path(shutil.copytree(fake_project, tmp_path / "project"))
    own = project / "data" / "orchard.pdf"
    refused = serve(project=project).delete(f"/v1/documents/{_document_id(own)}")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["type"] == "permission_error"
    assert error["message"] == (
        "orchard.pdf was not uploaded over HTTP, and the server deletes only uploads "
        "(server.delete_any_file: true lets it delete any file of its data folder)"
    )
    assert own.is_file()


def test_uploads_are_deleted_and_other_files_only_when_the_server_allows_it(
    fake_project: Path, tmp_path: Path
) -> None:
    project = Path(shutil.copytree(fake_project, tmp_path / "project"))
    settings = fake_settings(project)
    documents = Documents(settings)
    new = write_pdf(tmp_path / "new.pdf", ["Zephyr Orchard\nIt grows 412 pear trees."])
    uploaded, _ = documents.save(io.BytesIO(new.read_bytes()), new.stat().st_size, "new.pdf")
    assert documents.delete(uploaded) == [f"uploads/{uploaded}.pdf"]
    own = project / "data" / "orchard.pdf"
    copy, _ = documents.save(io.BytesIO(own.read_bytes()), own.stat().st_size, "copy.pdf")
    with pytest.raises(ApiError) as refused:  # an upload, but also the user's own file
        documents.delete(copy)
    assert refused.value.status == 403
    assert own.is_file()
    assert (project / "data" / "uploads" / f"{copy}.pdf").is_file()
    allowed = settings.model_copy(
        update={"server": settings.server.model_copy(update={"delete_any_file": True})}
    )
    assert Documents(allowed).delete(copy) == ["orchard.pdf", f"uploads/{copy}.pdf"]
    assert not own.exists()


def _document_id(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _finished(client: TestClient, created: dict[str, Any]) -> dict[str, Any]:
    """The record of a job created by POST /v1/jobs, once it has finished."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record: dict[str, Any] = client.get(f"/v1/jobs/{created['job_id']}").json()
        if record["status"] in ("done", "failed", "cancelled"):
            return record
        time.sleep(0.02)
    raise AssertionError(f"job {created['job_id']} did not finish: {record}")
