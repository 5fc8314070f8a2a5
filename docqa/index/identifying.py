"""A document's identity read at ingest from its file name, the PDF's metadata and its pages.

Everything here is a heuristic over how filings, reports and plans write their cover pages;
a user corrects what it gets wrong in the data folder's docqa-meta.yml (`docqa meta`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import PurePosixPath

from docqa.index.identity import DocumentIdentity
from docqa.index.names import aliases, organisations
from docqa.periods import (
    DATE,
    FISCAL_YEAR,
    QUARTER,
    YEAR,
    YEAR_RANGE,
    Period,
    fiscal_quarter,
    mentions,
    parse_date,
)

# The kind a cover page (or title, or file name) declares, first rule that matches. An 8-K
# that carries results (Item 2.02) is an earnings release.
_KIND_RULES = [
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in [
        ("annual report", r"\bform\s+(?:10-?k|20-?f|40-?f)\b|annual report pursuant to section"),
        ("quarterly report", r"\bform\s+10-?q\b|quarterly report pursuant to section"),
        (
            "earnings release",
            r"results of operations and financial condition"
            r"|\breports?\b.{0,80}\b(?:quarter|year)\b.{0,40}\bresults\b",
        ),
        ("current report", r"\bform\s+8-?k\b"),
        ("performance report", r"\bperformance (?:and accountability )?report\b"),
        ("strategic plan", r"\bstrategic plan\b"),
        ("accident report", r"\baccident\b.{0,40}\breport\b"),
        ("protocol", r"\bprotocol\b"),
        ("annual report", r"\bannual report\b"),
        ("quarterly report", r"\bquarterly report\b"),
        ("contract", r"\bagreement\b|\bcontract\b"),
        ("manual", r"\bmanual\b|\bhandbook\b|\buser guide\b"),
    ]
]
_STEM_KINDS = [
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in [
        ("annual report", r"(?<![a-z])(?:10-?k|20-?f)(?![a-z])"),
        ("quarterly report", r"(?<![a-z])10-?q(?![a-z])"),
        ("earnings release", r"(?<![a-z])earnings(?![a-z])"),
        ("current report", r"(?<![a-z])8-?k(?![a-z])"),
    ]
]


_COVER_PERIOD = re.compile(
    rf"for\s+the\s+(?P<what>fiscal\s+year|year|quarterly\s+period|quarter|period)"
    rf"\s+end(?:ed|ing)\s+(?P<date>{DATE.pattern})",
    re.IGNORECASE,
)
_EVENT_DATE = re.compile(rf"date of report.{{0,60}}?(?P<date>{DATE.pattern})", re.I | re.S)
_DATE_LINE = re.compile(rf"^\W*(?:date|dated|date\s*&\s*time)\b.{{0,20}}?({DATE.pattern})", re.I)
_GENERIC_LINE = re.compile(
    r"^(?:page \d+(?: of \d+)?|table of contents|contents|united states|confidential|draft"
    r"|securities and exchange commission|washington, d\.?c\.?(?: \d+)?|\(mark one\)"
    r"|form \S+)$",
    re.IGNORECASE,
)
COVER_PAGES = 2  # pages a cover (title, registrant, period) is read from
HEADLINE_LINES, HEADLINE_WORDS = 3, 20  # the most a title taken from a page's largest font runs to


def identify(
    source: str, pages: Sequence[str], metadata: Mapping[str, str], headline: str | None
) -> DocumentIdentity:
    """The identity of a document from its name (path below the data folder), its pages'
    text (before running headers are removed: they often name the company), the PDF's
    metadata (Title, Author, Subject) and its first page's most prominent line."""
    stem = PurePosixPath(source).stem
    cover = "\n".join(pages[:COVER_PAGES])
    whole = "\n".join(pages)
    metadata_title = metadata.get("Title")
    about = f"{metadata.get('Author', '')} {metadata.get('Subject', '')}"
    found = organisations(stem, cover, whole, metadata_title, about)
    kind = _kind(stem, metadata_title, cover)
    return DocumentIdentity(
        title=_title(stem, metadata_title, headline),
        organisations=found,
        aliases=aliases(found, stem, cover, whole),
        period=_period(stem, metadata_title, cover, whole, kind),
        kind=kind,
    )


