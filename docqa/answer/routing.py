"""Routing: the documents a question is about, chosen before its chunks are ranked.

A question that names an organisation ("Apple", "AAPL"), a period ("Q3 FY2023", "as of
September 30, 2023", "FY2018") or a kind of document ("10-K", "annual report") is searched
in the documents whose identity matches; in a library of look-alikes the same words in
another company's or another year's filing would otherwise rank as high.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docqa.index.identity import KINDS, DocumentIdentity
from docqa.index.names import core_name
from docqa.periods import Mention, Period, covers, match_strength, mentions, names_period
from docqa.text import terms

if TYPE_CHECKING:
    import numpy as np

    from docqa.index.bm25 import BM25Index
    from docqa.index.store import VectorStore

MAX_NAME_WORDS = 6  # the longest name matched in a question
SHORT_NAME = 3  # a name this short counts only in capitals ("DOT", not "dot" or "Dot")
MIN_SHARE = 0.5  # a one-word name counts when at least this share of the documents that
# use the word are the organisation's own ("Apple", "Verizon"; not "American", "General")...
MIN_USES = 3  # ...a document using it in this many chunks at least (not a passing mention)
_TOKEN = re.compile(r"[\w][\w.&'\u2019-]*")
_POSSESSIVE = re.compile(r"(?:'s|\u2019s|'|\u2019)$", re.IGNORECASE)


@dataclass(frozen=True)
class Route:
    """What a question names, and the documents (by their place in the index) it selects."""

    documents: frozenset[int] | None = None  # None: it names nothing that narrows the search
    organisations: tuple[str, ...] = ()  # as the question writes them
    periods: tuple[Mention, ...] = ()
    kinds: tuple[str, ...] = ()
    relative: int | None = None  # "the prior year": -1, "this year": 0
    years: frozenset[str] = frozenset()  # the years it asks about, as documents write them
    uncovered: bool = False  # it names a period none of its organisations' documents covers
    unknown: tuple[str, ...] = ()  # organisations it names that no document mentions

    @property
    def narrows(self) -> bool:
        return self.documents is not None

    def stated_in(self, text: str) -> bool:
        """Whether a text states one of the periods the question names."""
        return any(names_period(text, mention) for mention in self.periods)

    def describe(self) -> str:
        """What the question asks about, as a reader would say it: "Apple's Q3 FY2023"."""
        who = " and ".join(self.organisations)
        when = ", ".join(_period_text(m) for m in self.periods)
        if who and when:
            owner = f"{who}'" if who.endswith("s") else f"{who}'s"
            return f"{owner} {when}"
        return who or when or ", ".join(self.kinds)


@dataclass
class Library:
    """The documents of an index, as routing reads their identities."""

    identities: Sequence[DocumentIdentity | None]  # in index order
    keywords: BM25Index
    names: dict[str, set[int]] = field(default_factory=dict)  # folded name -> documents

    @classmethod
    def build(cls, store: VectorStore) -> Library:
        """The library of a loaded index."""
        import numpy as np

        identities = [entry.identity for entry, _, _ in store.spans]
        starts = np.array([start for _, start, _ in store.spans], dtype=np.int64)
        keywords = store.keywords
        library = cls(identities, keywords)
        owner = [  # "U.S. Office of Personnel Management" is "Office of Personnel Management"
            core_name(identity.organisation or "").casefold() if identity else ""
            for identity in identities
        ]
        for number, identity in enumerate(identities):
            if identity is None:
                continue
            for name in (*identity.organisations, *identity.aliases):
                words = _TOKEN.findall(name)
                if not words or len(words) > MAX_NAME_WORDS:
                    continue
                if len(words) == 1 and not _own_word(name, owner[number], owner, keywords, starts):
                    continue
                library.names.setdefault(_key(words), set()).add(number)
        return library

    def route(self, question: str) -> Route:
        """The documents a question selects: those of the organisations it names, narrowed to
        the period it names (the best-matching periods among them) and the kind it names."""
        everything = frozenset(range(len(self.identities)))
        named_organisations, chosen = self._organisations(question)
        candidates = chosen or everything
        kinds = tuple(kind for kind, words in KINDS.items() if _names_any(question, words))
        if kinds:
            of_kind = frozenset(n for n in candidates if self._kind(n) in kinds)
            candidates = of_kind or candidates
        named = mentions(question)
        relative = next((m.relative for m in named if m.relative is not None), None)
        # A bare year ("in July 2022") may only date an event: it narrows the documents of
        # an organisation or kind the question names, not the whole library.
        periods = tuple(m for m in named if m.year is not None and (m.explicit or chosen or kinds))
        best = 0
        if periods:
            strength = {
                number: max(match_strength(self._period(number), m) for m in periods)
                for number in candidates
            }
            best = max(strength.values(), default=0)
            if best >= 2:
                candidates = frozenset(n for n, s in strength.items() if s == best)
        return Route(
            documents=None if candidates == everything else candidates,
            organisations=named_organisations,
            periods=periods,
            kinds=kinds,
            relative=relative,
            years=self._years(periods, relative, candidates if best >= 2 else frozenset()),
            uncovered=bool(chosen) and not self._covered(chosen, periods),
            unknown=() if chosen else self._unknown(question),
        )

    def _years(
        self, periods: tuple[Mention, ...], relative: int | None, matched: frozenset[int]
    ) -> frozenset[str]:
        """The years a question asks about, as the documents' text writes them: the years it
        names, and the calendar year a fiscal period it names ends in ("Q3 FY2024" of a
        quarter ended October 29, 2023 is 2023). With a relative year ("the prior year"),
        the named period only picks the document: the year asked is the one before its."""
        own: set[int] = set()
        for number in matched:
            period = self._period(number)
            if period is not None:
                own |= {y for y in (period.fiscal_year, period.end and period.end.year) if y}
        if relative is not None:
            return frozenset(str(year + relative) for year in own)
        named = {m.end.year if m.end else m.year for m in periods if not m.last_year}
        return frozenset(str(year) for year in named | own if year)

    def _covered(self, documents: frozenset[int], periods: tuple[Mention, ...]) -> bool:
        """Whether the documents cover a period the question names as one ("Q4 FY2023",
        "fiscal 2017", "June 30, 2021"), comparatives included; a bare year may date anything,
        and a question may name a second period for comparison ("guidance for Q4")."""
        named = [mention for mention in periods if mention.explicit]
        return not named or any(
            covers(self._period(number), mention) for number in documents for mention in named
        )

    def _unknown(self, question: str) -> tuple[str, ...]:
        """Names a question writes as an owner ("Tesla's revenue") that no chunk of the
        library holds: it asks about an organisation the documents do not cover."""
        owners = re.findall(r"\b([A-Z][\w&.-]*)(?:'s|\u2019s)\b", question)
        return tuple(
            name
            for name in dict.fromkeys(owners)
            if (folded := terms(name)) and not len(self.keywords.chunk_ids(folded[0]))
        )

    def _organisations(self, question: str) -> tuple[tuple[str, ...], frozenset[int]]:
        """The names of the library's organisations a question uses, and their documents."""
        tokens = [_POSSESSIVE.sub("", token) for token in _TOKEN.findall(question)]
        named: list[str] = []
        documents: set[int] = set()
        start = 0
        while start < len(tokens):
            for size in range(min(MAX_NAME_WORDS, len(tokens) - start), 0, -1):
                words = tokens[start : start + size]
                found = self.names.get(_key(words))
                if found and _written_as_name(words):
                    named.append(" ".join(words))
                    documents |= found
                    start += size
                    break
            else:
                start += 1
        return tuple(dict.fromkeys(named)), frozenset(documents)

    def _period(self, number: int) -> Period | None:
        identity = self.identities[number]
        return identity.period if identity else None

    def _kind(self, number: int) -> str | None:
        identity = self.identities[number]
        return identity.kind if identity else None


