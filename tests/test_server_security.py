"""The HTTP API against clients that probe it (issue #33), on the fake embedding and the
scripted engine: what clients send cannot grow /metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from docqa.answer.qa import QAService
from docqa.server.app import create_app
from docqa.server.executors import InlineExecutor
from tests.fixtures.fakes import fake_embedder, scripted_llm
from tests.fixtures.projects import fake_settings

KEY = "kX3v_9QzL2mW8rT4yN6pB1cF7hJ0dS5aGeUoIiRt"
Serve = Callable[..., TestClient]


@pytest.fixture
def serve(fake_project: Path, tmp_path: Path) -> Iterator[Serve]:
    """Starts the API on the fake models: serve(project=..., api_key=..., **server settings)
    gives a client of it; everything started is stopped after the test."""
    with ExitStack() as started:

        def start(
            project: Path = fake_project, api_key: str | None = None, **server: object
        ) -> TestClient:
            settings = fake_settings(project)
            settings = settings.model_copy(
                update={"server": settings.server.model_copy(update=server)}
            )
            model = tmp_path / "models" / "scripted.gguf"
            service = QAService(
                settings, _embedder=fake_embedder(), _llm=scripted_llm(settings, path=model)
            )
            service.load_for_serving()
            executor = InlineExecutor(settings, service)
            started.callback(executor.close)
            app = create_app(settings, executor, api_key)
            client = TestClient(app, base_url="http://127.0.0.1:8000")
            return started.enter_context(client)

        yield start


def _series(client: TestClient) -> set[str]:
    """The names and labels of /metrics' request series (their values left out)."""
    text = client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
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
