"""Which year each figure of a sentence is for, where the sentence says so.

Annual reports give several years side by side in two forms: "£214.9 million, £254.8 million
and £140.2 million for the years ended 30 June 2022, 2021 and 2020, respectively" and
"£38,250,000 (2021: £24,700,000)". Read that way, a figure given for a year the question does
not ask about is a wrong answer even though the passages contain it.
"""

from __future__ import annotations

import re

from docqa.periods import DATE
from docqa.text import numbers, years

_FIGURE = r"[£$€]?\(?\d[\d,]*(?:\.\d+)?\)?%?(?: (?:million|billion|thousand))?"
_YEAR = r"(?:19|20)\d\d"
_RESPECTIVELY = re.compile(
    rf"(?P<figures>{_FIGURE}(?:,\s*{_FIGURE})*,?\s+and\s+{_FIGURE})"
    rf".{{0,80}}?(?P<years>{_YEAR}(?:,\s*{_YEAR})*,?\s+and\s+{_YEAR}),?\s+respectively",
    re.DOTALL,
)
_COMPARATIVE = re.compile(rf"(?P<current>{_FIGURE})\s*\((?P<year>{_YEAR}):\s*(?P<prior>{_FIGURE})")


def figure_years(sentence: str) -> dict[str, set[str]]:
    """The years each number of `sentence` (folded, as `numbers` gives it) is stated for, for
    the numbers whose year the sentence makes plain."""
    found: dict[str, set[str]] = {}
    # "as of December 31, 2021 and September 30, 2022, respectively": a date counts as its year
    sentence = DATE.sub(lambda match: _year_of(match.group(0)), sentence)

    def add(figure: str, for_years: set[str]) -> None:
        for number in numbers(figure):
            found.setdefault(number, set()).update(for_years)

    for match in _RESPECTIVELY.finditer(sentence):
        figures = re.findall(_FIGURE, match["figures"])
        stated = re.findall(_YEAR, match["years"])
        if len(figures) == len(stated):
            for figure, year in zip(figures, stated, strict=True):
                add(figure, {year})
    for match in _COMPARATIVE.finditer(sentence):
        add(match["prior"], {match["year"]})
        # The year the sentence is about, when it names one; else the year after the prior.
        current = years(sentence) - {match["year"]} or {str(int(match["year"]) + 1)}
        add(match["current"], current)
    return found


def _year_of(date_text: str) -> str:
    return re.findall(_YEAR, date_text)[-1]


# A question that asks for an amount, a count, a share or a rate: answered by a figure.
_ASKS_HOW_MUCH = re.compile(
    r"\bhow (?:much|many|long|large|big|high|low)\b|\bwhat (?:percentage|percent|share|"
    r"proportion|number|amount|fraction)\b|\bin (?:usd|us\$|\$|£|€|millions|billions|"
    r"thousands)\b",
    re.IGNORECASE,
)
_ASKS_WHAT = re.compile(r"^\W*what(?:'s|\s+(?:was|were|is|are|will be))\b", re.IGNORECASE)
_MEASURE = re.compile(
    r"\b(?:rate|revenue|sales|income|expenses?|margin|capex|capital expenditures?|cash flow|"
    r"eps|earnings per share|price|cost|value|ratio|score)\b",
    re.IGNORECASE,
)


def asks_for_figure(question: str) -> bool:
    """Whether a question asks for a figure: "How much ...", "What was the gross margin ...";
    not "Where does revenue come from?"."""
    if _ASKS_HOW_MUCH.search(question):
        return True
    return bool(_ASKS_WHAT.search(question) and _MEASURE.search(question))


def gives_figure(text: str, question: str) -> bool:
    """Whether a text gives a figure of its own: a number that is not a year, not a lone digit
    and not one the question itself holds."""
    return any(len(n) > 1 for n in numbers(text) - years(text) - numbers(question))


def wrong_year(answer: str, sentence: str, question: str, asked: set[str] | None = None) -> bool:
    """Whether the answer states a figure that `sentence` gives only for years the question
    does not ask about (`asked`; the years it names when None): a question naming no year
    cannot be answered for the wrong one."""
    asked = years(question) if asked is None else asked
    if not asked:
        return False
    stated = figure_years(sentence)
    return any(number in stated and not stated[number] & asked for number in numbers(answer))
