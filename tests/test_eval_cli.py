"""`docqa eval` and `main.py --questions-file` as a user runs them, on the bundled sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.projects import REPO, run_cli

pytestmark = pytest.mark.slow
SAMPLE_SET = REPO / "tests" / "eval" / "sample.jsonl"
# What the default pipeline measured on the sample set (0.50 and 0.67), less one item's worth.
SAMPLE_ANSWER_ACCURACY = 0.4
SAMPLE_ABSTENTION_ACCURACY = 0.6


def test_eval_on_the_sample_set(sample_project: Path) -> None:
    result = run_cli(
        "-m",
        "docqa",
        "eval",
        str(SAMPLE_SET),
        "--json",
        "--report",
        "eval-report.md",
        cwd=sample_project,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    metrics = report["metrics"]
    assert (metrics["items"], metrics["answerable"], metrics["unanswerable"]) == (15, 12, 3)
    assert metrics["hit@4"] == 1.0
    assert metrics["mrr"] >= 0.9
    assert metrics["answer_accuracy"] >= SAMPLE_ANSWER_ACCURACY
    assert metrics["abstention_accuracy"] >= SAMPLE_ABSTENTION_ACCURACY
    assert 0 < metrics["latency_p50_s"] <= metrics["latency_p95_s"]
    # Reader-independent: the answer is in what the model read for most items.
    assert metrics["context_recall"] >= metrics["answer_accuracy"]
    for name in ("mrr", "answer_accuracy", "context_recall"):
        low, high = report["intervals"][name]
        assert low <= metrics[name] <= high
    assert len(report["items"]) == 15
    assert report["settings"]["retrieval.mode"] == "hybrid"
    markdown = (sample_project / "eval-report.md").read_text()
    assert "| hit@4 | 1.000  [1.000, 1.000] |" in markdown
    assert "| s01 | number |" in markdown


def test_eval_table_and_retrieve_only(sample_project: Path) -> None:
    result = run_cli(
        "-m",
        "docqa",
        "eval",
        str(SAMPLE_SET),
        "--retrieve-only",
        "--report",
        "r.md",
        cwd=sample_project,
    )
    assert result.returncode == 0, result.stderr
    assert "hit@1" in result.stdout
    assert "answer_accuracy" not in result.stdout
    assert "report written to" in result.stderr
    assert (sample_project / "r.md").is_file()


def test_eval_json_writes_no_report_unless_asked(sample_project: Path, tmp_path: Path) -> None:
    vectorstore = str(sample_project / "vectorstore")
    args = ("-m", "docqa", "eval", str(SAMPLE_SET), "--retrieve-only", "--vectorstore", vectorstore)
    result = run_cli(*args, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["items"] == 15
    assert list(tmp_path.iterdir()) == [], "--json alone writes no file"
    assert run_cli(*args, cwd=tmp_path).returncode == 0
    assert [path.name for path in tmp_path.iterdir()] == ["eval-report.md"]


def test_eval_compares_with_an_earlier_result_file(sample_project: Path, tmp_path: Path) -> None:
    args = ("-m", "docqa", "eval", str(SAMPLE_SET), "--retrieve-only", "--json")
    first = run_cli(*args, cwd=sample_project)
    assert first.returncode == 0, first.stderr
    earlier = tmp_path / "earlier.json"
    earlier.write_text(first.stdout)
    again = run_cli(*args, "--compare", str(earlier), cwd=sample_project)
    differences = json.loads(again.stdout)["compared_with"]["differences"]
    assert differences["mrr"] == {"difference": 0.0, "interval": [0.0, 0.0], "items": 12}
    table = run_cli(*args[:-1], "--compare", str(earlier), "--report", "r.md", cwd=sample_project)
    assert "difference (this run - the other)" in table.stdout
    (tmp_path / "bad.json").write_text("{}")
    bad = run_cli(*args, "--compare", str(tmp_path / "bad.json"), cwd=sample_project)
    assert bad.returncode == 2
    assert "not a `docqa eval --json` result file" in bad.stderr


def test_questions_file_answers_one_per_line(sample_project: Path) -> None:
    questions = sample_project / "questions.txt"
    questions.write_text(
        "# comments and blank lines are skipped\n\n"
        "How much is the minimum guarantee payable by Northwind Textiles?\n"
        '{"question": "Who chairs the board?"}\n'
    )
    text = run_cli("main.py", "--questions-file", str(questions), cwd=sample_project)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 2
    assert "£42 million" in lines[0]
    as_json = run_cli("main.py", "--questions-file", str(questions), "--json", cwd=sample_project)
    answers = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [a["question"] for a in answers] == [
        "How much is the minimum guarantee payable by Northwind Textiles?",
        "Who chairs the board?",
    ]
    assert all("timings" in a and "sources" in a for a in answers)


def test_question_and_questions_file_are_exclusive(sample_project: Path) -> None:
    result = run_cli("main.py", "Q?", "--questions-file", str(SAMPLE_SET), cwd=sample_project)
    assert result.returncode == 2
    assert "either a QUESTION or --questions-file" in result.stderr
