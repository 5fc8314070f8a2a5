"""What every command shares: its common options, logging, and the error boundary."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from docqa.errors import DocqaError, ExitCode, UsageError

if TYPE_CHECKING:
    from docqa.answer.qa import QAService
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
    typer.Option("--data", help="Folder of PDFs (default from config.yml).", resolve_path=True),
]
VectorstoreOption = Annotated[
    Path | None,
    typer.Option(
        "--vectorstore", help="Index folder (default from config.yml).", resolve_path=True
    ),
]

ModelOption = Annotated[
    Path | None,
    typer.Option("--model", help="Model file (.gguf or GGML .bin).", resolve_path=True),
]


TemperatureOption = Annotated[
    float | None, typer.Option("--temperature", help="Sampling temperature; 0 is greedy.")
]
TopKOption = Annotated[
    int | None, typer.Option("--top-k", help="Sample from the k most likely tokens.")
]
TopPOption = Annotated[
    float | None, typer.Option("--top-p", help="Nucleus sampling probability (0-1].")
]
MinPOption = Annotated[
    float | None,
    typer.Option("--min-p", help="Minimum token probability relative to the best (llama.cpp)."),
]
RepeatPenaltyOption = Annotated[
    float | None, typer.Option("--repeat-penalty", help="Penalty on repeated tokens (>= 1).")
]
MaxTokensOption = Annotated[
    int | None, typer.Option("--max-tokens", help="Longest answer, in tokens.")
]
SeedOption = Annotated[int | None, typer.Option("--seed", help="Sampling seed.")]

# The generation settings by the flag that sets each.
SAMPLING_FLAGS = {
    "temperature": "--temperature",
    "top_k": "--top-k",
    "top_p": "--top-p",
    "min_p": "--min-p",
    "repeat_penalty": "--repeat-penalty",
    "max_new_tokens": "--max-tokens",
    "seed": "--seed",
}


def chosen_sampling(defaults: Sampling, **flags: object) -> Sampling:
    """The generation settings with the flags given applied, each checked (one clear line)."""
    from pydantic import ValidationError

    try:
        return defaults.override(**flags)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0])
        raise UsageError(f"invalid {SAMPLING_FLAGS.get(name, name)}: {error['msg']}") from None


def loaded_service(settings: Settings, model: Path | None, with_llm: bool) -> QAService:
    """The question-answering service with its models loaded, its notices shown."""
    from docqa.answer.qa import QAService

    service = QAService(settings, explicit_model=model is not None)
    service.load(with_llm=with_llm)
    for notice in service.notices:
        note(notice)
    return service


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
