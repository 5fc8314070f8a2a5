"""Evidence sentences: splitting pypdf text into sentences, and ranking them."""

import numpy as np
import pytest

from docqa.answer.evidence import (
    PIECE_WORDS,
    YEAR_WEIGHT,
    Evidence,
    excerpts,
    quote,
    select,
    sentences,
)


def test_sentences_respect_titles_quotes_and_wrapped_lines() -> None:
    text = (
        "our transfer contracts.\u201d Our top customer was the Premier League, who "
        "represented\n25.1% of revenue. "
        "In his capacity as Chief Executive Officer, Mr. Arnold oversees all. See Note No. 5 "
        "here. Ok."
    )
    assert sentences(text) == [
        "our transfer contracts.\u201d",
        "Our top customer was the Premier League, who represented 25.1% of revenue.",
        "In his capacity as Chief Executive Officer, Mr. Arnold oversees all.",
        "See Note No. 5 here.",
    ]


def test_long_runs_without_full_stops_split_at_lines_into_pieces_of_whole_rows() -> None:
    table = "\n".join(f"Row {i} 100 200 300 400 500 600 700" for i in range(12))  # 9 words each
    pieces = sentences(table)
    assert [len(piece.split()) for piece in pieces] == [45, 45, 18]  # 5 rows, 5 rows, 2 rows
    assert " ".join(pieces) == " ".join(table.split())
    assert all(len(piece.split()) <= PIECE_WORDS for piece in pieces)


def test_dot_leaders_neither_end_a_sentence_nor_part_a_label_from_its_figures() -> None:
    text = "Foreign exchange losses(1) . . . (58,738) — (4,436)\nTotal ........ 12 13"
    assert sentences(text) == [
        "Foreign exchange losses(1) (58,738) — (4,436) Total 12 13",
    ]


def fake_embed(texts: list[str]) -> np.ndarray:
    """Unit vectors: the question, then sentences more similar the more 'a' they hold."""
    rows = [[1.0, 0.0]] + [[text.count("a") / 10, 1.0] for text in texts[1:]]
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_select_adds_rare_shared_words_to_similarity() -> None:
    passages = {1: "Banana bread sells. Zebra crossings help.", 2: "Nothing shared here."}
    idf = {"zebra": 3.0, "crossing": 1.0}.get
    by_similarity = select("zebra crossing?", passages, fake_embed, lambda t: idf(t) or 0.1, 0.0)
    by_both = select("zebra crossing?", passages, fake_embed, lambda t: idf(t) or 0.1, 1.0)
    assert by_similarity[0].text == "Banana bread sells."
    assert by_both[0].text == "Zebra crossings help."
    assert (by_both[0].n, by_both[0].index) == (1, 1)


def test_excerpts_add_each_sentence_before_once_in_document_order() -> None:
    passages = {1: "One here now. Two here now. Three here now. Four here now.", 2: "Five is it."}
    chosen = [Evidence(1, 2, "Three here now.", 2.0), Evidence(1, 1, "Two here now.", 1.5)]
    # Two picks side by side: "Two" is both a pick and the sentence before "Three".
    assert excerpts(passages, chosen) == {1: "One here now. Two here now. Three here now."}
    assert excerpts(passages, [Evidence(2, 0, "Five is it.", 1.0)]) == {2: "Five is it."}


def test_select_prefers_the_year_asked_about_over_the_other_columns() -> None:
    passages = {1: "Broadcasting revenue (2022): 214,847. Broadcasting revenue (2021): 254,815."}
    words_only = lambda term: 0.0 if term.isdigit() else 1.0  # noqa: E731
    best = select("Broadcasting revenue in fiscal 2021?", passages, fake_embed, words_only, 1.0)
    assert best[0].text == "Broadcasting revenue (2021): 254,815."
    assert best[0].score - best[1].score == pytest.approx(2 * YEAR_WEIGHT)


def test_a_sentence_said_again_by_an_overlapping_chunk_is_ranked_once() -> None:
    said = "The Survey covered 39 countries."
    passages = {
        1: f"Banana sales rise. {said}",
        2: f"{said} More here now.",
        3: "Survey covered 39",
    }
    ranked = select("survey countries?", passages, fake_embed, lambda term: 1.0, 1.0)
    texts = [evidence.text for evidence in ranked]
    assert texts.count(said) == 1
    assert "Survey covered 39" not in texts  # a fragment of a better-ranked sentence
    assert sorted(texts) == sorted(["Banana sales rise.", said, "More here now."])


def test_the_quote_is_the_sentence_with_the_answers_figure_else_the_best_evidence() -> None:
    passage = (
        "We have a 10-year agreement with adidas. The minimum guarantee payable by adidas "
        "over the term of the agreement is equal to £750 million, subject to certain "
        "adjustments. Payments may increase if the team wins the league."
    )
    answer = "The minimum guarantee payable by adidas is £750 million"
    assert quote(passage, answer, [], 1).startswith("The minimum guarantee payable by adidas over")
    best = Evidence(1, 2, "Payments may increase if the team wins the league.", 0.9)
    other = Evidence(2, 0, "Elsewhere.", 1.0)
    assert quote(passage, "", [other, best], 1) == best.text  # a declined answer: the evidence
    assert quote(passage, "", [other], 1) == ""
