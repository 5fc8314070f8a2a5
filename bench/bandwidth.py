"""The machine's memory read bandwidth, measured so that it is a ceiling: a compiled kernel
(XOR of every 8-byte word, which the compiler turns into wide vector loads) reads a buffer far
larger than the caches on every core at once, best of many passes. numpy's reductions, which
bench.llm7b used before, stayed below what llama.cpp's generation itself reads.

    poetry run python -m bench.bandwidth [--gib 2] [--passes 20]
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"
SOURCE = """
#include <stddef.h>
#include <stdint.h>
uint64_t read_all(const uint64_t *data, size_t words) {
    uint64_t lanes[16] = {0};
    size_t i = 0;
    for (; i + 16 <= words; i += 16)
        for (int lane = 0; lane < 16; lane++) lanes[lane] ^= data[i + lane];
    for (; i < words; i++) lanes[0] ^= data[i];
    uint64_t all = 0;
    for (int lane = 0; lane < 16; lane++) all ^= lanes[lane];
    return all;
}
"""
# The Makefile's portable flags (AVX2, not the build machine's exact CPU).
FLAGS = ["-O3", "-mavx2", "-shared", "-fPIC"]


def kernel() -> ctypes.CDLL:
    """The compiled kernel, built once into bench/.cache/."""
    digest = hashlib.sha256((SOURCE + " ".join(FLAGS)).encode()).hexdigest()[:12]
    library = CACHE / f"read_all-{digest}.so"
    if not library.is_file():
        CACHE.mkdir(exist_ok=True)
        source = CACHE / f"read_all-{digest}.c"
        source.write_text(SOURCE)
        subprocess.run(["cc", *FLAGS, str(source), "-o", str(library)], check=True)
    loaded = ctypes.CDLL(str(library))
    loaded.read_all.restype = ctypes.c_uint64
    loaded.read_all.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return loaded


def read_bandwidth(gib: float = 2, passes: int = 20) -> float:
    """GB/s of reading a `gib` GiB buffer once with one thread per core (ctypes releases the
    GIL), the best of `passes`."""
    read_all = kernel().read_all
    data = np.ones(int(gib * 2**30) // 8, dtype=np.uint64)  # written: every page is mapped
    parts = np.array_split(data, len(os.sched_getaffinity(0)))
    best = float("inf")
    for _ in range(passes):
        threads = [
            threading.Thread(target=read_all, args=(part.ctypes.data, part.size)) for part in parts
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        best = min(best, time.perf_counter() - started)
    return data.nbytes / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=2)
    parser.add_argument("--passes", type=int, default=20)
    args = parser.parse_args()
    print(f"{read_bandwidth(args.gib, args.passes):.1f} GB/s")


if __name__ == "__main__":
    main()
