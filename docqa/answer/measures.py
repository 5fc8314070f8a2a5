"""The measures of an evaluation: each item's value of each, their means and percentiles,
bootstrap intervals, and paired differences between two runs."""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

BOOTSTRAP_RESAMPLES = 2000


def measures(k: int, answered: bool) -> list[str]:
    """The per-item measures a report averages (answer ones only when it answered)."""
    names = [f"hit@{depth}" for depth in hit_depths(k)] + ["mrr"]
    names += [f"document_hit@{depth}" for depth in sorted({1, k})] + [f"page_hit@{k}"]
    if answered:
        names += ["answer_accuracy", "abstention_accuracy", "false_abstentions", "context_recall"]
        names += ["wrong_answers"]
    return names


def hit_depths(k: int) -> list[int]:
    """The depths hit rates are reported at: the first chunk, the first two, and k."""
    return sorted({1, min(2, k), k})


def item_values(item: dict[str, Any], k: int) -> dict[str, float | None]:
    """One item's value of each measure, from its JSON form (so that a result file written
    earlier compares with a fresh run); None where the measure does not apply to it."""
    answerable = item["kind"] != "unanswerable"
    rank, correct = item["rank"], item.get("correct")

    def flag(value: object, applies: bool = True) -> float | None:
        return None if value is None or not applies else float(bool(value))

    def within(found: int | None, depth: int, applies: bool) -> float | None:
        return flag(found is not None and found <= depth, applies)

    listed = answerable and bool(item.get("source")) and "document_rank" in item
    hits = {f"hit@{depth}": within(rank, depth, answerable) for depth in hit_depths(k)}
    hits |= {
        f"document_hit@{depth}": within(item.get("document_rank"), depth, listed)
        for depth in sorted({1, k})
    }
    hits[f"page_hit@{k}"] = within(item.get("page_rank"), k, listed)
    abstained = item.get("abstained")
    return {
        **hits,
        "mrr": (1 / rank if rank else 0.0) if answerable else None,
        "answer_accuracy": flag(correct, answerable),
        "abstention_accuracy": flag(correct, not answerable),
        "false_abstentions": flag(abstained, answerable),
        "context_recall": flag(item.get("context_hit"), answerable),
        # an answer given (not declined) that is not right: what misleads a reader
        "wrong_answers": None if correct is None else float(not abstained and not correct),
    }


def bootstrap(
    values: list[float | None], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """The 95% percentile bootstrap interval of the mean of the values that apply."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    chooser = random.Random(seed)
    means = sorted(
        statistics.fmean(chooser.choices(present, k=len(present))) for _ in range(resamples)
    )
    return round(means[int(0.025 * resamples)], 4), round(means[int(0.975 * resamples) - 1], 4)


def paired_difference(
    current: list[dict[str, Any]], previous: list[dict[str, Any]], k: int, answered: bool
) -> dict[str, dict[str, Any]]:
    """Each measure's difference (current - previous) over the items both runs hold, with
    its 95% paired bootstrap interval: items, not runs, are resampled."""
    before = {item["id"]: item_values(item, k) for item in previous}
    pairs = [(item_values(item, k), before[item["id"]]) for item in current if item["id"] in before]
    differences: dict[str, dict[str, Any]] = {}
    for name in measures(k, answered):
        deltas: list[float | None] = []
        for now, then in pairs:
            if (a := now[name]) is not None and (b := then[name]) is not None:
                deltas.append(a - b)
        if deltas:
            differences[name] = {
                "difference": mean(deltas),
                "interval": bootstrap(deltas),
                "items": len(deltas),
            }
    return differences


def difference_table(differences: dict[str, dict[str, Any]]) -> str:
    """Paired differences as an aligned table: measure, difference, interval, items."""
    rows = [
        f"{name:<20} {d['difference']:+.3f}  [{d['interval'][0]:+.3f}, {d['interval'][1]:+.3f}]"
        f"  ({d['items']} items)"
        for name, d in differences.items()
    ]
    return "\n".join(["difference (this run - the other), 95% paired bootstrap interval", *rows])


def mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 4) if present else None


def percentile(sorted_values: list[float], percent: float) -> float:
    """Nearest-rank percentile of an already sorted list: the smallest value with at least
    `percent` % of the values at or below it."""
    rank = math.ceil(percent * len(sorted_values) / 100)
    return sorted_values[max(0, min(len(sorted_values), rank) - 1)]
