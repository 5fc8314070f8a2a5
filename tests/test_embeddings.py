"""The torch-free encoders (numpy for questions; OpenVINO in bf16 or ONNX Runtime in fp32 for
ingest) compute what sentence-transformers computes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from docqa.errors import ConfigError, ModelError
from docqa.index import embeddings
from docqa.index.embeddings import Embedder, ingest_runtime
from docqa.index.encoders import Runtime
from docqa.index.encoders.folder import folder_id
from docqa.index.encoders.numpy_bert import gelu
from docqa.index.encoders.openvino_runtime import cpu_has_bf16
from tests.fixtures.pdfs import SAMPLE_PAGES
from tests.fixtures.projects import DOCUMENTS, FACTS, REPO, SHOWCASE_PDF, write_documents

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
        from docqa.index.formats.pdf import open_pdf

        pages = open_pdf(showcase.name, showcase.read_bytes()).pages()
        texts += [page.text[:1500] for _, page in zip(range(100), pages, strict=False)]
    filler = [f"Question {n}: what did the club pay for player {n}?" for n in range(100)]
    return (texts + filler)[:100]


@pytest.fixture(scope="module")
def texts_and_reference() -> tuple[list[str], np.ndarray]:
    texts = sample_texts(SHOWCASE_PDF if SHOWCASE_PDF.is_file() else None)
    assert len(texts) == 100
    return texts, Embedder(MODEL, runtime="sentence-transformers").embed(texts)


@pytest.mark.parametrize("runtime", ["numpy", "onnxruntime", "openvino"])
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
            "from docqa.index.ingest import ingest_runtime, shared_embedder\n"
            "embedder = shared_embedder('all-MiniLM-L6-v2', 32, ingest_runtime('auto'))\n"
            "print(embedder.embed(['a page', 'another']).shape)\n",
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


def test_the_bundled_model_runs_without_torch() -> None:
    embedder = Embedder(MODEL)
    assert embedder.folder.plain_bert
    assert embedder.runtime == "onnxruntime"
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


def test_ingest_embeds_in_bf16_only_where_the_cpu_multiplies_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    for flags, has in [
        ("fpu sse4_2 avx2 fma avx512f avx512_vnni", False),
        ("fpu avx2 avx512f avx512_bf16", True),  # AMD EPYC (Zen 4 and later)
        ("fpu avx2 avx512f amx_bf16 amx_tile", True),  # Intel Xeon with AMX
    ]:
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert cpu_has_bf16(cpuinfo) is has
    assert not cpu_has_bf16(tmp_path / "absent")

    monkeypatch.setattr(embeddings, "cpu_has_bf16", lambda: False)
    assert (ingest_runtime("auto"), ingest_runtime("fp32")) == ("onnxruntime", "onnxruntime")
    with pytest.raises(ConfigError, match="no bf16 units"):
        ingest_runtime("bf16")
    monkeypatch.setattr(embeddings, "cpu_has_bf16", lambda: True)
    assert [ingest_runtime(p) for p in ("auto", "bf16", "fp32")] == [
        "openvino",
        "openvino",
        "onnxruntime",
    ]
    assert Embedder(MODEL, runtime="openvino").precision == "bf16"
    assert Embedder(MODEL, runtime="onnxruntime").precision == "fp32"


def test_the_openvino_process_that_dies_is_reported_then_started_again() -> None:
    embedder = Embedder(MODEL, runtime="openvino")
    first = embedder.embed(["a page", "another"])
    child = embedder.load()._child  # type: ignore[attr-defined]
    child.kill()
    child.wait()
    with pytest.raises(ModelError, match="ended unexpectedly"):
        embedder.embed(["a page", "another"])
    np.testing.assert_array_equal(embedder.embed(["a page", "another"]), first)


@pytest.mark.skipif(not cpu_has_bf16(), reason="no bf16 units: ingest embeds in fp32 here")
def test_a_bf16_index_retrieves_what_an_fp32_index_retrieves(tmp_path: Path) -> None:
    from docqa.answer.evaluation import load_questions
    from docqa.answer.retrieval import retrieve
    from docqa.config import load_settings
    from docqa.index.ingest import ingest
    from docqa.index.store import VectorStore

    data = write_documents(tmp_path / "data", broken=False)
    (data / "sample.pdf").symlink_to(REPO / "data" / "larkspur-annual-report-2024-SAMPLE.pdf")
    stores, settings = {}, None
    for precision in ("fp32", "bf16"):
        overrides = {
            "paths": {"data": data, "vectorstore": tmp_path / precision},
            "embedding": {"precision": precision},
        }
        settings = load_settings(None, overrides, environ={})
        ingest(settings)
        stores[precision] = VectorStore.open(tmp_path / precision, Embedder(MODEL).model_id)
        assert stores[precision].manifest.embedding.precision == precision
    assert settings is not None
    fp32, bf16 = stores["fp32"], stores["bf16"]
    assert [c.text for c in fp32.chunks] == [c.text for c in bf16.chunks]
    everything = list(range(len(fp32.chunks)))
    cosines = (fp32.vectors(everything) * bf16.vectors(everything)).sum(axis=1)
    assert cosines.min() >= 0.999

    sample = [item.question for item in load_questions(REPO / "tests/eval/sample.jsonl")]
    questions = sample + [question for question, *_ in FACTS]
    vectors = Embedder(MODEL, runtime="numpy").embed(questions)  # questions: fp32 either way
    for question, vector in zip(questions, vectors, strict=True):
        hits = [retrieve(s, vector, question, 4, settings.retrieval) for s in (fp32, bf16)]
        assert [h.chunk_id for h in hits[0]] == [h.chunk_id for h in hits[1]], question
        # bf16 moves a vector by a cosine of ~1e-4, a similarity score by a few thousandths
        assert [h.score for h in hits[1]] == pytest.approx([h.score for h in hits[0]], abs=5e-3)


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


def test_the_numpy_gelu_is_the_exact_one() -> None:
    x = np.linspace(-8, 8, 4001, dtype=np.float32).reshape(1, 4001)
    exact = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x[0].tolist()])
    assert np.abs(gelu(x)[0] - exact).max() < 1e-6
    assert gelu(x).dtype == np.float32
