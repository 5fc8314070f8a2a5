"""`docqa audit`: the server's audit trail — uploads, deletes, collections, refused requests,
questions — read from its state folder (paths.state)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from docqa.cli.common import ConfigOption, DebugOption, command_settings, note, run
from docqa.errors import ExitCode, UsageError

_AGO = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def audit(
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only what happened from then on: 30m, 2h, 7d ago, or a UTC date or time "
            "(2026-12-07, 2026-12-07T09:00).",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Show the server's audit trail: who uploaded, deleted, made or removed a collection,
    which requests were refused, and how many questions were asked — when, from where."""

    def body() -> ExitCode:
        from docqa.server.audit import read_audit

        settings = command_settings(config, {}, None)
        lines = read_audit(settings.paths.state, since_time(since) if since else None)
        for line in lines:
            print(json.dumps(line, ensure_ascii=False) if json_output else audit_text(line))
        if not lines:
            note(
                f"nothing in the audit log of {settings.paths.state}"
                + (f" since {since}" if since else "")
            )
        return ExitCode.OK

    run(debug, body)


def since_time(text: str) -> datetime:
    """When --since means: a time ago (30m, 2h, 7d), or a UTC date or time."""
    if found := _AGO.fullmatch(text.strip()):
        return datetime.now(UTC) - timedelta(**{_UNITS[found[2]]: int(found[1])})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since {text!r}: give a time ago (30m, 2h, 7d) or a date (2026-12-07)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def audit_text(line: dict[str, Any]) -> str:
    """A line as people read it: when, what, who, from where, and the rest as key=value."""
    rest = " ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for key, value in line.items()
        if key not in ("time", "action", "who", "from")
    )
    who, where = line.get("who") or "-", line.get("from") or "-"
    return f"{line['time']}  {line['action']:<18} {who:<20} {where:<15} {rest}".rstrip()
