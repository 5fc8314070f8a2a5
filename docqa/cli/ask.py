"""`docqa ask`: answer a question from the index, with sources and timings."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from docqa.cli.common import (
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
    note,
    process_start,
    run,
    selection,
    with_sampling_flags,
)
from docqa.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from docqa.answer.results import Answer

KOption = Annotated[
    int | None, typer.Option("--k", "-k", min=1, max=100, help="Chunks to retrieve.")
]


@with_sampling_flags
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
            help="Print the answer as one JSON object (with --questions-file: one per line).",
        ),
    ] = False,
    jsonl_events: Annotated[
        bool,
        typer.Option(
            "--jsonl-events",
            help="Print each event (sources, token, answer, timings, error) as a JSON line "
            "the moment it happens.",
        ),
    ] = False,
    stream: Annotated[
        bool | None,
        typer.Option(
            "--stream/--no-stream",
            help="Show the answer as it is generated (default: on a terminal).",
        ),
    ] = None,
    retrieve_only: Annotated[
        bool, typer.Option("--retrieve-only", help="Show the retrieved chunks; skip the LLM.")
    ] = False,
    no_sources: Annotated[
        bool, typer.Option("--no-sources", help="Do not print the source chunks.")
    ] = False,
    open_source: Annotated[
        int | None,
        typer.Option(
            "--open",
            min=1,
            metavar="N",
            help="Write source N's page, the sentence the answer rests on highlighted, to a "
            "PNG and print its path (PDF sources).",
        ),
    ] = None,
    sampling_flags: dict[str, Any] | None = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Answer QUESTION from your documents, citing the chunks it used."""

    def body() -> ExitCode:
        from docqa.answer.results import event_dict
        from docqa.cli.render import (
            answer_json,
            json_line,
            print_answer,
            sources_text,
            timings_text,
        )

        if (question is None) == (questions_file is None):
            raise UsageError("give either a QUESTION or --questions-file FILE")
        if open_source is not None and (questions_file or jsonl_events or json_output):
            raise UsageError(
                "--open shows a page of one answer's sources: leave out --json, "
                "--jsonl-events and --questions-file"
            )
        if jsonl_events and (json_output or retrieve_only or questions_file):
            raise UsageError(
                "--jsonl-events streams one answer: leave out --json, "
                "--retrieve-only and --questions-file"
            )
        if question is not None:
            checked_question(question)
        questions = read_questions(questions_file) if questions_file is not None else None
        settings = command_settings(
            config,
            {"paths": {"vectorstore": vectorstore}, "llm": {"model": model}, "retrieval": {"k": k}},
            collection,
        )
        sampling = chosen_sampling(settings.llm.sampling, sampling_flags)
        limited_to = selection(source, where)
        service = loaded_service(settings, model, with_llm=not retrieve_only).limited(limited_to)

        def respond(text: str) -> Answer:
            if retrieve_only:
                return service.retrieve_only(text, k)
            return service.ask(text, k, sampling=sampling)

        if questions is not None:
            for line in questions:
                answer = respond(line)
                report_dropped(answer, f"{answer.question!r}: ")
                print(answer_json(answer) if json_output else one_line(answer), flush=True)
            return ExitCode.OK
        assert question is not None
        if jsonl_events:
            for event in service.stream(question, k=k, sampling=sampling):
                json_line(event_dict(event))
                if event.kind == "error":
                    raise event.error
            return ExitCode.OK
        if json_output:
            answer = respond(question)
            report_dropped(answer)
            print(answer_json(answer, load_s=service.load_s, process_s=since_start()))
            return ExitCode.OK
        if not retrieve_only and (sys.stdout.isatty() if stream is None else stream):
            answer = print_answer(service.stream(question, k=k, sampling=sampling))
        else:
            answer = respond(question)
            if answer.answer is not None:
                print(f"Answer: {answer.answer}")
        report_dropped(answer)
        if not no_sources:
            print("\n" + sources_text(answer))
        print("\n" + timings_text(answer, load_s=service.load_s, process_s=since_start()))
        if open_source is not None:
            from docqa.cli.pages import write_page_image

            print(f"Page image: {write_page_image(settings, answer, open_source)}")
        return ExitCode.OK

    run(debug, body)


def since_start() -> float:
    """Seconds since this process started (Python's own start and imports included)."""
    return time.perf_counter() - process_start()


def report_dropped(answer: Answer, prefix: str = "") -> None:
    if answer.dropped:
        note(
            f"{prefix}{answer.dropped} retrieved passage(s) did not fit the model's context and "
            "were left out: lower --k or --max-tokens, or raise llm.context_length"
        )


def read_questions(path: Path) -> list[str]:
    """Questions, one per line: plain text, or JSON objects with a "question" key."""
    import json

    questions = []
    # A line of bytes that are not UTF-8 is refused by its number, as other lines are.
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    for number, line in enumerate(text.splitlines(), start=1):
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
        questions.append(checked_question(line, f"{path}, line {number}: "))
    if not questions:
        raise UsageError(f"{path} holds no questions")
    return questions


def one_line(answer: Answer) -> str:
    if answer.answer is not None:
        return " ".join(answer.answer.split())
    return "; ".join(f"{s.source}, {s.where} ({s.score:.3f})" for s in answer.sources)
