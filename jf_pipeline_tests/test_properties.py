"""Property-based tests: whatever style a customer's CRM renders money or dates in, they
read back to the same value; and no byte sequence makes the reader crash."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jf_pipeline.contract import CONTACTS, DEALS
from jf_pipeline.core.cleaning import clean_table
from jf_pipeline.core.problems import REASONS
from jf_pipeline.core.reading import read_table
from jf_pipeline.core.values import parse_dates, parse_money

amounts = st.decimals(
    min_value=Decimal("-999999999999.99"),
    max_value=Decimal("999999999999.99"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)


def _grouped(whole: int, sep: str) -> str:
    return f"{whole:,}".replace(",", sep)


def render(amount: Decimal, style: str) -> str:
    negative = amount < 0
    whole, cents = divmod(abs(amount), 1)
    whole, cents = int(whole), f"{int(cents * 100):02d}"
    body = {
        "plain": f"{whole}.{cents}",
        "us": f"${_grouped(whole, ',')}.{cents}",
        "eu": f"{_grouped(whole, '.')},{cents} €",
        "space": f"{_grouped(whole, chr(0xA0))},{cents}",
        "code": f"USD {whole}.{cents}",
        "swiss": f"CHF {_grouped(whole, chr(39))}.{cents}",
    }[style]
    if not negative:
        return body
    return (
        f"({body})"
        if style in ("us", "eu")
        else f"-{body}"
        if style != "code"
        else f"USD -{whole}.{cents}"
    )


@given(amount=amounts, style=st.sampled_from(["plain", "us", "eu", "space", "code", "swiss"]))
def test_money_in_any_supported_style_reads_back_exactly(amount, style):
    parsed = parse_money(pl.Series("v", [render(amount, style)]))
    assert parsed.problem.to_list() == [None]
    assert parsed.values.to_list() == [amount]


DATE_STYLES = {
    "iso": "%Y-%m-%d",
    "us": "%m/%d/%Y",
    "eu": "%d/%m/%Y",
    "dotted": "%d.%m.%Y",
    "named": "%b %d, %Y",
    "dashed": "%d-%b-%Y",
}


@given(
    days=st.lists(
        st.dates(min_value=date(1971, 1, 1), max_value=date(2099, 12, 31)), min_size=1, max_size=30
    ),
    style=st.sampled_from(sorted(DATE_STYLES)),
)
def test_dates_in_any_supported_style_read_back_when_the_column_decides(days, style):
    # A value with day 25 decides day-first vs month-first for the whole column.
    column = [*days, date(2030, 1, 25)]
    rendered = [d.strftime(DATE_STYLES[style]) for d in column]
    parsed = parse_dates(pl.Series("d", rendered))
    assert parsed.problem.to_list() == [None] * len(column)
    assert parsed.values.to_list() == column


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes_are_read_or_rejected_never_raise(data):
    table = read_table(data, DEALS)
    assert set(table.problems["reason"].unique()) <= set(REASONS)
    if table.rejected:
        assert (
            table.problems.filter(
                pl.col("row_number").is_null() & (pl.col("severity") == "error")
            ).height
            >= 1
        )
    clean_table(table, DEALS)


csv_like = st.text(alphabet=st.sampled_from(list(',;\t|"\n\r aé1-/.$€') + ["\ufeff"]), max_size=400)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(body=csv_like)
def test_csv_shaped_noise_under_a_valid_header_never_raises(body):
    header = "first_name,last_name,email_address,account_unique_id,contact_unique_id\n"
    table = read_table((header + body).encode("utf-8"), CONTACTS)
    cleaned = clean_table(table, CONTACTS)
    # Every row is either kept or explained.
    kept = set(cleaned.rows["row_number"].to_list())
    explained = set(cleaned.problems["row_number"].drop_nulls().to_list())
    assert set(table.frame["row_number"].to_list()) <= kept | explained
