"""Chat formats: how each model expects a conversation (system, user, assistant messages) laid
out, with the format's own markers told apart from the text of the messages.

A rendered prompt wraps every piece of the format's own text in TRUSTED_OPEN ... TRUSTED_CLOSE.
Only those pieces may become control tokens (`<|im_end|>`, `</s>`); everything else — document
passages, questions, earlier turns — is tokenized as plain text (`LocalLLM.tokenize_prompt`).
Message text cannot forge the wrapping: `plain` removes the two marker characters from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypedDict

from docqa.errors import ModelError

TRUSTED_OPEN, TRUSTED_CLOSE = "\ue000", "\ue001"  # private-use characters: never in real text
_MARKERS = re.compile(f"[{TRUSTED_OPEN}{TRUSTED_CLOSE}]")
_SLOT = "\ue002{}\ue002"  # where a message's text goes in a rendered template
# Llama-2-Chat's markers are plain text to its tokenizer, so message text that spells them is
# rewritten (Meta's reference code refuses such messages; a PDF cannot be refused).
_LLAMA2_TAGS = re.compile(r"\[/?INST\]|<</?SYS>>")


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ChatFormat:
    """How one model expects a conversation to be laid out."""

    name: str
    render_marked: Callable[[Sequence[Message]], str]  # messages already made plain
    stop: tuple[str, ...] = ()
    escape: Callable[[str], str] = lambda text: text  # the format's own tags, defused

    def plain(self, text: str) -> str:
        """Untrusted text as it may stand in a prompt of this format."""
        return self.escape(_MARKERS.sub("", text))

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt for these messages, ending where the assistant's answer begins."""
        return self.render_marked(
            [Message(role=m["role"], content=self.plain(m["content"]).strip()) for m in messages]
        )


def trusted(text: str) -> str:
    return f"{TRUSTED_OPEN}{text}{TRUSTED_CLOSE}" if text else ""


def split_prompt(prompt: str) -> list[tuple[str, bool]]:
    """The prompt's pieces in order, each with whether it is the format's own (trusted) text."""
    pieces = []
    for index, piece in enumerate(re.split(f"{TRUSTED_OPEN}|{TRUSTED_CLOSE}", prompt)):
        if piece:
            pieces.append((piece, index % 2 == 1))
    return pieces


def unmarked(prompt: str) -> str:
    """The prompt as the model reads it, without the trust markers."""
    return _MARKERS.sub("", prompt)


def _llama2(messages: Sequence[Message]) -> str:
    """Meta's multi-turn form: <s>[INST] <<SYS>>…<</SYS>> user [/INST] answer </s><s>[INST] …
    The tokenizer adds the first <s> (BOS) itself."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    parts: list[str] = []
    for message in (m for m in messages if m["role"] != "system"):
        if message["role"] == "user":
            opening = "[INST] " if not parts else " </s><s>[INST] "
            if system and not parts:
                opening += "<<SYS>>\n"
                parts += [trusted(opening), system, trusted("\n<</SYS>>\n\n")]
            else:
                parts.append(trusted(opening))
            parts += [message["content"], trusted(" [/INST]")]
        else:
            parts += [trusted(" "), message["content"]]
    return "".join(parts)


def _defuse_llama2_tags(text: str) -> str:
    return _LLAMA2_TAGS.sub(lambda tag: tag.group().lower(), text)


LLAMA2_CHAT = ChatFormat("llama-2-chat", _llama2, stop=("[INST]",), escape=_defuse_llama2_tags)
# The same format as a GGUF chat template (Hugging Face's form), written into converted
# models for other GGUF readers; docqa itself renders it as LLAMA2_CHAT, which defuses the tags.
LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% set system = messages[0]['content'] %}{% set turns = messages[1:] %}"
    "{% else %}{% set system = '' %}{% set turns = messages %}{% endif %}"
    "{% for message in turns %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/...') }}"
    "{% endif %}"
    "{% set content = message['content'].strip() %}"
    "{% if loop.first and system %}"
    "{% set content = '<<SYS>>\n' + system.strip() + '\n<</SYS>>\n\n' + content %}"
    "{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content + ' [/INST]' }}"
    "{% else %}{{ ' ' + content + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)


def choose_chat_format(
    setting: str, template: str | None, bos_text: str, eos_text: str, model: str
) -> ChatFormat:
    """The GGUF's own chat template when it has one (setting 'auto'), else Llama-2-Chat."""
    if setting == "llama2" or (setting == "auto" and template in (None, "", LLAMA2_CHAT_TEMPLATE)):
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

    def render_slots(messages: Sequence[Message]) -> str:
        """The template rendered with a numbered slot in place of each message's text."""
        slotted = [{"role": m["role"], "content": _SLOT.format(i)} for i, m in enumerate(messages)]
        return compiled.render(
            messages=slotted, add_generation_prompt=True, bos_token=bos_text, eos_token=eos_text
        )

    def render_marked(messages: Sequence[Message]) -> str:
        try:
            text = render_slots(messages)
        except TemplateError:  # some templates refuse a system turn: fold it into the user's
            messages = _fold_system(messages)
            try:
                text = render_slots(messages)
            except TemplateError as exc:
                raise ModelError(
                    f"the chat template of {model} cannot be rendered ({exc}): "
                    "set llm.prompt_format to llama2"
                ) from exc
        marked = trusted(text)
        for index, message in enumerate(messages):
            slot = _SLOT.format(index)
            if marked.count(slot) != 1:
                raise ModelError(
                    f"the chat template of {model} does not place each message once: "
                    "set llm.prompt_format to llama2"
                )
            marked = marked.replace(slot, TRUSTED_CLOSE + message["content"] + TRUSTED_OPEN)
        return marked.replace(TRUSTED_OPEN + TRUSTED_CLOSE, "")

    return ChatFormat("gguf-chat-template", render_marked, stop=(eos_text,) if eos_text else ())


def _fold_system(messages: Sequence[Message]) -> list[Message]:
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [m for m in messages if m["role"] != "system"]
    if system and rest:
        rest[0] = Message(role=rest[0]["role"], content=f"{system}\n\n{rest[0]['content']}")
    return rest


def _raise_template_error(message: str) -> None:
    from jinja2 import TemplateError

    raise TemplateError(message)
