"""Which year each figure of a sentence is for, where the sentence says so.

Annual reports give several years side by side in two forms: "£214.9 million, £254.8 million
and £140.2 million for the years ended 30 June 2022, 2021 and 2020, respectively" and
"£38,250,000 (2021: £24,700,000)". Read that way, a figure given for a year the question does
not ask about is a wrong answer even though the passages contain it.
"""

from __future__ import annotations

import re

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
        current = years(sentence) - {match["year"]}  # the year the sentence is about, if named
        if current:
            add(match["current"], current)
    return found


def wrong_year(answer: str, sentence: str, question: str) -> bool:
    """Whether the answer states a figure that `sentence` gives only for years the question
    does not ask about (a question naming no year cannot be answered for the wrong one)."""
    asked = years(question)
    if not asked:
        return False
    stated = figure_years(sentence)
    return any(number in stated and not stated[number] & asked for number in numbers(answer))
