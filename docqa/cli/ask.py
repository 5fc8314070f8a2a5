"""`docqa ask`: answer a question from the index, with sources and timings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from docqa.cli.common import (
    ConfigOption,
    DebugOption,
    ModelOption,
    VectorstoreOption,
    loaded_service,
    note,
    run,
)
from docqa.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from docqa.answer.qa import Answer


def ask(
    question: Annotated[str | None, typer.Argument(help="The question, in quotes.")] = None,
    questions_file: Annotated[
        Path | None,
        typer.Option(
            "--questions-file",
            help="Answer each line of this file (plain text, or JSONL with a question key), "
            "one answer per line, loading the models once.",
            exists=True,
            dir_okay=False,
            resolve_path=True,
        ),
    ] = None,
    k: Annotated[
        int | None, typer.Option("--k", "-k", min=1, max=100, help="Chunks to retrieve.")
    ] = None,
    model: ModelOption = None,
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
        from docqa.cli.render import answer_json, sources_text, timings_text
        from docqa.config import load_settings

        if (question is None) == (questions_file is None):
            raise UsageError("give either a QUESTION or --questions-file FILE")
        settings = load_settings(
            config,
            {"paths": {"vectorstore": vectorstore}, "llm": {"model": model}, "retrieval": {"k": k}},
        )
        service = loaded_service(settings, model, with_llm=not retrieve_only)
        respond = service.retrieve_only if retrieve_only else service.ask
        if questions_file is not None:
            for line in read_questions(questions_file):
                answer = respond(line, k)
                print(answer_json(answer) if json_output else one_line(answer), flush=True)
            return ExitCode.OK
        assert question is not None
        answer = respond(question, k)
        if answer.dropped:
            note(
                f"{answer.dropped} retrieved chunk(s) did not fit the model's context and were "
                "left out: lower --k, or raise llm.context_length"
            )
        if json_output:
            print(answer_json(answer))
            return ExitCode.OK
        if answer.answer is not None:
            print(f"Answer: {answer.answer}\n")
        if not no_sources:
            print(sources_text(answer) + "\n")
        print(timings_text(answer))
        return ExitCode.OK

    run(debug, body)


def read_questions(path: Path) -> list[str]:
    """Questions, one per line: plain text, or JSON objects with a "question" key."""
    import json

    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                line = str(json.loads(line)["question"])
            except (ValueError, KeyError, TypeError) as exc:
                raise UsageError(
                    f"{path}, line {number}: not a JSON object with a question"
                ) from exc
        questions.append(line)
    if not questions:
        raise UsageError(f"{path} holds no questions")
    return questions


def one_line(answer: Answer) -> str:
    if answer.answer is not None:
        return " ".join(answer.answer.split())
    return "; ".join(f"{s.source} p.{s.page} ({s.score:.3f})" for s in answer.sources)
