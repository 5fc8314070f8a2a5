"""The passages profile end to end on a 7B: Llama-2-7B's exact shapes (Q8_0 GGUF, random
weights, the GGUF bench.llm7b converts). docqa must choose the profile from the file's header,
fit whole passages of the bundled sample into the prompt and generate. The weights are
random, so the words are noise; what counts is that it reads passages, fits and generates,
and how long that takes.

    poetry run python -m bench.reader7b [--dir models/bench] [--generate 24]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.llm7b import DEFAULT_DIR, model_files
from bench.report import write

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "How much is the minimum guarantee payable by Northwind Textiles?"


def run(model: Path, generate: int) -> dict[str, Any]:
    from docqa.answer.qa import QAService
    from docqa.config import load_settings
    from docqa.index.ingest import ingest

    with tempfile.TemporaryDirectory() as scratch:
        overrides = {
            "paths": {"data": ROOT / "data", "vectorstore": Path(scratch)},
            "llm": {"model": model, "temperature": 0, "max_new_tokens": generate},
        }
        settings = load_settings(None, overrides, environ={})
        ingest(settings)
        service = QAService(settings, explicit_model=True)
        started = time.perf_counter()
        service.load()
        loaded = time.perf_counter() - started
        answer = service.ask(QUESTION)
    llm, completion = service.llm, answer.completion
    assert completion is not None, "the 7B generated nothing"
    chunks = {source.text for source in answer.sources}
    return {
        "profile": service.reader.name,
        "k": service.reader.k,
        "context budget (tokens)": service.reader.context_tokens,
        "passages read": len(answer.read),
        "whole chunks": all(text in chunks for text in answer.read),
        "passage tokens": sum(llm.count_tokens(text) for text in answer.read),
        "prompt tokens": completion.prompt_tokens,
        "context length": llm.context_length,
        "generated tokens": completion.completion_tokens,
        "load s": round(loaded, 2),
        "first token s": round(completion.first_token_s or 0.0, 2),
        "answer s": round(answer.timings.total_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--generate", type=int, default=24)
    args = parser.parse_args()
    result = run(model_files(args.dir)[0]["llamacpp"], args.generate)
    heading = "The passages profile on a 7B-shaped model (Q8_0 GGUF, random weights)"
    print(write("reader7b", heading, {"adidas-style question on the bundled sample": [result]}))


if __name__ == "__main__":
    main()
