"""`docqa chat`: a conversation about your documents, the models loaded once.

On a terminal: line editing and history (readline), answers streamed, Ctrl-C stops an answer,
Ctrl-D leaves. Piped: each line of stdin is the next turn of one conversation.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from docqa.cli.ask import KOption
from docqa.cli.common import (
    SAMPLING_HELP,
    CollectionOption,
    ConfigOption,
    DebugOption,
    ModelOption,
    SourceOption,
    VectorstoreOption,
    WhereOption,
    checked_question,
    chosen_sampling,
    command_settings,
    loaded_service,
    run,
    selection,
    with_sampling_flags,
)
from docqa.config import SAMPLING_NAMES, InvalidSampling
from docqa.errors import DocqaError, ExitCode

if TYPE_CHECKING:
    from docqa.answer.conversation import Conversation
    from docqa.answer.results import Answer
    from docqa.config import Settings

HELP = """Commands:
  /sources          the sources of the last answer, in full
  /open N           write source N's page, its passage highlighted, to a PNG (PDF sources)
  /k N              retrieve N chunks per question
  /set NAME VALUE   a generation setting: temperature, top_k, top_p, min_p, repeat_penalty,
                    max_tokens, seed  (/set alone shows them)
  /reset            start a new conversation
  /collection NAME  start a new conversation over another collection
  /save FILE        write the conversation, with sources, as markdown
  /help             this help
  /exit             leave (or Ctrl-D); Ctrl-C stops an answer"""


@with_sampling_flags
def chat(
    k: KOption = None,
    model: ModelOption = None,
    vectorstore: VectorstoreOption = None,
    collection: CollectionOption = None,
    source: SourceOption = None,
    where: WhereOption = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="With piped input: one JSON object per turn (as `ask --json`, plus the "
            "stand-alone question used for retrieval).",
        ),
    ] = False,
    sampling_flags: dict[str, Any] | None = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Talk with your documents: follow-up questions use the conversation so far."""

    def body() -> ExitCode:
        from docqa.answer.conversation import Conversation

        overrides: dict[str, dict[str, Any]] = {
            "paths": {"vectorstore": vectorstore},
            "llm": {"model": model},
            "retrieval": {"k": k},
        }
        settings = command_settings(config, overrides, collection)
        base = command_settings(config, overrides, None)  # what /collection NAME starts from
        sampling = chosen_sampling(settings.chat_sampling, sampling_flags)
        limited_to = selection(source, where)
        service = loaded_service(settings, model, with_llm=True).limited(limited_to)
        conversation = Conversation(service, sampling, k, settings.chat.rewrite)
        if isinstance(sys.stdin, io.TextIOWrapper):  # bytes not UTF-8: refused as a question
            sys.stdin.reconfigure(errors="surrogateescape")
        if sys.stdin.isatty():
            _interactive(conversation, base)
        else:
            _piped(conversation, base, json_output)
        return ExitCode.OK

    run(debug, body)


def _interactive(conversation: Conversation, base: Settings) -> None:
    import readline  # noqa: F401  line editing and arrow-key history for input()

    from docqa.cli.render import print_answer

    print("docqa chat: ask about your documents; /help for commands, Ctrl-D to leave.")
    while True:
        try:
            line = input("\nyou> ").strip()
        except EOFError:
            print()
            return
        except KeyboardInterrupt:
            print("\n(Ctrl-D or /exit to leave)")
            continue
        if not line:
            continue
        try:
            if line.startswith("/"):
                if _command(conversation, line, print, base) == "exit":
                    return
                continue
            with closing(conversation.stream(checked_question(line))) as events:
                answer = print_answer(events)
            print(_footer(answer))
        except KeyboardInterrupt:
            print("\n(stopped)")
        except DocqaError as exc:
            print(f"error: {exc}", file=sys.stderr)


def _piped(conversation: Conversation, base: Settings, json_output: bool) -> None:
    from docqa.answer.results import final_answer
    from docqa.cli.render import answer_json

    for line in sys.stdin:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("/"):
            say = lambda text: print(text, file=sys.stderr)  # noqa: E731  answers go to stdout
            if _command(conversation, line, say, base) == "exit":
                return
            continue
        answer = final_answer(conversation.stream(checked_question(line)))
        if json_output:
            print(answer_json(answer, standalone_question=answer.query), flush=True)
        else:
            print(f"Q: {answer.question}\nA: {answer.answer}\n{_footer(answer)}\n", flush=True)


