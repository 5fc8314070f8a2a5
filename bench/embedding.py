"""Ingest's embedding step on its own: each runtime's throughput on a real index's chunks
against the machine's fp32, bf16 and int8 matrix-multiply peaks, and what bf16 and int8 do
to retrieval.

    poetry run python -m bench.embedding --index DIR [--sample 256]

DIR is a docqa index (bench.speed leaves one of the 20-F in bench/.cache/speed/docqa-index).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import write
from docqa.answer.evaluation import evaluate, load_questions
from docqa.answer.retrieval import retrieve
from docqa.index.embeddings import Embedder
from docqa.index.encoders.folder import ModelFolder
from docqa.index.encoders.graph import bert_graph
from docqa.index.encoders.onnx_runtime import SessionForward
from docqa.index.encoders.openvino_runtime import cpu_has_bf16
from docqa.index.encoders.tokens import Batches
from docqa.index.encoders.weights import BertWeights
from docqa.index.store import VectorStore

MODEL = "all-MiniLM-L6-v2"
EVAL = Path(__file__).resolve().parent.parent / "tests" / "eval"
# The set earlier settings were tuned on, and the test half of the held-out set.
QUESTIONS = {"manu-20f": EVAL / "manu-20f.jsonl", "test half": EVAL / "manu-20f-test.jsonl"}
Encode = Callable[[list[str]], np.ndarray]


class Int8Bert:
    """The ingest encoder with ONNX Runtime's dynamic int8 quantization of its weights."""

    def __init__(self, folder: ModelFolder, batch_size: int) -> None:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        self.dimension = folder.dimension
        self._batches = Batches(folder.path, folder.max_tokens, batch_size)
        with tempfile.TemporaryDirectory() as temporary:
            plain, quantized = Path(temporary) / "fp32.onnx", Path(temporary) / "int8.onnx"
            onnx.save(bert_graph(BertWeights.load(folder.path)), plain)
            quantize_dynamic(plain, quantized, weight_type=QuantType.QInt8)
            self._forward = SessionForward(onnx.load(quantized))

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._batches.embed(texts, self._forward, self.dimension)


def sgemm_peak(size: int = 2048, runs: int = 7) -> float:
    """GFLOP/s of numpy's (OpenBLAS) float32 matrix multiply on every core: the fp32 peak."""
    a, b = (np.random.default_rng(n).random((size, size), dtype=np.float32) for n in (0, 1))
    return _gemm_rate(lambda: a @ b, size, runs)


def bf16_peak(size: int = 2048, runs: int = 7) -> float:
    """GFLOP/s of a bf16 matrix multiply (torch's oneDNN kernels, which use AVX512_BF16 or AMX)
    on every core: the bf16 peak."""
    import torch

    a, b = (torch.rand(size, size, dtype=torch.bfloat16) for _ in range(2))
    return _gemm_rate(lambda: a @ b, size, runs)