def meaningful_title(title: str | None, stem: str) -> bool:
    """Whether a PDF's /Title says something: not empty, not the file's own name, not an
    accession number or a word processor's placeholder."""
    if not title or not title.strip():
        return False
    text = title.strip()
    squeezed = re.sub(r"[\W_]+", "", text).lower()
    if squeezed == re.sub(r"[\W_]+", "", stem).lower() or re.fullmatch(r"[\d\W]+", text):
        return False
    if re.match(r"(?i)(?:microsoft (?:word|powerpoint) -|untitled|document\d*$|slide)", text):
        return False
    return len(re.findall(r"[A-Za-z]{2,}", text)) >= 2


def _title(stem: str, metadata_title: str | None, headline: str | None) -> str:
    if metadata_title and meaningful_title(metadata_title, stem):
        return " ".join(metadata_title.split())
    if headline:
        return headline
    return stem


def headline_of(lines: Sequence[tuple[str, float]]) -> str | None:
    """The most prominent of a page's (line, font size) pairs: the first run of lines in the
    page's largest font that say something, joined (a title set on two lines); None when
    no font stands out (most of the page is set in it)."""
    useful = [
        (" ".join(text.split()), size)
        for text, size in lines
        if len(re.findall(r"[A-Za-z]", text)) >= 3 and not _GENERIC_LINE.match(text.strip())
    ]
    if not useful:
        return None
    largest = max(size for _, size in useful)
    sized = [abs(size - largest) < 0.5 for _, size in useful]
    if sum(sized) > max(3, 0.4 * len(useful)):
        return None
    start = sized.index(True)
    chosen: list[str] = []
    for (text, _), large in zip(useful[start:], sized[start:], strict=True):
        if not large or len(chosen) == HEADLINE_LINES:
            break
        chosen.append(text)
    return " ".join(" ".join(chosen).split()[:HEADLINE_WORDS])


def _kind(stem: str, metadata_title: str | None, cover: str) -> str | None:
    spaced = re.sub(r"[_.]+", " ", stem)
    for kind, rule in _STEM_KINDS:
        if rule.search(spaced):
            return kind
    for text in (metadata_title or "", cover):
        for kind, rule in _KIND_RULES:
            if rule.search(text):
                return kind
    return None


def _period(
    stem: str, metadata_title: str | None, cover: str, whole: str, kind: str | None
) -> Period | None:
    if match := _COVER_PERIOD.search(cover):
        end = parse_date(match["date"])
        if end:
            if "year" in match["what"].lower() or kind == "annual report":
                return Period(end=end, fiscal_year=end.year)
            if "quarter" in match["what"].lower() or kind == "quarterly report":
                return _quarter_ending(end, whole)
            return Period(end=end)
    if (match := _EVENT_DATE.search(cover)) and (day := parse_date(match["date"])):
        return Period(end=day)
    heading = f"{metadata_title or ''}\n{stem}\n{cover[:2000]}"
    if kind == "earnings release" and (match := QUARTER.search(cover)):
        mention = mentions(match.group(0))[0]
        ended = re.search(rf"quarter\s+ended\s+({DATE.pattern})", cover, re.IGNORECASE)
        end = parse_date(ended.group(1)) if ended else None
        return Period(end=end, fiscal_year=mention.year, quarter=mention.quarter)
    if match := YEAR_RANGE.search(heading):
        first, last = int(match["first"]), int(match["last"])
        if 0 < last - first <= 10:
            return Period(first_year=first, last_year=last)
    if match := FISCAL_YEAR.search(heading):
        return Period(fiscal_year=mentions(match.group(0))[0].year)
    if match := QUARTER.search(stem.replace("_", " ")):
        mention = mentions(match.group(0))[0]
        return Period(fiscal_year=mention.year, quarter=mention.quarter)
    for line in cover.split("\n")[:40]:
        if (match := _DATE_LINE.search(line)) and (day := parse_date(match.group(1))):
            return Period(end=day)
    if match := YEAR.search(f"{metadata_title or ''} {re.sub(r'[_.]+', ' ', stem)}"):
        return Period(fiscal_year=int(match.group(0)))
    return None


def _quarter_ending(end: date, whole: str) -> Period:
    """A quarter ending on `end`, with its fiscal year and number when the text says them."""
    named = [mentions(match.group(0))[0] for match in QUARTER.finditer(whole)]
    fiscal = fiscal_quarter(end, [(m.quarter, m.year) for m in named if m.quarter and m.year])
    if fiscal is None:
        return Period(end=end)
    return Period(end=end, fiscal_year=fiscal[0], quarter=fiscal[1])
