"""Periods as documents and questions write them: dates ("July 1, 2023", "30 June 2022"),
fiscal years ("FY2018", "fiscal 2023"), quarters ("Q3 2023", "third quarter of fiscal 2024"),
ranges ("FY 2022-2026") and relative years ("the prior year"). Shared by document identity
(what period a document covers) and routing (what period a question asks about)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"(?:19|20)\d\d"
DATE = re.compile(
    rf"\b(?P<m1>{_MONTH})\s+(?P<d1>\d{{1,2}}),?\s+(?P<y1>{_YEAR})\b"  # July 1, 2023
    rf"|\b(?P<d2>\d{{1,2}})\s+(?P<m2>{_MONTH}),?\s+(?P<y2>{_YEAR})\b"  # 30 June 2022
    rf"|\b(?P<y3>{_YEAR})-(?P<m3>\d\d)-(?P<d3>\d\d)\b"  # 2023-07-01
    rf"|\b(?P<m4>\d{{1,2}})/(?P<d4>\d{{1,2}})/(?P<y4>{_YEAR})\b",  # 12/17/2007 (US)
    re.IGNORECASE,
)
_ORDINAL = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4}
_ORDINAL |= {"4th": 4}
_NTH = r"(?P<nth>first|second|third|fourth|1st|2nd|3rd|4th)"
_FY = r"(?:fiscal(?:\s+year)?|FY)"
_YY = r"'?(?P<year>(?:19|20)?\d\d)\b"  # 2023, 23 or '23
QUARTER = re.compile(
    rf"\bQ(?P<q>[1-4])(?:\s*(?:of\s+)?(?P<fy>{_FY})?\s*{_YY})"  # Q3 2023, Q3 FY23, Q3'23
    rf"|\b(?P<year2>{_YEAR})\s*Q(?P<q2>[1-4])\b"  # 2023 Q3, 2023Q3
    rf"|\b{_NTH}[\s-]+quarter(?:\s+of)?(?:\s+(?P<fy3>{_FY}))?(?:\s+year)?\s+(?P<year3>{_YEAR})\b"
    rf"|\b(?P<fy4>{_FY})\s*(?P<year4>{_YEAR})\s+(?P<nth4>first|second|third|fourth)\s+quarter",
    re.IGNORECASE,
)
FISCAL_YEAR = re.compile(rf"\b{_FY}\s*{_YY}", re.IGNORECASE)
YEAR_RANGE = re.compile(
    rf"\b(?:{_FY}s?\s*)?(?P<first>{_YEAR})\s*(?:-|\u2013|\u2014|to|through)\s*(?:FY\s*)?(?P<last>{_YEAR})\b",
    re.IGNORECASE,
)
YEAR = re.compile(rf"\b{_YEAR}\b")
ANNUAL_COMPARATIVES = 2  # years before its own an annual report's statements show
# Years named relative to the document's own: "the prior year" is its period's year minus one.
RELATIVE_YEAR = re.compile(
    r"\b(?:(?:prior|previous|preceding|last)\s+(?:fiscal\s+)?year"
    r"|year\s+before|(?P<same>current|this)\s+(?:fiscal\s+)?year)\b",
    re.IGNORECASE,
)


def parse_date(text: str) -> date | None:
    """The first date `text` writes, or None."""
    for match in DATE.finditer(text):
        if found := _date(match):
            return found
    return None


def _date(match: re.Match[str]) -> date | None:
    g = match.groupdict()
    for n in "1234":
        if g[f"y{n}"]:
            month = g[f"m{n}"]
            number = int(month) if month.isdigit() else MONTHS[month.lower().rstrip(".")]
            try:
                return date(int(g[f"y{n}"]), number, int(g[f"d{n}"]))
            except ValueError:
                return None
    return None


class Period(BaseModel):
    """The time a document covers: a fiscal year, a quarter, a range of years or a day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    end: date | None = None  # its last day, when known
    fiscal_year: int | None = None  # the fiscal year it is (or falls in)
    quarter: int | None = None  # its fiscal quarter, for a quarter
    first_year: int | None = None  # a range of years ("FY 2022-2026")
    last_year: int | None = None

    @property
    def years(self) -> set[int]:
        """Every year a question may name it by."""
        found = {y for y in (self.fiscal_year, self.end.year if self.end else None) if y}
        if self.first_year and self.last_year:
            found |= set(range(self.first_year, self.last_year + 1))
        return found

    @property
    def calendar_quarter(self) -> tuple[int, int] | None:
        """(year, quarter) of the calendar quarter holding most of a quarter that ends on
        `end`: NVIDIA's quarter ended October 29, 2023 is mostly 2023's third."""
        if self.end is None or self.quarter is None:
            return None
        middle = self.end - timedelta(days=45)
        return middle.year, (middle.month - 1) // 3 + 1

    @property
    def label(self) -> str:
        """How people say it: "quarter ended July 1, 2023 (Q3 FY2023)", "FY2022"."""
        fiscal = f"FY{self.fiscal_year}" if self.fiscal_year else ""
        if self.quarter and fiscal:
            fiscal = f"Q{self.quarter} {fiscal}"
        if self.end:
            what = "quarter ended" if self.quarter else "year ended" if self.fiscal_year else ""
            day = f"{self.end:%B} {self.end.day}, {self.end.year}"
            text = f"{what} {day}".strip()
            return f"{text} ({fiscal})" if fiscal else text
        if self.first_year and self.last_year:
            return f"FY{self.first_year}-{self.last_year}"
        return fiscal


