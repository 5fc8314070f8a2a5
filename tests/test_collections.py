"""Collections and filters: separate document sets, each with its data folder and index, that
never answer from each other; and questions limited to the documents a user picks, inside
the search (the fast tests on the fake embedding; the command line on the real models)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from docqa.answer.qa import QAService
from docqa.answer.selection import Selection
from docqa.collection import DEFAULT, checked_name, collections, create, delete, in_collection
from docqa.config import Settings
from docqa.errors import UsageError
from docqa.index.ingest import ingest
from docqa.server.app import create_app
from docqa.server.executors import InlineExecutor
from tests.fixtures.fakes import fake_embedder, scripted_llm
from tests.fixtures.library import write_library
from tests.fixtures.pdfs import SAMPLE_NAME, write_pdf, write_sample
from tests.fixtures.projects import fake_settings, run_cli, write_documents

QUESTION = "What were the total net sales for the third quarter?"
FESTIVAL = "When is the annual harvest festival?"


@pytest.mark.parametrize("name", ["a/b", "..", "../x", "a" * 300, "", "-x", "a b", "x\\y"])
def test_names_that_are_paths_or_too_long_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="is not a collection name"):
        checked_name(name)


def test_collections_are_created_listed_and_deleted_without_their_documents(
    tmp_path: Path,
) -> None:
    settings = fake_settings(tmp_path)
    hr = create(settings, "hr")
    assert hr.data == tmp_path / "collections" / "hr" / "data"
    (hr.data / "policy.pdf").write_bytes(b"%PDF-1.7\n")
    elsewhere = create(settings, "finance", tmp_path / "filings")
    assert elsewhere.data == tmp_path / "filings"
    assert [c.name for c in collections(settings)] == [DEFAULT, "finance", "hr"]
    assert in_collection(settings, "finance").paths.vectorstore == (
        tmp_path / "collections" / "finance" / "index"
    )
    with pytest.raises(UsageError, match="exists already"):
        create(settings, "hr")
    with pytest.raises(UsageError, match="always exists"):
        create(settings, DEFAULT)
    delete(settings, "hr")
    assert (hr.data / "policy.pdf").exists()  # the user's documents stay
    with pytest.raises(UsageError, match="no collection 'hr': there are default, finance"):
        in_collection(settings, "hr")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    project = tmp_path_factory.mktemp("filters")
    write_library(project / "data")
    settings = fake_settings(project)
    ingest(settings, embedder=fake_embedder())
    return settings


def sources_found(settings: Settings, k: int = 4, **selected: list[str]) -> list[str]:
    """The sources of the k chunks found for QUESTION within --source/--where flags."""
    service = QAService(settings, _embedder=fake_embedder())
    limited = service.limited(
        Selection.parse(selected.get("source", []), selected.get("where", []))
    )
    return [hit.source for hit in limited.search(QUESTION, k)]


def test_filters_restrict_the_search_and_still_give_k_results(library: Settings) -> None:
    assert set(sources_found(library)) > {"filings/acme-2023-q3.pdf"}
    birch = sources_found(library, where=["org=birch foods"])
    assert set(birch) == {"filings/birch-2023-q3.pdf"}
    second_quarter = sources_found(library, where=["period=Q2"])
    assert set(second_quarter) == {"filings/acme-2023-q2.pdf"}
    acme = sources_found(library, k=6, source=["filings/acme-*"])
    assert len(acme) == 6
    assert set(acme) == {"filings/acme-2023-q2.pdf", "filings/acme-2023-q3.pdf"}
    quarterlies = sources_found(library, k=8, where=["kind=10-Q"])
    assert len(quarterlies) == 8
    assert all(source.startswith("filings/") for source in quarterlies)
    both = sources_found(library, source=["filings/*"], where=["org=ACME", "period=FY2023"])
    assert set(both) <= {"filings/acme-2023-q2.pdf", "filings/acme-2023-q3.pdf"}


def test_a_filter_that_matches_nothing_says_what_there_is(library: Settings) -> None:
    with pytest.raises(UsageError) as refused:
        sources_found(library, where=["org=Tesla"])
    message = str(refused.value)
    assert message.startswith("no document matches --where org=Tesla (the index holds files: ")
    assert "Acme Rockets" in message
    assert "Birch Foods" in message
    with pytest.raises(UsageError, match="--where 'colour=red': write KEY=VALUE"):
        Selection.parse([], ["colour=red"])


@pytest.mark.slow
def test_two_collections_never_answer_from_each_other(tmp_path: Path) -> None:
    write_sample(tmp_path / "data")
    assert run_cli("-m", "docqa", "collections", "create", "farm", cwd=tmp_path).returncode == 0
    write_documents(tmp_path / "collections" / "farm" / "data", broken=False)
    for collection in ("--collection=farm", "--collection=default"):
        result = run_cli("ingest.py", collection, cwd=tmp_path)
        assert result.returncode == 0, result.stderr

    def answer(question: str, *flags: str) -> dict:
        result = run_cli("main.py", question, "--json", "--temperature", "0", *flags, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    farm = answer("When is the annual harvest festival?", "--collection", "farm")
    assert "14 September" in farm["answer"]
    assert {s["source"] for s in farm["sources"]} <= {"orchard.pdf", "travel/ferries.pdf"}
    sample = answer("When is the annual harvest festival?")
    assert {s["source"] for s in sample["sources"]} == {"larkspur-annual-report-2024-SAMPLE.pdf"}
    ferries = answer("When is the harvest festival?", "--collection=farm", "--source=travel/*")
    assert {s["source"] for s in ferries["sources"]} == {"travel/ferries.pdf"}

    listed = run_cli("-m", "docqa", "collections", "list", "--json", cwd=tmp_path)
    held = {c["name"]: c["files"] for c in json.loads(listed.stdout)["collections"]}
    assert held == {"default": 1, "farm": 2}
    conversation = run_cli(
        "-m",
        "docqa",
        "chat",
        "--json",
        cwd=tmp_path,
        input="When is the annual harvest festival?\n/collection farm\n"
        "When is the annual harvest festival?\n/collection nowhere\n",
    )
    assert conversation.returncode == 0, conversation.stderr
    first, second = (json.loads(line) for line in conversation.stdout.splitlines())
    assert first["sources"][0]["source"] == "larkspur-annual-report-2024-SAMPLE.pdf"
    assert second["sources"][0]["source"] == "orchard.pdf"
    assert "(new conversation, over collection farm)" in conversation.stderr
    assert "error: no collection 'nowhere': there are default, farm" in conversation.stderr

    refused = run_cli("-m", "docqa", "collections", "delete", "farm", cwd=tmp_path)
    assert (refused.returncode, refused.stderr.strip()) == (
        2,
        "error: deleting collection 'farm' needs --yes when not asked",
    )
    deleted = run_cli("-m", "docqa", "collections", "delete", "farm", "--yes", cwd=tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert (tmp_path / "collections" / "farm" / "data" / "orchard.pdf").exists()
    assert not (tmp_path / "collections" / "farm" / "index").exists()


@pytest.fixture(scope="module")
def two_collections(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The API over a project whose default collection holds the sample report and whose
    collection "farm" the orchard and ferry documents (fake embedding, scripted model)."""
    project = tmp_path_factory.mktemp("two")
    write_sample(project / "data")
    settings = fake_settings(project)
    ingest(settings, embedder=fake_embedder())
    write_documents(create(settings, "farm").data, broken=False)
    ingest(in_collection(settings, "farm"), embedder=fake_embedder())
    service = QAService(settings, _embedder=fake_embedder(), _llm=scripted_llm(settings))
    service.load()
    executor = InlineExecutor(settings, service)
    try:
        app = create_app(settings, executor, api_key=None)
        with TestClient(app, base_url="http://127.0.0.1:8000") as client:
            yield client
    finally:
        executor.close()


