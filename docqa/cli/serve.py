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
        help="redis://[:PASSWORD@]HOST:PORT/N: hand questions to `docqa worker` processes "
        "through this Redis (default: server.queue in config.yml, or DOCQA_SERVER__QUEUE, "
        "where a password is off the command line).",
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
        from docqa.jobs.queue_url import checked_queue, without_password
        from docqa.server.app import create_app
        from docqa.server.executors import Executor, InlineExecutor, QueueExecutor
        from docqa.server.keys import KeyStore

        settings = _settings(config, data, vectorstore, model, host=host, port=port, queue=queue)
        server = settings.server
        api_key = checked_api_key(server.host, KeyStore(settings.paths.state).any())
        executor: Executor
        if server.queue and not inline:
            executor = QueueExecutor(settings, checked_queue(server.queue))
            where = f"questions go to workers through {without_password(server.queue)}"
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
                # uvicorn's default trusts X-Forwarded-* from 127.0.0.1: a client on this
                # host could then pass for any address (the wrong-key limit counts by it).
                proxy_headers=bool(server.trusted_proxies),
                forwarded_allow_ips=list(server.trusted_proxies),
            )
        finally:
            stop.set()
            executor.close()
        return ExitCode.OK

    run(debug, body)


def checked_api_key(host: str, keys_made: bool = False) -> str | None:
    """DOCQA_API_KEY (an admin's key), strong enough beyond loopback (a weak key on loopback
    is noted); beyond loopback, it or a key made with `docqa keys add` (`keys_made`) is
    required."""
    from docqa.server.guards import MAKE_KEY, is_loopback, key_weakness

    api_key = os.environ.get(API_KEY_ENV) or None
    if api_key is None and not keys_made and not is_loopback(host):
        raise UsageError(
            f"refusing to serve on {host} without an API key: make keys with `docqa keys "
            f"add NAME`, or set {API_KEY_ENV} (clients send it as 'Authorization: Bearer "
            "...'), or bind 127.0.0.1"
        )
    weakness = key_weakness(api_key) if api_key is not None else None
    if weakness is not None and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} with a weak {API_KEY_ENV}: {weakness}; make one with "
            f"{MAKE_KEY}"
        )
    if weakness is not None:
        note(f"{API_KEY_ENV} is weak ({weakness}): enough on loopback, refused beyond it")
    return api_key


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
        from docqa.jobs.queue_url import checked_queue

        settings = _settings(config, data, vectorstore, model, queue=queue)
        if not settings.server.queue:
            raise UsageError("give --queue redis://HOST:PORT/N (or set server.queue)")
        url = checked_queue(settings.server.queue)
        if settings.llm.threads:
            # Workers sharing a machine each get some of its cores: the embedding model's
            # and FAISS's thread pools keep to them too (set before numpy loads).
            for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ.setdefault(variable, str(settings.llm.threads))
        from docqa.worker.app import run_worker

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
