"""The settings as people read them — the README's table and the shipped config.yml — written
from docqa.config's fields, so each setting is described once. cog runs these (`make docs`
writes both files, `make lint` fails when either has drifted)."""

from __future__ import annotations

import json
import textwrap
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from docqa.config import Settings

YAML_COMMENT_WIDTH = 96


def settings_table() -> str:
    """A markdown table: every setting, its default, what it does."""
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for name, default, description in _settings():
        shown = "(empty)" if default is None else f"`{_yaml_value(default)}`"
        cell = description.replace("|", "\\|")  # a table cell holds no bare pipe
        rows.append(f"| `{name}` | {shown} | {cell} |")
    return "\n".join(rows)


def config_yaml() -> str:
    """config.yml with every setting at its default, each described in a comment above it."""
    lines: list[str] = []
    for section, field in Settings.model_fields.items():
        lines += ["", f"{section}:"]
        for key, default, description in _fields(field.annotation):
            wrapped = textwrap.wrap(description, YAML_COMMENT_WIDTH - 4, break_on_hyphens=False)
            lines += [f"  # {line}" for line in wrapped]
            value = "" if default is None else f" {_yaml_value(default)}"
            lines.append(f"  {key}:{value}")
    return "\n".join(lines[1:])


def _settings() -> list[tuple[str, Any, str]]:
    return [
        (f"{section}.{key}", default, description)
        for section, field in Settings.model_fields.items()
        for key, default, description in _fields(field.annotation)
    ]


def _fields(model: Any) -> list[tuple[str, Any, str]]:
    """(key, default, description) of a section's settings; a setting with a fixed set of
    values says which."""
    assert isinstance(model, type)
    assert issubclass(model, BaseModel)
    fields = []
    for key, field in model.model_fields.items():
        description = field.description or ""
        if choices := _choices(field.annotation):
            description += f" One of: {' | '.join(choices)}."
        fields.append((key, field.default, description))
    return fields


def _choices(annotation: Any) -> list[str]:
    """The values a Literal (or an optional Literal) annotation allows."""
    for kind in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(kind) is typing.Literal:
            return [str(value) for value in typing.get_args(kind)]
    return []


def _yaml_value(value: Any) -> str:
    """A default as config.yml writes it: plain where YAML reads it back the same, else as
    JSON (which YAML reads: the stop strings' newlines)."""
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return json.dumps(list(value))
    return str(value)
