"""The torch-free encoders (numpy for questions, ONNX Runtime for ingest) compute what
sentence-transformers computes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from docqa.index.bert_numpy import supports
from docqa.index.embeddings import Embedder, Runtime, folder_id
from tests.conftest import DOCUMENTS, REPO, SHOWCASE_PDF
from tests.fixtures.pdfs import SAMPLE_PAGES

pytestmark = pytest.mark.slow
MODEL = "all-MiniLM-L6-v2"


def sample_texts(showcase: Path | None) -> list[str]:
    """100 texts: the sample's and fixtures' sentences, edge cases, and 20-F pages if present."""
    texts = [line for page in SAMPLE_PAGES for line in page.splitlines() if line.strip()]
    texts += [text for pages in DOCUMENTS.values() for text in pages]
    texts += [
        "",
        "£",
        "How much is the minimum guarantee payable by adidas?",
        "Zürich \u2013 “quoted” œuvre costs € 5 ‰ 文件 😀",
        "revenue " * 300,  # longer than the model reads: both truncate
    ]
    if showcase is not None:
        from docqa.index.loading import open_pdf

        pages = open_pdf(showcase.name, showcase.read_bytes()).pages()
        texts += [page.text[:1500] for _, page in zip(range(100), pages, strict=False)]
    filler = [f"Question {n}: what did the club pay for player {n}?" for n in range(100)]
    return (texts + filler)[:100]


@pytest.fixture(scope="module")
def texts_and_reference() -> tuple[list[str], np.ndarray]:
    texts = sample_texts(SHOWCASE_PDF if SHOWCASE_PDF.is_file() else None)
    assert len(texts) == 100
    return texts, Embedder(MODEL, runtime="sentence-transformers").embed(texts)


@pytest.mark.parametrize("runtime", ["numpy", "onnxruntime"])
def test_torch_free_runtimes_agree_with_sentence_transformers(
    texts_and_reference: tuple[list[str], np.ndarray], runtime: Runtime
) -> None:
    texts, reference = texts_and_reference
    vectors = Embedder(MODEL, runtime=runtime).embed(texts)
    cosines = (reference * vectors).sum(axis=1)
    assert cosines.min() >= 0.999, texts[int(cosines.argmin())]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors.dtype == np.float32


@pytest.mark.parametrize(
    ("work", "printed"),
    [
        (  # ingest
            "from docqa.index.ingest import shared_embedder\n"
            "print(shared_embedder('all-MiniLM-L6-v2', 32).embed(['a page', 'another']).shape)\n",
            ["(2,", "384)"],
        ),
        (  # a question
            "from docqa.config import load_settings\n"
            "from docqa.answer.qa import QAService\n"
            "service = QAService(load_settings(None))\n"
            "service.load(with_llm=False)\n"
            "print(len(service.search('Who chairs the board?')))\n",
            ["4"],  # the evidence profile's k
        ),
    ],
    ids=["ingest", "question"],
)
def test_embedding_never_imports_torch(sample_project: Path, work: str, printed: list[str]) -> None:
    probe = (
        work + "import sys\nprint('torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=sample_project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == [*printed, "False", "False"]


def test_bundled_model_runs_in_numpy() -> None:
    embedder = Embedder(MODEL)
    assert supports(embedder.model_dir)
    pooling = json.loads((embedder.model_dir / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"]


def test_retrieval_finds_the_same_chunks_either_way(sample_project: Path) -> None:
    from docqa.answer.evaluation import load_questions
    from docqa.answer.retrieval import retrieve
    from docqa.config import load_settings
    from docqa.index.store import VectorStore

    settings = load_settings(None, {"paths": {"vectorstore": sample_project / "vectorstore"}})
    store = VectorStore.open(settings.paths.vectorstore, Embedder(MODEL).model_id)
    questions = [item.question for item in load_questions(REPO / "tests/eval/sample.jsonl")]
    runtimes: tuple[Runtime, ...] = ("sentence-transformers", "numpy", "onnxruntime")
    vectors = {runtime: Embedder(MODEL, runtime=runtime).embed(questions) for runtime in runtimes}
    for n, question in enumerate(questions):
        hits = {
            runtime: retrieve(store, vectors[runtime][n], question, 4, settings.retrieval)
            for runtime in runtimes
        }
        for runtime in runtimes[1:]:
            assert [h.chunk_id for h in hits[runtime]] == [
                h.chunk_id for h in hits["sentence-transformers"]
            ]
            assert [h.score for h in hits[runtime]] == pytest.approx(
                [h.score for h in hits["sentence-transformers"]], abs=1e-4
            )


def test_a_model_folder_is_known_by_its_content_not_its_place(tmp_path: Path) -> None:
    def model_folder(folder: Path, weights: bytes) -> Path:
        (folder / "1_Pooling").mkdir(parents=True)
        (folder / "1_Pooling" / "config.json").write_text('{"word_embedding_dimension": 8}')
        (folder / "model.safetensors").write_bytes(weights)
        (folder / "README.md").write_text("notes")
        return folder

    weights = np.random.default_rng(0).bytes(5 << 20)  # large enough to be sampled
    first = folder_id(model_folder(tmp_path / "a" / "minilm", weights))
    assert first.startswith("minilm@")
    assert folder_id(model_folder(tmp_path / "b" / "minilm", weights)) == first
    (tmp_path / "b" / "minilm" / "README.md").write_text("other notes")
    (tmp_path / "b" / "minilm" / ".cache").mkdir()
    assert folder_id(tmp_path / "b" / "minilm") == first, "docs and hidden files do not count"

    retrained = bytes(byte ^ 1 for byte in weights)
    assert folder_id(model_folder(tmp_path / "c" / "minilm", retrained)) != first
    other_pooling = model_folder(tmp_path / "d" / "minilm", weights) / "1_Pooling" / "config.json"
    other_pooling.write_text('{"word_embedding_dimension": 16}')
    assert folder_id(other_pooling.parent.parent) != first
    assert folder_id(model_folder(tmp_path / "e" / "other", weights)) != first
