"""`docqa chat`: a conversation piped in line by line, and a real terminal session in tmux
(typing, a follow-up that needs the first turn, Ctrl-C mid-answer, Ctrl-D)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from docqa.answer.conversation import carry_keywords
from tests.fixtures.pdfs import SAMPLE_QUESTION
from tests.fixtures.projects import REPO, run_cli

pytestmark = pytest.mark.slow

FOLLOW_UP = "When did it begin?"  # only the first turn says what "it" is


def chat(project: Path, lines: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DOCQA_")}
    return subprocess.run(
        [sys.executable, "-m", "docqa", "chat", *args],
        cwd=project,
        env={**environment, "PYTHONPATH": str(REPO)},
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_carried_keywords_make_a_follow_up_stand_alone() -> None:
    previous = "How much is the minimum guarantee payable by adidas?"
    assert carry_keywords("Over how many years?", previous) == (
        "Over how many years? much minimum guarantee payable adidas"
    )
    assert carry_keywords("What does adidas pay?", previous) == (
        "What does adidas pay? much minimum guarantee payable"
    )


def test_a_piped_conversation_prints_one_json_object_per_turn(sample_project: Path) -> None:
    result = chat(
        sample_project,
        [SAMPLE_QUESTION, "/k 3", FOLLOW_UP, "/reset", FOLLOW_UP],
        "--json",
        "--temperature",
        "0",
    )
    assert result.returncode == 0, result.stderr
    first, follow_up, alone = (json.loads(line) for line in result.stdout.splitlines())
    assert "£42 million" in first["answer"]
    assert first["standalone_question"] == SAMPLE_QUESTION
    assert set(first) >= {"question", "answer", "sources", "timings", "usage", "revised"}
    assert follow_up["question"] == FOLLOW_UP
    assert "Northwind Textiles" in follow_up["standalone_question"]
    assert len(follow_up["sources"]) == 3  # /k 3
    assert follow_up["sources"][0]["page"] == 2  # the agreement's page, found via turn 1
    assert alone["standalone_question"] == FOLLOW_UP  # /reset forgot the conversation
    assert "(k = 3)" in result.stderr


def test_chat_flags_and_commands_are_checked(sample_project: Path) -> None:
    commands = ["/set temperature -2", "/set colour red", "/k 0", "/open 1", "/exit"]
    result = chat(sample_project, commands)
    assert result.returncode == 0, result.stderr
    assert "(no answer yet)" in result.stderr
    assert "error: invalid temperature: Input should be greater than or equal to 0" in result.stderr
    assert "error: /set NAME VALUE, with NAME one of temperature" in result.stderr
    assert "error: /k takes a number from 1 to 100" in result.stderr
    bad = run_cli("-m", "docqa", "chat", "--top-k", "0", cwd=sample_project)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: invalid --top-k:")


class Terminal:
    """A program in a tmux window: type into it, read its screen."""

    def __init__(self, command: str, cwd: Path) -> None:
        self.name = f"docqa-{uuid.uuid4().hex[:8]}"
        self.cwd = cwd
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", "160", "-y", "50", "-c", str(cwd)],
            check=True,
        )
        subprocess.run(["tmux", "set-option", "-t", self.name, "history-limit", "5000"], check=True)
        self.keys(command, "Enter")

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-S", "-", "-t", self.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def wait_for(self, text: str, count: int = 1, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if screen.count(text) >= count:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} (x{count}) never appeared:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False)


@pytest.fixture
def terminal(sample_project: Path) -> object:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: .ci/run installs it (apt-get install tmux)")
    environment = " ".join(f"{k}={shlex.quote(v)}" for k, v in {"PYTHONPATH": str(REPO)}.items())
    command = f"env {environment} {shlex.quote(sys.executable)} -m docqa chat; echo EXITED $?"
    session = Terminal(command, sample_project)
    yield session
    session.close()


def test_a_terminal_session_with_a_follow_up_ctrl_c_and_ctrl_d(terminal: Terminal) -> None:
    terminal.wait_for("you> ")
    terminal.keys(SAMPLE_QUESTION, "Enter")
    screen = terminal.wait_for("first token", count=1)
    assert "£42 million" in screen
    assert screen.count("Answer: ") == 1  # the streamed text gave way to the checked answer
    terminal.keys("/open 1", "Enter")
    opened = terminal.wait_for("(page image: ").split("(page image: ", 1)[1].split(")")[0]
    assert opened.endswith(".png")
    assert Path(opened).read_bytes().startswith(b"\x89PNG")
    terminal.keys("/open 9", "Enter")
    terminal.wait_for("error: there is no source [9]")
    terminal.keys(FOLLOW_UP, "Enter")
    screen = terminal.wait_for("first token", count=2)
    follow_up = screen.split(FOLLOW_UP, 1)[1]
    assert "larkspur-annual-report-2024-SAMPLE.pdf, page 2" in follow_up.split("\n[1] ", 1)[1][:60]
    # Arrow up brings back the last question (readline history); Ctrl-U clears the line.
    terminal.keys("Up")
    assert terminal.wait_for(f"you> {FOLLOW_UP}", count=2)
    terminal.keys("C-u")
    # A long answer, stopped with Ctrl-C after its first words: the session carries on.
    terminal.keys("/set max_tokens 2000", "Enter")
    terminal.wait_for("(max_tokens = 2000)")
    terminal.keys("/set repeat_penalty 1.0", "Enter")
    terminal.keys(
        "Write a very long story about Northwind Textiles jackets, in many chapters.", "Enter"
    )
    terminal.wait_for("Answer: ", count=3)
    terminal.keys("C-c")
    terminal.wait_for("(stopped)")
    terminal.keys("/sources", "Enter")
    terminal.wait_for("Sources:")
    terminal.keys("/save transcript.md", "Enter")
    terminal.wait_for("(saved 2 turns to transcript.md)")
    terminal.keys("C-d")
    terminal.wait_for("EXITED 0")
    saved = (terminal.cwd / "transcript.md").read_text()
    assert f"**You:** {SAMPLE_QUESTION}" in saved
    assert f"**You:** {FOLLOW_UP}" in saved
    assert "larkspur-annual-report-2024-SAMPLE.pdf, page 2" in saved
    assert "Traceback" not in terminal.screen()
