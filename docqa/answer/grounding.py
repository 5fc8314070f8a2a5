"""Keeping answers to what the passages say: cleanup, support checks, citations, abstention.

A sentence of the model's answer is kept when every number in it appears in a passage and
most of its words appear in the passages or the question; a sentence that fails keeps its
first clause if that passes. The answer is the first run of supported sentences: small
models tend to wrap an answer in invented chatter. Each kept sentence cites its passages.
A small model's answer must also say what the best evidence sentence says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from docqa.text import CHAT_MARKERS, numbers, terms, years

ABSTENTION = "The documents do not say."
MIN_WORD_SUPPORT = 0.6  # share of a sentence's words found in the passages or the question
MIN_AGREEMENT = 0.5  # share of an answer's own words (not the question's) in the best sentence

_ABSTAINS = re.compile(
    r"\b(?:do(?:es)?(?: not|n't) (?:say|mention|state|contain|provide|specify|include)"
    r"|not (?:explicitly |specifically |directly )?"
    r"(?:mentioned|stated|provided|specified|given|available|included)"
    r"|no (?:information|mention|data)|(?:cannot|can't|could not|unable to) "
    r"(?:find|determine|answer|tell)|i (?:do not|don't) know)\b",
    re.IGNORECASE,
)
_CITATION = re.compile(r"\s*\[(\d+)\]")
_PREFIX = re.compile(
    r"^(?:(?:the )?answer(?: to (?:this|the) question)? is\s*:?|answer\s*:|a\s*:|\d+[.)]\s+"
    r"|[-*•]\s+|\[\d+\]\s*)\s*",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r",\s+(?:which|who|whose|where|while|with|and|making|meaning)\b|\s+\(")
_BARE_AMOUNT = re.compile(r"(?<![£$€\d.,])(\d[\d,]*(?:\.\d+)?)(?= (?:million|billion)\b)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\[(\"'£$€0-9])")


@dataclass(frozen=True)
class GroundedAnswer:
    text: str
    abstained: bool
    citations: list[int]  # passage numbers cited, in order
    dropped: int  # sentences removed as unsupported


def uncited(text: str) -> str:
    """The text without citation marks, in single spaces and without its final full stop:
    the form in which two versions of an answer are compared."""
    return " ".join(_CITATION.sub("", text).split()).rstrip(".")


def is_abstention(text: str) -> bool:
    return bool(_ABSTAINS.search(text))


def ground(answer: str, question: str, passages: dict[int, str]) -> GroundedAnswer:
    """The supported part of `answer`, each sentence citing its passages (numbered keys)."""
    text = CHAT_MARKERS.sub("", answer).strip()
    text = _PREFIX.sub("", text).strip()
    if not text or is_abstention(text):
        return GroundedAnswer(ABSTENTION, True, [], 0)
    sentences = [s for s in _SENTENCE_END.split(" ".join(text.split())) if s]
    passage_numbers = {n: numbers(body) for n, body in passages.items()}
    known_words = set(terms(question)).union(*(terms(body) for body in passages.values()))
    kept: list[str] = []
    cited: list[int] = []
    for sentence in sentences:
        clause = _CLAUSE.split(sentence, maxsplit=1)[0]
        support = _support(sentence, passages, passage_numbers, known_words)
        if support is None and clause != sentence:
            support = _support(clause, passages, passage_numbers, known_words)
            sentence, trimmed = clause, True
        else:
            trimmed = False
        if support is None or not _CITATION.sub("", sentence).strip(" .!?"):
            if kept:
                break  # chatter after the answer
            continue  # chatter before it
        kept.append(_cite(sentence, support))
        cited.extend(n for n in support if n not in cited)
        if trimmed:
            break
    if not kept:
        return GroundedAnswer(ABSTENTION, True, [], len(sentences))
    answer = _with_currency(" ".join(kept), " ".join(passages.values()))
    return GroundedAnswer(answer, False, cited, len(sentences) - len(kept))


def _with_currency(answer: str, passages: str) -> str:
    """The answer with the currency sign the passages give each of its bare amounts
    ("254.8 million" is "£254.8 million" when that is how the passages write it)."""

    def signed(match: re.Match[str]) -> str:
        signs = set(re.findall(rf"([£$€])\s?{re.escape(match[1])}\b", passages))
        return f"{signs.pop()}{match[0]}" if len(signs) == 1 else match[0]

    return _BARE_AMOUNT.sub(signed, answer)


def agrees(answer: str, sentence: str, question: str) -> bool:
    """Whether the answer says what `sentence` says: the sentence holds the answer's figures
    (years, single digits and the question's own figures aside: "30 June 2021 [1]." says
    nothing), or, when it gives none, most of its own words (words the question does not use)."""
    body = uncited(answer)
    figures = {n for n in numbers(body) - years(body) - numbers(question) if len(n) > 1}
    if figures:
        return figures <= numbers(sentence)
    own = set(terms(body)) - set(terms(question))  # none: the question said back
    return bool(own) and len(own & set(terms(sentence))) / len(own) >= MIN_AGREEMENT


def _support(
    sentence: str,
    passages: dict[int, str],
    passage_numbers: dict[int, set[str]],
    known_words: set[str],
) -> list[int] | None:
    """Passage numbers backing the sentence, or None when it is not supported."""
    claimed = [int(n) for n in _CITATION.findall(sentence) if int(n) in passages]
    body = _CITATION.sub("", sentence)
    figures = numbers(body)
    words = [word for word in terms(body) if not word[0].isdigit()]
    if words and sum(word in known_words for word in words) / len(words) < MIN_WORD_SUPPORT:
        return None
    if figures:
        holding = [n for n, found in passage_numbers.items() if figures <= found]
        if not holding:
            return None
        return [n for n in claimed if n in holding] or holding[:1]
    if claimed:
        return claimed
    overlap = {n: len(set(words) & set(terms(body_))) for n, body_ in passages.items()}
    best = max(overlap, key=lambda n: overlap[n], default=None)
    return [best] if best is not None and overlap[best] else None


def _cite(sentence: str, support: list[int]) -> str:
    """The sentence without its own citation marks, ending with those of its support (passage
    numbers, which need not run from 1: the model may read only some of the sources)."""
    body = _CITATION.sub("", sentence).strip()
    end = body[-1] if body and body[-1] in ".!?" else ""
    body = body[: len(body) - len(end)].rstrip()
    marks = "".join(f"[{n}]" for n in support)
    return f"{body} {marks}{end or '.'}"