def test_the_api_answers_from_the_collection_asked(two_collections: TestClient) -> None:
    client = two_collections
    models = [model["id"] for model in client.get("/v1/models").json()["data"]]
    assert models == ["docqa", "docqa/farm"]
    farm = {"orchard.pdf", "travel/ferries.pdf"}
    asked = client.post("/v1/ask", json={"question": FESTIVAL, "collection": "farm"}).json()
    assert {source["source"] for source in asked["sources"]} <= farm
    default = client.post("/v1/ask", json={"question": FESTIVAL}).json()
    assert {source["source"] for source in default["sources"]} == {SAMPLE_NAME}
    body = {"model": "docqa/farm", "messages": [{"role": "user", "content": FESTIVAL}]}
    chat = client.post("/v1/chat/completions", json=body).json()
    assert {source["source"] for source in chat["docqa"]["sources"]} <= farm
    limited = {"question": FESTIVAL, "collection": "farm", "source": ["travel/*"]}
    ferries = client.post("/v1/ask", json=limited).json()
    assert {source["source"] for source in ferries["sources"]} == {"travel/ferries.pdf"}
    extension = {**body, "model": "docqa", "docqa": {"collection": "farm", "source": ["travel/*"]}}
    chat = client.post("/v1/chat/completions", json=extension).json()
    assert {source["source"] for source in chat["docqa"]["sources"]} == {"travel/ferries.pdf"}


