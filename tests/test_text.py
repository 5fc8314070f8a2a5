"""Text folding for comparisons, keyword terms and numbers."""

from docqa.text import contains, fold, numbers, terms, years


def test_fold_ignores_case_spacing_separators_and_typography() -> None:
    folded = fold("  Revenue  was £ 583,201\nthousand \u2014 \u2018up\u2019 ")
    assert folded == "revenue was £583201 thousand - 'up'"
    assert fold("1,234,567.8") == "1234567.8"
    assert fold("2021, 2022") == "2021, 2022"  # a comma between years is not a separator


def test_contains_uses_folded_forms() -> None:
    assert contains("The guarantee is £ 750 Million.", ["£750 million"])
    assert not contains("The guarantee is £75 million.", ["£750 million"])


def test_terms_drop_stopwords_and_plurals() -> None:
    assert terms("What are the Guarantees of adidas in 2022?") == ["guarantee", "adida", "2022"]
    assert terms("£750m and 18.0%") == ["£750m", "18.0%"]


def test_numbers_are_folded() -> None:
    assert numbers("£583,201 thousand, up 18.0% since 2021") == {"583201", "18.0", "2021"}


def test_years_are_four_digit_numbers_of_this_and_the_last_century() -> None:
    assert years("fiscal 2021 (year ended 30 June 2021), not 1850 or 20,210") == {"2021"}