def parse_period(text: str) -> Period | None:
    """The period a person writes: "2023-07-01", "FY2023", "Q3 FY2023", "FY2022-2026",
    "quarter ended July 1, 2023 (Q3 FY2023)"; None when `text` names none."""
    if match := YEAR_RANGE.search(text):
        return Period(first_year=int(match["first"]), last_year=int(match["last"]))
    named = mentions(text)
    end = next((m.end for m in named if m.end), None)
    quarter = next((m for m in named if m.quarter), None)
    year = next((m.year for m in named if m.fiscal or (m.year and not m.end)), None)
    if quarter is not None:
        return Period(end=end, fiscal_year=quarter.year, quarter=quarter.quarter)
    if end is not None and year is None and re.search(r"\byear\s+end", text, re.IGNORECASE):
        year = end.year
    if year is not None or end is not None:
        return Period(end=end, fiscal_year=year)
    return None


@dataclass(frozen=True)
class Mention:
    """A period a question names."""

    year: int | None = None  # the year named, fiscal or calendar
    quarter: int | None = None
    fiscal: bool = False  # named as a fiscal year ("FY2018", "fiscal 2023")
    end: date | None = None  # a day named ("the quarter ended July 1, 2023", "as of ...")
    relative: int | None = None  # "the prior year": -1; "the current year": 0
    last_year: int | None = None  # a range of years: "FY 2022-2026" is 2022 to 2026

    @property
    def explicit(self) -> bool:
        """Named as a period, not only as a year ("in 2022" may date an event)."""
        return (
            self.fiscal or self.quarter is not None or self.end is not None or bool(self.last_year)
        )


def mentions(text: str) -> list[Mention]:
    """The periods `text` names, most specific first: days, quarters, fiscal years, years."""
    found: list[Mention] = []
    taken: list[tuple[int, int]] = []

    def free(match: re.Match[str]) -> bool:
        start, end = match.span()
        if any(start < b and a < end for a, b in taken):
            return False
        taken.append((start, end))
        return True

    for match in DATE.finditer(text):
        if (day := _date(match)) and free(match):
            found.append(Mention(year=day.year, end=day))
    for match in YEAR_RANGE.finditer(text):
        first, last = int(match["first"]), int(match["last"])
        if 0 < last - first <= 10 and free(match):
            found.append(Mention(year=first, last_year=last, fiscal="f" in match[0].lower()))
    for match in QUARTER.finditer(text):
        if free(match):
            found.append(_quarter(match))
    for match in FISCAL_YEAR.finditer(text):
        if free(match):
            found.append(Mention(year=_full_year(match["year"]), fiscal=True))
    for match in YEAR.finditer(text):
        if free(match):
            found.append(Mention(year=int(match[0])))
    for match in RELATIVE_YEAR.finditer(text):
        found.append(Mention(relative=0 if match["same"] else -1))
    return found


