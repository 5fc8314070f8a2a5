"""The ingest and QA services in-process, on the bundled sample and (when present) the 20-F."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from docqa.answer.qa import QAService
from docqa.config import Settings, load_settings
from docqa.errors import ConfigError, NoDocumentsError, VectorStoreError
from docqa.index.ingest import ingest
from docqa.index.report import IngestProgress
from tests.fixtures.pdfs import SAMPLE_NAME, SAMPLE_QUESTION, write_pdf, write_sample
from tests.fixtures.projects import REPO, write_documents

pytestmark = pytest.mark.slow


def settings_for(data: Path, vectorstore: Path, **sections: dict) -> Settings:
    return load_settings(
        None, {"paths": {"data": data, "vectorstore": vectorstore}, **sections}, environ={}
    )


class Recorder(IngestProgress):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def start(self, files: int) -> None:
        self.events.append(("start", files))

    def file(self, source: str, pages: int) -> None:
        self.events.append(("file", (source, pages)))

    def page(self, ocr: bool = False) -> None:
        self.events.append(("page", 1))

    def chunked(self, chunks: int) -> None:
        self.events.append(("chunked", chunks))

    def embedded(self, chunks: int) -> None:
        self.events.append(("embedded", chunks))


def test_ingest_reports_progress_and_failures(tmp_path: Path) -> None:
    data = write_documents(tmp_path / "data")
    write_pdf(data / "scan.pdf", ["", "", ""])
    recorder = Recorder()
    report = ingest(settings_for(data, tmp_path / "vs"), recorder)
    assert [f.source for f in report.files] == ["orchard.pdf", "travel/ferries.pdf"]
    assert (report.pages, report.chunks) == (5, 5)
    failed = {failure.source: failure.reason for failure in report.failed}
    assert failed["scan.pdf"] == "no text on its 3 pages, even by OCR"
    assert "OCR" in failed["scan.pdf"]
    assert "not a readable PDF" in failed["broken.pdf"]
    assert recorder.events[0] == ("start", 4)
    assert [n for kind, n in recorder.events if kind == "file"][:2] == [
        ("broken.pdf", 0),
        ("orchard.pdf", 3),
    ]
    assert len([n for kind, n in recorder.events if kind == "page"]) == 5 + 3  # scan.pdf too
    assert [n for kind, n in recorder.events if kind == "chunked"] == [3, 0, 2]
    assert sum(n for kind, n in recorder.events if kind == "embedded") == 5


def test_ingest_refuses_chunks_the_model_would_truncate(tmp_path: Path) -> None:
    data = write_documents(tmp_path / "data")
    with pytest.raises(ConfigError, match="reads at most 254 word pieces"):
        ingest(settings_for(data, tmp_path / "vs", chunking={"chunk_tokens": 300}))


def test_missing_data_folder(tmp_path: Path) -> None:
    with pytest.raises(NoDocumentsError, match="does not exist"):
        ingest(settings_for(tmp_path / "nowhere", tmp_path / "vs"))


def test_bundled_sample_is_reproducible(tmp_path: Path) -> None:
    regenerated = write_sample(tmp_path)
    assert regenerated.read_bytes() == (REPO / "data" / SAMPLE_NAME).read_bytes()


def test_demo_question_on_the_bundled_sample(tmp_path: Path) -> None:
    settings = settings_for(REPO / "data", tmp_path / "vs", llm={"model": tmp_path / "no.bin"})
    ingest(settings)
    service = QAService(settings)
    answer = service.ask(SAMPLE_QUESTION)
    assert "£42 million" in (answer.answer or "")
    assert (answer.sources[0].source, answer.sources[0].page) == (SAMPLE_NAME, 2)
    assert service.notices
    assert "SmolLM2" in service.notices[0]
    assert answer.completion
    assert answer.completion.prompt_tokens <= 4096 - 256


def test_showcase_adidas_question(tmp_path: Path, showcase_pdf: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / showcase_pdf.name).symlink_to(showcase_pdf)
    settings = settings_for(data, tmp_path / "vs", llm={"model": tmp_path / "no.bin"})
    report = ingest(settings)
    assert (len(report.files), report.pages) == (1, 177)
    service = QAService(settings)
    question = "How much is the minimum guarantee payable by adidas?"
    answers = [service.ask(question) for _ in range(3)]
    for answer in answers:  # every run: the same figure, cited to a source that states it
        assert "£750 million" in (answer.answer or "")
        cited = [int(n) for n in re.findall(r"\[(\d+)\]", answer.answer or "")]
        assert cited
        for n in cited:
            source = answer.sources[n - 1]
            assert source.n == n
            assert "£750 million" in source.text
            assert source.page in {53, 54, 75, 85, 118, 138}


def test_index_of_another_dimension_is_refused(tmp_path: Path) -> None:
    from tests.test_store import build

    build(tmp_path / "vs", ["eight-dimension vectors"])  # manifest names MiniLM, 8 dimensions
    service = QAService(settings_for(tmp_path / "data", tmp_path / "vs"))
    with pytest.raises(VectorStoreError, match=r"holds 8-dimension vectors, but .* makes 384"):
        service.load(with_llm=False)


def test_off_topic_question_is_declined_without_the_llm(tmp_path: Path) -> None:
    settings = settings_for(REPO / "data", tmp_path / "vs", llm={"model": tmp_path / "no.bin"})
    ingest(settings)
    answer = QAService(settings).ask("What is the boiling point of mercury in kelvin?")
    assert answer.abstained
    assert answer.answer == "The documents do not say."
    assert answer.completion is None
    assert answer.timings.generate_s is None
    assert max(source.score for source in answer.sources) < settings.retrieval.min_score
