"""The same BERT encoder as docqa.index.bert_onnx, run by OpenVINO with bf16 matrix multiplies,
for ingest on CPUs that have bf16 units (AVX512_BF16 or AMX).

OpenVINO compiles the in-memory ONNX graph with bf16 inference precision: weights and
activations in bf16, sums in fp32. On the 20-F's chunks that embeds ~3x faster than ONNX
Runtime in fp32, with every vector within a cosine of 0.9998 of fp32 (bench.embedding).

It runs in a child process of its own: in the API server, which answers (numpy, on OpenBLAS's
threads) while it ingests, an answer hung in OpenBLAS for good after OpenVINO had run in the
same process. Only OpenVINO's runtime is used: its converter tools, which hold its
telemetry, are never imported.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from docqa.errors import ModelError
from docqa.index.bert_numpy import NumpyBert, length_batches, pooled
from docqa.index.bert_onnx import bert_graph

# CPU flags (/proc/cpuinfo) of units that multiply bf16 matrices in hardware.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bf16 in hardware (elsewhere OpenVINO would emulate it,
    slower than fp32)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(BF16_FLAGS & set(line.partition(":")[2].split()))
    return False


class OpenVinoBert:
    """Embeds like NumpyBert.embed, in a child process (`python -m docqa.index.bert_openvino`)
    that holds the compiled model: texts go to it as JSON lines on its stdin, vectors come back
    on its stdout as a JSON header and raw float32 rows. It ends when its stdin does, so it
    needs no shutdown: the command line ends its process without one."""

    def __init__(self, model_dir: Path, max_tokens: int) -> None:
        self._command = [sys.executable, "-m", __name__, str(model_dir), str(max_tokens)]
        self._lock = threading.Lock()
        # Started now, it compiles the model while its parent reads the first PDF.
        self._child: subprocess.Popen[bytes] | None = self._spawn()

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        with self._lock:
            child = self._child = self._child or self._spawn()
            assert child.stdin is not None
            assert child.stdout is not None
            try:
                request = json.dumps({"texts": texts, "batch_size": batch_size})
                child.stdin.write(request.encode() + b"\n")
                child.stdin.flush()
                header = json.loads(child.stdout.readline() or b"null")
                if header is None:
                    raise EOFError
                if "error" in header:
                    raise ModelError(f"cannot embed in OpenVINO: {header['error']}")
                rows, width = header["rows"], header["width"]
                data = child.stdout.read(rows * width * 4)
                if len(data) != rows * width * 4:
                    raise EOFError
            except BaseException as exc:  # Ctrl-C included: an answer may still be on its way
                self._child = None
                child.kill()
                if isinstance(exc, EOFError | OSError):
                    raise ModelError(
                        "the embedding process (OpenVINO) ended unexpectedly: set "
                        "embedding.precision to fp32 to embed with ONNX Runtime instead"
                    ) from exc
                raise
        return np.frombuffer(data, dtype="<f4").reshape(rows, width).copy()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)


class _CompiledBert(NumpyBert):
    """NumpyBert whose batches run in the compiled bf16 model (in the child process), a
    stream per core."""

    def __init__(self, model_dir: Path, max_tokens: int) -> None:
        import openvino

        from docqa.index.embeddings import load_tokenizer

        super().__init__(model_dir, load_tokenizer(model_dir), max_tokens)
        cores = len(os.sched_getaffinity(0))
        core = openvino.Core()
        compiled = core.compile_model(
            core.read_model(bert_graph(self).SerializeToString()),
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": "bf16",
                # A stream per core, each a batch of its own: 15% more chunks/s than every
                # core on one batch (the 20-F's chunks in batches of 4, 2 cores).
                "PERFORMANCE_HINT": "THROUGHPUT",
                "NUM_STREAMS": cores,
                "INFERENCE_NUM_THREADS": cores,
            },
        )
        self._queue = openvino.AsyncInferQueue(compiled, cores)
        self.w = {"embeddings.LayerNorm.weight": self.w["embeddings.LayerNorm.weight"]}

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """As NumpyBert.embed, a batch on each stream while the next batches are tokenized."""
        vectors = np.empty((len(texts), self.dimension), np.float32)

        def finished(request: Any, batch: tuple[list[int], np.ndarray]) -> None:
            rows, mask = batch
            vectors[rows] = pooled(request.get_output_tensor(0).data, mask)

        self._queue.set_callback(finished)
        for rows in length_batches(texts, batch_size):
            tokens, mask = self.encode([texts[i] for i in rows])
            self._queue.start_async({"tokens": tokens, "mask": mask}, (rows, mask))
        self._queue.wait_all()
        return vectors


def _serve(model_dir: Path, max_tokens: int) -> None:
    """The child process: embed each request read from stdin until stdin ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, not into the replies
    try:
        model: _CompiledBert | str = _CompiledBert(model_dir, max_tokens)
    except Exception as exc:
        model = f"{type(exc).__name__}: {exc}"
    for line in sys.stdin.buffer:
        request = json.loads(line)
        if isinstance(model, str):
            replies.write(json.dumps({"error": model}).encode() + b"\n")
        else:
            vectors = model.embed(request["texts"], request["batch_size"]).astype("<f4")
            header = {"rows": vectors.shape[0], "width": vectors.shape[1]}
            replies.write(json.dumps(header).encode() + b"\n" + vectors.tobytes())
        replies.flush()


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), int(sys.argv[2]))
