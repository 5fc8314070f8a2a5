"""`docqa eval`: measure retrieval and answers on a questions file (JSONL)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

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
from docqa.errors import ExitCode


def evaluate(
    questions: Annotated[
        Path,
        typer.Argument(
            help='JSONL: {"id", "question", "answers", "pages", "kind", "source"?} per line.',
            exists=True,
            dir_okay=False,
            resolve_path=True,
        ),
    ],
    k: Annotated[
        int, typer.Option("--k", "-k", min=1, max=100, help="Depth for hit@k and MRR.")
    ] = 4,
    retrieve_only: Annotated[
        bool, typer.Option("--retrieve-only", help="Measure retrieval only; skip the LLM.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: metrics and every item.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Markdown report to write. Default: eval-report.md, none with --json.",
            resolve_path=True,
        ),
    ] = None,
    model: ModelOption = None,
    vectorstore: VectorstoreOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Run every question through retrieval and answering, and report the metrics."""

    def body() -> ExitCode:
        from docqa.answer.evaluation import ItemResult, load_questions
        from docqa.answer.evaluation import evaluate as run_evaluation
        from docqa.config import load_settings

        settings = load_settings(
            config, {"paths": {"vectorstore": vectorstore}, "llm": {"model": model}}
        )
        items = load_questions(questions)
        service = loaded_service(settings, model, with_llm=not retrieve_only)

        def show(result: ItemResult) -> None:
            if sys.stderr.isatty():
                mark = {True: "right", False: "wrong", None: ""}[result.correct]
                print(f"{result.item.id}: rank {result.rank or '-'} {mark}", file=sys.stderr)

        outcome = run_evaluation(service, items, k, answer=not retrieve_only, on_result=show)
        used = {
            "questions": questions.name,
            "index": str(settings.paths.vectorstore),
            "model": str(service.model_path) if service.model_path else "none",
            **{f"retrieval.{key}": value for key, value in settings.retrieval},
            **{f"chunking.{key}": value for key, value in service.index_chunking.items()},
        }
        # --json is for scripts: a file left in the current folder would surprise them.
        path = report or (None if json_output else Path("eval-report.md").resolve())
        if path is not None:
            path.write_text(outcome.markdown(f"docqa eval: {questions.name}", used), "utf-8")
        if json_output:
            print(json.dumps({"settings": used, **outcome.to_json()}, ensure_ascii=False))
        else:
            print(outcome.table())
            note(f"report written to {path}")
        return ExitCode.OK

    run(debug, body)