def names_period(text: str, asked: Mention) -> bool:
    """Whether `text` states the period `asked` names: its quarter (by number or ordinal,
    with its year), else its year."""
    for named in mentions(text):
        if asked.quarter is not None:
            if (named.quarter, named.year) == (asked.quarter, asked.year):
                return True
        elif named.year == asked.year:
            return True
    return False


def _quarter(match: re.Match[str]) -> Mention:
    g = match.groupdict()
    if g["q"]:
        return Mention(_full_year(g["year"]), int(g["q"]), fiscal=bool(g["fy"]))
    if g["q2"]:
        return Mention(int(g["year2"]), int(g["q2"]))
    if g["nth"]:
        return Mention(int(g["year3"]), _ORDINAL[g["nth"].lower()], fiscal=bool(g["fy3"]))
    return Mention(int(g["year4"]), _ORDINAL[g["nth4"].lower()], fiscal=True)


def _full_year(text: str) -> int:
    number = int(text)
    return number if number >= 100 else 2000 + number


def match_strength(period: Period | None, mention: Mention) -> int:
    """How well a document's period answers a named one: 3 the very period (its end day, its
    quarter, its fiscal year), 2 a year the period lies in, 1 a year it touches, 0 not at
    all (or nothing is known of the document's period)."""
    if period is None:
        return 0
    if mention.end is not None:
        if period.end == mention.end:
            return 3
        return 1 if mention.end.year in period.years else 0
    if mention.year is None:
        return 0
    if mention.last_year is not None:
        if (period.first_year, period.last_year) == (mention.year, mention.last_year):
            return 3
        named = set(range(mention.year, mention.last_year + 1))
        return 2 if period.years and period.years <= named else 1 if period.years & named else 0
    if mention.quarter is not None:
        if period.quarter is None:
            return 1 if mention.year in period.years and not mention.fiscal else 0
        by_fiscal = (period.fiscal_year, period.quarter) == (mention.year, mention.quarter)
        by_calendar = period.calendar_quarter == (mention.year, mention.quarter)
        if by_fiscal or (by_calendar and not mention.fiscal):
            return 3
        return 0
    if period.fiscal_year == mention.year and period.quarter is None:
        return 3  # the annual report of that year
    if mention.year in period.years:
        return 2
    return 0


def covers(period: Period | None, mention: Mention) -> bool:
    """Whether a document of `period` states figures for the period named, comparatives
    included: an annual report for FY2022 covers FY2020 to FY2022 (its statements show three
    years), a quarterly report its quarter and the same quarter a year before, a plan its
    years. A document of unknown period may cover anything."""
    if period is None or not period.years or mention.year is None:
        return True
    earlier = ANNUAL_COMPARATIVES if period.quarter is None else 1
    first, last = min(period.years) - earlier, max(period.years)
    if mention.quarter is not None and period.quarter is not None:
        return mention.quarter == period.quarter and first <= mention.year <= last
    return first <= (mention.last_year or mention.year) and mention.year <= last


def fiscal_quarter(end: date, named: list[tuple[int, int]]) -> tuple[int, int] | None:
    """(fiscal year, quarter) of a quarter ending on `end`, from the (quarter, fiscal year)
    pairs a document names ("the third quarter of fiscal year 2024"): the most named pair whose
    fiscal year ends when that quarter's year would, 3 months per quarter still to come."""
    counts: dict[tuple[int, int], int] = {}
    for quarter, year in named:
        year_end = end + timedelta(days=91 * (4 - quarter))
        if year_end.year == year:
            counts[(year, quarter)] = counts.get((year, quarter), 0) + 1
    return max(counts, key=lambda pair: counts[pair]) if counts else None
