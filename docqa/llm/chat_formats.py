"""Chat formats: how each model expects system and user messages to be laid out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from docqa.errors import ModelError


# Short and plain: a 135M-parameter model follows one instruction, not five. Citations,
# abstention and the removal of unsupported text are done by docqa.answer.grounding afterwards.
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
