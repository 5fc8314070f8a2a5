"""Writing benchmark results: JSON for machines, markdown tables for people."""

from __future__ import annotations

import json
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
    """Write results/NAME.json and results/NAME.md; return the markdown."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(sections, indent=1), "utf-8")
    text = f"# {heading}\n\n" + "\n".join(table(t, rows) for t, rows in sections.items())
    (RESULTS / f"{name}.md").write_text(text, "utf-8")
    return text
