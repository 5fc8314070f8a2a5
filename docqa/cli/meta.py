"""`docqa meta`: what each document is taken to be (title, organisations, period, kind), and
corrections to it, kept in the data folder's docqa-meta.yml."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from docqa.cli.common import ConfigOption, DataOption, DebugOption, VectorstoreOption, note, run
from docqa.errors import ExitCode, UsageError


def meta(
    source: Annotated[
        str | None,
        typer.Argument(help="A file as sources name it (its path below the data folder)."),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="Its title.")] = None,
    organisations: Annotated[
        list[str] | None,
        typer.Option("--org", help="An organisation it is about (repeat for more; first: main)."),
    ] = None,
    aliases: Annotated[
        list[str] | None,
        typer.Option("--alias", help="Another name a question may use (a ticker, a short name)."),
    ] = None,
    period: Annotated[
        str | None,
        typer.Option("--period", help="The period it covers: 2023-07-01, FY2023, Q3 FY2023, ..."),
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Its kind: annual report, quarterly report, ...")
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Forget the file's corrections: as ingest reads it.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data: DataOption = None,
    vectorstore: VectorstoreOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """List what each indexed document is taken to be, or correct one (applied at the next
    ingest, and kept through every later one)."""

    def body() -> ExitCode:
        from pydantic import ValidationError

        from docqa.config import load_settings
        from docqa.index.corrections import Correction, Corrections
        from docqa.index.manifest import read_manifest

        settings = load_settings(config, {"paths": {"data": data, "vectorstore": vectorstore}})
        corrections = Corrections.read(settings.paths.data)
        manifest, _ = read_manifest(settings.paths.vectorstore)
        indexed = {entry.source: entry.identity for entry in manifest.files}
        if source is None:
            listing = [
                {
                    "source": name,
                    "document": identity.as_dict(),
                    "pending": corrections.outdated(name, identity),
                }
                for name, identity in sorted(indexed.items())
            ]
            print(json.dumps(listing, ensure_ascii=False) if json_output else _table(listing))
            return ExitCode.OK
        if source not in indexed:
            raise UsageError(
                f"{source} is not an indexed file: `docqa meta` lists them (names are paths "
                "below the data folder)"
            )
        edits = {
            "title": title,
            "organisations": organisations,
            "aliases": aliases,
            "period": period,
            "kind": kind,
        }
        edits = {name: value for name, value in edits.items() if value is not None}
        if reset or edits:
            kept = corrections.entries.get(source)
            fields = {} if reset else (kept.model_dump(exclude_none=True) if kept else {})
            try:
                correction = Correction.model_validate({**fields, **edits})
            except ValidationError as exc:
                problem = exc.errors()[0]
                raise UsageError(f"--{problem['loc'][0]}: {problem['msg']}") from None
            corrections.save(
                source, correction if correction.model_dump(exclude_none=True) else None
            )
            note(f"saved in {corrections.path}; run `python ingest.py` to apply it")
        document = corrections.apply(source, indexed[source]).as_dict()
        print(json.dumps(document, ensure_ascii=False) if json_output else _details(document))
        return ExitCode.OK

    run(debug, body)


def _table(listing: list[dict[str, Any]]) -> str:
    lines = []
    for row in listing:
        pending = "  (correction not applied yet: run ingest)" if row["pending"] else ""
        lines.append(f"{row['source']}: {row['document']['label']}{pending}")
    return "\n".join(lines)


def _details(document: dict[str, Any]) -> str:
    names = {
        "title": "Title",
        "organisations": "Organisations",
        "aliases": "Also called",
        "kind": "Kind",
        "period": "Period",
        "corrected": "Corrected",
    }
    lines = []
    for key, name in names.items():
        value = document[key]
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        lines.append(f"{name + ':':<15}{shown or '-'}")
    return "\n".join(lines)
