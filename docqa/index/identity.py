"""Who and when a document is: its title, the organisations it is about (and the names they
go by), the period it covers and its kind, read at ingest from the file name, the PDF's
metadata and its pages. A library holds look-alikes — ten 10-Qs of five companies — and
this is what tells them apart, for routing a question to the right one and for showing
which one a source is.

Everything here is a heuristic over how filings, reports and plans write their cover pages;
a user corrects what it gets wrong in the data folder's docqa-meta.yml (`docqa meta`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict

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


def _capitalised(*words: str) -> str:
    """Alternatives matching each word as a name writes it: "Inc", "INC"."""
    return "|".join(form for word in words for form in (word, word.upper()))


_LEGAL = (
    "(?:"
    + _capitalised("Inc", "Incorporated", "Corporation", "Corp", "Company", "Co", "Ltd")
    + "|"
    + _capitalised("Limited", "Holdings", "Group")
    + r"|plc|PLC|P\.L\.C|LLC|L\.L\.C|L\.?P|N\.V|S\.A|AG|SE|S\.p\.A|AB|ASA|Oyj)\.?"
)
_BODY = (
    _capitalised(
        "Department", "Office", "Bureau", "Agency", "Administration", "Commission", "Board"
    )
    + "|"
    + _capitalised("Institute", "Service")
)
_WORD = r"[A-Z0-9][\w&'\u2019.-]*"
_GAP = r"[ \t]+"  # between the words of a name: never a line break
CORPORATE = re.compile(
    rf"\b((?:The{_GAP})?{_WORD}(?:(?:,|{_GAP})[ \t]*(?:&{_GAP}|and{_GAP}|of{_GAP})?{_WORD}){{0,4}})"
    rf",?{_GAP}{_LEGAL}(?![\w-])"
)
PUBLIC_BODY = re.compile(
    rf"\b(?:(?:U\.S\.|United{_GAP}States){_GAP})?"
    rf"(?:(?:{_BODY}){_GAP}(?i:of|for){_GAP}(?:(?i:the){_GAP})?[A-Z][A-Za-z]+"
    rf"(?:{_GAP}(?:(?i:and){_GAP})?[A-Z][A-Za-z]+){{0,3}}"
    rf"|(?!(?:The|A|An|This|Our|Its){_GAP})(?:[A-Z][A-Za-z]+{_GAP}){{1,4}}"
    rf"(?:{_capitalised('Agency', 'Administration', 'Board', 'Commission', 'Bureau')}"
    rf"|{_capitalised('University', 'Hospital')}|Foundation{_GAP}Trust))"
)
_REGISTRANT = re.compile(r"\(?\s*exact name of (?:the )?registrant", re.IGNORECASE)
_TICKER_LINE = re.compile(r"(?i:common stock|ordinary shares|par value).*?\b([A-Z]{1,5})\b")
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
_STEM_NOISE = re.compile(
    r"^(?:annual|quarterly|report|results|earnings|final|draft|prot|sap|icf|copy|v\d+|"
    r"fy|q[1-4]|\d+|10-?[kq]|8-?k|20-?f)$",
    re.IGNORECASE,
)
COVER_PAGES = 2  # pages a cover (title, registrant, period) is read from
TOP_LINES = 15  # an organisation named this near the top is the one the document is about
PROMINENT = 20  # ...and counts as this many more mentions
_NOT_NAMES = frozenset(
    {"in", "the", "a", "an", "of", "for", "and", "to", "at", "on", "by", "our", "this"}
)
MAX_ORGANISATIONS = 3
HEADER_ALIASES = 2  # other names a header gives
HEADLINE_LINES, HEADLINE_WORDS = 3, 20  # the most a title taken from a page's largest font runs to


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
    organisations = _organisations(stem, cover, whole, metadata_title, about)
    kind = _kind(stem, metadata_title, cover)
    return DocumentIdentity(
        title=_title(stem, metadata_title, headline),
        organisations=organisations,
        aliases=_aliases(organisations, stem, cover, whole),
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


def _organisations(
    stem: str, cover: str, whole: str, metadata_title: str | None, about: str
) -> list[str]:
    """The organisations a document is about: the SEC registrant, else the corporate or
    public bodies its cover names — weighted by how near the top they stand, whether its
    title or file name names them (or their acronym), and how often its text names them."""
    lines = [line.strip() for line in cover.split("\n")]
    registrant = None
    for number, line in enumerate(lines):
        if match := _REGISTRANT.search(line):
            registrant = line[: match.start()].strip() or next(
                (x for x in reversed(lines[:number]) if x and not set(x) <= set("_-\u2014 ")), None
            )
            break
    top = [x.casefold() for x in lines if x][:TOP_LINES]
    named = f"{metadata_title or ''} {stem}"
    folded = " ".join(whole.casefold().split())
    candidates = [registrant] if registrant else []
    for text in (cover, metadata_title or ""):
        candidates += [m.group(0) for m in CORPORATE.finditer(text)]
        candidates += [_trimmed(m.group(0), folded) for m in PUBLIC_BODY.finditer(text)]
    scores: Counter[str] = Counter()
    spelled: dict[str, str] = {}
    for candidate in candidates:
        name = _tidy(candidate)
        core = core_name(name).casefold()
        if core in spelled or not core or core.split()[0] in _NOT_NAMES:
            continue
        if candidate != registrant and len(re.findall(r"[a-z]", core)) < 3:
            continue  # "II", "1.1": headings, not names (a registrant may be "3M")
        spelled[core] = _usual_spelling(name, whole)
        place = next((i for i, text in enumerate(top) if core in text), TOP_LINES)
        scores[core] = folded.count(core) + PROMINENT * (TOP_LINES - place) // TOP_LINES
        scores[core] += PROMINENT * (_acronym(core) in named.upper().split())
        scores[core] += PROMINENT * (core in about.casefold())
        scores[core] += 1000 * (candidate == registrant)
    known = {_acronym(spelled[core]) for core in spelled}
    for acronym, name in _acronyms(named, whole):
        core = name.casefold()
        if core not in spelled and acronym not in known:
            spelled[core] = name
            scores[core] = len(re.findall(rf"\b{acronym}\b", whole)) + PROMINENT
    ranked = [core for core, count in scores.most_common() if count >= 2]
    if not ranked:
        return []
    best = scores[ranked[0]]
    kept = [core for core in ranked if scores[core] >= min(best, 1000) * 0.5]
    return [spelled[core] for core in kept[:MAX_ORGANISATIONS]]


def _trimmed(name: str, folded: str) -> str:
    """A public body's name without words a heading ran on with ("... of Transportation
    Strategic Plan"): the shortest front part the text names far more often."""
    words = name.split()
    linking = [i for i, word in enumerate(words) if word.lower() in ("of", "for", "the")]
    if not linking:
        return name
    best = name
    for size in range(len(words) - 1, linking[-1] + 1, -1):
        shorter = " ".join(words[:size])
        if folded.count(shorter.casefold()) >= 1.5 * folded.count(best.casefold()):
            best = shorter
    return best


