"""`docqa ingest`: build the index from the documents in the data folder."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import TYPE_CHECKING, Annotated

import typer

from docqa.cli.common import (
    CollectionOption,
    ConfigOption,
    DataOption,
    DebugOption,
    VectorstoreOption,
    command_settings,
    note,
    run,
)
from docqa.errors import ExitCode, NoDocumentsError

if TYPE_CHECKING:
    from docqa.config import Settings


def ingest(
    data: DataOption = None,
    vectorstore: VectorstoreOption = None,
    collection: CollectionOption = None,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Read and embed every file again, ignoring what is known."),
    ] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Then keep the index up to date as files appear, change, move or go, until "
            "Ctrl-C.",
        ),
    ] = False,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Bring the index up to date with the documents under the data folder: new and changed
    files are read and embedded, removed ones dropped, unchanged ones left alone."""

    def body() -> ExitCode:
        from docqa.index.watching import follow_folder

        paths = {"data": data, "vectorstore": vectorstore}
        settings = command_settings(config, {"paths": paths}, collection)
        if not watch:
            return _ingest_once(settings, rebuild)
        if rebuild:
            _ingest_waiting(settings, rebuild)
        note(f"watching {settings.paths.data} for changes (Ctrl-C to stop)")
        try:  # the first ingest as soon as the folder is watched: nothing is missed
            follow_folder(settings.paths.data, lambda: _ingest_waiting(settings, rebuild=False))
        except KeyboardInterrupt:
            note("stopped watching")
        return ExitCode.OK

    run(debug, body)


def _ingest_once(settings: Settings, rebuild: bool) -> ExitCode:
    from docqa.cli.progress import RichIngestProgress
    from docqa.cli.render import ingest_summary
    from docqa.index.ingest import ingest as ingest_pdfs

    progress = RichIngestProgress() if sys.stderr.isatty() else None
    with progress or nullcontext():
        report = ingest_pdfs(settings, progress, rebuild=rebuild)
    for warning in report.warnings:
        note(warning)
    print(ingest_summary(report), flush=True)
    return ExitCode.PARTIAL if report.failed else ExitCode.OK


def _ingest_waiting(settings: Settings, rebuild: bool) -> None:
    """One ingest of a watched folder: a folder without documents yet is waited on, not an error."""
    try:
        _ingest_once(settings, rebuild)
    except NoDocumentsError as exc:
        note(str(exc))
