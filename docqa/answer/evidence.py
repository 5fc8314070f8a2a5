"""Evidence: the sentences of the retrieved passages that best match the question.

A small model answers far better from one or two sentences than from whole chunks, and a
sentence is what a grounded answer can quote when the model's own wording fails the checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docqa.text import fold, numbers, terms, years

if TYPE_CHECKING:
    import numpy as np

# A sentence ends at . ! ? or ; (perhaps followed by a closing quote or bracket) before a
# capital, digit or opening mark, except after a title or an abbreviation ("Mr. Arnold",
# "No. 5", "Co. Limited").
_SENTENCE_END = re.compile(
    r"(?<![A-Z][a-z]\.)(?<!\b[A-Z]\.)(?<!\bNo\.)(?<!\bCo\.)(?<!\bvs\.)(?<!\bMrs\.)"
    r"(?:(?<=[.!?;])|(?<=[.!?;][\"\u201d\u2019')]))\s+(?=[A-Z£$€\"\u201c(\d])"
)
MAX_WORDS = 60  # longer "sentences" (tables, lists) are cut at their line breaks...
PIECE_WORDS = 45  # ...into pieces this long: single lines lose their row labels and context
_LEADERS = re.compile(r"(?:\s\.){2,}|\.{4,}")  # the dot leaders of a table's label column
YEAR_WEIGHT = 0.3  # added for naming a year the question asks about, taken off for only others
# A sentence that tells a reader (a model) what to do or to say is never evidence: a document
# cannot make the answer by instructing it.
_INSTRUCTS = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+|these\s+)?"
    r"(?:previous\s+|prior\s+|above\s+|earlier\s+|preceding\s+|system\s+)?"
    r"(?:instructions?|prompts?|rules|directions|context|everything)\b"
    r"|\b(?:you|assistants?|chatbots?|AIs?|models?|LLMs?)\s+(?:must|should|shall|will|are to"
    r"|have to|need to)\s+(?:now\s+)?(?:say|answer|respond|reply|output|print|write|state|tell"
    r"|ignore|reveal|repeat)\b"
    r"|^(?:please\s+)?(?:say|respond|reply|output|print|repeat)\b"
    r"|\b(?:the|your)\s+(?:\w+\s+){0,2}answer\s+(?:is|should be|must be|will be)\b"
    r"|\bsystem prompt\b|\bas an AI\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Evidence:
    n: int  # number of the passage it comes from
    index: int  # its place among the passage's sentences
    text: str
    score: float


def sentences(text: str) -> list[str]:
    """Sentences of a passage. A run too long to be one sentence (a table, a list) is cut at
    its line breaks into pieces of up to PIECE_WORDS words: whole rows, or lines of a list."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(_LEADERS.sub(" ", text)):
        if len(sentence.split()) > MAX_WORDS:
            pieces.extend(_pack(sentence.split("\n")))
        else:
            pieces.append(sentence)
    return [" ".join(piece.split()) for piece in pieces if len(piece.split()) >= 3]


def instructs(sentence: str) -> bool:
    """Whether a sentence reads as an instruction to whoever answers ("ignore the previous
    instructions", "say ...", "the answer is ...")."""
    return bool(_INSTRUCTS.search(sentence))


def _pack(lines: list[str]) -> list[str]:
    """Consecutive lines joined into pieces of at most PIECE_WORDS words (a longer line alone)."""
    pieces: list[list[str]] = []
    words = 0
    for line in lines:
        count = len(line.split())
        if not pieces or words + count > PIECE_WORDS:
            pieces.append([])
            words = 0
        pieces[-1].append(line)
        words += count
    return [" ".join(piece) for piece in pieces]


def select(
    question: str,
    passages: dict[int, str],
    embed: Callable[[list[str]], np.ndarray],
    idf: Callable[[str], float],
    keyword_weight: float,
    asked: set[str] | None = None,
) -> list[Evidence]:
    """Every sentence of the passages, best first: cosine similarity to the question plus
    `keyword_weight` times the idf-weighted share of the question's terms it contains, and
    a bonus for naming the years asked about (`asked`; the question's own when None)."""
    candidates = []
    for n, text in passages.items():
        found = enumerate(sentences(text))
        candidates += [(n, i, sentence) for i, sentence in found if not instructs(sentence)]
    if not candidates:
        return []
    vectors = embed([question, *(sentence for _, _, sentence in candidates)])
    similarity = vectors[1:] @ vectors[0]
    weights = {term: idf(term) for term in set(terms(question))}
    total = sum(weights.values()) or 1.0
    asked = years(question) if asked is None else asked
    scored = []
    for (n, index, sentence), cosine in zip(candidates, similarity.tolist(), strict=True):
        overlap = sum(weights[term] for term in set(terms(sentence)) & weights.keys()) / total
        score = cosine + keyword_weight * overlap + _year_match(asked, sentence)
        scored.append(Evidence(n, index, sentence, score))
    return _distinct(sorted(scored, key=lambda evidence: -evidence.score))


def _distinct(ranked: list[Evidence]) -> list[Evidence]:
    """The ranking without a sentence already said by a better one: overlapping chunks and
    neighbouring passages repeat sentences, which would take the places of new ones."""
    kept: list[Evidence] = []
    said: list[str] = []
    for evidence in ranked:
        folded = fold(evidence.text)
        if not any(folded in earlier for earlier in said):
            kept.append(evidence)
            said.append(folded)
    return kept


def _year_match(asked: set[str], sentence: str) -> float:
    """A bonus for a sentence that names a year the question asks about, a penalty for one
    that names only other years: a figure for 2021 is no answer about 2022."""
    if not asked:
        return 0.0
    named = years(sentence)
    if named & asked:
        return YEAR_WEIGHT
    return -YEAR_WEIGHT if named else 0.0


def excerpts(passages: dict[int, str], chosen: list[Evidence]) -> dict[int, str]:
    """What the model reads of each passage with chosen evidence: those sentences, each with
    the one before it (which "he" or "it" may need), once each and in the passage's order."""
    wanted: dict[int, set[int]] = {}
    for evidence in chosen:
        wanted.setdefault(evidence.n, set()).update({max(evidence.index - 1, 0), evidence.index})
    found = {n: sentences(passages[n]) for n in wanted}
    return {
        n: " ".join(found[n][index] for index in sorted(indexes))
        for n, indexes in sorted(wanted.items())
    }


def quote(passage: str, answer: str, ranked: list[Evidence], n: int) -> str:
    """The sentence of passage `n` an answer rests on, to show it highlighted: the one that
    shares most of the answer's numbers and words (numbers count double); when none shares
    any, passage n's best evidence among `ranked`; "" when neither."""
    said, figures = set(terms(answer)), numbers(answer)
    best, best_score = "", 0
    for sentence in sentences(passage):
        score = len(said & set(terms(sentence))) + 2 * len(figures & numbers(sentence))
        if score > best_score:
            best, best_score = sentence, score
    return best or next((evidence.text for evidence in ranked if evidence.n == n), "")