def int8_peak(size: int = 2048, runs: int = 7) -> float:
    """GOP/s of ONNX Runtime's uint8 x int8 matrix multiply (MatMulInteger, the kernel its
    dynamically quantized encoder runs on: VNNI or AMX where present) on every core: the int8
    peak."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = rng.integers(-128, 128, (size, size), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])],
        "int8_peak",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [size, size])],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [size, size])],
        [numpy_helper.from_array(weights, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    feed = {"a": rng.integers(0, 256, (size, size), dtype=np.uint8)}
    return _gemm_rate(lambda: session.run(None, feed), size, runs)


def _gemm_rate(multiply: Callable[[], object], size: int, runs: int) -> float:
    """Billions of operations a second (GFLOP/s; GOP/s for integers) of a size x size matrix
    multiply, the best of `runs` after a warm-up: a peak.
    (The median once read 604 GFLOP/s for bf16 against 1,544-2,258 in every other run, and
    OpenVINO's throughput came out at 109% of it.)"""
    multiply()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        multiply()
        seconds.append(time.perf_counter() - started)
    return 2 * size**3 / min(seconds) / 1e9


def flops(config: dict[str, Any], lengths: list[int]) -> float:
    """Floating-point operations BERT spends on texts of these token lengths (no padding)."""
    width, inner, layers = (
        config["hidden_size"],
        config["intermediate_size"],
        config["num_hidden_layers"],
    )
    per_token = 4 * width * width + 2 * width * inner  # multiply-adds of the dense layers
    return sum(2.0 * layers * n * (per_token + 2 * n * width) for n in lengths)


def throughput(encode: Encode, texts: list[str], lengths: list[int], work: float) -> dict[str, Any]:
    encode(texts)  # warm up: the first pass over new text lengths runs ~20% slower
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        encode(texts)
        seconds.append(time.perf_counter() - started)
    best = statistics.median(seconds)
    return {
        "chunks_per_s": round(len(texts) / best, 1),
        "tokens_per_s": round(sum(lengths) / best),
        "gflop_per_s": round(work / best / 1e9, 1),
    }


class _Searcher:
    """Retrieval over an index's chunks with other vectors: enough for docqa's evaluation."""

    def __init__(self, store: VectorStore, vectors: np.ndarray | None, encode: Encode) -> None:
        import faiss

        from docqa.config import load_settings

        if vectors is not None:
            index = faiss.IndexFlatIP(vectors.shape[1])
            index.add(vectors)
            store = VectorStore(store.folder, store.manifest, store.chunks, index, store.keywords)
        self.store, self.encode = store, encode
        self.settings = load_settings(None).retrieval

    def search(self, question: str, k: int | None = None) -> list[Any]:
        vector = self.encode([question])[0]
        depth = k or self.settings.k
        assert depth is not None, "evaluate() asks for a depth"
        return retrieve(self.store, vector, question, depth, self.settings)

    def ask(self, question: str, k: int | None = None) -> Any:
        raise NotImplementedError("retrieval only")


def run(index: Path, sample: int = 256) -> dict[str, list[dict[str, Any]]]:
    store = VectorStore.open(index, Embedder(MODEL).model_id)
    texts = [chunk.text for chunk in store.chunks]
    rng = np.random.default_rng(0)
    sampled = [texts[i] for i in rng.choice(len(texts), min(sample, len(texts)), replace=False)]
    fp32 = Embedder(MODEL)
    config = json.loads((fp32.model_dir / "config.json").read_text())
    lengths = [min(len(e.ids), fp32.max_tokens + 2) for e in fp32.tokenizer.encode_batch(sampled)]
    work = flops(config, lengths)
    peak = sgemm_peak()
    int8 = Int8Bert(fp32.folder, fp32.batch_size)
    bf16 = Embedder(MODEL, runtime="openvino") if cpu_has_bf16() else None
    peaks = {"fp32": peak, "bf16": bf16_peak() if bf16 else None, "int8": int8_peak()}
    runtimes: dict[str, tuple[Encode, str]] = {
        "onnxruntime fp32, batch 4 (docqa ingest without bf16 units)": (fp32.embed, "fp32"),
        "numpy fp32 (docqa questions)": (Embedder(MODEL, runtime="numpy").embed, "fp32"),
        "sentence-transformers (torch) fp32": (
            Embedder(MODEL, runtime="sentence-transformers").embed,
            "fp32",
        ),
        "onnxruntime int8 (dynamic)": (int8.embed, "int8"),
    }
    if bf16:
        runtimes["openvino bf16, batch 4 (docqa ingest with bf16 units)"] = (bf16.embed, "bf16")
    reference = fp32.embed(sampled)
    rows = []

    def measure(name: str, encode: Encode, precision: str) -> None:
        row = {"runtime": name, **throughput(encode, sampled, lengths, work)}
        share = row["gflop_per_s"] / peaks[precision]
        row["share_of_its_peak"] = (
            f"{share:.0%} of {precision}" if share <= 1 else f"above the {precision} peak: wrong"
        )
        row["min_cosine_to_fp32"] = round(float((encode(sampled) * reference).sum(axis=1).min()), 4)
        rows.append(row)
        print(row, flush=True)

    for name, (encode, precision) in runtimes.items():
        measure(name, encode, precision)
    for batch_size in (2, 8, 16, 32):
        measure(f"onnxruntime fp32, batch {batch_size}", Embedder(MODEL, batch_size).embed, "fp32")
        if bf16:
            sized = Embedder(MODEL, batch_size, runtime="openvino")
            measure(f"openvino bf16, batch {batch_size}", sized.embed, "bf16")

    quality = []
    if any(chunk.source == "manu-20f-2022-09-24.pdf" for chunk in store.chunks):
        questions = Embedder(MODEL, runtime="numpy").embed  # docqa's questions: fp32
        fp32_chunks = fp32.embed(texts)
        searchers = {
            "fp32 chunks and questions": _Searcher(store, fp32_chunks, questions),
            "int8 chunks and questions": _Searcher(store, int8.embed(texts), int8.embed),
        }
        if bf16:
            searchers["bf16 chunks, fp32 questions (docqa)"] = _Searcher(
                store, bf16.embed(texts), questions
            )
        for name, searcher in searchers.items():
            for set_name, path in QUESTIONS.items():
                metrics = evaluate(searcher, load_questions(path), k=4, answer=False).metrics()
                keys = ("hit@1", "hit@4", "mrr")
                quality.append(
                    {"embeddings": name, "questions": set_name}
                    | {key: metrics[key] for key in keys}
                )
                print(quality[-1], flush=True)
    bf16_text = f", bf16 {peaks['bf16']:.0f}" if peaks["bf16"] else ", no bf16 units"
    title = (
        f"Embedding {len(sampled)} chunks of the index (matmul peaks: fp32 {peak:.0f} "
        f"GFLOP/s{bf16_text}, int8 {peaks['int8']:.0f} GOP/s)"
    )
    return {title: rows, "Retrieval by embedding precision (20-F, depth 4)": quality}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--sample", type=int, default=256)
    args = parser.parse_args()
    print(write("embedding", "Embedding throughput", run(args.index, args.sample)))


if __name__ == "__main__":
    main()
