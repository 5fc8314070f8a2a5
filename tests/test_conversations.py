"""Kept conversations. Fast: the SQLite store (each owner's own, its limits, its file's
permissions, writers sharing it), the owner each API key makes, several keys each strong, and
the Markdown of /save and the export. Slow: a real `docqa serve` with two keys — chat
completions that carry on a conversation (plain and streamed) and are kept with their sources
and settings, the routes, another key that sees nothing, a stopped stream, a restart."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi.responses import JSONResponse
from starlette.testclient import TestClient

from docqa.answer.results import Answer, Source, Timings, answer_dict
from docqa.answer.transcript import transcript
from docqa.cli.serve import checked_api_key
from docqa.config import ServerSettings
from docqa.errors import ConfigError, UsageError
from docqa.server import conversations
from docqa.server.conversations import ConversationStore
from docqa.server.errors import ApiError
from docqa.server.guards import OWNER, Guard
from docqa.server.keys import Keys, KeyStore, key_owner
from tests.fixtures.projects import FACTS, ingested_project, run_cli
from tests.fixtures.services import long_question, openai_client, serving

if TYPE_CHECKING:
    from openai.types.chat import (
        ChatCompletionSystemMessageParam,
        ChatCompletionUserMessageParam,
    )

BRIEF: ChatCompletionSystemMessageParam = {"role": "system", "content": "Be brief."}

KEY_A = secrets.token_urlsafe(32)  # a DOCQA_API_KEY
QUESTION, ANSWER, SOURCE, PAGE = FACTS[0]
FOLLOW_UP = "Over how many years?"  # only the first turn says what it is about


def a_turn(question: str, answer: str = "An answer [1].") -> dict[str, Any]:
    return {"question": question, "query": question, "answer": answer, "sources": []}


# The store.


def test_a_conversation_is_created_listed_read_renamed_and_deleted(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "state")
    made = store.create("alice", "default")
    assert re.fullmatch(r"conv_[0-9a-f]{24}", made["id"])
    assert made["object"] == "conversation"
    assert (made["title"], made["collection"], made["turns"]) == ("", "default", [])
    assert abs(made["created"] - time.time()) < 5
    assert made["updated"] == made["created"]
    store.add_turn("alice", made["id"], a_turn(QUESTION))
    store.add_turn("alice", made["id"], a_turn(FOLLOW_UP, "Five years [1]."))
    other = store.create("alice", "reports", title="  Reports  ")
    assert other["title"] == "Reports"

    listed = store.listing("alice")
    assert [(c["id"], c["turns"]) for c in listed] == [(other["id"], 0), (made["id"], 2)]
    store.add_turn("alice", made["id"], a_turn("And the buyer?"))  # newest updated first
    assert [c["id"] for c in store.listing("alice")] == [made["id"], other["id"]]

    full = store.get("alice", made["id"])
    assert full is not None
    assert full["title"] == QUESTION  # named by its first question
    assert [turn["question"] for turn in full["turns"]] == [QUESTION, FOLLOW_UP, "And the buyer?"]
    assert full["turns"][1] == a_turn(FOLLOW_UP, "Five years [1].")

    renamed = store.rename("alice", made["id"], "Brightwater")
    assert renamed is not None
    assert renamed["title"] == "Brightwater"
    assert renamed == store.listing("alice")[0]
    with pytest.raises(ApiError) as empty:
        store.rename("alice", made["id"], "   ")
    assert empty.value.status == 400

    assert store.delete("alice", made["id"])
    assert store.get("alice", made["id"]) is None
    assert not store.delete("alice", made["id"])
    assert [c["id"] for c in store.listing("alice")] == [other["id"]]
    with closing(sqlite3.connect(store.path)) as db:  # its turns went with it
        assert db.execute("SELECT COUNT(*) FROM turns").fetchone() == (0,)


def test_an_owner_never_sees_or_changes_another_owners_conversation(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "state")
    alices = store.create("alice", "default", title="Alice's")
    store.add_turn("alice", alices["id"], a_turn(QUESTION))
    assert store.listing("bob") == []
    assert store.get("bob", alices["id"]) is None
    assert store.rename("bob", alices["id"], "Bob's") is None
    assert not store.delete("bob", alices["id"])
    for carry_on in (
        lambda: store.add_turn("bob", alices["id"], a_turn("Mine now?")),
        lambda: store.continued("bob", alices["id"], 10),
    ):
        with pytest.raises(ApiError) as refused:
            carry_on()
        assert (refused.value.status, refused.value.message) == (404, "no such conversation")
    kept = store.get("alice", alices["id"])
    assert kept is not None
    assert (kept["title"], len(kept["turns"])) == ("Alice's", 1)


def test_a_title_defaults_to_the_first_question_cut_to_80_characters(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "state")
    made = store.create("alice", "default")
    long_question = "What does the cooperative's handbook say " * 5
    store.add_turn("alice", made["id"], a_turn(long_question))
    store.add_turn("alice", made["id"], a_turn(QUESTION))
    assert store.listing("alice")[0]["title"] == long_question[:80]


def test_titles_turns_and_conversations_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ConversationStore(tmp_path / "state")
    for title in ("x" * 201, "lone \ud800 surrogate"):
        with pytest.raises(ApiError) as refused:
            store.create("alice", "default", title=title)
        assert (refused.value.status, refused.value.param) == (400, "title")
    assert store.create("alice", "default", title="x" * 200)["title"] == "x" * 200

    monkeypatch.setattr(conversations, "MAX_TURNS", 2)
    made = store.create("alice", "default")
    for number in range(2):
        store.add_turn("alice", made["id"], a_turn(f"Question {number}?"))
    for past_the_limit in (
        lambda: store.add_turn("alice", made["id"], a_turn("One more?")),
        lambda: store.continued("alice", made["id"], 10),
    ):
        with pytest.raises(ApiError) as full:
            past_the_limit()
        assert full.value.status == 400
        assert "at most 2 turns" in full.value.message

    monkeypatch.setattr(conversations, "MAX_CONVERSATIONS", 2)
    kept = [c["id"] for c in store.listing("alice")]
    with pytest.raises(ApiError) as too_many:
        store.create("alice", "default")
    assert too_many.value.status == 400
    assert "delete some" in too_many.value.message
    assert [c["id"] for c in store.listing("alice")] == kept  # none was dropped to make room
    assert store.create("bob", "default")["id"]  # the limit is each owner's


def test_carrying_on_gives_the_collection_and_the_last_turns(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "state")
    made = store.create("alice", "reports")
    for number in range(4):
        store.add_turn("alice", made["id"], a_turn(f"Question {number}?", f"Answer {number}."))
    assert store.continued("alice", made["id"], 2) == (
        "reports",
        [("Question 2?", "Answer 2."), ("Question 3?", "Answer 3.")],
    )


def test_only_its_owner_may_open_the_state_folder_and_read_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    store = ConversationStore(folder)
    store.add_turn("alice", store.create("alice", "default")["id"], a_turn(QUESTION))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    with closing(sqlite3.connect(store.path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        db.execute("SELECT COUNT(*) FROM turns").fetchone()  # the log files open with a read
        kept = sorted(path.name for path in folder.iterdir())
        assert kept == [f"{store.path.name}{end}" for end in ("", "-shm", "-wal")]
        for name in kept:
            assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name


def test_a_state_folder_that_cannot_be_made_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(ConfigError, match=r"cannot keep conversations in .*taken \(paths.state\)"):
        ConversationStore(tmp_path / "taken")


def test_processes_sharing_the_file_keep_every_turn(tmp_path: Path) -> None:
    """Two stores over one folder (two API processes), eight threads writing at once: every
    turn kept, numbered in order, none lost to a lock."""
    first, second = ConversationStore(tmp_path / "state"), ConversationStore(tmp_path / "state")
    made = first.create("alice", "default")

    def ask(number: int) -> None:
        store = first if number % 2 else second
        store.add_turn("alice", made["id"], a_turn(f"Question {number}?"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(ask, range(40)))
    kept = second.get("alice", made["id"])
    assert kept is not None
    assert sorted(turn["question"] for turn in kept["turns"]) == sorted(
        f"Question {number}?" for number in range(40)
    )
    assert first.listing("alice")[0]["turns"] == 40


# Owners and keys.


def test_each_key_makes_its_own_owner_and_a_server_without_keys_one_default(
    tmp_path: Path,
) -> None:
    async def owner_app(scope: Any, receive: Any, send: Any) -> None:
        await JSONResponse(scope["state"][OWNER])(scope, receive, send)

    def guard(api_key: str | None, store: KeyStore) -> TestClient:
        keys = Keys(api_key, store)
        return TestClient(Guard(owner_app, ServerSettings(), keys), base_url="http://127.0.0.1")

    store = KeyStore(tmp_path / "keyed")
    alice, bob = (store.add(name, "reader", None) for name in ("alice", "bob"))
    keyed = guard(KEY_A, store)
    owners = [keyed.get("/v1/conversations", headers=_bearer(k)).json() for k in (alice, bob)]
    assert owners == [f"key:{alice[3:15]}", f"key:{bob[3:15]}"]  # each by its key's id
    admin = keyed.get("/v1/conversations", headers=_bearer(KEY_A)).json()
    assert admin == "key:" + hashlib.sha256(KEY_A.encode()).hexdigest()[:16] == key_owner(KEY_A)
    for wrong in (_bearer("wrong"), _bearer(alice[:-1] + "x"), _bearer(f"{alice},{bob}"), {}):
        assert keyed.get("/v1/conversations", headers=wrong).status_code == 401
    open_server = guard(None, KeyStore(tmp_path / "open"))
    assert open_server.get("/v1/conversations").json() == "default"


def test_beyond_loopback_a_strong_key_or_keys_made_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DOCQA_API_KEY", raising=False)
    with pytest.raises(UsageError, match="without an API key: make keys with `docqa keys add"):
        checked_api_key("0.0.0.0")
    assert checked_api_key("0.0.0.0", keys_made=True) is None  # the key store's keys guard it
    monkeypatch.setenv("DOCQA_API_KEY", "short")
    with pytest.raises(ConfigError, match=r"weak DOCQA_API_KEY: it has 5 of the 32"):
        checked_api_key("0.0.0.0", keys_made=True)
    assert checked_api_key("127.0.0.1") == "short"  # on loopback: noted


# The Markdown.


def test_a_transcript_reads_as_docqa_chat_saves_it() -> None:
    source = Source(
        n=1,
        source=SOURCE,
        page=PAGE,
        text="Contracts\nThe minimum guarantee   is £18 million.",
        score=0.81237,
    )
    timings = Timings(0.1, 0.2, 0.3, 0.4)
    answers = [
        Answer(QUESTION, "£18 million [1].", [source], timings, query=QUESTION),
        Answer(FOLLOW_UP, "Five years [1].", [source], timings, query=f"{FOLLOW_UP} guarantee"),
    ]
    assert transcript([answer_dict(a) for a in answers], "docqa chat, 2026-01-02 03:04") == (
        "# docqa chat, 2026-01-02 03:04\n\n"
        f"**You:** {QUESTION}\n\n"
        "**docqa:** £18 million [1].\n\n"
        "- [1] orchard.pdf, page 3 (score 0.812): Contracts The minimum guarantee is £18 million.\n"
        "\n"
        f"**You:** {FOLLOW_UP}\n\n"
        "**docqa:** Five years [1].\n\n"
        f"*Searched for:* {FOLLOW_UP} guarantee\n\n"
        "- [1] orchard.pdf, page 3 (score 0.812): Contracts The minimum guarantee is £18 million.\n"
    )


# A real server, with two keys.


@dataclass
class Server:
    """`docqa serve` over `project`, taking alice's and bob's keys (readers of every
    collection, made with `docqa keys add`); restarted at will."""

    project: Path
    url: str = ""
    running: ExitStack = field(default_factory=ExitStack)
    alice: str = ""
    bob: str = ""

    def __post_init__(self) -> None:
        self.alice, self.bob = (_make_key(self.project, name) for name in ("alice", "bob"))

    def start(self) -> None:
        self.url, _ = self.running.enter_context(serving(self.project))

    def restart(self) -> None:
        self.running.close()
        self.start()

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=_bearer(key or self.alice), timeout=120)


def _make_key(project: Path, name: str) -> str:
    made = run_cli("-m", "docqa", "keys", "add", name, "--all", cwd=project)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@dataclass(frozen=True)
class Kept:
    """A conversation of alice's, carried on by the official openai client: QUESTION answered
    plainly, then FOLLOW_UP streamed."""

    id: str
    reply: Any  # the ChatCompletion of the first turn
    chunks: list[Any]  # the ChatCompletionChunks of the second


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    project = tmp_path_factory.mktemp("conversations")
    ingested_project(project)
    served = Server(project)
    with served.running:
        served.start()
        yield served


@pytest.fixture(scope="module")
def kept(server: Server) -> Kept:
    with server.client() as client:
        made = client.post("/v1/conversations", json={})
    assert made.status_code == 201, made.text
    chat = openai_client(server.url).with_options(api_key=server.alice).chat.completions
    carried_on = {"k": 3, "docqa": {"conversation": made.json()["id"]}}
    reply = chat.create(
        model="docqa", messages=[_user(QUESTION)], temperature=0, extra_body=carried_on
    )
    stream = chat.create(
        model="docqa",
        messages=[BRIEF, _user(FOLLOW_UP)],
        temperature=0,
        stream=True,
        extra_body=carried_on,
    )
    return Kept(made.json()["id"], reply, list(stream))


@pytest.mark.slow
def test_a_chat_completion_is_kept_with_its_sources_and_settings(
    server: Server, kept: Kept
) -> None:
    extra = kept.reply.model_extra["docqa"]
    assert extra["conversation"] == kept.id
    content = kept.reply.choices[0].message.content
    assert ANSWER in content
    with server.client() as client:
        conversation = client.get(f"/v1/conversations/{kept.id}").json()
    assert (conversation["title"], conversation["collection"]) == (QUESTION, "default")
    first = conversation["turns"][0]
    assert (first["question"], first["answer"]) == (QUESTION, content)
    assert first["sources"] == extra["sources"]
    assert (first["sources"][0]["source"], first["sources"][0]["page"]) == (SOURCE, PAGE)
    assert {"abstained", "revision", "raw_answer", "timings", "usage", "model"} <= first.keys()
    settings = first["settings"]
    assert (settings["collection"], settings["k"], settings["temperature"]) == ("default", 3, 0)
    assert {"top_p", "max_new_tokens", "seed", "stop"} <= settings.keys()


@pytest.mark.slow
def test_a_streamed_follow_up_carries_on_from_the_kept_turns(server: Server, kept: Kept) -> None:
    finished = [c for c in kept.chunks if c.choices and c.choices[0].finish_reason]
    assert len(finished) == 1
    extra = finished[0].model_extra["docqa"]
    assert extra["conversation"] == kept.id
    with server.client() as client:
        turns = client.get(f"/v1/conversations/{kept.id}").json()["turns"]
    assert [turn["question"] for turn in turns] == [QUESTION, FOLLOW_UP]
    follow_up = turns[1]
    assert follow_up["answer"] == extra["answer"]
    assert follow_up["sources"] == extra["sources"]
    # Only the kept first turn names Brightwater Foods: the search for the follow-up did.
    assert "Brightwater" in follow_up["query"]
    assert (follow_up["sources"][0]["source"], follow_up["sources"][0]["page"]) == (SOURCE, PAGE)
    assert follow_up["settings"]["k"] == 3


@pytest.mark.slow
def test_carrying_on_takes_only_the_new_question_of_a_conversation_there_is(
    server: Server, kept: Kept
) -> None:
    with server.client() as client:
        messages = [_user(QUESTION), {"role": "assistant", "content": "£18 million."}, _user("?")]
        body = {"messages": messages, "docqa": {"conversation": kept.id}}
        replayed = client.post("/v1/chat/completions", json=body)
        assert replayed.status_code == 400
        assert "only its new question" in replayed.json()["error"]["message"]
        body = {"messages": [_user(QUESTION)], "docqa": {"conversation": "conv_" + "0" * 24}}
        unknown = client.post("/v1/chat/completions", json=body)
        assert unknown.status_code == 404
        assert unknown.json()["error"]["message"] == "no such conversation"
        body = {
            "messages": [_user(QUESTION)],
            "docqa": {"conversation": kept.id, "collection": "x"},
        }
        assert client.post("/v1/chat/completions", json=body).status_code == 400
        assert client.get(f"/v1/conversations/{kept.id}").json()["turns"][-1]["question"] == (
            FOLLOW_UP
        )


@pytest.mark.slow
def test_conversations_are_listed_renamed_exported_and_deleted(server: Server, kept: Kept) -> None:
    with server.client() as client:
        assert client.post("/v1/conversations", json={"collection": "nope"}).status_code == 404
        other = client.post("/v1/conversations", json={"title": "Ferries"}).json()
        listed = client.get("/v1/conversations").json()
        assert listed["object"] == "list"
        assert [(c["id"], c["turns"]) for c in listed["data"]] == [(other["id"], 0), (kept.id, 2)]
        assert listed["data"][0] == {
            "id": other["id"],
            "object": "conversation",
            "title": "Ferries",
            "collection": "default",
            "created": other["created"],
            "updated": other["updated"],
            "turns": 0,
        }

        title = 'Brightwater "contract"/../../evil.sh'
        renamed = client.patch(f"/v1/conversations/{kept.id}", json={"title": title})
        assert renamed.status_code == 200
        assert (renamed.json()["title"], renamed.json()["turns"]) == (title, 2)
        too_long = client.patch(f"/v1/conversations/{kept.id}", json={"title": "x" * 201})
        assert too_long.status_code == 400

        exported = client.get(f"/v1/conversations/{kept.id}/export")
        turns = client.get(f"/v1/conversations/{kept.id}").json()["turns"]
        assert exported.status_code == 200
        assert exported.headers["content-type"] == "text/markdown; charset=utf-8"
        assert exported.headers["content-disposition"] == f'attachment; filename="{kept.id}.md"'
        assert exported.text == transcript(turns, title)
        assert exported.text.startswith(f"# {title}\n\n**You:** {QUESTION}\n\n**docqa:** ")
        assert f"\n*Searched for:* {turns[1]['query']}\n" in exported.text
        assert re.search(
            r"^- \[1\] orchard\.pdf, page 3 \(score \d\.\d{3}\): ", exported.text, re.M
        )

        deleted = client.delete(f"/v1/conversations/{other['id']}")
        assert deleted.json() == {"id": other["id"], "object": "conversation", "deleted": True}
        for gone in (
            client.get(f"/v1/conversations/{other['id']}"),
            client.delete(f"/v1/conversations/{other['id']}"),
        ):
            assert gone.status_code == 404
            assert gone.json()["error"]["message"] == "no such conversation"
        assert [c["id"] for c in client.get("/v1/conversations").json()["data"]] == [kept.id]


@pytest.mark.slow
def test_another_key_sees_none_of_them_and_a_wrong_key_none_at_all(
    server: Server, kept: Kept
) -> None:
    with server.client(server.bob) as client:
        assert client.get("/v1/conversations").json() == {"object": "list", "data": []}
        path = f"/v1/conversations/{kept.id}"
        carry_on = {"messages": [_user(FOLLOW_UP)], "docqa": {"conversation": kept.id}}
        for refused in (
            client.get(path),
            client.patch(path, json={"title": "Mine now"}),
            client.get(f"{path}/export"),
            client.delete(path),
            client.post("/v1/chat/completions", json=carry_on),
        ):
            assert refused.status_code == 404, refused.request
            assert refused.json()["error"]["message"] == "no such conversation"
    for wrong in (_bearer("wrong"), {}):
        assert httpx.get(f"{server.url}/v1/conversations", headers=wrong).status_code == 401
    with server.client() as client:
        still = client.get(f"/v1/conversations/{kept.id}").json()
    assert len(still["turns"]) == 2
    assert still["title"] != "Mine now"


@pytest.mark.slow
def test_a_stream_stopped_before_its_answer_keeps_nothing(server: Server) -> None:
    long = long_question()
    question = long.pop("question")
    with server.client() as client:
        made = client.post("/v1/conversations", json={"title": "Stopped"}).json()
        carried_on = {"docqa": {"conversation": made["id"]}, "stream": True}
        body = {"messages": [_user(question)], **long, **carried_on}
        with client.stream("POST", "/v1/chat/completions", json=body) as streamed:
            chunks = (
                json.loads(line.removeprefix("data: "))
                for line in streamed.iter_lines()
                if line.startswith("data: {")
            )
            job_id = next(chunks)["id"].removeprefix("chatcmpl-")
            assert len(list(islice(chunks, 3))) == 3  # answering: then the client goes
        deadline = time.monotonic() + 60
        while client.get(f"/v1/jobs/{job_id}").json()["status"] not in ("cancelled", "done"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
        assert client.get(f"/v1/conversations/{made['id']}").json()["turns"] == []
        client.delete(f"/v1/conversations/{made['id']}")


@pytest.mark.slow
def test_a_restart_keeps_the_conversations(server: Server, kept: Kept) -> None:
    with server.client() as client:
        before = client.get(f"/v1/conversations/{kept.id}").json()
    server.restart()
    with server.client() as client:
        assert client.get(f"/v1/conversations/{kept.id}").json() == before
        assert kept.id in [c["id"] for c in client.get("/v1/conversations").json()["data"]]


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _user(text: str) -> ChatCompletionUserMessageParam:
    return {"role": "user", "content": text}
