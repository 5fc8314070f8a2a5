"""Writing benchmark results: JSON for machines, markdown tables for people."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def table(title: str, rows: list[dict[str, Any]]) -> str:
    """A markdown section: one column per key of the first row, floats to 3 decimals."""
    columns = list(rows[0])
    lines = [f"## {title}", "", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for values in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in values.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(name: str, heading: str, sections: dict[str, list[dict[str, Any]]]) -> str:
    """Write results/NAME.json (the sections, the machine and the date) and results/NAME.md;
    return the markdown."""
    RESULTS.mkdir(exist_ok=True)
    record = run_record()
    (RESULTS / f"{name}.json").write_text(json.dumps({**record, **sections}, indent=1), "utf-8")
    ran = f"{record['machine']}, {record['date'][:10]}"
    body = "\n".join(table(t, rows) for t, rows in sections.items())
    text = f"# {heading}\n\n{ran}\n\n{body}"
    (RESULTS / f"{name}.md").write_text(text, "utf-8")
    return text


def run_record() -> dict[str, str]:
    """The machine and the time (UTC) of this run."""
    return {"machine": machine(), "date": datetime.now(UTC).isoformat()}


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}"
