"""The `docqa` command line: ingest, ask, eval and status (ingest.py and main.py run the first
two)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import typer

from docqa.cli.ask import ask
from docqa.cli.evaluate import evaluate
from docqa.cli.ingest import ingest
from docqa.cli.status import status

_HELP = "Ask questions about your PDFs, offline: ingest them once, then ask."

app = typer.Typer(
    help=_HELP, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
)
app.command("ingest")(ingest)
app.command("ask")(ask)
app.command("eval")(evaluate)
app.command("status")(status)

_COMMANDS: dict[str, Callable[..., None]] = {"ingest": ingest, "ask": ask}


def run_single(name: str) -> None:
    """Run one command as a program of its own (ingest.py, main.py)."""
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command()(_COMMANDS[name])
    single(prog_name=Path(sys.argv[0]).name)
