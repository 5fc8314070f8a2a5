"""The HTTP API's request bodies, checked against the server's limits, and the OpenAI chat
completion objects built from docqa's answers."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from docqa.answer.selection import Selection
from docqa.collection import DEFAULT, find
from docqa.config import InvalidSampling, Sampling, ServerSettings, Settings
from docqa.errors import UsageError
from docqa.jobs.runner import AnswerRequest
from docqa.server.errors import ApiError
from docqa.text import invalid_character

MODEL_ID = "docqa"


class _Generation(BaseModel):
    """Generation settings a request may set; each left out keeps the server's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None


class DocumentChoice(BaseModel):
    """Which documents answer: a collection (the default when left out), and within it the
    files (`source` globs, any of them) and documents (`where`: org, period, kind, title —
    all of them) a question is limited to, as --collection, --source and --where."""

    model_config = ConfigDict(extra="forbid")

    collection: str | None = None
    source: list[str] = Field([], max_length=16)
    where: dict[str, str] = Field({}, max_length=8)

    def applied(self, request: AnswerRequest, settings: Settings) -> AnswerRequest:
        """`request` asked of these documents: 404 for a collection there is not, 400 for a
        selection that cannot be read."""
        name = known_collection(settings, self.collection)
        where = [f"{key}={value}" for key, value in self.where.items()]
        try:
            selection = Selection.parse(self.source, where)
        except UsageError as exc:
            raise ApiError(400, str(exc), param="where") from None
        return request.model_copy(update={"collection": name, "selection": selection})


class ChatExtension(DocumentChoice):
    """Chat's `docqa` extension: the documents asked, and the kept conversation (its id) the
    question carries on."""

    conversation: str | None = Field(None, max_length=64)


class AskBody(_Generation, DocumentChoice):
    """POST /v1/ask and POST /v1/jobs."""

    model_config = ConfigDict(extra="forbid")

    question: str
    k: int | None = Field(None, ge=1)
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatBody(_Generation):
    """POST /v1/chat/completions: OpenAI's fields (others OpenAI defines are ignored, as
    OpenAI-compatible servers do), and docqa's `k`."""

    model_config = ConfigDict(extra="ignore")

    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int = 1
    tools: list[Any] | None = None
    k: int | None = Field(None, ge=1)
    docqa: ChatExtension = ChatExtension()  # docqa's extension: documents, conversation

    def documents(self) -> DocumentChoice:
        """The documents asked: the collection `model` names ("docqa/<name>"), or the
        extension's."""
        named = self.model.removeprefix(MODEL_ID).removeprefix("/") or None
        if named and self.docqa.collection not in (None, named):
            raise ApiError(400, f"model names {named!r}, docqa.collection another", "model")
        return self.docqa.model_copy(update={"collection": named or self.docqa.collection})


def ask_request(body: AskBody, defaults: Sampling, limits: ServerSettings) -> AnswerRequest:
    _check_text("question", body.question, limits.max_question_chars)
    return AnswerRequest(
        question=body.question,
        k=_checked_k(body.k, limits),
        sampling=_sampling(
            defaults,
            limits,
            body,
            top_k=body.top_k,
            min_p=body.min_p,
            repeat_penalty=body.repeat_penalty,
        ),
    )


def chat_request(body: ChatBody, defaults: Sampling, limits: ServerSettings) -> AnswerRequest:
    """The conversation's last user message as the question, the exchanges before it as the
    history (system messages are not passed on: docqa's prompt is its own)."""
    if body.n != 1:
        raise ApiError(400, "only n=1 is supported", param="n")
    if body.tools:
        raise ApiError(400, "tools are not supported: docqa answers from its index", "tools")
    if len(body.messages) > limits.max_messages:
        raise ApiError(400, f"at most {limits.max_messages} messages per request", param="messages")
    said = [message.role for message in body.messages if message.role in ("user", "assistant")]
    if body.docqa.conversation is not None and said != ["user"]:
        raise ApiError(
            400,
            "a request that carries on a kept conversation (docqa.conversation) sends only its "
            "new question, as one user message (and system messages): the server has the "
            "turns before it",
            param="messages",
        )
    turns: list[tuple[str, str]] = []
    question: str | None = None
    for number, message in enumerate(body.messages):
        text = message.text
        _check_text(f"messages[{number}].content", text, limits.max_message_chars)
        if message.role == "user":
            question = f"{question}\n{text}" if question else text
        elif message.role == "assistant" and question is not None:
            turns.append((question, text))
            question = None
    if question is None or body.messages[-1].role != "user":
        raise ApiError(400, "the last message must be the user's question", param="messages")
    _check_text("the question", question, limits.max_question_chars)
    if body.max_completion_tokens is not None:
        body = body.model_copy(update={"max_tokens": body.max_completion_tokens})
    return AnswerRequest(
        question=question,
        history=turns,
        conversation=True,
        k=_checked_k(body.k, limits),
        sampling=_sampling(defaults, limits, body),
    )


