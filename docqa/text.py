"""Text folding shared by keyword search, answer grounding and evaluation; document text
made inert before it reaches a prompt or leaves the server; the check that a question is text
at all."""

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
# Chat-template markers of the model families docqa runs (ChatML, Llama 2 and 3, Gemma...).
CHAT_MARKERS = re.compile(
    r"<\|[^|<>\n]{0,40}\|>|</?s>|\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>"
)
# Characters that do not show: zero-width, direction overrides, and controls but for \t \n.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_CITATION_MARKER = re.compile(r"\[(\d{1,3})\]")
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


def as_data(text: str) -> str:
    """Document text as it may be shown, quoted or put in a prompt: no chat-template markers,
    no invisible characters, and its own "[3]" written "(3)", never taken for a citation."""
    text = _INVISIBLE.sub("", CHAT_MARKERS.sub("", text))
    return _CITATION_MARKER.sub(r"(\1)", text)


class MarkerFilter:
    """Chat-template markers taken out of text that arrives in pieces (a model's tokens): the
    end of what has come that may begin a marker is held back until it is told apart."""

    LONGEST = 44  # characters of the longest marker CHAT_MARKERS takes out

    def __init__(self) -> None:
        self._held = ""

    def feed(self, piece: str) -> str:
        """What can be passed on now, `piece` included."""
        text = CHAT_MARKERS.sub("", self._held + piece)
        ends_in_word = text and not text[-1].isspace()  # markers hold no spaces
        word = text.split()[-1][-self.LONGEST :] if ends_in_word else ""
        starts = [i for i in (word.find("<"), word.find("[")) if i >= 0]
        tail = word[min(starts) :] if starts else ""
        may_begin = (
            tail and not tail.endswith("]") and (not tail.endswith(">") or tail.endswith("SYS>"))
        )
        self._held = tail if may_begin else ""
        return text[: len(text) - len(self._held)]

    def flush(self) -> str:
        """What was held back, at the end of the text."""
        text, self._held = self._held, ""
        return CHAT_MARKERS.sub("", text)


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
