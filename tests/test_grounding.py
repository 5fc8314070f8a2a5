"""Grounding: only what the passages support survives, cited; otherwise an abstention."""

import pytest

from docqa.answer.grounding import ABSTENTION, ground, is_abstention

PASSAGES = {
    1: "The minimum guarantee payable by adidas over the term is equal to £750 million.",
    2: "Old Trafford originally opened on 19 February 1910 and seats 74,240.",
}


def check(answer: str, question: str = "How much must adidas pay?") -> tuple[str, bool]:
    grounded = ground(answer, question, PASSAGES)
    return grounded.text, grounded.abstained


def test_supported_answer_gets_its_citation() -> None:
    assert check("The minimum guarantee payable by adidas is £750 million.") == (
        "The minimum guarantee payable by adidas is £750 million [1].",
        False,
    )
    assert check("Old Trafford opened on 19 February 1910 [2].") == (
        "Old Trafford opened on 19 February 1910 [2].",
        False,
    )


def test_invented_numbers_are_refused() -> None:
    assert check("The minimum guarantee payable by adidas is £75 million.") == (ABSTENTION, True)


def test_chatter_after_the_answer_is_cut() -> None:
    text, _ = check(
        "The answer is: £750 million. This means the club will be very rich in 2030 forever."
    )
    assert text == "£750 million [1]."


def test_unsupported_clause_is_trimmed() -> None:
    text, _ = check("Old Trafford seats 74,240, which makes it the biggest stadium since 1850.")
    assert text == "Old Trafford seats 74,240 [2]."


def test_template_junk_and_wrong_citations_go() -> None:
    text, _ = check("<|im_start|>Old Trafford seats 74,240 [7].<|im_end|>")
    assert text == "Old Trafford seats 74,240 [2]."


@pytest.mark.parametrize(
    "answer",
    [
        "The documents do not say.",
        "The passages don't mention it.",
        "It is not explicitly stated.",
        "I don't know.",
        "",
        " ",
    ],
)
def test_abstentions_are_recognised(answer: str) -> None:
    assert check(answer) == (ABSTENTION, True)
    assert is_abstention(answer) or not answer.strip()


def test_unrelated_words_are_unsupported() -> None:
    assert check("Cristiano Ronaldo scored twenty goals.") == (ABSTENTION, True)


def test_a_sentence_of_citations_alone_is_no_answer() -> None:
    assert check("[1][2].") == (ABSTENTION, True)
    text, _ = check("Old Trafford seats 74,240. [2].")
    assert text == "Old Trafford seats 74,240 [2]."


def test_citations_name_the_sources_read_even_when_they_skip_numbers() -> None:
    read = {2: PASSAGES[2], 4: PASSAGES[1]}  # evidence came from sources 2 and 4 only
    grounded = ground("The minimum guarantee is £750 million.", "How much must adidas pay?", read)
    assert (grounded.text, grounded.citations) == (
        "The minimum guarantee is £750 million [4].",
        [4],
    )
