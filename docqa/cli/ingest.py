"""`docqa ingest`: build the index from the PDFs in the data folder."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from docqa.cli.common import ConfigOption, DebugOption, VectorstoreOption, note, run
from docqa.errors import ExitCode


def ingest(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Folder of PDFs (default from config.yml).", resolve_path=True),
    ] = None,
    vectorstore: VectorstoreOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Read every PDF under the data folder, embed its text and write the index."""

    def body() -> ExitCode:
        from docqa.cli.progress import RichIngestProgress
        from docqa.config import load_settings
        from docqa.ingest_service import ingest as ingest_pdfs
        from docqa.output import ingest_summary

        settings = load_settings(config, {"paths": {"data": data, "vectorstore": vectorstore}})
        progress = RichIngestProgress() if sys.stderr.isatty() else None
        with progress or nullcontext():
            report = ingest_pdfs(settings, progress)
        for warning in report.warnings:
            note(warning)
        print(ingest_summary(report))
        return ExitCode.PARTIAL if report.skipped else ExitCode.OK

    run(debug, body)
