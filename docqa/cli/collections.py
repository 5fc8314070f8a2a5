"""`docqa collections list | create NAME [--data DIR] | delete NAME [--yes]`: separate
document sets, each with its data folder and index (docqa.collection)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from docqa.cli.common import ConfigOption, DebugOption, command_settings, run
from docqa.errors import ExitCode, UsageError

app = typer.Typer(
    help="Separate document sets: each a name with its own data folder and index.",
    no_args_is_help=True,
)
NameArgument = Annotated[str, typer.Argument(help="The collection's name.")]


@app.command("list")
def list_collections(
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Each collection: its data folder, and what its index holds."""

    def body() -> ExitCode:
        import json

        from docqa.collection import collections, described

        listed = [described(c) for c in collections(command_settings(config, {}, None))]
        if json_output:
            print(json.dumps({"collections": listed}, ensure_ascii=False))
            return ExitCode.OK
        for item in listed:
            held = f"{item['files']} files, {item['chunks']} chunks" if item["indexed"] else ""
            print(f"{item['name']:<16} {held or 'not ingested yet':<28} {item['data']}")
        return ExitCode.OK

    run(debug, body)


@app.command("create")
def create(
    name: NameArgument,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Its data folder (default: a folder of its own under paths.collections).",
            file_okay=False,
            resolve_path=True,
        ),
    ] = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Make a collection; put documents in its data folder, then ingest it."""

    def body() -> ExitCode:
        from docqa.collection import create as create_collection
        from docqa.server.audit import record_command

        settings = command_settings(config, {}, None)
        collection = create_collection(settings, name, data)
        record_command(settings.paths.state, "collection created", collection=collection.name)
        print(
            f"Created collection {collection.name}: put documents in {collection.data}, then "
            f"run `docqa ingest --collection {collection.name}`"
        )
        return ExitCode.OK

    run(debug, body)


@app.command("delete")
def delete(
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask first.")] = False,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Remove a collection and its index. Its data folder, and the documents in it, stay."""

    def body() -> ExitCode:
        from docqa.collection import delete as delete_collection
        from docqa.collection import find
        from docqa.server.audit import record_command

        settings = command_settings(config, {}, None)
        collection = find(settings, name)
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(f"deleting collection {name!r} needs --yes when not asked")
            question = f"Delete collection {name!r} and its index? ({collection.data} stays)"
            if not typer.confirm(question):
                return ExitCode.OK
        delete_collection(settings, name)
        record_command(settings.paths.state, "collection deleted", collection=name)
        print(f"Deleted collection {name}; its documents are still in {collection.data}")
        return ExitCode.OK

    run(debug, body)
