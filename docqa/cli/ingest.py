"""`docqa ingest`: build the index from the PDFs in the data folder."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import Annotated

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
from docqa.errors import ExitCode


def ingest(
    data: DataOption = None,
    vectorstore: VectorstoreOption = None,
    collection: CollectionOption = None,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Read and embed every file again, ignoring what is known."),
    ] = False,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Bring the index up to date with the PDFs under the data folder: new and changed files
    are read and embedded, removed ones dropped, unchanged ones left alone."""

    def body() -> ExitCode:
        from docqa.cli.progress import RichIngestProgress
        from docqa.cli.render import ingest_summary
        from docqa.index.ingest import ingest as ingest_pdfs

        paths = {"data": data, "vectorstore": vectorstore}
        settings = command_settings(config, {"paths": paths}, collection)
        progress = RichIngestProgress() if sys.stderr.isatty() else None
        with progress or nullcontext():
            report = ingest_pdfs(settings, progress, rebuild=rebuild)
        for warning in report.warnings:
            note(warning)
        print(ingest_summary(report))
        return ExitCode.PARTIAL if report.failed else ExitCode.OK

    run(debug, body)
