"""Every speed benchmark in one run, side by side on this machine:

    poetry run python -m bench [--runs 3] [--pdf FILE] [--model-dir DIR] [--skip PART ...]

1. speed: ingest and ask on the 20-F, docqa against the reference pipeline (bench.speed);
2. embedding: each embedding runtime against its precision's peak, bf16's and int8's retrieval
   (bench.embedding);
3. llm7b: a Llama-2-7B-shaped Q8_0 model through both backends against memory bandwidth
   (bench.llm7b; writes a ~7 GB GGML file to --model-dir once, converts it to GGUF each run),
   then a 7B answer to the adidas question through docqa, per reader profile (bench.answer7b);
4. scaling: FAISS exact vs approximate search, a question's load and retrieval against index
   size (1k-300k chunks), ingest time and peak memory for 10, 100 and 1,000 pages
   (bench.scaling, bench.memory).

Writes bench/results/latest.md, latest.json and PNG plots beside them. Needs
`poetry install --with bench` (`make bench` does both) and ~60 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench import answer7b, embedding, llm7b, memory, plots, scaling, speed
from bench.report import RESULTS, run_record, table

PARTS = ("speed", "embedding", "llm7b", "scaling")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pdf", type=Path, default=speed.SHOWCASE)
    parser.add_argument("--model-dir", type=Path, default=llm7b.DEFAULT_DIR)
    parser.add_argument("--skip", nargs="*", choices=PARTS, default=[])
    args = parser.parse_args()
    if not {"speed", "embedding"} <= set(args.skip) and not args.pdf.is_file():
        parser.error(f"{args.pdf} not found: pass --pdf, or --skip speed embedding")
    started = time.perf_counter()
    results: dict[str, Any] = run_record()
    sections: list[str] = []

    def tables(part: str, found: dict[str, list[dict[str, Any]]]) -> None:
        results[part] = found
        sections.extend(table(title, rows) for title, rows in found.items() if rows)

    if "speed" not in args.skip:
        tables("speed", speed.run(args.pdf, args.runs))
    if "embedding" not in args.skip:
        if "speed" in args.skip:
            speed.run(args.pdf, 1, part="ingest")  # only for its index
        tables("embedding", embedding.run(speed.DOCQA_INDEX))
    if "llm7b" not in args.skip:
        results["llm7b"] = llm7b.run(args.model_dir, args.runs)
        sections.append(llm7b.markdown(results["llm7b"]))
        tables("answer7b", {answer7b.HEADING: answer7b.run(args.model_dir, args.runs)})
    if "scaling" not in args.skip:
        tables("scaling", scaling.run(runs=args.runs))
        tables("memory", memory.run([1, 10, 100], pages=10))  # 10, 100 and 1,000 pages

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=1), "utf-8")
    images = plots.draw(results, RESULTS)
    minutes = (time.perf_counter() - started) / 60
    heading = f"# docqa benchmarks\n\n{results['machine']}; {results['date']}; {minutes:.0f} min.\n"
    figures = "".join(f"\n![{image.stem}]({image.name})\n" for image in images)
    (RESULTS / "latest.md").write_text(heading + "\n" + "\n".join(sections) + figures, "utf-8")
    print((RESULTS / "latest.md").read_text())


if __name__ == "__main__":
    main()
