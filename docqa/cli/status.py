"""`docqa status`: what the index holds, its size on disk, and what an ingest would change."""

from __future__ import annotations

from typing import Annotated

import typer

from docqa.cli.common import (
    CollectionOption,
    ConfigOption,
    DataOption,
    DebugOption,
    VectorstoreOption,
    command_settings,
    run,
)
from docqa.errors import ExitCode


def status(
    data: DataOption = None,
    vectorstore: VectorstoreOption = None,
    collection: CollectionOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Show the index: files, pages, chunks, model, last ingest, size, and pending changes."""

    def body() -> ExitCode:
        from docqa.cli.render import status_json, status_text
        from docqa.index.status import index_status

        paths = {"data": data, "vectorstore": vectorstore}
        settings = command_settings(config, {"paths": paths}, collection)
        report = index_status(settings)
        print(status_json(report) if json_output else status_text(report, settings))
        return ExitCode.OK

    run(debug, body)
