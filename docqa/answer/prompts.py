"""The question-answering prompt (instructions, earlier turns, passages) and fitting it into the
model's context."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
PASSAGE_TEMPLATE = (
    "[{n}] {page_content}"  # file and page would only tempt a small model to echo them
)
PASSAGE_SEPARATOR = "\n\n"

_CONTEXT_SLOT = "@@DOCQA_CONTEXT@@"
_QUESTION_SLOT = "@@DOCQA_QUESTION@@"


def qa_prompt_template(chat_format: ChatFormat, history: Sequence[Turn] = ()) -> str:
    """The whole QA prompt, after the earlier turns, with {context} and {question} slots (for
    LangChain's PromptTemplate); all other braces escaped."""
    messages = [Message(role="system", content=SYSTEM_PROMPT)]
    for turn in history:
        messages += [
            Message(role="user", content=turn.question),
            Message(role="assistant", content=turn.answer),
        ]
    user = USER_TEMPLATE.format(context=_CONTEXT_SLOT, question=_QUESTION_SLOT)
    messages.append(Message(role="user", content=user))
    text = chat_format.render(messages).replace("{", "{{").replace("}", "}}")
    return text.replace(_CONTEXT_SLOT, "{context}").replace(_QUESTION_SLOT, "{question}")


def prompt_start(chat_format: ChatFormat) -> str:
    """The text every QA prompt starts with: the instructions, up to the passages."""
    start = qa_prompt_template(chat_format).split("{context}")[0]
    return start.replace("{{", "{").replace("}}", "}")


def format_passage(n: int, text: str) -> str:
    return PASSAGE_TEMPLATE.format(n=n, page_content=text)


def fit_passages(
    question: str,
    passages: Sequence[dict[str, Any]],
    template: str,
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
        context = PASSAGE_SEPARATOR.join(
            format_passage(passages[i]["n"], passages[i]["text"]) for i in chosen
        )
        return count_tokens(template.format(context=context, question=question))

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
