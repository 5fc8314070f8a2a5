"""The benchmark's figures, from the results `python -m bench` collects (PNG, matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def draw(results: dict[str, Any], folder: Path) -> list[Path]:
    """Write the figures the results allow; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    drawn = []
    if "scaling" in results and "memory" in results:
        drawn.append(_against_size(results, folder / "time-vs-size.png"))
    if "llm7b" in results or "embedding" in results:
        drawn.append(_against_ceiling(results, folder / "throughput-vs-ceiling.png"))
    return drawn


def _against_size(results: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    (ingest,) = results["memory"].values()
    search, ask = results["scaling"].values()
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.2))
    left.plot([r["pages"] for r in ingest], [r["seconds"] for r in ingest], "o-")
    left.set(xscale="log", yscale="log", xlabel="generated PDF pages", ylabel="ingest, s")
    left.set_title("Ingest time against corpus size")
    sizes = [r["vectors"] for r in search]
    middle.plot(sizes, [r["exact_ms"] for r in search], "o-", label="exact (flat)")
    middle.plot(sizes, [r["hnsw_ms"] for r in search], "s-", label="HNSW")
    middle.set(xscale="log", yscale="log", xlabel="vectors", ylabel="ms per question")
    middle.set_title("Vector search against index size")
    middle.legend()
    chunks = [r["chunks"] for r in ask]
    right.plot(chunks, [r["load_s"] for r in ask], "o-", label="load index")
    right.plot(chunks, [r["retrieval_s"] for r in ask], "s-", label="retrieve (hybrid)")
    right.set(xscale="log", xlabel="chunks in the index", ylabel="s")
    right.set_title("A question's load and retrieval")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _against_ceiling(results: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    panels = [part for part in ("llm7b", "embedding") if part in results]
    figure, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 4.5), squeeze=False)
    for axis, part in zip(axes[0], panels, strict=True):
        if part == "llm7b":
            found = results["llm7b"]
            rows = found["rows"]
            labels = [f"{r['backend']}\n{r['via']}" for r in rows]
            axis.bar(labels, [r["generation_tok_s"] for r in rows])
            axis.axhline(found["ceiling_tok_s"], color="red", linestyle="--")
            axis.annotate(
                f"bandwidth ceiling {found['ceiling_tok_s']} tok/s",
                (0, found["ceiling_tok_s"]),
                xytext=(0, 4),
                textcoords="offset points",
                color="red",
            )
            axis.set(ylabel="generated tokens/s", title="7B Q8_0 generation against the ceiling")
        else:
            rows = next(iter(results["embedding"].values()))
            axis.barh(
                [r["runtime"] for r in rows],
                [float(r["share_of_its_peak"].split("%")[0]) for r in rows],
            )
            axis.axvline(100, color="red", linestyle="--")
            axis.set(
                xlabel="% of the matmul peak of its precision (fp32 or bf16)",
                title="Embedding throughput",
            )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
