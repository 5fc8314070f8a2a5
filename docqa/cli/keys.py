"""`docqa keys add NAME [--role R] [--collections a,b | --all] | list | revoke NAME`: an API
key per person for `docqa serve` (docqa.server.keys)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from docqa.cli.common import ConfigOption, DebugOption, command_settings, note, run
from docqa.errors import ExitCode, UsageError

app = typer.Typer(
    help="API keys for `docqa serve`: one per person, each with a role and its collections.",
    no_args_is_help=True,
)
NameArgument = Annotated[str, typer.Argument(help="Whose key: a person's name or login.")]


@app.command("add")
def add(
    name: NameArgument,
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="reader: ask, chat, list documents; editor: also upload and delete; admin: "
            "also collections (and every job and conversation).",
        ),
    ] = "reader",
    collections: Annotated[
        str | None,
        typer.Option("--collections", help="The collections it may use, comma-separated."),
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every collection, now and later.")] = False,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Make a key for NAME and print its token, once: it is kept only as a hash."""

    def body() -> ExitCode:
        from docqa.collection import find
        from docqa.server.audit import record_command
        from docqa.server.keys import ROLES, KeyStore

        if role not in ROLES:
            raise UsageError(f"--role {role!r}: one of {', '.join(ROLES)}")
        if every == (collections is not None):
            raise UsageError("give either --collections a,b or --all")
        settings = command_settings(config, {}, None)
        scope = None if every else [c.strip() for c in (collections or "").split(",") if c.strip()]
        for collection in scope or []:
            find(settings, collection)  # an unknown one: its error, naming those there are
        token = KeyStore(settings.paths.state).add(name, role, scope)
        record_command(settings.paths.state, "key added", key=name, role=role, collections=scope)
        print(token)
        where = "every collection" if scope is None else ", ".join(scope)
        note(f"the key of {name}, {role}, for {where}: give it to them now, it is not kept")
        return ExitCode.OK

    run(debug, body)


@app.command("list")
def list_keys(config: ConfigOption = None, debug: DebugOption = False) -> None:
    """Every key: name, role, collections, when it was made and last used (never a token)."""

    def body() -> ExitCode:
        from docqa.server.keys import KeyStore

        for key in KeyStore(command_settings(config, {}, None).paths.state).listing():
            scope = "all collections" if key.collections is None else ",".join(key.collections)
            used = _when(key.last_used) if key.last_used else "never used"
            print(f"{key.name:<20} {key.role:<7} {scope:<24} made {_when(key.created)}, {used}")
        return ExitCode.OK

    run(debug, body)


@app.command("revoke")
def revoke(name: NameArgument, config: ConfigOption = None, debug: DebugOption = False) -> None:
    """Remove NAME's key: every API process refuses it from its next request on."""

    def body() -> ExitCode:
        from docqa.server.audit import record_command
        from docqa.server.keys import KeyStore

        state = command_settings(config, {}, None).paths.state
        if not KeyStore(state).revoke(name):
            raise UsageError(f"no key named {name!r}: `docqa keys list` shows them")
        record_command(state, "key revoked", key=name)
        print(f"revoked the key of {name}")
        return ExitCode.OK

    run(debug, body)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")
