"""What a user corrected about their documents: docqa-meta.yml in the data folder.

Ingest reads each document's title, organisations, period and kind from the document itself
(docqa.index.identity); where it reads them wrong, this file says what they are, keyed by
the file's path below the data folder. It lives beside the documents it describes, so it
survives a deleted index and every re-ingest; `docqa meta` writes it.

    sec-10-q/2023 Q3 AAPL.pdf:
      title: Apple 10-Q, third quarter of fiscal 2023
      organisations: [Apple Inc.]
      aliases: [AAPL]
      period: Q3 FY2023 (quarter ended July 1, 2023)
      kind: quarterly report
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from docqa.errors import ConfigError
from docqa.files import fsync
from docqa.index.identity import DocumentIdentity
from docqa.periods import parse_period

FILE_NAME = "docqa-meta.yml"
_HEADER = (
    "# What docqa should take each document to be, where it reads it wrong (docqa meta writes\n"
    "# this file). Keys are paths below this folder; a period is a date, FY2023, Q3 FY2023 or\n"
    "# FY2022-2026. Run `python ingest.py` after editing it.\n"
)


class Correction(BaseModel):
    """The fields a user set for one file; the rest stay as ingest read them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str | None = Field(None, min_length=1, max_length=300)
    organisations: list[str] | None = Field(None, max_length=10)
    aliases: list[str] | None = Field(None, max_length=20)
    period: str | None = Field(None, min_length=1, max_length=100)
    kind: str | None = Field(None, min_length=1, max_length=60)

    @field_validator("period")
    @classmethod
    def _readable_period(cls, value: str | None) -> str | None:
        if value is not None and parse_period(value) is None:
            raise ValueError(f"{value!r} names no period (try 2023-07-01, FY2023, Q3 FY2023)")
        return value

    def applied_to(self, identity: DocumentIdentity) -> DocumentIdentity:
        """The identity with these fields in place of what ingest read."""
        chosen = self.model_dump(exclude_none=True)
        if "period" in chosen:
            chosen["period"] = parse_period(chosen["period"])
        return identity.model_copy(update={**chosen, "corrected": sorted(chosen)})


class Corrections:
    """The corrections of one data folder."""

    def __init__(self, data: Path, entries: dict[str, Correction]) -> None:
        self.path = data / FILE_NAME
        self.entries = entries

    @classmethod
    def read(cls, data: Path) -> Corrections:
        """The data folder's corrections (none when it has no docqa-meta.yml)."""
        path = data / FILE_NAME
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            return cls(data, {})
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read {path} ({exc}): fix or remove it") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must map file names to their corrections")
        entries = {}
        for source, fields in raw.items():
            try:
                entries[str(source)] = Correction.model_validate(fields or {})
            except ValidationError as exc:
                problem = exc.errors()[0]
                where = ".".join(str(part) for part in problem["loc"])
                raise ConfigError(
                    f"{path}, {source}: {where + ': ' if where else ''}{problem['msg']}"
                ) from exc
        return cls(data, entries)

    def apply(self, source: str, identity: DocumentIdentity) -> DocumentIdentity:
        correction = self.entries.get(source)
        return correction.applied_to(identity) if correction else identity

    def outdated(self, source: str, identity: DocumentIdentity) -> bool:
        """Whether an indexed identity misses a change to the file's correction."""
        correction = self.entries.get(source)
        if correction is None:
            return bool(identity.corrected)
        return correction.applied_to(identity) != identity

    def save(self, source: str, correction: Correction | None) -> None:
        """Set (or, with None, remove) one file's correction, written whole or not at all."""
        if correction is None:
            self.entries.pop(source, None)
        else:
            self.entries[source] = correction
        document = {
            name: entry.model_dump(exclude_none=True)
            for name, entry in sorted(self.entries.items())
        }
        text = _HEADER + (
            yaml.safe_dump(document, allow_unicode=True, sort_keys=False) if document else ""
        )
        temporary = self.path.with_name(f".{FILE_NAME}.tmp")
        try:
            with open(temporary, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
            fsync(self.path.parent)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise ConfigError(f"cannot write {self.path} ({exc.strerror})") from exc
