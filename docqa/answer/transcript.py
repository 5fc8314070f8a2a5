"""A conversation as Markdown — each question, its answer and its sources — the same whether
`docqa chat` saves it (/save) or the server exports a kept one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def transcript(answers: Iterable[Mapping[str, Any]], title: str) -> str:
    """Answers (as answer_dict gives them) under the heading `title`: each question, its
    answer, the search made for it when that differs, and its sources with their quotes."""
    lines = [f"# {' '.join(title.split())}", ""]
    for answer in answers:
        question = answer["question"]
        lines += [f"**You:** {question}", "", f"**docqa:** {answer.get('answer')}", ""]
        if answer["query"] != question:
            lines += [f"*Searched for:* {answer['query']}", ""]
        for s in answer["sources"]:
            quote = " ".join(s["text"].split())
            where = f"{s['source']}, {s['locator']}"
            lines.append(f"- [{s['n']}] {where} (score {s['score']:.3f}): {quote}")
        lines.append("")
    return "\n".join(lines)