def _footer(answer: Answer) -> str:
    sources = " · ".join(f"[{s.n}] {s.source}, {s.where} ({s.score:.2f})" for s in answer.sources)
    t = answer.timings
    first = f", first token {t.first_token_s:.2f} s" if t.first_token_s is not None else ""
    return f"{sources}\n({t.total_s:.2f} s{first})"


def _command(
    conversation: Conversation, line: str, say: Callable[[str], None], base: Settings
) -> str | None:
    """Carry out a /command; "exit" when the conversation should end. /collection switches
    from `base` (the settings without a collection) to a collection's folders."""
    from docqa.cli.render import sources_text

    name, _, argument = line[1:].partition(" ")
    argument = argument.strip()
    if name in ("exit", "quit"):
        return "exit"
    if name == "help":
        say(HELP)
    elif name == "reset":
        conversation.reset()
        say("(new conversation)")
    elif name == "sources":
        last = conversation.answers[-1] if conversation.answers else None
        say(sources_text(last) if last else "(no answer yet)")
    elif name == "open":
        say(_open(conversation, argument))
    elif name == "k":
        if not argument.isdigit() or not 1 <= int(argument) <= 100:
            say("error: /k takes a number from 1 to 100")
        else:
            conversation.k = int(argument)
            say(f"(k = {conversation.k})")
    elif name == "set":
        say(_set(conversation, argument))
    elif name == "collection":
        say(_switch(conversation, argument, base))
    elif name == "save":
        if not argument:
            say("error: /save takes a file name")
        else:
            path = Path(argument).expanduser()
            try:
                path.write_text(_transcript(conversation), encoding="utf-8")
            except OSError as exc:
                say(f"error: cannot write {path} ({exc.strerror})")
            else:
                say(f"(saved {len(conversation.answers)} turns to {path})")
    else:
        say(f"error: unknown command /{name}: /help lists them")
    return None


def _open(conversation: Conversation, argument: str) -> str:
    """/open N: source N's page of the last answer, highlighted, written as a PNG."""
    from docqa.cli.pages import write_page_image

    if not conversation.answers:
        return "(no answer yet)"
    if not argument.isdigit():
        return "error: /open takes a source's number, e.g. /open 1"
    answer = conversation.answers[-1]
    try:
        written = write_page_image(conversation.service.settings, answer, int(argument))
    except DocqaError as exc:
        return f"error: {exc}"
    return f"(page image: {written})"


def _switch(conversation: Conversation, name: str, base: Settings) -> str:
    """/collection NAME: a new conversation over that collection, the models kept loaded."""
    from docqa.collection import in_collection

    if not name:
        return "error: /collection takes a name (docqa collections list)"
    try:
        conversation.service = conversation.service.over(in_collection(base, name))
    except DocqaError as exc:
        return f"error: {exc}"
    conversation.reset()
    return f"(new conversation, over collection {name})"


# /set's names for the generation settings: as users name them (max_tokens), in --help's order.
SET_NAMES = {SAMPLING_NAMES[field]: field for field in SAMPLING_HELP}


def _set(conversation: Conversation, argument: str) -> str:
    """/set NAME VALUE: one generation setting, checked; /set alone: all of them."""
    if not argument:
        return ", ".join(
            f"{name}={getattr(conversation.sampling, field)}" for name, field in SET_NAMES.items()
        )
    name, _, value = argument.partition(" ")
    field = SET_NAMES.get(name) or (name if name in SAMPLING_NAMES else None)
    if field is None or not value.strip():
        return "error: /set NAME VALUE, with NAME one of " + ", ".join(SET_NAMES)
    try:
        conversation.sampling = conversation.sampling.override(**{field: value.strip()})
    except InvalidSampling as exc:
        return f"error: invalid {name}: {exc.reason}"
    return f"({name} = {getattr(conversation.sampling, field)})"


def _transcript(conversation: Conversation) -> str:
    """The conversation as /save writes it: each question, its answer, and its sources."""
    from docqa.answer.results import answer_dict
    from docqa.answer.transcript import transcript

    title = f"docqa chat, {datetime.now():%Y-%m-%d %H:%M}"
    return transcript([answer_dict(answer) for answer in conversation.answers], title)