def _key(words: Sequence[str]) -> str:
    return " ".join(word.casefold() for word in words)


def _written_as_name(words: Sequence[str]) -> bool:
    """Whether question words look like a name: a short name ("MU", "DOT") only in capitals,
    any other with a capital or a digit ("Apple"; "apple" is the fruit)."""
    text = " ".join(words)
    if len(text) <= SHORT_NAME:
        return text.isupper() or any(c.isdigit() for c in text)
    return any(c.isupper() or c.isdigit() for c in text)


def _own_word(
    name: str, organisation: str, owners: list[str], keywords: BM25Index, starts: np.ndarray
) -> bool:
    """Whether a one-word name is the organisation's own: most documents that use the word
    are about that organisation."""
    import numpy as np

    folded = terms(name)
    if len(folded) != 1:
        return False
    chunk_ids = keywords.chunk_ids(folded[0])
    per_document = np.bincount(np.searchsorted(starts, chunk_ids, side="right") - 1)
    using = np.flatnonzero(per_document >= MIN_USES)
    if not len(using):
        return False
    own = sum(owners[d] == organisation for d in using.tolist())
    return own / len(using) >= MIN_SHARE


def _names_any(question: str, words: Sequence[str]) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", question, re.I) for w in words)


def _period_text(mention: Mention) -> str:
    if mention.end is not None:
        return f"{mention.end:%B} {mention.end.day}, {mention.end.year}"
    prefix = f"Q{mention.quarter} " if mention.quarter else ""
    return f"{prefix}{'FY' if mention.fiscal else ''}{mention.year}"
