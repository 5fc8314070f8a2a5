"""A library of look-alike documents: each document knows who and when it is, a question is
searched in the documents it names, answers stay inside them, and a user's corrections to
what a document is survive every ingest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docqa.answer.qa import QAService
from docqa.config import Settings, load_settings
from docqa.index.corrections import FILE_NAME
from docqa.index.ingest import ingest
from docqa.index.report import IngestProgress
from tests.fixtures.library import write_library
from tests.fixtures.projects import run_cli

pytestmark = pytest.mark.slow

ACME_Q3 = "filings/acme-2023-q3.pdf"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("library")
    settings = load_settings(
        None, {"paths": {"data": write_library(folder / "data"), "vectorstore": folder / "index"}}
    )
    ingest(settings)
    return settings


@pytest.fixture(scope="module")
def service(library: Settings) -> QAService:
    service = QAService(library)
    service.load(with_llm=True)
    return service


def test_each_document_knows_who_and_when_it_is(library: Settings) -> None:
    from docqa.index.manifest import read_manifest

    manifest, _ = read_manifest(library.paths.vectorstore)
    labels = {entry.source: entry.identity.label for entry in manifest.files}
    assert labels[ACME_Q3] == (
        "Acme Rockets Corporation, quarterly report, quarter ended July 1, 2023 (Q3 FY2023)"
    )
    assert labels["filings/birch-2023-q3.pdf"].startswith("Birch Foods Inc., quarterly report")
    assert labels["larkspur-annual-report-2024-SAMPLE.pdf"] == (
        "Larkspur Outdoor Gear Ltd, annual report, year ended December 31, 2024 (FY2024)"
    )


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("What were Acme's total net sales in Q3 FY2023?", ACME_Q3),
        ("What were ACME's total net sales for the quarter ended April 1, 2023?",
         "filings/acme-2023-q2.pdf"),
        ("What was Birch Foods' gross margin in the third quarter of fiscal 2023?",
         "filings/birch-2023-q3.pdf"),
    ],
)  # fmt: skip
def test_a_question_is_searched_in_the_documents_it_names(
    service: QAService, question: str, source: str
) -> None:
    hits = service.search(question, k=4)
    assert len(hits) == 4  # k still come back: the search ran inside the document
    assert {hit.source for hit in hits} == {source}
    assert hits[0].document is not None
    assert hits[0].document.label.startswith(("Acme Rockets Corporation", "Birch Foods"))


def test_routing_off_searches_everything(library: Settings) -> None:
    plain = QAService(library.model_copy(update={"retrieval": library.retrieval.model_copy(
        update={"routing": "off"})}))  # fmt: skip
    hits = plain.search("What were Acme's total net sales in Q3 FY2023?", k=4)
    assert len({hit.source for hit in hits}) > 1


def test_boost_ranks_the_named_documents_first_without_excluding_others(
    library: Settings,
) -> None:
    boosted = QAService(library.model_copy(update={"retrieval": library.retrieval.model_copy(
        update={"routing": "boost"})}))  # fmt: skip
    hits = boosted.search("What were Acme's total net sales in Q3 FY2023?", k=6)
    assert hits[0].source == ACME_Q3
    assert len({hit.source for hit in hits}) > 1


def test_a_prior_year_is_the_named_documents_prior_year(service: QAService) -> None:
    route = service.route(
        "In Acme's 10-Q for the quarter ended July 1, 2023, what were total net sales in the "
        "same quarter of the prior year?"
    )
    assert route.years == frozenset({"2022"})
    assert service.route("What were Acme's total net sales in Q3 FY2023?").years == {"2023"}


def test_an_organisation_the_library_lacks_is_declined_without_the_model(
    service: QAService,
) -> None:
    answer = service.ask("What were Tesla's total net sales in Q3 FY2023?")
    assert answer.abstained
    assert answer.answer == "The documents do not mention Tesla."
    assert answer.completion is None


def test_a_period_the_library_lacks_is_declined(service: QAService) -> None:
    answer = service.ask("What were Birch Foods' total net sales in Q2 FY2023?")
    assert answer.abstained
    assert answer.answer == "The documents do not cover Birch Foods' Q2 FY2023."


def test_an_answer_from_an_unnamed_document_says_which_it_is(service: QAService) -> None:
    answer = service.ask("How much is the minimum guarantee payable by Northwind Textiles?")
    assert answer.answer is not None
    assert "£42 million" in answer.answer
    assert answer.answer.endswith(
        "(From Larkspur Outdoor Gear Ltd, annual report, year ended December 31, 2024 (FY2024).)"
    )
    named = service.ask("What were Acme's total net sales in Q3 FY2023?")
    assert "(From" not in (named.answer or "")  # it named its document


class Reads(IngestProgress):
    def __init__(self) -> None:
        self.pages = 0

    def page(self, ocr: bool = False) -> None:
        self.pages += 1


def test_a_correction_is_applied_without_reading_again_and_survives(
    tmp_path: Path, library: Settings
) -> None:
    import shutil

    data, index = tmp_path / "data", tmp_path / "index"
    shutil.copytree(library.paths.data, data)
    shutil.copytree(library.paths.vectorstore, index)
    args = ("--data", str(data), "--vectorstore", str(index))
    edit = run_cli(
        "-m", "docqa", "meta", ACME_Q3, "--org", "Acme Launch Systems", "--alias", "ALS",
        "--period", "Q3 FY2024", *args, cwd=tmp_path,
    )  # fmt: skip
    assert edit.returncode == 0, edit.stderr
    assert "run `python ingest.py` to apply it" in edit.stderr
    assert (data / FILE_NAME).is_file()
    status = run_cli("-m", "docqa", "status", "--json", *args, cwd=tmp_path)
    assert json.loads(status.stdout)["pending"]["corrected"] == [ACME_Q3]

    settings = load_settings(None, {"paths": {"data": data, "vectorstore": index}})
    reads = Reads()
    report = ingest(settings, reads)
    assert report.written
    assert reads.pages == 0
    service = QAService(settings)
    hits = service.search("What were total net sales of Acme Launch Systems in Q3 FY2024?", 2)
    assert {hit.source for hit in hits} == {ACME_Q3}
    assert hits[0].document is not None
    assert hits[0].document.label.startswith("Acme Launch Systems, quarterly report")
    assert hits[0].document.corrected == ["aliases", "organisations", "period"]

    again = ingest(settings, Reads())  # nothing changed: the correction stays
    assert not again.written
    listing = run_cli("-m", "docqa", "meta", "--json", *args, cwd=tmp_path)
    rows = {row["source"]: row for row in json.loads(listing.stdout)}
    assert rows[ACME_Q3]["document"]["organisations"] == ["Acme Launch Systems"]
    assert not rows[ACME_Q3]["pending"]

    reset = run_cli("-m", "docqa", "meta", ACME_Q3, "--reset", *args, cwd=tmp_path)
    assert reset.returncode == 0, reset.stderr
    ingest(settings)
    shown = run_cli("-m", "docqa", "meta", ACME_Q3, "--json", *args, cwd=tmp_path)
    assert json.loads(shown.stdout)["organisations"] == ["Acme Rockets Corporation"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("filings/nothing.pdf", "--title", "x"), "is not an indexed file"),
        ((ACME_Q3, "--period", "someday"), "--period: Value error"),
    ],
)
def test_meta_refuses_with_one_line(
    tmp_path: Path, library: Settings, args: tuple[str, ...], message: str
) -> None:
    result = run_cli(
        "-m", "docqa", "meta", *args, "--data", str(library.paths.data),
        "--vectorstore", str(library.paths.vectorstore), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (library.paths.data / FILE_NAME).exists()


def test_sources_show_what_their_document_is(library: Settings, tmp_path: Path) -> None:
    args = ("--vectorstore", str(library.paths.vectorstore), "--retrieve-only")
    text = run_cli("main.py", "What were Acme's total net sales in Q3 FY2023?", *args, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "acme-2023-q3.pdf, page 2 (score" in text.stdout
    assert (
        "\u2014 Acme Rockets Corporation, quarterly report, quarter ended July 1, 2023"
        in text.stdout
    )
    found = run_cli("main.py", "Acme's net sales in Q3 FY2023?", *args, "--json", cwd=tmp_path)
    document = json.loads(found.stdout)["sources"][0]["document"]
    assert document["organisations"] == ["Acme Rockets Corporation"]
    assert (document["fiscal_year"], document["quarter"]) == (2023, 3)
    assert document["period_end"] == "2023-07-01"
