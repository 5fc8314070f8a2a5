"""The question-answering prompt (instructions, earlier turns, passages) and fitting it into the
model's context."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from docqa.answer.results import Turn
from docqa.errors import UsageError
from docqa.llm.chat_formats import ChatFormat, Message

# Short and plain: a 135M-parameter model follows one instruction, not five. Citations,
# abstention and the removal of unsupported text are done by docqa.answer.grounding afterwards.
SYSTEM_PROMPT = (
    "Answer the question in one sentence using only the passages. Copy numbers and names exactly."
)
USER_TEMPLATE = "{context}\n\nQuestion: {question}"
PASSAGE_SEPARATOR = "\n\n"

CONTEXT_SLOT = "@@DOCQA_CONTEXT@@"
QUESTION_SLOT = "@@DOCQA_QUESTION@@"
_SLOTS = re.compile(f"{CONTEXT_SLOT}|{QUESTION_SLOT}")

Passage = dict[str, Any]  # n, source, page, text: as the model reads it


@dataclass(frozen=True)
class QAPrompt:
    """The QA prompt after the earlier turns, rendered in the chat format once, with a slot
    for the passages and one for the question."""

    slotted: str

    def fill(self, passages: Sequence[Passage], question: str) -> str:
        """The prompt the model reads (passages and question already made plain)."""
        context = PASSAGE_SEPARATOR.join(format_passage(p["n"], p["text"]) for p in passages)
        values = {CONTEXT_SLOT: context, QUESTION_SLOT: question}
        return _SLOTS.sub(lambda slot: values[slot[0]], self.slotted)  # one pass: text stays text


def qa_prompt(chat_format: ChatFormat, history: Sequence[Turn] = ()) -> QAPrompt:
    messages = [Message(role="system", content=SYSTEM_PROMPT)]
    for turn in history:
        messages += [
            Message(role="user", content=turn.question),
            Message(role="assistant", content=turn.answer),
        ]
    user = USER_TEMPLATE.format(context=CONTEXT_SLOT, question=QUESTION_SLOT)
    messages.append(Message(role="user", content=user))
    return QAPrompt(chat_format.render(messages))


def prompt_start(chat_format: ChatFormat) -> str:
    """The text every QA prompt starts with: the instructions, up to the passages."""
    return qa_prompt(chat_format).slotted.split(CONTEXT_SLOT)[0]


def format_passage(n: int, text: str) -> str:
    return f"[{n}] {text}"  # file and page would only tempt a small model to echo them


def fit_passages(
    question: str,
    passages: Sequence[Passage],
    prompt: QAPrompt,
    count_tokens: Callable[[str], int],
    budget: int,
    context_budget: int | None = None,
) -> tuple[list[int], list[int]]:
    """Indices of passages (in rank order) whose prompt fits in `budget` tokens, the passages
    taking at most `context_budget` of them (None: no bound but the budget), and of the rest.

    Each passage is a dict with its number `n` and its `text`. A passage that does not fit is
    skipped and later, shorter ones are tried.
    """

    def prompt_tokens(chosen: list[int]) -> int:
        return count_tokens(prompt.fill([passages[i] for i in chosen], question))

    bare = prompt_tokens([])
    if bare > budget:
        raise UsageError(
            f"the question alone needs more than the {budget} tokens the model has for a "
            "prompt: shorten it, lower --max-tokens, or raise llm.context_length"
        )
    if context_budget is not None:
        budget = min(budget, bare + context_budget)
    kept: list[int] = []
    dropped: list[int] = []
    for index in range(len(passages)):
        if prompt_tokens([*kept, index]) <= budget:
            kept.append(index)
        else:
            dropped.append(index)
    return kept, dropped


@dataclass(frozen=True)
class FittedPrompt:
    prompt: str  # what the model reads
    kept: list[int]  # the passages in it (their indices)
    dropped: list[int]  # passages left out for room
    turns_dropped: int  # earlier turns left out for room


def fit_prompt(
    chat_format: ChatFormat,
    count_tokens: Callable[[str], int],
    question: str,
    passages: Sequence[Passage],
    history: Sequence[Turn],
    budget: int,
    context_budget: int | None,
) -> FittedPrompt:
    """The prompt for `budget` tokens: turns make room (the oldest first) before passages do.
    Refuses when not even one passage fits."""
    question = chat_format.plain(question)
    for start in range(len(history) + 1):
        prompt = qa_prompt(chat_format, history[start:])
        last_try = start == len(history)
        try:
            kept, dropped = fit_passages(
                question, passages, prompt, count_tokens, budget, context_budget
            )
        except UsageError:  # the question and these turns alone are too long
            if last_try:
                raise
            continue
        if not dropped or last_try:
            break
    if not kept:
        raise UsageError(
            f"none of the retrieved passages fits the {budget} tokens the model has for a "
            "prompt: shorten the question, lower --max-tokens, or raise llm.context_length"
        )
    return FittedPrompt(prompt.fill([passages[i] for i in kept], question), kept, dropped, start)
