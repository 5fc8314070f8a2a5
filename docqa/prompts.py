"""Prompts: the question-answering instructions, each model's chat format, and context fitting."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from docqa.errors import ModelError, UsageError

# Short and plain: a 135M-parameter model follows one instruction, not five. Citations,
# abstention and the removal of unsupported text are done by docqa.grounding afterwards.
SYSTEM_PROMPT = (
    "Answer the question in one sentence using only the passages. Copy numbers and names exactly."
)
USER_TEMPLATE = "{context}\n\nQuestion: {question}"
PASSAGE_TEMPLATE = (
    "[{n}] {page_content}"  # file and page would only tempt a small model to echo them
)
PASSAGE_SEPARATOR = "\n\n"
ANSWER_STOPS = ("\n\n", "\nQuestion:")  # an answer is one paragraph; no invented next turn

_CONTEXT_SLOT = "@@DOCQA_CONTEXT@@"
_QUESTION_SLOT = "@@DOCQA_QUESTION@@"


@dataclass(frozen=True)
class ChatFormat:
    """How one model expects a system and a user message to be laid out."""

    name: str
    render: Callable[[str, str], str]  # (system, user) -> prompt text
    stop: tuple[str, ...] = ()


def _llama2(system: str, user: str) -> str:
    # The tokenizer adds the <s> (BOS) token itself.
    return f"[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]"


LLAMA2_CHAT = ChatFormat("llama-2-chat", _llama2, stop=("[INST]",))


def choose_chat_format(
    setting: str, template: str | None, bos_text: str, eos_text: str, model: str
) -> ChatFormat:
    """The GGUF's own chat template when it has one (setting 'auto'), else Llama-2-Chat."""
    if setting == "llama2" or (setting == "auto" and not template):
        return LLAMA2_CHAT
    if not template:
        raise ModelError(f"{model} has no chat template: set llm.prompt_format to llama2 or auto")
    return _template_format(template, bos_text, eos_text, model)


def _template_format(template: str, bos_text: str, eos_text: str, model: str) -> ChatFormat:
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # Templates come from model files: render them in a sandbox, as transformers does.
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    environment.globals["raise_exception"] = _raise_template_error
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        compiled = environment.from_string(template)
    except TemplateError as exc:
        raise ModelError(f"the chat template of {model} is invalid ({exc})") from exc

    def render_messages(messages: list[dict[str, str]]) -> str:
        return compiled.render(
            messages=messages, add_generation_prompt=True, bos_token=bos_text, eos_token=eos_text
        )

    def render(system: str, user: str) -> str:
        try:
            return render_messages(
                [{"role": "system", "content": system}, {"role": "user", "content": user}]
            )
        except TemplateError:  # some templates refuse a system turn: fold it into the user's
            try:
                return render_messages([{"role": "user", "content": f"{system}\n\n{user}"}])
            except TemplateError as exc:
                raise ModelError(
                    f"the chat template of {model} cannot be rendered ({exc}): "
                    "set llm.prompt_format to llama2"
                ) from exc

    return ChatFormat("gguf-chat-template", render, stop=(eos_text,) if eos_text else ())


def _raise_template_error(message: str) -> None:
    from jinja2 import TemplateError

    raise TemplateError(message)


def qa_prompt_template(chat_format: ChatFormat) -> str:
    """The whole QA prompt with {context} and {question} slots; other braces escaped."""
    user = USER_TEMPLATE.format(context=_CONTEXT_SLOT, question=_QUESTION_SLOT)
    text = chat_format.render(SYSTEM_PROMPT, user).replace("{", "{{").replace("}", "}}")
    return text.replace(_CONTEXT_SLOT, "{context}").replace(_QUESTION_SLOT, "{question}")


def format_passage(n: int, text: str) -> str:
    return PASSAGE_TEMPLATE.format(n=n, page_content=text)


def fit_passages(
    question: str,
    passages: Sequence[dict[str, Any]],
    template: str,
    count_tokens: Callable[[str], int],
    budget: int,
) -> tuple[list[int], list[int]]:
    """Indices of passages (in rank order) whose prompt fits in `budget` tokens, and of the rest.

    Each passage is a dict with its text; it is numbered by its place among those kept.
    A passage that does not fit is skipped and later, shorter ones are tried.
    """

    def prompt_tokens(chosen: list[int]) -> int:
        context = PASSAGE_SEPARATOR.join(
            format_passage(n, passages[i]["text"]) for n, i in enumerate(chosen, start=1)
        )
        return count_tokens(template.format(context=context, question=question))

    if prompt_tokens([]) > budget:
        raise UsageError(
            f"the question alone needs more than the {budget} tokens the model has for a "
            "prompt: shorten it or raise llm.context_length"
        )
    kept: list[int] = []
    dropped: list[int] = []
    for index in range(len(passages)):
        if prompt_tokens([*kept, index]) <= budget:
            kept.append(index)
        else:
            dropped.append(index)
    return kept, dropped
