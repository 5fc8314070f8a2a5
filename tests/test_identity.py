"""Document identity: who and when a document is, from its cover, its name and its metadata;
periods as documents and questions write them; the user's corrections."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from docqa.errors import ConfigError
from docqa.index.corrections import FILE_NAME, Correction, Corrections
from docqa.index.identifying import headline_of, identify, meaningful_title
from docqa.index.identity import DocumentIdentity
from docqa.periods import Mention, Period, fiscal_quarter, match_strength, mentions, parse_period

TEN_Q_COVER = """UNITED STATES
SECURITIES AND EXCHANGE COMMISSION
Washington, D.C. 20549
FORM 10-Q
(Mark One)
QUARTERLY REPORT PURSUANT TO SECTION 13 OR 15(d) OF THE SECURITIES EXCHANGE ACT OF 1934
For the quarterly period ended October 29, 2023
Commission file number: 0-23985
ACME ROCKETS CORPORATION
(Exact name of registrant as specified in its charter)
Delaware 94-3177549
Title of each class Trading Symbol(s) Name of each exchange on which registered
Common Stock, $0.001 par value per share ARKT The Nasdaq Global Select Market"""
TEN_Q_BODY = (
    "Third Quarter of Fiscal Year 2024 Summary. Acme Rockets Corporation reported revenue of "
    "$18,120 million for the third quarter of fiscal year 2024, up from the third quarter of "
    "fiscal year 2023. Acme Rockets expects the fourth quarter of fiscal year 2024 to grow."
)
TEN_K_COVER = """FORM 10-K
ANNUAL REPORT PURSUANT TO SECTION 13 OR 15(d) OF THE SECURITIES EXCHANGE ACT OF 1934
For the fiscal year ended December 31, 2018
3M COMPANY
(Exact name of registrant as specified in its charter)"""
PLAN_COVER = """Page 1
U.S. Department of Transportation Strategic Plan FY 2022-2026
The U.S. Department of Transportation will make roads safer. The Department of Transportation
works with states. U.S. Department of Transportation grants grew."""


def test_a_quarterly_filing_is_its_registrant_its_quarter_and_its_fiscal_label() -> None:
    identity = identify(
        "filings/2023 Q3 ARKT.pdf",
        [TEN_Q_COVER, TEN_Q_BODY, "Acme Rockets Corporation signed this report."],
        {"Title": "0001045810-23-000227", "Subject": "Form 10-Q"},
        headline="ACME ROCKETS CORPORATION",
    )
    assert identity.organisations == ["Acme Rockets Corporation"]
    assert {"Acme Rockets", "ARKT"} <= set(identity.aliases)
    assert identity.kind == "quarterly report"
    assert identity.period == Period(end=date(2023, 10, 29), fiscal_year=2024, quarter=3)
    assert identity.period.label == "quarter ended October 29, 2023 (Q3 FY2024)"
    assert identity.title == "ACME ROCKETS CORPORATION"  # the accession number says nothing
    assert identity.label == (
        "Acme Rockets Corporation, quarterly report, quarter ended October 29, 2023 (Q3 FY2024)"
    )
    assert identity.header().startswith("Acme Rockets Corporation (")


def test_an_annual_report_is_its_fiscal_year() -> None:
    identity = identify("3M_2018_10K.pdf", [TEN_K_COVER, "3M Company sells tape."], {}, None)
    assert identity.organisations == ["3M Company"]
    assert "3M" in identity.aliases
    assert identity.kind == "annual report"
    assert identity.period == Period(end=date(2018, 12, 31), fiscal_year=2018)
    assert identity.title == "3M_2018_10K"  # no title anywhere: the file's name


def test_a_plan_is_its_public_body_and_its_years() -> None:
    identity = identify("DOT2022.pdf", [PLAN_COVER], {"Title": "DOT2022"}, None)
    assert identity.organisations == ["U.S. Department of Transportation"]
    assert "DOT" not in identity.organisations
    assert identity.kind == "strategic plan"
    assert identity.period == Period(first_year=2022, last_year=2026)
    assert identity.period.years == {2022, 2023, 2024, 2025, 2026}


def test_an_acronym_of_the_file_name_stands_for_an_unnamed_body() -> None:
    text = "EPA will clean the air. EPA grants help states. EPA staff measure water."
    identity = identify("EPA2022.pdf", [f"FY 2022-2026 EPA Strategic Plan\n{text}"], {}, None)
    assert identity.organisations == ["EPA"]
    expanded = identify(
        "EPA2022.pdf", [f"The Environmental Protection Agency (EPA). {text}"], {}, None
    )
    assert expanded.organisations == ["Environmental Protection Agency"]


def test_titles_from_metadata_only_when_they_say_something() -> None:
    assert meaningful_title("Annual Performance Report Fiscal Year 2015", "2015-report")
    for title in ("", "2015-report", "0000320193-23-000077", "Microsoft Word - draft.docx", "x"):
        assert not meaningful_title(title, "2015-report")


def test_the_headline_is_the_largest_font_that_stands_out() -> None:
    lines = [("Page 1", 20.0), ("Phase II study of", 16.0), ("dendritic cells", 16.0)]
    lines += [("Santiago, 2001", 10.0)] + [("body text", 10.0)] * 6
    assert headline_of(lines) == "Phase II study of dendritic cells"
    assert headline_of([("same size everywhere", 10.0)] * 8) is None


def test_periods_as_questions_write_them() -> None:
    assert mentions("What was capex in FY2018?") == [Mention(year=2018, fiscal=True)]
    assert mentions("revenue in Q3 FY24")[0] == Mention(year=2024, quarter=3, fiscal=True)
    assert mentions("the third quarter of fiscal 2024")[0].quarter == 3
    assert mentions("2023 Q1 results")[0] == Mention(year=2023, quarter=1)
    assert mentions("as of September 30, 2023")[0].end == date(2023, 9, 30)
    assert mentions("its FY 2022-2026 plan")[0] == Mention(year=2022, fiscal=True, last_year=2026)
    assert mentions("sales in the prior year")[0].relative == -1
    assert not mentions("in July 2022")[0].explicit  # a bare year may only date an event


def test_how_well_a_period_answers_a_named_one() -> None:
    quarter = Period(end=date(2023, 10, 29), fiscal_year=2024, quarter=3)
    assert match_strength(quarter, Mention(year=2024, quarter=3, fiscal=True)) == 3
    assert match_strength(quarter, Mention(year=2023, quarter=3)) == 3  # the calendar quarter
    assert match_strength(quarter, Mention(year=2023, quarter=3, fiscal=True)) == 0
    assert match_strength(quarter, Mention(year=2023, end=date(2023, 10, 29))) == 3
    year = Period(end=date(2018, 12, 31), fiscal_year=2018)
    assert match_strength(year, Mention(year=2018, fiscal=True)) == 3
    assert match_strength(year, Mention(year=2017, fiscal=True)) == 0
    assert match_strength(None, Mention(year=2018)) == 0


def test_a_fiscal_quarter_from_the_quarters_a_text_names() -> None:
    # Microsoft's quarter ended December 31, 2022 is its second of fiscal 2023; the text also
    # names last year's quarters more often.
    named = [(1, 2022)] * 9 + [(2, 2023)] * 4 + [(2, 2021)] * 2
    assert fiscal_quarter(date(2022, 12, 31), named) == (2023, 2)
    assert fiscal_quarter(date(2022, 12, 31), [(4, 2019)]) is None


def test_periods_as_people_write_them() -> None:
    assert parse_period("Q3 FY2023") == Period(fiscal_year=2023, quarter=3)
    assert parse_period("FY2022-2026") == Period(first_year=2022, last_year=2026)
    assert parse_period("year ended 30 June 2022") == Period(
        end=date(2022, 6, 30), fiscal_year=2022
    )
    assert parse_period("2023-07-01") == Period(end=date(2023, 7, 1))
    assert parse_period("soon") is None


def test_corrections_apply_survive_and_are_checked(tmp_path: Path) -> None:
    read = DocumentIdentity(title="scan-0001", kind=None)
    corrections = Corrections.read(tmp_path)
    assert corrections.apply("scan.pdf", read) == read
    corrections.save(
        "scan.pdf",
        Correction(title="Lease of Unit 4", organisations=["Harbour Ltd"], period="FY2021"),
    )
    again = Corrections.read(tmp_path)  # from the file: it is what survives
    corrected = again.apply("scan.pdf", read)
    assert corrected.title == "Lease of Unit 4"
    assert corrected.organisations == ["Harbour Ltd"]
    assert corrected.period == Period(fiscal_year=2021)
    assert corrected.corrected == ["organisations", "period", "title"]
    assert again.outdated("scan.pdf", read)
    assert not again.outdated("scan.pdf", corrected)
    again.save("scan.pdf", None)
    assert not Corrections.read(tmp_path).entries
    assert Corrections.read(tmp_path).outdated("scan.pdf", corrected)  # the index has it still


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scan.pdf: {period: someday}", "names no period"),
        ("scan.pdf: {colour: red}", "colour"),
        ("- a list", "must map file names"),
        ("scan.pdf: [unclosed", "cannot read"),
    ],
)
def test_a_bad_corrections_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / FILE_NAME).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        Corrections.read(tmp_path)
