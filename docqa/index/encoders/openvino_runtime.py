"""The BERT encoder run by OpenVINO with bf16 matrix multiplies, for ingest on CPUs that have
bf16 units (AVX512_BF16 or AMX): on the 20-F's chunks ~3x faster than ONNX Runtime in fp32,
with every vector within a cosine of 0.9998 of fp32 (bench.embedding).

The model runs in a child process of its own (docqa.index.encoders.openvino_process): in the
API server, which answers (numpy, on OpenBLAS's threads) while it ingests, an answer hung in
OpenBLAS for good after OpenVINO had run in the same process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from docqa.errors import ModelError
from docqa.index.encoders import Precision, openvino_process
from docqa.index.encoders.folder import ModelFolder

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


class OpenVinoEncoder:
    """Sends texts to the child process and reads their vectors back (the protocol is
    openvino_process's). The child ends when its stdin does, so it needs no shutdown."""

    precision: Precision = "bf16"

    def __init__(self, folder: ModelFolder, batch_size: int) -> None:
        self.dimension, self.max_tokens = folder.dimension, folder.max_tokens
        self._command = [
            *(sys.executable, "-m", openvino_process.__name__),
            *(str(folder.path), str(folder.max_tokens), str(batch_size)),
        ]
        self._lock = threading.Lock()
        # Started now, it compiles the model while its parent reads the first PDF.
        self._child: subprocess.Popen[bytes] | None = self._spawn()

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            child = self._child = self._child or self._spawn()
            assert child.stdin is not None
            assert child.stdout is not None
            try:
                child.stdin.write(json.dumps(texts).encode() + b"\n")
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
