"""BM25 keyword search: ranking, persistence without pickle."""

from pathlib import Path

import numpy as np
import pytest

from docqa.index.bm25 import BM25Index

TEXTS = [
    "The minimum guarantee payable by adidas is £750 million.",
    "Broadcasting revenue rose; the Premier League pays a fixed share.",
    "adidas supplies kit; adidas also pays royalties to the club.",
    "Matchday revenue depends on attendance at Old Trafford.",
]


def test_rare_terms_rank_their_chunks_first() -> None:
    index = BM25Index.build(TEXTS)
    assert index.search("minimum guarantee adidas", 10)[0] == 0
    assert index.search("Old Trafford attendance", 10) == [3]
    assert index.search("nothing matches this", 10) == []
    assert index.idf("guarantee") > index.idf("adida") > 0


def test_scores_grow_with_term_frequency_and_rarity() -> None:
    scores = BM25Index.build(TEXTS).scores("adidas")
    assert scores[2] > scores[0] > 0
    assert scores[1] == scores[3] == 0


def test_round_trip_without_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    BM25Index.build(TEXTS).save(tmp_path)
    original = np.load

    def no_pickle(*args: object, **kwargs: object) -> object:
        assert kwargs.get("allow_pickle") is False
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(np, "load", no_pickle)
    loaded = BM25Index.load(tmp_path)
    assert len(loaded) == 4
    assert np.allclose(loaded.scores("adidas kit"), BM25Index.build(TEXTS).scores("adidas kit"))
