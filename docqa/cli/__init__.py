"""The `docqa` command line: ingest, ask, chat, eval, status, collections, convert, serve, worker,
keys and audit (ingest.py and main.py run ingest and ask)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import typer

from docqa.cli.ask import ask
from docqa.cli.audit import audit
from docqa.cli.chat import chat
from docqa.cli.collections import app as collections_app
from docqa.cli.convert import convert
from docqa.cli.evaluate import evaluate
from docqa.cli.ingest import ingest
from docqa.cli.keys import app as keys_app
from docqa.cli.meta import meta
from docqa.cli.serve import serve, worker
from docqa.cli.status import status

_HELP = "Ask questions about your documents, offline: ingest them once, then ask."

app = typer.Typer(
    help=_HELP, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
)
app.command("ingest")(ingest)
app.command("ask")(ask)
app.command("chat")(chat)
app.command("eval")(evaluate)
app.command("status")(status)
app.command("meta")(meta)
app.command("convert")(convert)
app.command("serve")(serve)
app.command("worker")(worker)
app.command("audit")(audit)
app.add_typer(collections_app, name="collections")
app.add_typer(keys_app, name="keys")

_COMMANDS: dict[str, Callable[..., None]] = {"ingest": ingest, "ask": ask}


def run_single(name: str) -> None:
    """Run one command as a program of its own (ingest.py, main.py), and end the process.

    The command has written and flushed everything when it returns, so the process ends at
    once: tearing down the interpreter (modules, models, thread pools) would add ~0.35 s to
    every answer.
    """
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command()(_COMMANDS[name])
    try:
        single(prog_name=Path(sys.argv[0]).name)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1 if done.code else 0
    else:
        code = 0
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader that went away (| head) is no error
            stream.flush()
    os._exit(code)