def completion(
    job_id: str, answer: dict[str, Any], conversation: str | None = None
) -> dict[str, Any]:
    """A chat.completion object for a finished answer: its message is the grounded answer."""
    return {
        "id": f"chatcmpl-{job_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL_ID,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.get("answer", "")},
                "finish_reason": finish_reason(answer),
                "logprobs": None,
            }
        ],
        "usage": usage(answer),
        "docqa": docqa_extra(answer, conversation),
    }


def chunk(
    job_id: str,
    created: int,
    delta: dict[str, Any],
    finish_reason: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One chat.completion.chunk of a streamed answer."""
    return {
        "id": f"chatcmpl-{job_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL_ID,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        **extra,
    }


def usage(answer: dict[str, Any]) -> dict[str, int]:
    used = answer.get("usage") or {}
    prompt, generated = used.get("prompt_tokens", 0), used.get("completion_tokens", 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": generated,
        "total_tokens": prompt + generated,
    }


def docqa_extra(answer: dict[str, Any], conversation: str | None = None) -> dict[str, Any]:
    """What an OpenAI response carries beyond OpenAI's fields: the grounded answer, how it
    was revised, its sources and timings; and the kept conversation it was added to."""
    extra = {
        key: answer.get(key)
        for key in ("answer", "abstained", "revision", "raw_answer", "sources", "timings")
    }
    return extra if conversation is None else {**extra, "conversation": conversation}


def known_collection(settings: Settings, name: str | None) -> str:
    """The collection `name` names (None: the default one); 404 when there is none such."""
    name = name or DEFAULT
    try:
        find(settings, name)
    except UsageError as exc:
        raise ApiError(404, str(exc), param="collection") from None
    return name


def finish_reason(answer: dict[str, Any]) -> str:
    reason = (answer.get("usage") or {}).get("finish_reason")
    return "length" if reason == "length" else "stop"


def _sampling(
    defaults: Sampling, limits: ServerSettings, body: _Generation, **more: object
) -> dict[str, Any]:
    if body.max_tokens is not None and body.max_tokens > limits.max_tokens:
        raise ApiError(400, f"max_tokens is at most {limits.max_tokens}", param="max_tokens")
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    if stop is not None and (len(stop) > 4 or any(not s or len(s) > 64 for s in stop)):
        raise ApiError(400, "stop takes at most 4 strings of 1-64 characters", param="stop")
    try:
        sampling = defaults.override(
            temperature=body.temperature,
            top_p=body.top_p,
            max_new_tokens=body.max_tokens,
            seed=body.seed,
            stop=tuple(stop) if stop is not None else None,
            **more,
        )
    except InvalidSampling as exc:
        raise ApiError(400, str(exc), param=exc.name) from None
    return sampling.model_dump()


def _checked_k(k: int | None, limits: ServerSettings) -> int | None:
    if k is not None and k > limits.max_k:
        raise ApiError(400, f"k is at most {limits.max_k}", param="k")
    return k


def _check_text(name: str, text: str, limit: int) -> None:
    """A question or chat message: not too long, not empty, and text at all."""
    if len(text) > limit:
        raise ApiError(400, f"{name} is longer than {limit} characters", param=name)
    if (problem := invalid_character(text)) is not None:
        raise ApiError(400, f"{name} holds {problem}", param=name, code="invalid_character")
    if name.endswith("question") and not text.strip():
        raise ApiError(400, f"{name} is empty", param=name)
