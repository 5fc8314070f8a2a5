"""Grounding: only what the passages support survives, cited; otherwise an abstention."""

import pytest

from docqa.answer.figures import figure_years, wrong_year
from docqa.answer.grounding import ABSTENTION, agrees, ground, is_abstention

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


def test_a_bare_amount_gets_the_currency_the_passages_give_it() -> None:
    assert check("The guarantee is 750 million.")[0] == "The guarantee is £750 million [1]."


SIDE_BY_SIDE = (
    "Our Broadcasting revenue was £214.9 million, £254.8 million and £140.2 million for each of "
    "the years ended 30 June 2022, 2021 and 2020, respectively."
)
COMPARATIVE = (
    "The fair value of investment properties as of 30 June 2022 was £38,250,000 "
    "(2021: £24,700,000)."
)


def test_figures_are_read_with_the_years_they_are_given_for() -> None:
    assert figure_years(SIDE_BY_SIDE) == {"214.9": {"2022"}, "254.8": {"2021"}, "140.2": {"2020"}}
    assert figure_years(COMPARATIVE) == {"38250000": {"2022"}, "24700000": {"2021"}}
    # the current figure's year: the one the sentence names, else the year after the prior's
    assert figure_years("It was £38.3 million (2021: £24.7 million).") == {
        "24.7": {"2021"},
        "38.3": {"2022"},
    }
    assert figure_years(PASSAGES[1]) == {}


@pytest.mark.parametrize(
    ("answer", "question", "wrong"),
    [
        ("£214.9 million [1].", "What was Broadcasting revenue in fiscal 2021?", True),
        ("£254.8 million [1].", "What was Broadcasting revenue in fiscal 2021?", False),
        ("£214.9 million.", "What was Broadcasting revenue in the year to June 2022?", False),
        ("£214.9 million.", "What was Broadcasting revenue?", False),  # no year asked
        ("It was £24,700,000.", "The fair value of investment properties in 2022?", True),
        ("It was £38,250,000.", "The fair value of investment properties in 2022?", False),
        ("It was £38,250,000.", "The fair value of investment properties in 2021?", True),
    ],
)
def test_a_figure_for_another_year_than_asked_is_wrong(
    answer: str, question: str, wrong: bool
) -> None:
    sentence = SIDE_BY_SIDE if "Broadcasting" in question else COMPARATIVE
    assert wrong_year(answer, sentence, question) is wrong


@pytest.mark.parametrize(
    ("answer", "agreed"),
    [
        ("Old Trafford opened on 19 February 1910 [2].", True),
        ("It seats 74,240 people.", True),
        ("It seats 75,000 people.", False),  # a figure the sentence does not give
        ("Old Trafford is in Manchester.", False),  # words the sentence does not use
        ("When did Old Trafford open?", False),  # the question said back: no answer
    ],
)
def test_an_answer_agrees_with_a_sentence_by_its_figures_or_its_own_words(
    answer: str, agreed: bool
) -> None:
    assert agrees(answer, PASSAGES[2], "When did Old Trafford open?") is agreed


@pytest.mark.parametrize(
    ("answer", "agreed"),
    [
        ("It happened on 19 February [2].", False),  # only the question's own figure said back
        ("On 19 February it opened, and it seats 74,240.", True),  # and one the question lacks
    ],
)
def test_the_questions_own_figures_are_not_an_answer(answer: str, agreed: bool) -> None:
    assert agrees(answer, PASSAGES[2], "What happened at Old Trafford on 19 February?") is agreed
