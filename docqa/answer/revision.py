"""What becomes of the model's answer: kept to what the passages it read support, declined
when it does not answer, replaced by a quote of the evidence when that can stand for an answer,
and told which document it came from when the question named none."""

from __future__ import annotations

import re
from dataclasses import dataclass

from docqa.answer.context import Context
from docqa.answer.figures import asks_for_figure, gives_figure, wrong_year
from docqa.answer.grounding import ABSTENTION, agrees, ground, uncited
from docqa.answer.results import Revision
from docqa.config import AnswerSettings


@dataclass(frozen=True)
class Revised:
    text: str
    abstained: bool
    revision: Revision | None


@dataclass(frozen=True)
class RevisionPolicy:
    settings: AnswerSettings
    must_match_best: bool  # the reader profile's: an answer against the best evidence goes
    several_documents: bool  # the library holds more than one

    def revise(self, answer: str, context: Context) -> Revised:
        read = {passage["n"]: passage["text"] for passage in context.reading}
        grounded = ground(answer, context.query, read)
        text, abstained = grounded.text, grounded.abstained
        revision: Revision | None = "declined" if abstained else None
        if not abstained and not self._answers(text, context):
            text, abstained, revision = ABSTENTION, True, "declined"
        if abstained and self.settings.quote_unsupported and (quote := self._quote(context)):
            text, abstained, revision = quote, False, "quoted"
        if revision is None and text != answer:
            trimmed = grounded.dropped or uncited(text) != uncited(answer)
            revision = "trimmed" if trimmed else "cited"
        if not abstained and (document := self._document_used(text, context)):
            text = f"{text} (From {document}.)"
        return Revised(text, abstained, revision)

    def _answers(self, answer: str, context: Context) -> bool:
        """Whether a grounded answer answers: a figure when the question asks for one, and
        nothing against the best evidence sentence — no figure it states for another year
        than asked, and, when the profile wants it, what it says."""
        if asks_for_figure(context.query) and not gives_figure(uncited(answer), context.query):
            return False
        best = context.evidence[0].text if context.evidence else ""
        asked = set(context.route.years) or None
        if best and wrong_year(uncited(answer), best, context.query, asked):
            return False
        agreed = not best or agrees(answer, best, context.query)
        return agreed or not self.must_match_best

    def _quote(self, context: Context) -> str | None:
        """The best evidence sentences as an answer, when they are good enough to stand for
        one: the best scores at least answer.min_quote_score and, when the question asks for a
        figure, they give one."""
        quoted = context.evidence[: self.settings.evidence_sentences]
        if not quoted or quoted[0].score < self.settings.min_quote_score:
            return None
        text = " ".join(e.text for e in quoted)
        if asks_for_figure(context.query) and not gives_figure(text, context.query):
            return None
        return "The documents say: " + " ".join(f'"{e.text}" [{e.n}]' for e in quoted)

    def _document_used(self, answer: str, context: Context) -> str | None:
        """Which document an answer comes from, when the question named none and the library
        holds several: the document of its first citation."""
        if context.route.narrows or not self.several_documents:
            return None
        cited = re.search(r"\[(\d+)\]", answer)
        source = next((s for s in context.sources if cited and s.n == int(cited[1])), None)
        if source is None or source.document is None:
            return None
        return source.document.label
