"""What the commands print: answers (streamed or whole), sources and timings as text or JSON,
ingest summaries, index status."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a question should not import the ingest side
    from docqa.answer.results import Answer, Event, Revision
    from docqa.config import Settings
    from docqa.index.report import IngestReport
    from docqa.index.status import IndexStatus

INDENT = "      "
LISTED = 10  # names listed per kind of change in an ingest summary


# How grounding changed the streamed text, as the line after the stream says it.
REVISIONS = {
    "cited": "citations added",
    "trimmed": "cut to what the sources support",
    "quoted": "the model's answer is not supported by the sources; quoting them instead",
    "declined": "the model's answer is not supported by the sources",
}


def answer_json(
    answer: Answer, load_s: float | None = None, process_s: float | None = None, **extra: Any
) -> str:
    """The answer as one JSON line; a lone question's timings add loading and the process."""
    from docqa.answer.results import answer_dict

    document = answer_dict(answer)
    if load_s is not None:
        document["timings"] = {"load_s": round(load_s, 3), **document["timings"]}
    if process_s is not None:
        document["timings"]["process_s"] = round(process_s, 3)
    return json.dumps({**document, **extra}, ensure_ascii=False)


def json_line(document: dict[str, Any]) -> None:
    """One JSON object on its own line, flushed at once: for programs reading as it comes."""
    print(json.dumps(document, ensure_ascii=False), flush=True)


def print_answer(events: Iterable[Event]) -> Answer:
    """Show an answer as it streams, token by token. When grounding changed it, a terminal
    has the streamed text replaced by the checked answer, with a one-line note saying how it
    was changed; other outputs get the checked answer after it, and why (never a silent
    swap). Raises an error event's error."""
    streamed = ""
    answer: Answer | None = None
    for event in events:
        if event.kind == "token":
            if not streamed:
                sys.stdout.write("Answer: ")
            streamed += event.text
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif event.kind == "answer":
            answer = event.answer
        elif event.kind == "error":
            if streamed:
                sys.stdout.write("\n")
            raise event.error
    assert answer is not None
    if not streamed:
        print(f"Answer: {answer.answer}")
    elif not answer.revision:
        print()
    elif sys.stdout.isatty():
        sys.stdout.write(_erase(f"Answer: {streamed}"))
        print(f"Answer: {answer.answer}\n({revision_note(answer.revision)})")
    else:
        print(f"\nChecked ({REVISIONS[answer.revision]}): {answer.answer}")
    return answer


def revision_note(revision: Revision) -> str:
    """How checking changed the model's answer, in one line."""
    own = "" if revision == "cited" else "; --json shows the model's own words"
    return f"checked: {REVISIONS[revision]}{own}"


