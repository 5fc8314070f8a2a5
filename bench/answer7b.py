"""A 7B answer through docqa, process start to exit: `main.py` asks the adidas question of the
20-F with the 7B-shaped Q8_0 GGUF (Llama-2's shapes and vocabulary, random weights, made by
bench.llm7b), 24 new tokens, warm page cache. Each reader profile, with the prompt start's
state saved by an earlier run (llm.prompt_cache) and without it.

    poetry run python -m bench.answer7b [--dir models/bench] [--runs 3]

Needs ../shared/data/manu-20f-2022-09-24.pdf (indexed into bench/.cache/speed, as bench.speed
does).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.llm7b import DEFAULT_DIR, model_files
from bench.report import write
from bench.speed import DOCQA_INDEX, QUESTION, SHOWCASE, WORK

ROOT = Path(__file__).resolve().parent
NEW_TOKENS = 24
HEADING = (
    f"The adidas question of the 20-F with the 7B-shaped Q8_0 GGUF, process start to exit "
    f"({NEW_TOKENS} new tokens; medians)"
)


def ask(model: Path, index: Path, profile: str, cache: Path) -> dict[str, Any]:
    """One `main.py` run, timed from outside; docqa's own timings from its JSON."""
    command = [sys.executable, "main.py", QUESTION, "--model", str(model)]
    command += ["--vectorstore", str(index), "--max-tokens", str(NEW_TOKENS)]
    command += ["--temperature", "0", "--json", "--no-sources"]
    env = {**os.environ, "DOCQA_ANSWER__PROFILE": profile, "DOCQA_LLM__PROMPT_CACHE": str(cache)}
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT.parent, env=env, capture_output=True, text=True, check=True
    )
    seconds = time.perf_counter() - started
    answer = json.loads(done.stdout)
    usage, timings = answer["usage"], answer["timings"]
    return {
        "seconds": seconds,
        "load_s": timings["load_s"],
        "first_token_s": usage["first_token_s"],
        "prompt_tokens": usage["prompt_tokens"],
        "generated": usage["completion_tokens"],
    }


def run(folder: Path, runs: int) -> list[dict[str, Any]]:
    model = model_files(folder)[0]["llamacpp"]
    data, index = WORK / "data", DOCQA_INDEX
    if not (data / SHOWCASE.name).exists():
        data.mkdir(parents=True, exist_ok=True)
        (data / SHOWCASE.name).symlink_to(SHOWCASE.resolve())
    # brought up to date (made, or rewritten in this docqa's index format)
    subprocess.run(
        [sys.executable, "ingest.py", "--data", str(data), "--vectorstore", str(index)],
        cwd=ROOT.parent,
        check=True,
        capture_output=True,
    )
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "saved"
        for profile in ("passages", "evidence"):
            ask(model, index, profile, saved)  # warms the page cache and saves the state
            samples: dict[str, list[dict[str, Any]]] = {"saved": [], "none": []}
            for run_number in range(runs):  # interleaved, so both see the same machine
                samples["saved"].append(ask(model, index, profile, saved))
                fresh = Path(scratch) / f"fresh-{profile}-{run_number}"
                samples["none"].append(ask(model, index, profile, fresh))
            for state, measured in samples.items():
                row = {
                    "profile": profile,
                    "prompt start state": state,
                    "prompt tokens": measured[0]["prompt_tokens"],
                    "generated": measured[0]["generated"],
                    **{
                        key: round(statistics.median(m[key] for m in measured), 2)
                        for key in ("load_s", "first_token_s", "seconds")
                    },
                    "runs s": [round(m["seconds"], 2) for m in measured],
                }
                print(row, flush=True)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not SHOWCASE.is_file():
        raise SystemExit(f"{SHOWCASE} is needed")
    rows = run(args.dir, args.runs)
    print(write("answer7b", "A 7B answer through docqa", {HEADING: rows}))


if __name__ == "__main__":
    main()
