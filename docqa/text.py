"""Text folding shared by keyword search, answer grounding and evaluation, and the check that
a question is text at all."""

from __future__ import annotations

import re

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_CURRENCY_SPACE = re.compile(r"([£$€¥])\s+(?=\d)")
_TYPOGRAPHY = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)
_TERM = re.compile(r"[£$€%]?[a-z0-9]+(?:[.'][a-z0-9]+)*%?")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
# fmt: off
STOPWORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "been", "by", "did", "do", "does", "for", "from",
        "had", "has", "have", "how", "in", "is", "it", "its", "of", "on", "or", "s", "that", "the",
        "their", "there", "these", "this", "to", "was", "were", "what", "when", "where", "which",
        "who", "whom", "whose", "why", "will", "with",
    }
)
# fmt: on


def invalid_character(text: str) -> str | None:
    """What in `text` is no character — a lone surrogate, as JSON's "\\ud800" or bytes that
    were not UTF-8 become, which UTF-8 cannot encode and no tokenizer reads — described for
    an error message; None when there is none."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return f"an invalid character (a lone surrogate U+{code:04X} at position {exc.start})"
    return None


def fold(text: str) -> str:
    """Lower case, single spaces, plain quotes and dashes, no thousands separators, and no
    space between a currency sign and its amount: the form in which answers are compared."""
    text = " ".join(text.translate(_TYPOGRAPHY).lower().split())
    return _CURRENCY_SPACE.sub(r"\1", _THOUSANDS.sub("", text))


def contains(text: str, candidates: list[str]) -> bool:
    """Whether the folded text holds any of the folded candidates."""
    haystack = fold(text)
    return any(fold(candidate) in haystack for candidate in candidates)


def terms(text: str) -> list[str]:
    """Keyword-search terms: folded words and numbers, no stop words, plurals made singular."""
    return [_singular(term) for term in _TERM.findall(fold(text)) if term not in STOPWORDS]


def years(text: str) -> set[str]:
    """The years (1900-2099) a text names."""
    return set(_YEAR.findall(text))


def numbers(text: str) -> set[str]:
    """The numbers written in a text, folded (so '1,234.5' is '1234.5')."""
    return set(_NUMBER.findall(fold(text)))


def _singular(term: str) -> str:
    if len(term) > 3 and term.endswith("s") and not term.endswith(("ss", "us", "is")):
        return term[:-1]
    return term