def _erase(shown: str) -> str:
    """The terminal codes that take the cursor back to where `shown` began and clear the
    screen from there: its lines, as wrapped at the terminal's width."""
    import shutil

    from rich.cells import cell_len

    width = shutil.get_terminal_size().columns
    rows = sum(max(1, -(-cell_len(line) // width)) for line in shown.split("\n"))
    up = f"\x1b[{rows - 1}A" if rows > 1 else ""
    return f"\r{up}\x1b[J"


def sources_text(answer: Answer) -> str:
    lines = ["Sources:"]
    for s in answer.sources:
        also = f" (also {', '.join(s.also)})" if s.also else ""
        ocr = " (OCR)" if s.ocr else ""
        what = f" \u2014 {s.document.label}" if s.document else ""
        lines.append(f"  [{s.n}] {s.source}{also}, {s.where}{ocr} (score {s.score:.3f}){what}")
        lines.append(textwrap.indent(s.text, INDENT))
    return "\n".join(lines)


def timings_text(
    answer: Answer, load_s: float | None = None, process_s: float | None = None
) -> str:
    """Where the time went: loading (when given), this question's parts, the process."""
    t = answer.timings
    parts = [f"load {load_s:.2f} s"] if load_s is not None else []
    parts.append(f"retrieval {t.retrieve_s:.2f} s")
    if t.first_token_s is not None:
        parts.append(f"first token {t.first_token_s:.2f} s")
    if answer.completion and t.generate_s is not None:
        c = answer.completion
        speed = f" at {c.tokens_per_s:.1f} tokens/s" if c.tokens_per_s else ""
        parts.append(
            f"generation {t.generate_s:.2f} s ({c.prompt_tokens} prompt tokens, "
            f"{c.completion_tokens} generated{speed})"
        )
    parts.append(f"question {t.total_s:.2f} s")
    if process_s is not None:
        parts.append(f"total {process_s:.2f} s")
    text = "Time: " + " | ".join(parts)
    if answer.model_path:
        text += f"\nModel: {answer.model_path.name} ({answer.backend})"
    return text


def ingest_summary(report: IngestReport) -> str:
    files = len(report.files)
    ocr = report.manifest.ocr_pages if report.manifest else 0
    pages = f"{report.pages} page{'s' if report.pages != 1 else ''}"
    pages += f", {ocr} of them by OCR" if ocr else ""
    size = f"{files} file{'s' if files != 1 else ''} ({pages}, {report.chunks} chunks)"
    if not report.written:
        lines = [f"Index is up to date: {size}, nothing new to read ({report.seconds:.1f} s)"]
    else:
        lines = [f"Indexed {size} in {report.seconds:.1f} s into {report.vectorstore}"]
        if report.pages_read and report.seconds:
            lines.append(
                f"  read {report.pages_read} pages ({report.pages_read / report.seconds:.1f} "
                f"pages/s) and embedded {report.chunks_made} chunks "
                f"({report.chunks_made / report.seconds:.1f} chunks/s)"
            )
        if report.rebuilt_because:
            lines.append(f"  rebuilt from scratch: {report.rebuilt_because}")
    counts = {
        "added": len(report.added),
        "updated": len(report.updated),
        "moved": len(report.moved),
        "copies": len(report.copies),
        "removed": len(report.removed),
        "unchanged": report.unchanged,
        "resumed": report.resumed,
        "failed": len(report.failed),
    }
    if report.written:
        lines.append("  " + ", ".join(f"{kind} {n}" for kind, n in counts.items() if n))
    listed = [
        ("added", report.added),
        ("updated", report.updated),
        ("moved", [f"{old} -> {new}" for old, new in report.moved]),
        ("copy", [f"{copy} (same as {original})" for copy, original in report.copies]),
        ("removed", report.removed),
    ]
    for kind, names in listed:
        lines.extend(f"  {kind}: {name}" for name in names[:LISTED])
        if len(names) > LISTED:
            lines.append(f"  ... and {len(names) - LISTED} more {kind}")
    if report.failed:
        lines.append(f"Failed {len(report.failed)} (not in the index):")
        lines.extend(f"  {failure.source}: {failure.reason}" for failure in report.failed)
    lines += _unsupported(report.unsupported)
    return "\n".join(lines)


def _unsupported(files: list[tuple[str, str]]) -> list[str]:
    if not files:
        return []
    return [f"Not read ({len(files)}):"] + [f"  {name}: {reason}" for name, reason in files]


def status_text(status: IndexStatus, settings: Settings) -> str:
    m = status.manifest
    copies = len(m.files) - len(m.documents())
    chunking = m.chunking
    lines = [
        f"Index:       {settings.paths.vectorstore} "
        f"(format {m.format_version}, checksums verified)",
        f"Files:       {len(m.files)} indexed"
        + (f" ({copies} of them copies)" if copies else "")
        + (f", {len(m.failed)} failed" if m.failed else ""),
        f"Pages:       {m.pages}" + (f" ({ocr} read by OCR)" if (ocr := m.ocr_pages) else ""),
        f"Chunks:      {m.chunks}",
        f"Embedding:   {m.embedding.model} ({m.embedding.dimension} dimensions, "
        f"{m.embedding.precision}), chunks of at most {chunking['chunk_tokens']} word pieces, "
        f"{chunking['overlap_tokens']} overlapping",
        f"Last ingest: {m.created_at} (docqa {m.docqa_version})",
        f"On disk:     {_megabytes(status.total_bytes)} in all; the index in use "
        f"{_megabytes(status.generation_bytes)}; the rest is documents kept for incremental "
        "ingests, and the previous index",
    ]
    lines.append("Documents:")
    for entry in m.files[:LISTED]:
        lines.append(f"  {entry.source}: {entry.identity.label}")
    if len(m.files) > LISTED:
        lines.append(f"  ... and {len(m.files) - LISTED} more (`docqa meta` lists them all)")
    pending = {
        "new": status.new,
        "changed": status.changed,
        "removed": status.removed,
        "corrected": status.corrected,
    }
    if status.data_folder_missing:
        lines.append(
            f"Data folder: {settings.paths.data}: not found; point --data or paths.data at "
            "the documents to see what an ingest would change"
        )
    elif any(pending.values()):
        counts = ", ".join(f"{len(names)} {kind}" for kind, names in pending.items() if names)
        lines.append(f"Data folder: {settings.paths.data}: {counts}; run `python ingest.py`")
        for kind, names in pending.items():
            lines.extend(f"  {kind}: {name}" for name in names[:LISTED])
            if len(names) > LISTED:
                lines.append(f"  ... and {len(names) - LISTED} more {kind}")
    else:
        lines.append(f"Data folder: {settings.paths.data}: up to date")
    fallback = [entry.source for entry in m.files if entry.parser == "pypdfium2"]
    if fallback:
        lines.append("Read by pypdfium2 (pypdf could not): " + ", ".join(fallback[:LISTED]))
    if m.failed:
        lines.append("Failed (not in the index):")
        lines.extend(f"  {failure.source}: {failure.reason}" for failure in m.failed)
    lines += _unsupported(status.unsupported)
    return "\n".join(lines)


def status_json(status: IndexStatus) -> str:
    m = status.manifest
    return json.dumps(
        {
            "format_version": m.format_version,
            "files": status.listing(),
            "indexed_files": len(m.files),
            "documents": len(m.documents()),
            "pages": m.pages,
            "chunks": m.chunks,
            "embedding": m.embedding.model_dump(),
            "chunking": m.chunking,
            "created_at": m.created_at,
            "docqa_version": m.docqa_version,
            "index_bytes": status.generation_bytes,
            "total_bytes": status.total_bytes,
            "failed": [{"source": f.source, "reason": f.reason} for f in m.failed],
            "unsupported": [{"source": name, "reason": why} for name, why in status.unsupported],
            "data_folder_missing": status.data_folder_missing,
            "pending": {
                "new": status.new,
                "changed": status.changed,
                "removed": status.removed,
                "corrected": status.corrected,
            },
        },
        ensure_ascii=False,
    )


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
