"""The documents a user limits questions to: `--source` globs on the path below the data folder
(any of them), and `--where KEY=VALUE` on what a document is (all of them):

    org=3M             an organisation it is about, or one of its other names (whole words)
    period=FY2022      its period as sources show it ("quarter ended July 1, 2023 (Q3
                       FY2023)": FY2023, Q3, 2023 and "July 1, 2023" all match; whole words)
    kind=10-K          its kind, by name or as questions name it (annual-report, 10-K, 10-Q…)
    title=budget       words of its title

Case does not matter but in globs. Retrieval searches only the selected documents' chunks,
so k results still come back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict

from docqa.errors import UsageError
from docqa.index.identity import KINDS, DocumentIdentity

WHERE_KEYS = ("org", "period", "kind", "title")


class Selection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: tuple[str, ...] = ()
    where: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, sources: Sequence[str], where: Sequence[str]) -> Selection | None:
        """The selection the flags give (None: every document), or a UsageError."""
        pairs = []
        for text in where:
            key, _, value = text.partition("=")
            key, value = key.strip().lower(), value.strip()
            if key not in WHERE_KEYS or not value:
                raise UsageError(
                    f"--where {text!r}: write KEY=VALUE with KEY one of {', '.join(WHERE_KEYS)} "
                    "(e.g. --where org=3M --where period=FY2022)"
                )
            pairs.append((key, value))
        if not sources and not pairs:
            return None
        return cls(sources=tuple(sources), where=tuple(pairs))

    def matches(self, names: Sequence[str], identity: DocumentIdentity | None) -> bool:
        """Whether a document (its file names, what it is) is selected."""
        if self.sources and not any(
            fnmatchcase(name, pattern) for name in names for pattern in self.sources
        ):
            return False
        return all(_has(identity, key, value) for key, value in self.where)

    def describe(self) -> str:
        """The selection as the flags that make it."""
        return " ".join(
            [
                *(f"--source {s!r}" for s in self.sources),
                *(f"--where {k}={v}" for k, v in self.where),
            ]
        )


def nothing_selected(
    selection: Selection, documents: Sequence[tuple[str, DocumentIdentity | None]]
) -> str:
    """What to say when no document matches: the selection, and what the index holds (file
    names, organisations, periods, kinds; a dozen of each)."""
    identities = [identity for _, identity in documents if identity is not None]
    known = {
        "files": sorted(source for source, _ in documents),
        "org": sorted({i.organisation for i in identities if i.organisation}),
        "period": sorted({i.period_label for i in identities if i.period_label}),
        "kind": sorted({i.kind for i in identities if i.kind}),
    }
    held = "; ".join(
        f"{key}: {', '.join(values[:12])}" + (" …" if len(values) > 12 else "")
        for key, values in known.items()
        if values
    )
    return f"no document matches {selection.describe()} (the index holds {held})"


def _has(identity: DocumentIdentity | None, key: str, value: str) -> bool:
    if identity is None:
        return False
    if key == "kind":
        if identity.kind is None:
            return False
        aliases = (alias.casefold() for alias in KINDS.get(identity.kind, ()))
        plain = value.replace("-", " ").casefold()
        return plain == identity.kind.casefold() or value.casefold() in aliases
    texts = {
        "org": [*identity.organisations, *identity.aliases],
        "period": [identity.period_label or ""],
        "title": [identity.title],
    }[key]
    words = re.compile(rf"(?<!\w){re.escape(value)}(?!\w)", re.IGNORECASE)
    return any(words.search(text) for text in texts)
