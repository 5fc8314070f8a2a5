"""What every command shares: its common options, logging, and the error boundary."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer

from docqa.errors import DocqaError, ExitCode, UsageError

if TYPE_CHECKING:
    from docqa.answer.qa import QAService
    from docqa.answer.selection import Selection
    from docqa.config import Sampling, Settings

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Settings file. Default: $DOCQA_CONFIG, else ./config.yml when present.",
        dir_okay=False,
        resolve_path=True,
    ),
]
DebugOption = Annotated[
    bool, typer.Option("--debug", help="Show debug logs, and the traceback of any error.")
]
DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data", help="Folder of documents (default from config.yml).", resolve_path=True
    ),
]
VectorstoreOption = Annotated[
    Path | None,
    typer.Option(
        "--vectorstore", help="Index folder (default from config.yml).", resolve_path=True
    ),
]

CollectionOption = Annotated[
    str | None,
    typer.Option(
        "--collection",
        help="Use this collection's data folder and index (docqa collections list); default: "
        "paths.data and paths.vectorstore.",
    ),
]

SourceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        help="Answer only from files whose path below the data folder matches this glob "
        "(repeatable: any of them).",
    ),
]
WhereOption = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        help="Answer only from documents that are this: org=NAME, period=FY2022, "
        "kind=10-K, title=WORDS (repeatable: all of them).",
    ),
]

ModelOption = Annotated[
    Path | None,
    typer.Option("--model", help="Model file (.gguf or GGML .bin).", resolve_path=True),
]


# The generation flags, in the order --help lists them: each sets the generation setting of
# its name (docqa.config.SAMPLING_NAMES), a flag of every command that answers.
SAMPLING_HELP = {
    "temperature": "Sampling temperature; 0 is greedy.",
    "top_k": "Sample from the k most likely tokens.",
    "top_p": "Nucleus sampling probability (0-1].",
    "min_p": "Minimum token probability relative to the best (llama.cpp).",
    "repeat_penalty": "Penalty on repeated tokens (>= 1).",
    "max_new_tokens": "Longest answer, in tokens.",
    "seed": "Sampling seed.",
}

Command = TypeVar("Command", bound=Callable[..., None])


def with_sampling_flags(command: Command) -> Command:
    """`command` with the generation flags among its options (before --config), handed to
    it as one `sampling_flags` argument: setting -> the value given, None when not given.

    typer reads a command's options from its signature, so the flags are declared here once
    rather than written out in every command's parameters."""
    from docqa.config import SAMPLING_NAMES, Sampling

    flags = [
        inspect.Parameter(
            field,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=None,
            annotation=Annotated[
                cast(Any, Sampling.model_fields[field].annotation) | None,
                typer.Option(flag(SAMPLING_NAMES[field]), help=help_text),
            ],
        )
        for field, help_text in SAMPLING_HELP.items()
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        given = {field: kwargs.pop(field) for field in SAMPLING_HELP}
        command(*args, sampling_flags=given, **kwargs)

    declared = inspect.signature(command, eval_str=True).parameters.values()
    own = [p for p in declared if p.name != "sampling_flags"]
    at = next((n for n, p in enumerate(own) if p.name == "config"), len(own))
    parameters = [*own[:at], *flags, *own[at:]]
    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return cast(Command, wrapper)


def flag(name: str) -> str:
    """The command-line flag of a setting users call `name`: --max-tokens."""
    return "--" + name.replace("_", "-")


def chosen_sampling(defaults: Sampling, flags: dict[str, Any] | None) -> Sampling:
    """The generation settings with the flags given applied, each checked (one clear line)."""
    from docqa.config import InvalidSampling

    try:
        return defaults.override(**(flags or {}))
    except InvalidSampling as exc:
        raise UsageError(f"invalid {flag(exc.name)}: {exc.reason}") from None


def checked_question(text: str, where: str = "") -> str:
    """A question as given (an argument, a line of a file or of a chat), refused when it
    holds what is no character; `where` starts the message ("FILE, line N: ")."""
    from docqa.text import invalid_character

    if (problem := invalid_character(text)) is not None:
        raise UsageError(f"{where}the question holds {problem}")
    return text


def command_settings(
    config: Path | None, overrides: dict[str, dict[str, Any]], collection: str | None
) -> Settings:
    """A command's settings: config file, environment, its flags; in the folders of
    `collection` when it names one (then without --data or --vectorstore)."""
    from docqa.collection import in_collection
    from docqa.config import load_settings

    if collection is not None and any(overrides.get("paths", {}).values()):
        raise UsageError(
            "--collection chooses the data folder and the index: leave out --data and --vectorstore"
        )
    return in_collection(load_settings(config, overrides), collection)


def selection(sources: list[str] | None, where: list[str] | None) -> Selection | None:
    """The documents --source and --where limit questions to (None: all), checked."""
    from docqa.answer.selection import Selection

    return Selection.parse(sources or [], where or [])


def loaded_service(settings: Settings, model: Path | None, with_llm: bool) -> QAService:
    """The question-answering service with its models loaded, its notices shown."""
    from docqa.answer.qa import loaded_service as load

    return load(settings, note, explicit_model=model is not None, with_llm=with_llm)


def process_start() -> float:
    """When this process started, on the time.perf_counter() clock (on Linux; elsewhere, now),
    so the total time shown includes starting Python and importing."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time
    except (OSError, ValueError, IndexError):
        return time.perf_counter()
    return time.perf_counter() - max(age, 0.0)


def run(debug: bool, body: Callable[[], ExitCode]) -> None:
    """Run a command body: one clear line on stderr for errors, tracebacks only with --debug."""
    _configure_logging(debug)
    try:
        code = body()
    except DocqaError as exc:
        if debug:
            raise
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        fail("interrupted", ExitCode.INTERRUPTED)
    except BrokenPipeError:  # the reader of our output went away (| head): nothing to say
        raise typer.Exit(ExitCode.OK) from None
    except Exception as exc:
        if debug:
            raise
        fail(
            f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback, "
            "and please report it)",
            ExitCode.FAILURE,
        )
    raise typer.Exit(code)


def fail(message: str, code: ExitCode) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


class _LowercaseLevel(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def _configure_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LowercaseLevel())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
