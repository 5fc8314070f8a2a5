"""Follow-up questions in `docqa chat`: how each way of making a follow-up stand-alone
(chat.rewrite) retrieves, on the 20-F. Writes bench/results/followups.md and .json.

    poetry run python -m bench.followups [--pdf FILE]

- follow-ups: retrieval hit@4 of the later turns of tests/eval/manu-20f-conversations.jsonl
  (questions such as "Over how many years?"), and the answer accuracy of those turns;
- switches: what carrying words from the conversation costs a question that stands alone:
  each answerable question of tests/eval/manu-20f.jsonl asked after another one.
Earlier turns are answered with their expected answers (the gold history), so each turn
measures the rewriting, not the demo model's earlier mistakes. Each result is reported for
the tuning half and the test half of its set (conversations by their "split", questions by
the parity of their place): settings are chosen on the tuning half; quote the test half.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from bench.quality import DEPTH, ROOT, SHOWCASE, build_index, settings_for
from bench.report import RESULTS, write
from docqa.answer.conversation import Conversation
from docqa.answer.evaluation import load_questions
from docqa.answer.qa import QAService
from docqa.answer.results import Turn
from docqa.text import contains

CONVERSATIONS = ROOT.parent / "tests/eval/manu-20f-conversations.jsonl"
QUESTIONS = ROOT.parent / "tests/eval/manu-20f.jsonl"
MODES = ("off", "keywords", "llm", "both")


def hit(service: QAService, query: str, pages: list[int], answers: list[str]) -> bool:
    """Whether a chunk among the first DEPTH is on a listed page or holds an answer."""
    found = service.search(query, DEPTH)
    return any(h.page in pages or contains(h.text, answers) for h in found)


def run_turns(
    service: QAService, mode: str, turns: list[dict[str, Any]], sampling: Any, answer: bool
) -> list[dict[str, Any]]:
    """Every turn after the first of one conversation: its stand-alone query, whether
    retrieval found it, and (`answer`) docqa's answer and whether it is right."""
    conversation = Conversation(service, sampling, rewrite=mode)
    results = []
    for number, turn in enumerate(turns):
        query = conversation.standalone(turn["question"])
        if number:
            result = {
                "question": turn["question"],
                "query": query,
                "hit": hit(service, query, turn["pages"], turn["answers"]),
            }
            if answer:
                reply = service.ask(
                    turn["question"], history=conversation.history, sampling=sampling, query=query
                )
                result["answer"] = reply.answer
                result["right"] = not reply.abstained and contains(
                    reply.answer or "", turn["answers"]
                )
            results.append(result)
        conversation.turns.append(Turn(turn["question"], turn["answers"][0], query))
    return results


def share(flags: list[bool]) -> float:
    return round(statistics.fmean(flags), 3) if flags else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdf", type=Path, default=SHOWCASE)
    args = parser.parse_args()
    cache = ROOT / ".cache"
    index = build_index(args.pdf.resolve(), {}, cache)
    settings = settings_for(cache / "unused-data", index)
    service = QAService(settings)
    service.load()
    sampling = settings.llm.sampling.override(stop=settings.chat.stop)
    conversations = [json.loads(line) for line in CONVERSATIONS.read_text().splitlines() if line]
    items = [item for item in load_questions(QUESTIONS) if item.answerable]
    follow_rows, switch_rows, details = [], [], []
    for mode in MODES:
        for split in ("tune", "test"):
            chosen = [c for c in conversations if c["split"] == split]
            outcomes = [
                r for c in chosen for r in run_turns(service, mode, c["turns"], sampling, True)
            ]
            details += [{"rewrite": mode, "half": split, **r} for r in outcomes]
            follow_rows.append(
                {
                    "rewrite": mode,
                    "half": split,
                    "follow-up turns": len(outcomes),
                    f"hit@{DEPTH}": share([r["hit"] for r in outcomes]),
                    "answer accuracy": share([r["right"] for r in outcomes]),
                }
            )
            half = [item for n, item in enumerate(items) if n % 2 == (split == "test")]
            after = half[len(half) // 2 :] + half[: len(half) // 2]  # another question first
            pairs = [
                [
                    {"question": first.question, "pages": first.pages, "answers": first.answers},
                    {"question": then.question, "pages": then.pages, "answers": then.answers},
                ]
                for first, then in zip(after, half, strict=True)
            ]
            switched = [r for p in pairs for r in run_turns(service, mode, p, sampling, False)]
            switch_rows.append(
                {
                    "rewrite": mode,
                    "half": split,
                    "questions": len(switched),
                    f"hit@{DEPTH}": share([r["hit"] for r in switched]),
                }
            )
            print(follow_rows[-1], switch_rows[-1], flush=True)
    (RESULTS / "followups-turns.json").write_text(json.dumps(details, indent=1), "utf-8")
    print(
        write(
            "followups",
            "Follow-up questions in docqa chat (20-F, SmolLM2-135M)",
            {"follow-up turns": follow_rows, "stand-alone questions after another": switch_rows},
        )
    )


if __name__ == "__main__":
    main()
