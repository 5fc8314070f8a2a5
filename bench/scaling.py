"""Search against index size: FAISS exact vs approximate (HNSW) search, and a question's load
and retrieval time on docqa indexes of 1k to 100k chunks.

    poetry run python -m bench.scaling [--sizes 1000 10000 30000 100000 300000] [--runs 3]

Vectors are synthetic but shaped like text embeddings: unit vectors around 2,000 topic
directions (a random vector per chunk would make approximate search look worse than it is).
Queries are held-out vectors of the same topics. The docqa indexes are written with docqa's
own store (FAISS, chunk texts, BM25, manifest), without running the embedding model.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.memory import page_text
from bench.report import write

ROOT = Path(__file__).resolve().parent
DIMENSION = 384
CANDIDATES = 50  # what docqa's vector search proposes per question (retrieval.candidates)
HNSW_LINKS, HNSW_BUILD, HNSW_SEARCH = 32, 80, 256
QUESTION = "Which harbour held the most barges in 1850?"


def clustered(count: int, seed: int, topics: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((topics, DIMENSION), dtype=np.float32)
    rng = np.random.default_rng(seed)
    vectors = centres[rng.integers(0, topics, count)] + rng.standard_normal(
        (count, DIMENSION), dtype=np.float32
    ) * np.float32(0.9)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def per_query_ms(index: Any, queries: np.ndarray) -> float:
    seconds = []
    for query in queries:
        started = time.perf_counter()
        index.search(query[None], CANDIDATES)
        seconds.append(time.perf_counter() - started)
    return round(statistics.median(seconds) * 1000, 3)


def recall(found: np.ndarray, exact: np.ndarray, depth: int) -> float:
    hits = [len(set(f[:depth]) & set(e[:depth])) / depth for f, e in zip(found, exact, strict=True)]
    return round(float(np.mean(hits)), 4)


def faiss_row(count: int, queries: np.ndarray) -> dict[str, Any]:
    import faiss

    vectors = clustered(count, seed=1)
    exact = faiss.IndexFlatIP(DIMENSION)
    exact.add(vectors)
    started = time.perf_counter()
    approximate = faiss.IndexHNSWFlat(DIMENSION, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    approximate.hnsw.efConstruction = HNSW_BUILD
    approximate.add(vectors)
    build_s = time.perf_counter() - started
    approximate.hnsw.efSearch = HNSW_SEARCH
    _, truth = exact.search(queries, CANDIDATES)
    _, found = approximate.search(queries, CANDIDATES)
    row = {
        "vectors": count,
        "exact_ms": per_query_ms(exact, queries),
        "hnsw_ms": per_query_ms(approximate, queries),
        "hnsw_recall@50": recall(found, truth, CANDIDATES),
        "hnsw_recall@4": recall(found, truth, 4),
        "hnsw_build_s": round(build_s, 1),
        "exact_mb": round(count * DIMENSION * 4 / 2**20, 1),
        "hnsw_mb": round(count * (DIMENSION * 4 + HNSW_LINKS * 2 * 4) / 2**20, 1),
    }
    print(row, flush=True)
    return row


def docqa_index(folder: Path, chunks: int) -> Path:
    """A genuine docqa index of `chunks` chunks (generated text, synthetic vectors), made once."""
    from docqa import __version__
    from docqa.config import RetrievalSettings
    from docqa.errors import VectorStoreError
    from docqa.index.chunking import Chunk
    from docqa.index.encoders.folder import DEFAULT_MODEL_ID
    from docqa.index.identity import DocumentIdentity
    from docqa.index.manifest import EmbeddingInfo, FileEntry, Manifest, read_manifest
    from docqa.index.store import write_store

    try:
        read_manifest(folder)
        return folder
    except VectorStoreError:  # none yet, or one of an older format
        shutil.rmtree(folder, ignore_errors=True)
    per_file, rng = 1000, random.Random(0)
    files = [
        FileEntry(
            source=f"report-{n:04d}.pdf",
            sha256=f"{n:064x}",
            size=1,
            mtime_ns=0,
            pages=per_file,
            chunks=per_file,
            identity=DocumentIdentity(title=f"Harbour report {n:04d}"),
        )
        for n in range(max(1, chunks // per_file))
    ]
    manifest = Manifest(
        docqa_version=__version__,
        created_at="2026-01-01T00:00:00+00:00",
        scanned_at_ns=0,
        embedding=EmbeddingInfo(model=DEFAULT_MODEL_ID, dimension=DIMENSION, max_tokens=254),
        chunking={"chunk_tokens": 200, "overlap_tokens": 32},
        files=files,
    )
    vectors = clustered(chunks, seed=2)
    parts = (
        (
            [
                Chunk(entry.source, page + 1, page_text(rng, n, page), 150)
                for page in range(entry.chunks)
            ],
            vectors[n * per_file : (n + 1) * per_file],
        )
        for n, entry in enumerate(files)
    )
    write_store(folder, manifest, parts, RetrievalSettings().exact_max_chunks)
    return folder


# Time a question's load and retrieval stages in a fresh process, as main.py runs them.
PROBE = """
import sys, time
from pathlib import Path
from docqa.config import load_settings
from docqa.answer.qa import QAService
service = QAService(load_settings(None, {"paths": {"vectorstore": Path(sys.argv[1])}}))
started = time.perf_counter()
service.load(with_llm=False)
loaded = time.perf_counter()
service.search(sys.argv[2])
print(loaded - started, time.perf_counter() - loaded)
"""


def ask_row(chunks: int, runs: int) -> dict[str, Any]:
    folder = docqa_index(ROOT / ".cache" / f"scaling-{chunks}", chunks)
    timings = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", PROBE, str(folder), QUESTION],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT.parent,
        )
        timings.append([float(value) for value in result.stdout.split()])
    row = {
        "chunks": chunks,
        "load_s": round(statistics.median(t[0] for t in timings), 3),
        "retrieval_s": round(statistics.median(t[1] for t in timings), 3),
        "index_mb": round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20),
    }
    print(row, flush=True)
    return row


SIZES = (1000, 10_000, 30_000, 100_000, 300_000)


def run(sizes: tuple[int, ...] = SIZES, runs: int = 3) -> dict[str, list[dict[str, Any]]]:
    queries = clustered(200, seed=3)
    return {
        f"FAISS search for {CANDIDATES} candidates: exact (flat) against HNSW "
        f"(M={HNSW_LINKS}, efConstruction={HNSW_BUILD}, efSearch={HNSW_SEARCH}), per query": [
            faiss_row(count, queries) for count in sizes
        ],
        "A question's load and retrieval (hybrid: FAISS + BM25) against index size": [
            ask_row(chunks, runs) for chunks in sizes if chunks <= 100_000
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(write("scaling", "Search against index size", run(tuple(args.sizes), args.runs)))


if __name__ == "__main__":
    main()
