"""`docqa ask`: answer a question from the index, with sources and timings."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from docqa.cli.common import ConfigOption, DebugOption, VectorstoreOption, note, run
from docqa.errors import ExitCode


def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    k: Annotated[
        int | None, typer.Option("--k", "-k", min=1, max=100, help="Chunks to retrieve.")
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="Model file (.gguf or GGML .bin).", resolve_path=True),
    ] = None,
    vectorstore: VectorstoreOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print exactly one JSON object.")
    ] = False,
    retrieve_only: Annotated[
        bool, typer.Option("--retrieve-only", help="Show the retrieved chunks; skip the LLM.")
    ] = False,
    no_sources: Annotated[
        bool, typer.Option("--no-sources", help="Do not print the source chunks.")
    ] = False,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Answer QUESTION from your documents, citing the chunks it used."""

    def body() -> ExitCode:
        from docqa.config import load_settings
        from docqa.output import answer_json, sources_text, timings_text
        from docqa.qa_service import QAService

        settings = load_settings(
            config,
            {"paths": {"vectorstore": vectorstore}, "llm": {"model": model}, "retrieval": {"k": k}},
        )
        service = QAService(settings, explicit_model=model is not None)
        service.load(with_llm=not retrieve_only)
        for notice in service.notices:
            note(notice)
        if retrieve_only:
            answer = service.retrieve_only(question, k)
        elif json_output:
            answer = service.ask(question, k)
        else:
            print("Answer: ", end="", flush=True)
            answer = service.ask(question, k, on_text=_print_stream)
            print()
        if answer.dropped:
            note(
                f"{answer.dropped} retrieved chunk(s) did not fit the model's context and were "
                "left out: lower --k, or raise llm.context_length"
            )
        if json_output:
            print(answer_json(answer))
            return ExitCode.OK
        if not no_sources:
            print(("\n" if answer.answer is not None else "") + sources_text(answer))
        print("\n" + timings_text(answer))
        return ExitCode.OK

    run(debug, body)


def _print_stream(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