def _acronym(name: str) -> str:
    """ "OPM" for "Office of Personnel Management"."""
    return "".join(word[0] for word in re.findall(r"[A-Za-z]+", name) if word[0].isupper())


def _acronyms(named: str, whole: str) -> list[tuple[str, str]]:
    """(acronym, name) of the acronyms a title or file name uses and the text uses often:
    the name is the text's expansion ("Environmental Protection Agency (EPA)"), else the
    acronym itself."""
    found = []
    for acronym in re.findall(r"(?<![A-Za-z])[A-Z]{2,6}(?![a-z])", named):
        roman = re.fullmatch(r"[IVXLC]+", acronym)
        if roman or _STEM_NOISE.match(acronym) or not _written(acronym, whole, 3):
            continue
        expansion = re.compile(
            rf"((?:[A-Z][A-Za-z]+[ \t]+(?:(?:of|and|the|for)[ \t]+)?){{1,7}})\(\s*{acronym}\s*\)"
        )
        name = acronym
        for match in expansion.finditer(whole):
            words = match.group(1).split()
            starts = [i for i in range(len(words)) if _acronym(" ".join(words[i:])) == acronym]
            if starts and words[starts[0]][0].isupper():
                name = " ".join(words[starts[0] :])
                break
        found.append((acronym, name))
    return found


def _tidy(name: str) -> str:
    name = " ".join(name.split()).strip(" ,;:")
    return re.sub(r"^(?:the\s+)?(?=(?:U\.S\.|United States)\s)", "", name, flags=re.IGNORECASE)


def core_name(name: str) -> str:
    """A name without its legal form, a leading "The" or "U.S.": "Apple", "NVIDIA",
    "Department of Labor"."""
    name = re.sub(rf",?\s+{_LEGAL}$", "", name.strip())
    name = re.sub(r"^(?:the|u\.s\.|united states)\s+", "", name, flags=re.IGNORECASE)
    return name.strip(" ,")


def _usual_spelling(name: str, whole: str) -> str:
    """The name as the text most often writes it: "NVIDIA Corporation" for a cover's
    "NVIDIA CORPORATION", "Office of Personnel Management" for "Office Of PerSOnnel"."""
    forms = Counter(m.group(0) for m in re.finditer(re.escape(name), whole, re.IGNORECASE))
    natural = [f for f, _ in forms.most_common() if not f.isupper() and _tame(f)]
    if natural:
        return natural[0]
    return name if _tame(name) and not name.isupper() else name.title()


def _tame(text: str) -> bool:
    """No capital letter inside a word after a lower-case one ("PerSOnnel" is an artefact)."""
    return not re.search(r"[a-z][A-Z]", text.replace("Mc", "").replace("Mac", ""))


def _aliases(organisations: list[str], stem: str, cover: str, whole: str) -> list[str]:
    """Other names of the organisations that the document itself uses: the name without its
    legal form, a web name's first part ("Amazon" of "Amazon.com"), acronyms ("OPM"), ticker
    symbols, and words of the file name it writes ("AAPL", "3M")."""
    found: list[str] = []
    words = set(re.findall(r"[\w.&'-]+", whole))
    for name in organisations:
        core = core_name(name)
        found.append(core)
        if core.lower().endswith(".com"):
            found.append(core[:-4])
        major = [w for w in re.findall(r"[A-Za-z]+", core) if w[0].isupper()]
        every = re.findall(r"[A-Za-z]+", core)
        for letters in ("".join(w[0] for w in major), "".join(w[0] for w in every)):
            if len(letters) >= 2 and letters.upper() in words:
                found.append(letters.upper())
    for line in cover.split("\n"):
        if match := _TICKER_LINE.search(line):
            found.append(match.group(1))
    for token in re.findall(r"\d+[A-Za-z]+|[A-Za-z]+", stem):
        if token.isupper() and not _STEM_NOISE.match(token) and _written(token, whole):
            found.append(token)
    names = {n.casefold() for n in organisations}
    unique = {alias.casefold(): alias for alias in reversed(found) if alias}
    return [alias for key, alias in reversed(unique.items()) if key not in names]


def _written(token: str, whole: str, times: int = 2) -> bool:
    return len(re.findall(rf"(?<![\w-]){re.escape(token)}(?![\w-])", whole, re.I)) >= times


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
