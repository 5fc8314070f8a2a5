"""Streamed answers as a program and a person see them: events read from a pipe while the
process runs, the same text streamed and whole, generation flags, the service's events."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docqa.answer.qa import QAService
from docqa.answer.results import AnswerEvent, SourcesEvent, TokenEvent
from docqa.config import load_settings
from tests.fixtures.projects import FACTS, REPO, run_cli

pytestmark = pytest.mark.slow

GREEDY = ("--temperature", "0", "--seed", "1")


def test_events_arrive_on_a_pipe_while_the_answer_is_generated(project: Path) -> None:
    asking = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "main.py"),
            FACTS[0][0],
            "--jsonl-events",
            "--max-tokens",
            "64",
        ],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert asking.stdout is not None
    arrivals: list[tuple[float, dict]] = []
    for line in asking.stdout:
        arrivals.append((time.perf_counter(), json.loads(line)))
    asking.wait(timeout=300)
    assert asking.returncode == 0
    kinds = [event["event"] for _, event in arrivals]
    assert kinds[0] == "sources"
    assert kinds[-2:] == ["answer", "timings"]
    assert set(kinds[1:-2]) == {"token"}
    assert len(kinds) > 4, "several tokens, each its own line"
    first_token = next(at for at, event in arrivals if event["event"] == "token")
    answer_at, answer = next((at, e) for at, e in arrivals if e["event"] == "answer")
    # Streamed, not written at the end: the first token came while generation went on.
    decoding = answer["timings"]["generate_s"] - answer["usage"]["first_token_s"]
    assert answer_at - first_token >= 0.5 * decoding > 0
    streamed = "".join(event["text"] for _, event in arrivals if event["event"] == "token")
    assert streamed == answer["raw_answer"]


def test_streamed_text_equals_the_whole_answer_at_temperature_0(project: Path) -> None:
    events = run_cli("main.py", FACTS[1][0], "--jsonl-events", *GREEDY, cwd=project)
    assert events.returncode == 0, events.stderr
    lines = [json.loads(line) for line in events.stdout.splitlines()]
    streamed = "".join(e["text"] for e in lines if e["event"] == "token")
    whole = run_cli("main.py", FACTS[1][0], "--json", *GREEDY, cwd=project)
    assert json.loads(whole.stdout)["raw_answer"] == streamed
    assert json.loads(whole.stdout)["answer"] == lines[-2]["answer"]
    # A pipe asked to stream: the streamed text, then the checked answer when it differs.
    shown = run_cli("main.py", FACTS[1][0], "--stream", *GREEDY, cwd=project).stdout
    assert shown.startswith(f"Answer: {streamed}\n")
    final = json.loads(whole.stdout)
    answer_lines = shown.split("\n\nSources:")[0].splitlines()
    if final["revised"]:
        assert answer_lines[1] == f"Checked (citations added): {final['answer']}"
    else:
        assert len(answer_lines) == 1


def test_a_terminal_sees_one_answer_the_streamed_text_replaced_by_the_checked_one(
    project: Path,
) -> None:
    import os
    import pty

    whole = json.loads(run_cli("main.py", FACTS[0][0], "--json", *GREEDY, cwd=project).stdout)
    assert whole["revision"] == "cited", whole  # the demo model's answer, given citations
    main, terminal = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DOCQA_")}
    asking = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), FACTS[0][0], "--no-sources", *GREEDY],
        cwd=project,
        stdout=terminal,
        stderr=subprocess.DEVNULL,
        env={**environment, "COLUMNS": "80"},
    )
    os.close(terminal)
    shown = b""
    while chunk := _read(main):
        shown += chunk
    asking.wait(timeout=300)
    os.close(main)
    text = shown.decode().replace("\r\n", "\n")
    streamed, erased, after = text.partition("\x1b[J")
    assert erased, f"the streamed text is erased: {text!r}"
    assert streamed.startswith(f"\rAnswer: {whole['raw_answer']}") or streamed.startswith(
        f"Answer: {whole['raw_answer']}"
    )
    assert after.startswith(f"Answer: {whole['answer']}\n(checked: citations added)\n")
    assert after.count("Answer:") == 1


def _read(descriptor: int) -> bytes:
    """What a process wrote to its terminal since the last read; b"" once it has ended."""
    import os

    try:
        return os.read(descriptor, 4096)
    except OSError:  # EIO: the process closed the terminal
        return b""


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        (
            "--temperature",
            "-1",
            "invalid --temperature: Input should be greater than or equal to 0",
        ),
        ("--top-p", "1.5", "invalid --top-p: Input should be less than or equal to 1"),
        ("--max-tokens", "0", "invalid --max-tokens: Input should be greater than or equal to 1"),
        ("--repeat-penalty", "0.5", "invalid --repeat-penalty:"),
    ],
)
def test_generation_flags_are_checked_with_one_clear_line(
    project: Path, flag: str, value: str, message: str
) -> None:
    result = run_cli("main.py", "anything?", flag, value, cwd=project)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {message}")
    assert result.stderr.strip().count("\n") == 0


def test_the_service_streams_sources_before_tokens_and_closing_stops_it(project: Path) -> None:
    settings = load_settings(None, {"paths": {"vectorstore": project / "vectorstore"}}, environ={})
    service = QAService(settings)
    service.load()
    long = service.llm.sampling.override(max_new_tokens=400, stop=())
    events = service.stream("Tell me everything about the cooperative.", sampling=long)
    assert isinstance(next(events), SourcesEvent)
    assert isinstance(next(events), TokenEvent)
    events.close()  # the reader went away after one token
    assert not service.llm.lock.locked(), "the model is free again at once"
    answer = service.ask(FACTS[0][0])
    assert FACTS[0][1] in (answer.answer or "")
    kinds = [type(e) for e in service.stream(FACTS[0][0])]
    assert kinds[0] is SourcesEvent
    assert AnswerEvent in kinds
