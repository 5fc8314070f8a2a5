"""The child process that holds the compiled bf16 model (`python -m
docqa.index.encoders.openvino_process MODEL_DIR MAX_TOKENS BATCH_SIZE`).

Each request is a JSON list of texts on a line of its stdin; each reply, on its stdout, a JSON
header ({"rows": n, "width": d}, or {"error": message}) on a line, then the n x d vectors as
raw little-endian float32. It ends when its stdin does. Only OpenVINO's runtime is used: its
converter tools, which hold its telemetry, are never imported.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from docqa.index.encoders.graph import bert_graph
from docqa.index.encoders.tokens import Batches, pooled
from docqa.index.encoders.weights import BertWeights


class CompiledBert:
    """The model compiled with bf16 inference precision (weights and activations in bf16, sums
    in fp32), a stream per core, each a batch of its own."""

    def __init__(self, model_dir: Path, max_tokens: int, batch_size: int) -> None:
        import openvino

        bert = BertWeights.load(model_dir)
        self.width = bert.width
        self._batches = Batches(model_dir, max_tokens, batch_size)
        cores = len(os.sched_getaffinity(0))
        core = openvino.Core()
        compiled = core.compile_model(
            core.read_model(bert_graph(bert).SerializeToString()),
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

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length vectors, a batch on each stream while the next batches are tokenized."""
        vectors = np.empty((len(texts), self.width), np.float32)

        def finished(request: Any, batch: tuple[list[int], np.ndarray]) -> None:
            rows, mask = batch
            vectors[rows] = pooled(request.get_output_tensor(0).data, mask)

        self._queue.set_callback(finished)
        for rows, tokens, mask in self._batches(texts):
            self._queue.start_async({"tokens": tokens, "mask": mask}, (rows, mask))
        self._queue.wait_all()
        return vectors


def serve(model_dir: Path, max_tokens: int, batch_size: int) -> None:
    """Embed each request read from stdin until stdin ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, not into the replies
    try:
        model: CompiledBert | str = CompiledBert(model_dir, max_tokens, batch_size)
    except Exception as exc:
        model = f"{type(exc).__name__}: {exc}"
    for line in sys.stdin.buffer:
        if isinstance(model, str):
            replies.write(json.dumps({"error": model}).encode() + b"\n")
        else:
            vectors = model.embed(json.loads(line)).astype("<f4")
            header = {"rows": vectors.shape[0], "width": vectors.shape[1]}
            replies.write(json.dumps(header).encode() + b"\n" + vectors.tobytes())
        replies.flush()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
