"""Every format docqa reads, as a user meets it: a mixed folder ingested (unsupported files
reported, hostile Office files failed with their reasons), each fact answered through
`main.py --json` and cited with its locator, and each type uploaded over HTTP."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest

from docqa.config import LoadingSettings
from docqa.index.formats import FORMATS, read_document_file, sniff
from docqa.index.loading import ReadError
from tests.fixtures.formats import (
    FACTS,
    UNSUPPORTED,
    docx_bytes,
    eml_bytes,
    pptx_bytes,
    with_part,
    write_formats,
    write_hostile_office,
    xlsx_bytes,
)
from tests.fixtures.projects import run_cli
from tests.fixtures.services import serving, wait_for_job

LIMITS = {"DOCQA_LOADING__MAX_STREAM_MB": "32"}  # the zip bomb's part is 64 MB


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str]:
    """A project whose data folder mixes every format, unsupported types and hostile Office
    files, ingested once: the folder, the hostile files' reasons, the ingest's output."""
    folder = tmp_path_factory.mktemp("mixed")
    write_formats(folder / "data")
    secret = folder / "secret.txt"
    secret.write_text("the entity must never read this: 7734-SECRET")
    hostile = write_hostile_office(folder / "data" / "hostile", secret)
    result = run_cli("ingest.py", cwd=folder, env=LIMITS)
    assert result.returncode == 3, result.stderr  # 3: indexed, with files that failed
    return folder, hostile, result.stdout


@pytest.mark.slow
def test_a_mixed_folder_is_indexed_and_the_rest_reported(
    mixed: tuple[Path, dict[str, str], str],
) -> None:
    folder, hostile, output = mixed
    assert f"Indexed {len({fact.source for fact in FACTS})} files" in output
    for name, reason in UNSUPPORTED.items():
        assert f"  {name}: {reason}" in output
    for name, reason in hostile.items():
        assert f"  hostile/{name}: {reason}" in output
    index = b"".join(path.read_bytes() for path in (folder / "vectorstore").rglob("*.*"))
    assert b"7734-SECRET" not in index
    status = json.loads(run_cli("-m", "docqa", "status", "--json", cwd=folder, env=LIMITS).stdout)
    states = {row["source"]: row for row in status["files"]}
    for name, reason in UNSUPPORTED.items():
        assert states[name]["state"] == "unsupported"
        assert states[name]["reason"].startswith(reason)
    assert {states[f"hostile/{name}"]["state"] for name in hostile} == {"failed"}
    assert states["budget.xlsx"]["parser"] == "openpyxl"


@pytest.mark.slow
def test_each_fact_is_answered_and_cited_with_its_locator(
    mixed: tuple[Path, dict[str, str], str],
) -> None:
    folder, _, _ = mixed
    questions = folder / "questions.txt"
    questions.write_text("".join(fact.question + "\n" for fact in FACTS))
    result = run_cli("main.py", "--questions-file", str(questions), "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    for fact, answer in zip(FACTS, answers, strict=True):
        first = answer["sources"][0]
        assert (first["source"], first["locator"]) == (fact.source, fact.locator), fact
        assert fact.answer in first["text"]
        assert first["page"] is None  # pages are a PDF's
        assert answer["answer"], fact


def test_each_format_reads_its_facts_where_the_locator_says() -> None:
    """The readers alone, without the models: each fact is in the unit its locator names."""
    loading = LoadingSettings()
    folder_files = {
        "handbook.docx": docx_bytes(),
        "board.pptx": pptx_bytes(),
        "budget.xlsx": xlsx_bytes(),
        "offer.eml": eml_bytes(),
    }
    for fact in FACTS:
        if fact.source not in folder_files:
            continue
        opened = read_document_file(fact.source, folder_files[fact.source], loading)
        units = {unit.where: unit for unit in opened.pages()}
        where = fact.locator.split(", rows")[0]
        assert fact.answer in units[where].text, (fact, units)
    notes = [unit for unit in read_document_file("offer.eml", eml_bytes(), loading).pages()]
    assert notes[1].where == "attachment terms.txt"
    assert "90 days" in notes[1].text


def test_hostile_office_files_fail_with_their_reason(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("7734-SECRET")
    reasons = write_hostile_office(tmp_path / "hostile", secret)
    loading = LoadingSettings(max_stream_mb=32)
    for name, reason in reasons.items():
        with pytest.raises(ReadError, match="^" + reason.replace(".", r"\.")):
            read_document_file(name, (tmp_path / "hostile" / name).read_bytes(), loading)


@pytest.mark.parametrize(
    ("name", "package", "part", "kind"),
    [
        ("cut.docx", docx_bytes(), "word/document.xml", "Word"),
        ("cut.pptx", pptx_bytes(), "ppt/slides/slide2.xml", "PowerPoint"),
        ("cut.xlsx", xlsx_bytes(), "xl/worksheets/sheet1.xml", "Excel"),
    ],
)
def test_a_damaged_office_file_fails_with_its_library_s_reason(
    name: str, package: bytes, part: str, kind: str
) -> None:
    """Whatever a format's library raises on a damaged file is that file's failure: the
    ingest goes on with the other files."""
    with zipfile.ZipFile(io.BytesIO(package)) as source:
        body = source.read(part)
    damaged = with_part(package, part, body[: len(body) // 2])
    with pytest.raises(ReadError, match=f"^not a readable {kind} file \\("):
        list(read_document_file(name, damaged, LoadingSettings()).pages())


@pytest.mark.parametrize(
    ("name", "content", "kept_as"),
    [
        ("report.docx", docx_bytes(), ".docx"),
        ("no-extension", pptx_bytes(), ".pptx"),  # the content tells
        ("budget.xlsx", xlsx_bytes(), ".xlsx"),
        ("mail.txt", eml_bytes(), ".eml"),
        ("page.txt", b"<!DOCTYPE html><html><body><p>Hello there</p></body></html>", ".html"),
        ("table.csv", b"a,b\n1,2\n", ".csv"),
        ("notes.md", b"# Notes\n\nSome text.\n", ".md"),
    ],
)
def test_uploads_are_typed_by_their_content(
    tmp_path: Path, name: str, content: bytes, kept_as: str
) -> None:
    path = tmp_path / "upload.part"
    path.write_bytes(content)
    assert sniff(path, name) == kept_as
    assert kept_as in FORMATS


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("report.pdf", b"just text, named .pdf\n", "named .pdf, but it is not a PDF file"),
        ("report.docx", pptx_bytes(), "named .docx, but it is not a Word file"),
        ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "an encrypted or older"),
        ("photo.jpg", b"\xff\xd8\xff\xe0\0\x10JFIF\0", "not a type docqa reads"),
        ("bundle.zip", b"PK\x03\x04", "a damaged zip file"),
        ("notes.rtf", b"{\\rtf1 some text}", "not a supported type: .rtf"),
    ],
)
def test_uploads_of_other_types_are_refused(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / "upload.part"
    path.write_bytes(content)
    with pytest.raises(ReadError, match=reason):
        sniff(path, name)


@pytest.mark.slow
def test_each_type_uploaded_over_http_is_indexed_and_answered(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    write_formats(sources)
    folder = tmp_path / "served"
    (folder / "data").mkdir(parents=True)
    with serving(folder, ready=False) as (url, _):  # no index until the first upload
        ids = {}
        for fact in FACTS:
            if fact.source in ids:
                continue
            content = (sources / fact.source).read_bytes()
            reply = httpx.post(f"{url}/v1/documents", files={"file": (fact.source, content)})
            assert reply.status_code == 202, reply.text
            ids[fact.source] = reply.json()["id"]
            assert wait_for_job(url, reply.json()["job_id"])["status"] == "done"
        old = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)  # a Word 97 file's start
        refused = httpx.post(f"{url}/v1/documents", files={"file": ("old.doc", old)})
        assert refused.status_code == 415, refused.text
        assert refused.json()["error"]["code"] == "unsupported_type"
        listed = httpx.get(f"{url}/v1/documents").json()
        names = {document["name"] for document in listed["data"]}
        assert names == set(ids), listed
        for fact in FACTS:
            reply = httpx.post(f"{url}/v1/ask", json={"question": fact.question}, timeout=120)
            first = reply.json()["sources"][0]
            suffix = Path(fact.source).suffix
            assert first["source"] == f"uploads/{ids[fact.source]}{suffix}", fact
            assert first["locator"] == fact.locator, fact
