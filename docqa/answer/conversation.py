"""Conversations: each follow-up made stand-alone before retrieval, and the turns so far kept
for the prompt, over the one QA service."""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, field

from docqa.answer.context import clean_question
from docqa.answer.qa import QAService
from docqa.answer.results import Answer, AnswerEvent, Event, Turn
from docqa.config import Sampling
from docqa.llm.chat_formats import Message
from docqa.text import terms

MAX_CARRIED_WORDS = 12
# A question leans on the conversation when it is short, opens as a continuation, or refers
# back while naming little of its own (chosen on the tuning half of bench/followups.py's set).
_REFERS_BACK = re.compile(
    r"\b(?:it|its|that|this|they|them|their|those|these|he|his|she|her|one|ones|there|then)\b",
    re.IGNORECASE,
)
_CONTINUES = re.compile(r"^(?:and|but|so|also|what about|how about)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\s?!,;:()\"]+")
REWRITE_PROMPT = (
    "Rewrite the last question so that it can be understood without the conversation. "
    "Reply with the rewritten question only."
)


@dataclass
class Conversation:
    """One conversation: its answers so far, and how the next question is asked."""

    service: QAService
    sampling: Sampling
    k: int | None = None
    rewrite: str = "keywords"  # keywords | llm | both | off
    answers: list[Answer] = field(default_factory=list)  # those given in this conversation
    turns: list[Turn] = field(default_factory=list)  # every exchange so far, resumed ones too

    @classmethod
    def resume(
        cls,
        service: QAService,
        sampling: Sampling,
        turns: Sequence[tuple[str, str]],
        k: int | None = None,
        rewrite: str = "keywords",
    ) -> Conversation:
        """A conversation carried on from (question, answer) turns another front end kept,
        such as an HTTP client's messages; their stand-alone forms are made again by keywords."""
        conversation = cls(service, sampling, k, rewrite)
        for question, answer in turns:
            question = clean_question(question)
            query = question
            if conversation.turns and rewrite != "off" and leans_on_conversation(question):
                query = carry_keywords(question, conversation.turns[-1].query)
            conversation.turns.append(Turn(question, answer, query))
        return conversation

    @property
    def history(self) -> tuple[Turn, ...]:
        return tuple(self.turns)

    def stream(self, question: str) -> Generator[Event, None, None]:
        """Answer the next question as events (see QAService.stream), keeping the answer."""
        question = clean_question(question)
        query = self.standalone(question)
        events = self.service.stream(
            question, history=self.history, k=self.k, sampling=self.sampling, query=query
        )
        with closing(events):  # closing this stream stops the generation at once
            for event in events:
                if isinstance(event, AnswerEvent):
                    answer = event.answer
                    self.answers.append(answer)
                    if answer.answer is not None:
                        self.turns.append(Turn(answer.question, answer.answer, answer.query))
                yield event

    def reset(self) -> None:
        self.answers.clear()
        self.turns.clear()

    def standalone(self, question: str) -> str:
        """The question as retrieval should see it, given the conversation before it."""
        if not self.turns or self.rewrite == "off" or not leans_on_conversation(question):
            return question
        rewritten = self._rewrite(question) if self.rewrite in ("llm", "both") else question
        if self.rewrite == "llm":
            return rewritten
        return carry_keywords(rewritten, self.turns[-1].query)

    def _rewrite(self, question: str) -> str:
        """The LLM's stand-alone version of the question (the question itself if it fails)."""
        llm = self.service.llm
        lines = [
            f"{turn_role}: {text}"
            for turn in self.history[-3:]
            for turn_role, text in (
                ("User", turn.question),
                ("Assistant", turn.answer),
            )
        ]
        user = "Conversation:\n" + "\n".join(lines) + f"\n\nLast question: {question}"
        prompt = llm.chat_format.render(
            [Message(role="system", content=REWRITE_PROMPT), Message(role="user", content=user)]
        )
        greedy = self.sampling.override(temperature=0, max_new_tokens=48, stop=("\n",))
        text = llm.complete(prompt, greedy).text.strip().strip('"')
        return " ".join(text.split()) or question


def leans_on_conversation(question: str) -> bool:
    """Whether a question needs the turns before it to be understood ("Over how many
    years?", "And the season before?") rather than standing alone."""
    named = len(terms(question))
    return (
        named <= 3
        or bool(_CONTINUES.match(question))
        or (named <= 8 and bool(_REFERS_BACK.search(question)))
    )


def carry_keywords(question: str, previous: str) -> str:
    """The question followed by the words of the previous (stand-alone) question it lacks,
    so that a follow-up such as "Over how many years?" still finds the passage."""
    own = set(terms(question))
    carried: list[str] = []
    for word in _WORD.findall(previous):
        found = terms(word)
        if found and not own.intersection(found) and word not in carried:
            carried.append(word)
            own.update(found)
    return " ".join([question, *carried[:MAX_CARRIED_WORDS]])
