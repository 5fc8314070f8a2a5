"""What the commands print: answers, sources and timings as text or JSON, ingest summaries."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from docqa.ingest_service import IngestReport
from docqa.qa_service import Answer

INDENT = "      "


def answer_json(answer: Answer) -> str:
    """Exactly one JSON object; no "answer" key when nothing was generated."""
    document: dict[str, Any] = {"question": answer.question}
    if answer.answer is not None:
        document["answer"] = answer.answer
        document["abstained"] = answer.abstained
    document["sources"] = [
        {"n": s.n, "source": s.source, "page": s.page, "text": s.text, "score": round(s.score, 4)}
        for s in answer.sources
    ]
    t = answer.timings
    document["timings"] = {
        "load_s": round(t.load_s, 3),
        "retrieve_s": round(t.retrieve_s, 3),
        "generate_s": None if t.generate_s is None else round(t.generate_s, 3),
        "total_s": round(t.total_s, 3),
    }
    document["model"] = {
        "path": str(answer.model_path) if answer.model_path else None,
        "backend": answer.backend,
    }
    if answer.completion:
        c = answer.completion
        document["usage"] = {
            "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens,
            "tokens_per_s": None if c.tokens_per_s is None else round(c.tokens_per_s, 1),
            "first_token_s": None if c.first_token_s is None else round(c.first_token_s, 3),
            "finish_reason": c.finish_reason,
        }
        document["raw_answer"] = answer.raw_answer
        document["dropped_sources"] = answer.dropped
    return json.dumps(document, ensure_ascii=False)


def sources_text(answer: Answer) -> str:
    lines = ["Sources:"]
    for s in answer.sources:
        lines.append(f"  [{s.n}] {s.source}, page {s.page} (score {s.score:.3f})")
        lines.append(textwrap.indent(s.text, INDENT))
    return "\n".join(lines)


def timings_text(answer: Answer) -> str:
    t = answer.timings
    parts = [f"load {t.load_s:.2f} s", f"retrieval {t.retrieve_s:.2f} s"]
    if answer.completion and t.generate_s is not None:
        c = answer.completion
        speed = f" at {c.tokens_per_s:.1f} tokens/s" if c.tokens_per_s else ""
        first = f", first token after {c.first_token_s:.2f} s" if c.first_token_s else ""
        parts.append(
            f"generation {t.generate_s:.2f} s ({c.prompt_tokens} prompt tokens, "
            f"{c.completion_tokens} generated{speed}{first})"
        )
    parts.append(f"total {t.total_s:.2f} s")
    text = "Time: " + " | ".join(parts)
    if answer.model_path:
        text += f"\nModel: {answer.model_path.name} ({answer.backend})"
    return text


def ingest_summary(report: IngestReport) -> str:
    files = len(report.files)
    lines = [
        f"Indexed {files} file{'s' if files != 1 else ''} ({report.pages} pages, "
        f"{report.chunks} chunks) in {report.seconds:.1f} s into {report.vectorstore}"
    ]
    if report.skipped:
        lines.append(f"Skipped {len(report.skipped)}:")
        lines.extend(f"  {name}: {reason}" for name, reason in report.skipped)
    return "\n".join(lines)
