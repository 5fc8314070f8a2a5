"""`docqa serve` and `docqa worker`: the HTTP API, and the workers it can hand questions to."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from docqa.cli.common import (
    ConfigOption,
    DataOption,
    DebugOption,
    ModelOption,
    VectorstoreOption,
    note,
    run,
)
from docqa.errors import ConfigError, ExitCode, UsageError

if TYPE_CHECKING:
    from docqa.config import Settings

API_KEY_ENV = "DOCQA_API_KEY"

QueueOption = Annotated[
    str | None,
    typer.Option(
        "--queue",
        help="redis://HOST:PORT/N: hand questions to `docqa worker` processes through this "
        "Redis (default: server.queue in config.yml).",
    ),
]


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to listen on.")] = None,
    queue: QueueOption = None,
    inline: Annotated[
        bool, typer.Option("--inline", help="Answer in this process, whatever server.queue says.")
    ] = False,
    data: DataOption = None,
    vectorstore: VectorstoreOption = None,
    model: ModelOption = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Ingest a collection's documents as they appear, change or go in its data "
            "folder (every collection's), answering from the old index meanwhile.",
        ),
    ] = False,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Serve the HTTP API: /v1/ask, OpenAI's /v1/chat/completions and /v1/models, /v1/jobs,
    /v1/documents, /healthz and /metrics. Beyond 127.0.0.1 it needs DOCQA_API_KEY."""

    def body() -> ExitCode:
        import uvicorn

        from docqa.answer.qa import loaded_service
        from docqa.server.app import create_app
        from docqa.server.executors import Executor, InlineExecutor, QueueExecutor

        settings = _settings(config, data, vectorstore, model, host=host, port=port, queue=queue)
        server = settings.server
        api_key = checked_api_key(server.host)
        executor: Executor
        if server.queue and not inline:
            executor = QueueExecutor(settings, _redis_url(server.queue))
            where = f"questions go to workers through {server.queue}"
        else:
            service = loaded_service(settings, note, explicit_model=model is not None, serving=True)
            executor = InlineExecutor(settings, service)
            where = f"answering here with {service.model_path}"
        app = create_app(settings, executor, api_key)
        note(f"docqa serves http://{server.host}:{server.port} ({where})")
        stop = threading.Event()
        if watch:
            from docqa.index.watching import follow_collections

            follow = (settings, executor.submit_ingest, stop)
            threading.Thread(target=follow_collections, args=follow, daemon=True).start()
            note("following the data folders of every collection")
        try:
            uvicorn.run(
                app,
                host=server.host,
                port=server.port,
                log_level="debug" if debug else "warning",
                timeout_graceful_shutdown=5,
            )
        finally:
            stop.set()
            executor.close()
        return ExitCode.OK

    run(debug, body)


def checked_api_key(host: str) -> str | None:
    """DOCQA_API_KEY (one key per person, separated by commas), required beyond loopback and
    each key strong enough there (a weak key on loopback is noted)."""
    from docqa.server.guards import MAKE_KEY, api_keys, is_loopback, key_weakness

    keys = api_keys(os.environ.get(API_KEY_ENV))
    if not keys and not is_loopback(host):
        raise UsageError(
            f"refusing to serve on {host} without an API key: set {API_KEY_ENV} "
            "(clients send it as 'Authorization: Bearer ...'), or bind 127.0.0.1"
        )
    for number, key in enumerate(keys, 1):
        weakness = key_weakness(key)
        if weakness is None:
            continue
        which = API_KEY_ENV if len(keys) == 1 else f"{API_KEY_ENV} (its key {number})"
        if not is_loopback(host):
            raise ConfigError(
                f"refusing to serve on {host} with a weak {which}: {weakness}; make one "
                f"with {MAKE_KEY}"
            )
        note(f"{which} is weak ({weakness}): enough on loopback, refused beyond it")
    return ",".join(keys) or None


def worker(
    queue: QueueOption = None,
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", min=1, help="Worker processes, each with its own model."),
    ] = 1,
    name: Annotated[
        str | None, typer.Option("--name", help="Worker name (default: docqa-PID@HOST).")
    ] = None,
    data: DataOption = None,
    vectorstore: VectorstoreOption = None,
    model: ModelOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Answer the API's questions from a Redis queue (start `docqa serve --queue` too)."""

    def body() -> ExitCode:
        settings = _settings(config, data, vectorstore, model, queue=queue)
        if not settings.server.queue:
            raise UsageError("give --queue redis://HOST:PORT/N (or set server.queue)")
        if settings.llm.threads:
            # Workers sharing a machine each get some of its cores: the embedding model's
            # and FAISS's thread pools keep to them too (set before numpy loads).
            for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ.setdefault(variable, str(settings.llm.threads))
        from docqa.worker.app import run_worker

        url = _redis_url(settings.server.queue)
        run_worker(
            settings, url, name or f"docqa-{os.getpid()}@{socket.gethostname()}", concurrency
        )
        return ExitCode.OK

    run(debug, body)


def _settings(
    config: Path | None,
    data: Path | None,
    vectorstore: Path | None,
    model: Path | None,
    **server: object,
) -> Settings:
    from docqa.config import load_settings

    return load_settings(
        config,
        {
            "paths": {"data": data, "vectorstore": vectorstore},
            "llm": {"model": model},
            "server": server,
        },
    )


def _redis_url(url: str) -> str:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError(f"--queue takes a Redis URL such as redis://localhost:6379/0, not {url!r}")
    return url
