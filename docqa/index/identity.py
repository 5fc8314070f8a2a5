"""Who and when a document is: its title, the organisations it is about (and the names they
go by), the period it covers and its kind. A library holds look-alikes — ten 10-Qs of five
companies — and this is what tells them apart, for routing a question to the right one and
for showing which one a source is. It is read at ingest (docqa.index.identifying) and
corrected by the user in the data folder's docqa-meta.yml (`docqa meta`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from docqa.periods import Period
from docqa.text import terms

# How questions name a kind of document: only by explicit names ("the agreement" or "the
# protocol" in a question seldom asks for that kind of document).
KINDS: dict[str, tuple[str, ...]] = {
    "annual report": ("annual report", "10-K", "10K", "20-F", "40-F"),
    "quarterly report": ("quarterly report", "10-Q", "10Q"),
    "earnings release": ("earnings release", "press release"),
    "current report": ("current report", "8-K", "8K"),
    "performance report": ("performance report",),
    "strategic plan": ("strategic plan",),
    "accident report": ("accident report",),
}
HEADER_ALIASES = 2  # other names a header gives


class DocumentIdentity(BaseModel):
    """What a document is, as sources show it and routing reads it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    organisations: list[str] = []  # the first is the one it is mainly about
    aliases: list[str] = []  # other names of those: short names, tickers, acronyms
    period: Period | None = None
    kind: str | None = None  # one of KINDS, or a user's own word
    corrected: list[str] = []  # the fields a user set (docqa-meta.yml)

    @property
    def label(self) -> str:
        """One line for a source: "Apple Inc., quarterly report, quarter ended July 1, 2023
        (Q3 FY2023)"; the title when nothing else is known."""
        parts = [p for p in (self.organisation, self.kind, self.period_label) if p]
        return ", ".join(parts) if len(parts) > 1 or not self.title else self.title

    @property
    def organisation(self) -> str | None:
        return self.organisations[0] if self.organisations else None

    @property
    def period_label(self) -> str | None:
        return self.period.label if self.period else None

    def as_dict(self) -> dict[str, Any]:
        """For JSON: the fields, the period spelled out, and the one-line label."""
        period = self.period
        return {
            "label": self.label,
            "title": self.title,
            "organisations": self.organisations,
            "aliases": self.aliases,
            "kind": self.kind,
            "period": period.label if period else None,
            "period_end": period.end.isoformat() if period and period.end else None,
            "fiscal_year": period.fiscal_year if period else None,
            "quarter": period.quarter if period else None,
            "corrected": self.corrected,
        }

    def header(self) -> str:
        """The short text each chunk carries into its vector and keyword entry: who, what
        and when ("Apple Inc. (AAPL): quarterly report, quarter ended July 1, 2023 (Q3
        FY2023)"), after the title when the title says more."""
        who = self.organisation or ""
        other = [a for a in self.aliases if a.casefold() not in who.casefold()][:HEADER_ALIASES]
        if who and other:
            who += f" ({', '.join(other)})"
        what = ", ".join(part for part in (self.kind, self.period_label) if part)
        text = ": ".join(part for part in (who, what) if part)
        own = set(terms(self.title))
        named = " " in self.title  # not a file name standing in for a title
        if named and len(own - set(terms(text))) > len(own) / 2:
            text = f"{self.title}. {text}" if text else self.title
        return text
