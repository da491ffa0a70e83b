"""Value parsing as the contract promises it (§1 "Values as customers really send them").

Pure polars, no Dagster: dates decided per column, money in every common notation,
e-mails, URLs and the placeholders that mean "missing".
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from jf_pipeline.core.values import (
    missing_to_null,
    parse_dates,
    parse_emails,
    parse_money,
    parse_urls,
)
from jf_pipeline_tests.conftest import CORPORA


def dates(*values):
    parsed = parse_dates(pl.Series("d", list(values), dtype=pl.String))
    return parsed.values.to_list(), parsed.problem.to_list(), [r for r, _ in parsed.notes]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-31", date(2026, 12, 31)),
        ("12/31/2026", date(2026, 12, 31)),
        ("31/12/2026", date(2026, 12, 31)),
        ("31.12.2026", date(2026, 12, 31)),
        ("Dec 31, 2026", date(2026, 12, 31)),
        ("31-Dec-2026", date(2026, 12, 31)),
        ("31 December 2026", date(2026, 12, 31)),
        ("2026/12/31", date(2026, 12, 31)),
        ("2026-12-31T23:30:00-05:00", date(2026, 12, 31)),  # the local calendar date is kept
        ("2026-12-31 08:15", date(2026, 12, 31)),
        ("12/31/26", date(2026, 12, 31)),
        ("46387", date(2026, 12, 31)),  # an Excel serial number
        ("12/31/2026 10:00 AM", date(2026, 12, 31)),
        ("31.12.2026 23:59", date(2026, 12, 31)),
    ],
)
def test_each_accepted_date_form_reads_as_the_calendar_date(text, expected):
    values, problems, _ = dates(text)
    assert values == [expected] and problems == [None]


@pytest.mark.parametrize("text", ["2017-02-30", "TBD", "31/02/2026", "Dec 2026", "13/13/2026", "5"])
def test_impossible_and_partial_dates_are_invalid(text):
    values, problems, _ = dates(text)
    assert values == [None] and problems == ["invalid_date"]


def test_day_first_is_decided_once_for_the_whole_column():
    # 03/04 alone is ambiguous; 25/04 in the same column says the column is day-first.
    values, problems, notes = dates("03/04/2026", "25/04/2026")
    assert values == [date(2026, 4, 3), date(2026, 4, 25)]
    assert problems == [None, None] and notes == []


def test_month_first_column_reads_ambiguous_values_month_first():
    values, _, _ = dates("03/04/2026", "04/25/2026")
    assert values == [date(2026, 3, 4), date(2026, 4, 25)]


def test_fully_ambiguous_column_is_month_first_and_reported():
    values, problems, notes = dates("03/04/2026", "05/06/2026")
    assert values == [date(2026, 3, 4), date(2026, 5, 6)]
    assert problems == [None, None] and notes == ["ambiguous_date_format"]


def test_contradicting_values_are_rejected_against_the_majority():
    values, problems, notes = dates("25/04/2026", "26/04/2026", "04/27/2026", "03/04/2026")
    assert values == [date(2026, 4, 25), date(2026, 4, 26), None, date(2026, 4, 3)]
    assert problems == [None, None, "inconsistent_date_format", None]
    assert notes == ["inconsistent_date_format"]


def test_iso_dates_are_never_swapped_in_a_day_first_column():
    values, _, _ = dates("2026-01-02", "25/04/2026")
    assert values[0] == date(2026, 1, 2)


def test_nulls_stay_null_without_a_problem():
    values, problems, _ = dates(None, "2026-01-01")
    assert values == [None, date(2026, 1, 1)] and problems == [None, None]


# Rows of dateutil's own vectors that we deliberately read differently, and why.
DELIBERATE = {
    "": "an empty cell is a missing value, not an invalid date",
}


def _dateutil_vectors():
    """The in-scope rows: one value, dayfirst/yearfirst off, no default date, tz dict or fuzzy."""
    with open(CORPORA / "date-vectors" / "dateutil_parser_vectors.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        pytest.param(r["input"], r["expected_date"], id=r["input"] or "(empty)")
        for r in rows
        if r["dayfirst"] == "false"
        and r["yearfirst"] == "false"
        and not r["other_kwargs"]
        and r["input"] not in DELIBERATE
    ]


@pytest.mark.parametrize(("text", "expected"), _dateutil_vectors())
def test_dateutil_own_vectors_parse_to_their_expected_date(text, expected):
    values, problems, _ = dates(text)
    if expected == "ERROR":
        assert values == [None] and problems == ["invalid_date"]
    else:
        assert values == [date.fromisoformat(expected)] and problems == [None]


def _day_first_vectors():
    """Rows that pass dayfirst=True (yearfirst off) in dateutil's and pandas' vectors."""
    params = []
    for name in ("dateutil_parser_vectors.csv", "pandas_dayfirst_yearfirst_vectors.csv"):
        with open(CORPORA / "date-vectors" / name, newline="") as f:
            for r in csv.DictReader(f):
                if (
                    r["dayfirst"] == "true"
                    and r["yearfirst"] == "false"
                    and not r.get("other_kwargs")
                ):
                    params.append(
                        pytest.param(r["input"], r["expected_date"], id=f"{name[:7]}:{r['input']}")
                    )
    return params


@pytest.mark.parametrize(("text", "expected"), _day_first_vectors())
def test_day_first_vectors_parse_as_expected_when_the_column_is_day_first(text, expected):
    # We have no dayfirst flag: the column decides. 25/12/2030 makes this column day-first.
    values, problems, _ = dates(text, "25/12/2030")
    assert values[0] == date.fromisoformat(expected) and problems[0] is None


def _month_first_pandas_vectors():
    with open(CORPORA / "date-vectors" / "pandas_dayfirst_yearfirst_vectors.csv", newline="") as f:
        return [
            pytest.param(r["input"], r["expected_date"], id=r["input"])
            for r in csv.DictReader(f)
            if r["dayfirst"] == "false" and r["yearfirst"] == "false"
        ]


@pytest.mark.parametrize(("text", "expected"), _month_first_pandas_vectors())
def test_pandas_vectors_without_flags_parse_as_expected(text, expected):
    values, problems, _ = dates(text)
    assert values == [date.fromisoformat(expected)] and problems == [None]


# yearfirst=True rows (e.g. "10-11-12" as 2010-11-12) are deliberately out of scope: no CRM
# exports a two-digit year first, so a two-digit group is always read as the year when last.


def test_deliberate_differences_from_dateutil_hold():
    values, problems, _ = dates(None)  # "" becomes None before parsing (missing_to_null)
    assert values == [None] and problems == [None]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234.56", "1234.56"),
        ("$1,234.56", "1234.56"),
        ("1.234,56 €", "1234.56"),
        ("1 234,56", "1234.56"),
        ("1\u00a0234,56", "1234.56"),
        ("(1,000)", "-1000.00"),
        ("-5", "-5.00"),
        ("USD 99", "99.00"),
        ("99 EUR", "99.00"),
        ("£12", "12.00"),
        ("1,234,567", "1234567.00"),
        ("12.345.678,90", "12345678.90"),
        ("0,99", "0.99"),
        ("1.03444E11", "103444000000.00"),
        # Accounting negatives with the currency outside the parentheses (an outside
        # attack found these read as positive).
        ("$(1,234.56)", "-1234.56"),
        ("$ (1,234.56)", "-1234.56"),
        ("USD (5)", "-5.00"),
        ("(5) EUR", "-5.00"),
        ("($1,234.56)", "-1234.56"),
    ],
)
def test_money_in_common_notations(text, expected):
    parsed = parse_money(pl.Series("v", [text]))
    assert parsed.values.to_list() == [Decimal(expected)] and parsed.problem.to_list() == [None]


def test_three_digit_group_follows_the_columns_decimal_mark():
    european = parse_money(pl.Series("v", ["1.234", "5,50"])).values.to_list()
    american = parse_money(pl.Series("v", ["1,234", "5.50"])).values.to_list()
    assert european == [Decimal("1234.00"), Decimal("5.50")]
    assert american == [Decimal("1234.00"), Decimal("5.50")]


def test_mostly_distinct_amounts_parse_row_by_row_to_the_same_result(monkeypatch):
    """Columns of nearly all-distinct amounts skip counting distinct values (a speed path);
    values, problems and the decimal-mark vote must be exactly those of the distinct path."""
    from jf_pipeline.core import values as module

    styles = ["{:,.2f}", "$ {:.2f}", "USD {:.0f}", "({:,.2f})", "{:.1f}", "{:,.0f}"]
    amounts = [styles[i % len(styles)].format(i * 37.13) for i in range(3000)]
    amounts[5::97] = ["n/a"] * len(amounts[5::97])
    series = pl.Series("v", [None, *amounts, "1.234", "5,50"])
    fast = parse_money(series)
    monkeypatch.setattr(module, "DISTINCT_SAMPLE", 0)  # always count distinct values
    slow = parse_money(series)
    assert fast.values.to_list() == slow.values.to_list()
    assert fast.problem.to_list() == slow.problem.to_list()
    assert fast.problem.drop_nulls().unique().to_list() == ["invalid_number"]
    assert fast.values[0] is None and fast.values[4] == Decimal("-111.39")  # "(111.39)"


def test_amounts_beyond_cents_are_rounded_and_said_so():
    """DECIMAL(18,2) keeps cents: a third decimal changes the value, and a changed value is
    reported (value_rounded). Half to even, as the stored decimal rounds; trailing zeros and
    two-decimal amounts change nothing and are not flagged, whichever path reads them."""
    texts = ["$5.555", "$1,234.567", "5.545", "-$5.555", "1.23456E2", "5.550", "$5.55", "7.1"]
    parsed = parse_money(pl.Series("v", texts))
    assert parsed.values.to_list() == [
        Decimal(x) for x in ("5.56", "1234.57", "5.54", "-5.56", "123.46", "5.55", "5.55", "7.10")
    ]
    assert parsed.problem.to_list() == [None] * len(texts)
    assert parsed.changed.to_list() == ["value_rounded"] * 5 + [None] * 3


def test_a_rounded_amount_is_imported_with_a_warning():
    """Through the cleaning of a deals file: the deal is importable, its value rounded, and
    rejected_rows says so with the value as delivered."""
    from jf_pipeline.contract import DEALS
    from jf_pipeline.core.cleaning import clean_table
    from jf_pipeline.core.reading import read_table

    csv = (
        b"deal_unique_id,name,target_close_date,owner_email,value,account_unique_id,account_name\n"
        b"D1,One,2026-01-02,a@b.example,$1234.565,A1,Acme\n"
        b"D2,Two,2026-01-02,a@b.example,12.50,A1,Acme\n"
    )
    table = clean_table(read_table(csv, DEALS), DEALS)
    assert table.rows["value"].to_list() == [Decimal("1234.56"), Decimal("12.50")]
    warned = table.problems.filter(pl.col("reason") == "value_rounded")
    assert warned.select("row_number", "severity", "column", "value").rows() == [
        (1, "warning", "value", "$1234.565")
    ]
    assert "stored as 1234.56" in warned["message"][0]


@pytest.mark.parametrize("text", ["abc", "ca. zehn", "1.2.3,4,5", "$", "12abc"])
def test_non_numbers_are_invalid(text):
    parsed = parse_money(pl.Series("v", [text]))
    assert parsed.values.to_list() == [None] and parsed.problem.to_list() == ["invalid_number"]


def test_emails_are_trimmed_lowercased_and_validated():
    parsed = parse_emails(
        pl.Series("e", [" Bob@Example.COM ", "chloé@acme.example", "nope", "a@b", None])
    )
    assert parsed.values.to_list() == ["bob@example.com", "chloé@acme.example", None, None, None]
    assert parsed.problem.to_list() == [None, None, "invalid_email", "invalid_email", None]


def test_display_name_and_mailto_forms_keep_the_address():
    parsed = parse_emails(pl.Series("e", ["Ann Lee <Ann@X.example>", "mailto:bob@y.example"]))
    assert parsed.values.to_list() == ["ann@x.example", "bob@y.example"]


def test_date_times_vote_on_the_columns_day_month_order():
    values, problems, notes = dates("03/04/2026 09:00", "25/04/2026 10:30")
    assert values == [date(2026, 4, 3), date(2026, 4, 25)] and notes == []


def test_urls_get_a_scheme_and_a_lowercase_host():
    parsed = parse_urls(
        pl.Series("u", ["Acme.COM/Path", "http://X.io", "not a url", "localhost", None])
    )
    assert parsed.values.to_list() == ["https://acme.com/Path", "http://x.io", None, None, None]
    assert parsed.problem.to_list() == [None, None, "invalid_url", "invalid_url", None]


def test_internationalised_hosts_pass_where_the_ascii_pattern_does_not():
    """Most hosts take the ASCII pattern; the rest go through the Unicode one."""
    parsed = parse_urls(pl.Series("u", ["Bücher.example/x", "www.acme.example", "ex_ample.com"]))
    assert parsed.values.to_list() == [
        "https://bücher.example/x",
        "https://www.acme.example",
        None,
    ]
    assert parsed.problem.to_list() == [None, None, "invalid_url"]


@pytest.mark.parametrize(
    "text", ["", "   ", "#N/A", "N/A", "NULL", "null", "NaN", "None", "-", "\t"]
)
def test_blank_and_placeholder_cells_are_missing(text):
    assert pl.select(missing_to_null(pl.lit(text))).item() is None


def test_real_values_are_trimmed_not_dropped():
    assert pl.select(missing_to_null(pl.lit("  NA-West "))).item() == "NA-West"


def test_hubspot_datetimes_with_milliseconds_at_size_read_as_their_dates(monkeypatch):
    """1,500 distinct `2026-03-02T14:07:55.000Z` values (HubSpot, Salesforce) take the row
    path of parse_dates; it crashed with ColumnNotFoundError "_i". Same as the distinct path."""
    from datetime import datetime, timedelta

    from jf_pipeline.core import values as module

    start = datetime(2026, 3, 2, 14, 7, 55)
    stamps = [start + timedelta(minutes=37 * i, milliseconds=i) for i in range(1500)]
    texts = [s.strftime("%Y-%m-%dT%H:%M:%S.") + f"{s.microsecond // 1000:03d}Z" for s in stamps]
    series = pl.Series("d", [*texts, "Mar 2, 2026", "Mar 2, 2026", "TBD"])
    fast = parse_dates(series)
    assert fast.values.to_list() == [s.date() for s in stamps] + [date(2026, 3, 2)] * 2 + [None]
    assert fast.problem.to_list() == [None] * 1502 + ["invalid_date"]
    monkeypatch.setattr(module, "DISTINCT_SAMPLE", 0)
    slow = parse_dates(series)
    assert slow.values.to_list() == fast.values.to_list()
    assert slow.problem.to_list() == fast.problem.to_list()