def test_the_api_refuses_unknown_collections_and_unmatched_filters(
    two_collections: TestClient,
) -> None:
    client = two_collections
    unknown = client.post("/v1/ask", json={"question": FESTIVAL, "collection": "hr"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "no collection 'hr': there are default, farm"
    body = {"model": "docqa/hr", "messages": [{"role": "user", "content": FESTIVAL}]}
    assert client.post("/v1/chat/completions", json=body).status_code == 404
    bad = client.post("/v1/ask", json={"question": FESTIVAL, "collection": "../data"})
    assert bad.status_code == 404
    nothing = client.post("/v1/ask", json={"question": FESTIVAL, "where": {"org": "Tesla"}})
    assert nothing.status_code == 400
    assert nothing.json()["error"]["message"].startswith("no document matches --where org=Tesla")


@pytest.mark.slow
def test_collections_are_made_filled_and_deleted_over_http(
    two_collections: TestClient, tmp_path: Path
) -> None:
    client = two_collections
    listed = {c["name"]: c for c in client.get("/v1/collections").json()["data"]}
    assert (listed["default"]["files"], listed["farm"]["files"]) == (1, 2)
    assert all("data" not in c for c in listed.values())  # no server path is shown
    assert client.post("/v1/collections", json={"name": "hr"}).status_code == 201
    assert client.post("/v1/collections", json={"name": "hr"}).status_code == 409
    assert client.post("/v1/collections", json={"name": "../x"}).status_code == 400
    policy = write_pdf(tmp_path / "leave.pdf", ["Staff take 28 days of annual leave a year."])
    upload = client.post(
        "/v1/documents?collection=hr", files={"file": ("leave.pdf", policy.read_bytes())}
    )
    assert upload.status_code == 202, upload.text
    job = upload.json()["job_id"]
    while client.get(f"/v1/jobs/{job}").json()["status"] not in ("done", "failed"):
        time.sleep(0.1)
    assert client.get(f"/v1/jobs/{job}").json()["status"] == "done"
    documents = client.get("/v1/documents?collection=hr").json()["data"]
    assert [d["name"] for d in documents] == ["leave.pdf"]
    assert len(client.get("/v1/documents?collection=farm").json()["data"]) == 2
    asked = client.post("/v1/ask", json={"question": "How much leave?", "collection": "hr"})
    assert asked.json()["sources"][0]["source"] == f"uploads/{upload.json()['id']}.pdf"
    assert client.get("/v1/documents?collection=nowhere").status_code == 404
    assert client.delete("/v1/collections/default").status_code == 400
    assert client.delete("/v1/collections/hr").json() == {"name": "hr", "deleted": True}
    assert (
        client.post("/v1/ask", json={"question": "Leave?", "collection": "hr"}).status_code == 404
    )
