"""`docqa eval`: measure retrieval and answers on a questions file (JSONL)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from docqa.cli.common import (
    CollectionOption,
    ConfigOption,
    DebugOption,
    ModelOption,
    VectorstoreOption,
    command_settings,
    loaded_service,
    note,
    run,
)
from docqa.errors import ExitCode, UsageError


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
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            help="A result file of an earlier `docqa eval --json`: report each metric's "
            "paired difference from it, with its 95% interval.",
            exists=True,
            dir_okay=False,
            resolve_path=True,
        ),
    ] = None,
    model: ModelOption = None,
    vectorstore: VectorstoreOption = None,
    collection: CollectionOption = None,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Run every question through retrieval and answering, and report the metrics."""

    def body() -> ExitCode:
        from docqa.answer.evaluation import ItemResult, load_questions
        from docqa.answer.evaluation import evaluate as run_evaluation
        from docqa.answer.measures import difference_table, paired_difference

        settings = command_settings(
            config, {"paths": {"vectorstore": vectorstore}, "llm": {"model": model}}, collection
        )
        items = load_questions(questions)
        previous = read_results(compare) if compare else None
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
            "profile": service.reader.as_dict(),
            **{f"retrieval.{key}": value for key, value in settings.retrieval},
            **{f"chunking.{key}": value for key, value in service.index_chunking.items()},
        }
        # --json is for scripts: a file left in the current folder would surprise them.
        path = report or (None if json_output else Path("eval-report.md").resolve())
        if path is not None:
            path.write_text(outcome.markdown(f"docqa eval: {questions.name}", used), "utf-8")
        document: dict[str, object] = {"settings": used, **outcome.to_json()}
        differences = None
        if previous is not None:
            differences = paired_difference(
                outcome.items_json(), previous, k, answered=not retrieve_only
            )
            document["compared_with"] = {"file": str(compare), "differences": differences}
        if json_output:
            print(json.dumps(document, ensure_ascii=False))
        else:
            print(outcome.table())
            if differences is not None:
                print("\n" + difference_table(differences))
            note(f"report written to {path}")
        return ExitCode.OK

    run(debug, body)


def read_results(path: Path) -> list[dict[str, Any]]:
    """The items of an earlier `docqa eval --json` result file."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))["items"]
        if not isinstance(items, list) or not all("id" in item for item in items):
            raise ValueError("items without ids")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path} is not a `docqa eval --json` result file ({exc})") from exc
    return items
