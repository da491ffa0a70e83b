"""Property-based tests: whatever style a customer's CRM renders money or dates in, they
read back to the same value; and no byte sequence makes the reader crash."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from jf_pipeline.contract import CONTACTS, DEALS
from jf_pipeline.core.cleaning import clean_table
from jf_pipeline.core.problems import REASONS
from jf_pipeline.core.reading import read_table
from jf_pipeline.core.values import missing_to_null, parse_dates, parse_money

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


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=csv_like)
def test_csv_shaped_noise_under_a_valid_header_never_raises(body):
    header = "first_name,last_name,email_address,account_unique_id,contact_unique_id\n"
    table = read_table((header + body).encode("utf-8"), CONTACTS)
    cleaned = clean_table(table, CONTACTS)
    # Every row is either kept or explained; a file rejected as a whole (its frame still
    # holds the rows, to check their found columns) explains every row by its file problem.
    if cleaned.rejected:
        whole = cleaned.problems.filter(pl.col("row_number").is_null())
        assert "error" in whole["severity"].to_list() and cleaned.rows.height == 0
        return
    kept = set(cleaned.rows["row_number"].to_list())
    explained = set(cleaned.problems["row_number"].drop_nulls().to_list())
    assert set(table.frame["row_number"].to_list()) <= kept | explained


# --- at the sizes where the fast paths switch on ------------------------------------------
#
# `_by_distinct` hands a parser the rows themselves (not the distinct values) when a column
# has >= 1,000 values, > 90 % of them distinct. Each property below builds such a column in
# one accepted form, with blanks, repeats and invalid values mixed in, and checks that the
# row path gives exactly the distinct-value path's values, problems and notes, and that
# every valid value reads back as the date or amount it was rendered from.

SIZE_FORMS = {
    # name: (render(date) -> text, the column's day/month order decides from values)
    "iso": lambda d, r: d.strftime("%Y-%m-%d"),
    "iso_slashes": lambda d, r: d.strftime("%Y/%m/%d"),
    "iso_dotted": lambda d, r: d.strftime("%Y.%m.%d"),
    "iso_minutes": lambda d, r: (
        d.strftime("%Y-%m-%d ") + f"{r.randrange(24):02d}:{r.randrange(60):02d}"
    ),
    "iso_seconds_t": lambda d, r: (
        d.strftime("%Y-%m-%dT")
        + f"{r.randrange(24):02d}:{r.randrange(60):02d}:{r.randrange(60):02d}"
    ),
    "iso_millis_z": lambda d, r: (
        d.strftime("%Y-%m-%dT")
        + f"{r.randrange(24):02d}:{r.randrange(60):02d}:{r.randrange(60):02d}.{r.randrange(1000):03d}Z"
    ),
    "iso_micros_offset": lambda d, r: (
        d.strftime("%Y-%m-%dT")
        + f"{r.randrange(24):02d}:{r.randrange(60):02d}:{r.randrange(60):02d}.{r.randrange(10**6):06d}"
        + r.choice(["+02:00", "-05:00", "+0530", "Z", "+00:00"])
    ),
    "iso_z": lambda d, r: (
        d.strftime("%Y-%m-%dT") + f"{r.randrange(24):02d}:{r.randrange(60):02d}:00Z"
    ),
    "us": lambda d, r: d.strftime("%m/%d/%Y"),
    "us_time": lambda d, r: (
        d.strftime("%m/%d/%Y ")
        + f"{r.randrange(1, 13)}:{r.randrange(60):02d} "
        + r.choice(["AM", "PM"])
    ),
    "us_two_digit": lambda d, r: d.strftime("%m/%d/%y"),
    "eu": lambda d, r: d.strftime("%d/%m/%Y"),
    "eu_two_digit": lambda d, r: d.strftime("%d/%m/%y"),
    "eu_dashes": lambda d, r: d.strftime("%d-%m-%Y"),
    "dotted": lambda d, r: d.strftime("%d.%m.%Y"),
    "dotted_time": lambda d, r: (
        d.strftime("%d.%m.%Y ") + f"{r.randrange(24):02d}:{r.randrange(60):02d}"
    ),
    "named": lambda d, r: d.strftime("%b %d, %Y"),
    "named_dashed": lambda d, r: d.strftime("%d-%b-%Y"),
    "named_long": lambda d, r: d.strftime("%d %B %Y"),
    "named_time": lambda d, r: (
        d.strftime("%B %d, %Y ") + f"{r.randrange(24):02d}:{r.randrange(60):02d}"
    ),
    "excel_serial": lambda d, r: (
        str((d - date(1899, 12, 30)).days) + r.choice(["", f".{r.randrange(1, 10**5)}"])
    ),
}
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
"""The columns are built from a seed: shrinking it finds nothing simpler and takes minutes."""
INVALID_DATES = ["TBD", "2017-02-30", "2026-13-45", "Dec 2026", "13/13/2026", "soon"]


def _both_paths(parser, series):
    from jf_pipeline.core import values as module

    assert module._mostly_distinct(series, 0.9)  # the row path
    fast = parser(series)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "DISTINCT_SAMPLE", 0)  # always count distinct values
        slow = parser(series)
    assert fast.values.dtype == slow.values.dtype
    assert fast.values.to_list() == slow.values.to_list()
    assert fast.problem.to_list() == slow.problem.to_list()
    assert fast.notes == slow.notes
    return fast


@pytest.mark.parametrize("form", sorted(SIZE_FORMS))
@settings(
    max_examples=2, deadline=None, phases=NO_SHRINK, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    size=st.integers(1_060, 1_300),
    seed=st.integers(0, 2**32 - 1),
    # At most ~7 % repeated (repeats, the few invalid texts, same-day collisions): the
    # values must stay over 90 % distinct for the row path to be the one compared.
    repeats=st.floats(0, 0.03),
    invalid=st.floats(0, 0.02),
    blanks=st.floats(0, 0.05),
)
def test_every_date_form_at_size_reads_back_and_the_row_path_equals_the_distinct_path(
    form, size, seed, repeats, invalid, blanks
):
    """Protects parse_dates' fast (row) path: 1,000+ mostly distinct values in each accepted
    form (ISO ± time, fractional seconds, offsets, Z; US/EU slashes; dotted; month names;
    Excel serials; two-digit years) read as their calendar date, exactly as on the
    distinct-value path. ISO datetimes with milliseconds crashed here (`_i` not found)."""
    import random

    r = random.Random(seed)
    render = SIZE_FORMS[form]
    # Dates 1971..2068: inside the two-digit-year pivot and the Excel serial range.
    days = [date(1971, 1, 1) + timedelta(days=r.randrange(35_000)) for _ in range(size)]
    texts: list[str | None] = [render(d, r) for d in days]
    expected: list[date | None] = list(days)
    for i in range(size):
        roll = r.random()
        if roll < repeats and i:
            texts[i], expected[i] = texts[i - 1], expected[i - 1]
        elif roll < repeats + invalid:
            texts[i], expected[i] = r.choice(INVALID_DATES), None
        elif roll < repeats + invalid + blanks:
            texts[i], expected[i] = r.choice([None, "", "N/A"]), None
    # Two values that decide the day/month order for slash and dot forms.
    texts += [render(date(2030, 1, 25), r), render(date(2031, 12, 28), r)]
    expected += [date(2030, 1, 25), date(2031, 12, 28)]
    series = pl.Series("d", texts, dtype=pl.String)
    parsed = _both_paths(
        parse_dates, series.to_frame().select(missing_to_null(pl.col("d"))).to_series()
    )
    assert parsed.values.to_list() == expected
    invalid_rows = [i for i, t in enumerate(texts) if t in INVALID_DATES]
    assert parsed.problem.is_not_null().arg_true().to_list() == invalid_rows
    assert set(parsed.problem.drop_nulls()) <= {"invalid_date"}


MONEY_SIZE_STYLES = ["plain", "us", "eu", "space", "code", "swiss"]


@settings(
    max_examples=20, deadline=None, phases=NO_SHRINK, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    styles=st.lists(st.sampled_from(MONEY_SIZE_STYLES), min_size=1, max_size=3, unique=True),
    size=st.integers(1_100, 2_500),
    seed=st.integers(0, 2**32 - 1),
    invalid=st.floats(0, 0.03),
    blanks=st.floats(0, 0.05),
    scale=st.sampled_from([100, 10**6, 10**12]),
)
def test_every_money_form_at_size_reads_back_and_the_row_path_equals_the_distinct_path(
    styles, size, seed, invalid, blanks, scale
):
    """Protects parse_money's fast (row) path at 1,000+ mostly distinct amounts: plain,
    `$1,234.56`, `1.234,56 €`, `1 234,56`, `USD 99`, Swiss `1'234.50`, negatives and
    accounting brackets, mixed in one column, read back exactly as on the distinct path."""
    import random

    r = random.Random(seed)
    texts: list[str | None] = []
    expected: list[Decimal | None] = []
    for _ in range(size):
        amount = Decimal(r.randrange(-scale * 100, scale * 100)) / 100
        roll = r.random()
        if roll < invalid:
            texts.append(r.choice(["abc", "ca. zehn", "1.2.3,4,5", "$", "12abc"]))
            expected.append(None)
        elif roll < invalid + blanks:
            texts.append(None)
            expected.append(None)
        else:
            texts.append(render(amount, r.choice(styles)))
            expected.append(amount)
    # Excel's scientific notation (values only compared between the paths).
    texts += ["1.03444E11", "2,5E3"]
    series = pl.Series("v", texts, dtype=pl.String)
    parsed = _both_paths(parse_money, series)
    assert parsed.values.to_list()[:size] == expected
    assert parsed.values.to_list()[size:] == [Decimal("103444000000.00"), Decimal("2500.00")]
    bad = [i for i, t in enumerate(texts) if t is not None and expected[i : i + 1] == [None]]
    assert parsed.problem.is_not_null().arg_true().to_list() == bad


NEAR_US_AMOUNTS = [
    "$1,234",  # a comma and no dot: 1234 or 1.234, decided by the column's vote
    "USD 1,234",
    "$1,234.567",  # three decimals
    "$12,34.50",  # a misplaced group
    "$ 5.50",  # a space after the sign
    "USD1234.5",
    "usd 12",  # a code in lower case is no code
    "$\u0661\u0662\u0663",  # Arabic-Indic digits
    "$99999999999999999.99",  # too many digits for the column's type
    "$1,234,567,890,123,456,789.00",
    "$.5",
    "$5.",
    "$-5",
    "($1,234.56)",
    "1,234.56",
    "0,99",  # votes for a decimal comma
    "1.234,56",
    "12,5",
]


@settings(
    max_examples=15, deadline=None, phases=NO_SHRINK, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    size=st.integers(1_100, 3_000),
    seed=st.integers(0, 2**32 - 1),
    near=st.floats(0, 0.2),
    european=st.sampled_from([0.0, 0.3, 0.9]),  # 0.9: the column votes for a decimal comma
    distinct=st.booleans(),
)
def test_us_amounts_fast_path_equals_the_general_parser(size, seed, near, european, distinct):
    """Protects parse_money's shortcut for `$1,234.56` / `USD 99` / `$5.5` (the general
    parser skipped): values, problems and the decimal-mark vote must be exactly the general
    parser's, on columns that mix those with near-miss shapes (`$1,234`, three decimals,
    non-ASCII digits, overflows) and with enough decimal commas to turn the vote, on both
    the row path and the distinct-values path."""
    import random

    from jf_pipeline.core import values as module

    r = random.Random(seed)
    texts: list[str | None] = []
    for _ in range(size):
        amount = Decimal(r.randrange(0, 10**9)) / 100
        roll = r.random()
        if roll < near:
            texts.append(r.choice(NEAR_US_AMOUNTS))
        elif roll < near + european * (1 - near):
            texts.append(render(amount, "eu"))
        else:
            texts.append(render(amount, r.choice(["us", "code", "plain"])).replace(".00", ""))
    series = pl.Series("v", texts, dtype=pl.String)
    with pytest.MonkeyPatch.context() as patch:
        if distinct:
            patch.setattr(module, "DISTINCT_SAMPLE", 0)
        fast = parse_money(series)
        patch.setattr(module, "SHAPED_FAST_PATH", False)
        slow = parse_money(series)
    assert fast.values.dtype == slow.values.dtype == pl.Decimal(18, 2)
    assert fast.values.to_list() == slow.values.to_list()
    assert fast.problem.to_list() == slow.problem.to_list()
    assert fast.notes == slow.notes
    # The shortcut was taken, and it read what it took.
    us = [i for i, t in enumerate(texts) if t is not None and t.startswith("$") and "." in t]
    assert any(fast.values[i] is not None for i in us)


def test_us_amounts_fast_path_reads_its_shapes_and_leaves_the_rest():
    """The shortcut's own answers, against values written out by hand."""
    parsed = parse_money(
        pl.Series("v", ["$1,234.56", "USD 99", "$5.5", "USD 7.25", "$1,234", "1.234,50", "0,99"])
    )
    assert parsed.values.to_list() == [
        Decimal("1234.56"),
        Decimal("99.00"),
        Decimal("5.50"),
        Decimal("7.25"),
        Decimal("1234.00"),  # the column votes for `.` (3 dots against 2 commas)
        Decimal("1234.50"),
        Decimal("0.99"),
    ]
    assert parsed.problem.to_list() == [None] * 7
    # Where the column writes decimal commas, `$1,234` is 1.234 (the general parser decides).
    european = parse_money(pl.Series("v", ["$1,234", "1.234,50", "0,99", "$1,234.56"]))
    assert european.values.to_list() == [
        Decimal("1.23"),
        Decimal("1234.50"),
        Decimal("0.99"),
        Decimal("1234.56"),
    ]


WIDTH_FIELDS = [
    "plain",
    "",
    '""',
    '"quoted, with the delimiter"',
    '"an ""escaped"" quote"',
    '""""',
    "12,5",  # the delimiter itself (becomes two fields)
    '"$4,385,753.65"',
    "  spaced  ",
    "caf\u00e9 \u00fcber",
]
WIDTH_ODD_FIELDS = [
    'in"side',  # a quote inside an unquoted field
    '"closed"then',  # text after the closing quote
    '"never closed',
    '"two\nlines"',  # a quoted line break: one record over two lines
    ' "space first"',
]


@settings(
    max_examples=25, deadline=None, phases=NO_SHRINK, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    lines=st.integers(1_000, 2_500),
    seed=st.integers(0, 2**32 - 1),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    eol=st.sampled_from(["\n", "\r\n"]),
    odd=st.sampled_from([0.0, 0.0, 0.001, 0.05]),
    blank=st.floats(0, 0.05),
)
def test_record_widths_equal_the_csv_modules_at_size(lines, seed, delimiter, eol, odd, blank):
    """Protects the reader's vectorised field count (one polars pass over all lines, used
    unless a quote is out of place): at thousands of lines, with quoted delimiters, escaped
    quotes, empty and blank lines, CRLF, every delimiter, and at times stray quotes or a
    quoted line break, every record's width is exactly what Python's csv module reads."""
    import csv
    import io
    import random

    from jf_pipeline.core.reading import _record_widths

    r = random.Random(seed)
    records = []
    for _ in range(lines):
        if r.random() < blank:
            records.append("")
            continue
        fields = [
            (r.choice(WIDTH_ODD_FIELDS) if r.random() < odd else r.choice(WIDTH_FIELDS))
            for _ in range(r.randint(1, 8))
        ]
        records.append(delimiter.join(f.replace(",", delimiter) for f in fields))
    text = eol.join(records) + eol
    expected = [len(row) for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    widths = _record_widths(text, text.encode("utf-8"), delimiter, "\n")
    assert widths.to_list() == expected


EMAIL_FORMS = [
    "ann@acme.example",
    " Ann@ACME.example ",
    "Ann Lee <ann@acme.example>",
    "mailto:bob@acme.example",
    "j\u00f6rg@m\u00fcller.example",  # internationalised
    "not an e-mail",
    "ann@",
    "@acme.example",
    "ann@acme",
    "",
]
URL_FORMS = [
    "acme.example",
    "https://Acme.Example/path?q=1",
    "HTTP://WWW.ACME.EXAMPLE",
    "m\u00fcller.example",
    "acme.example:8080/x",
    "not a url",
    "localhost",
    "http://",
    "",
]


@pytest.mark.parametrize("kind", ["emails", "urls"])
@settings(
    max_examples=12, deadline=None, phases=NO_SHRINK, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    size=st.integers(1_000, 4_000),
    seed=st.integers(0, 2**32 - 1),
    distinct=st.sampled_from([5, 60, 400, 10**6]),  # how many different values there are
    nulls=st.sampled_from([0.0, 0.3, 1.0]),
)
def test_emails_and_urls_parsed_per_distinct_value_equal_parsing_every_row(
    kind, size, seed, distinct, nulls
):
    """Protects parse_emails' and parse_urls' shortcut (each distinct value parsed once and
    joined back when values repeat, as an owner column does over a million deals): values
    and problems exactly those of parsing every row, for columns of few, some or all
    distinct values, with nulls, all null, valid and invalid forms mixed."""
    import random

    from jf_pipeline.core import values as module

    fast, each, forms = {
        "emails": (module.parse_emails, module._parse_emails_each, EMAIL_FORMS),
        "urls": (module.parse_urls, module._parse_urls_each, URL_FORMS),
    }[kind]
    r = random.Random(seed)
    pool = [f"{r.randrange(distinct)}.{r.choice(forms)}" for _ in range(min(distinct, size))]
    pool += forms
    texts = [None if r.random() < nulls else r.choice(pool) for _ in range(size)]
    series = pl.Series("v", texts, dtype=pl.String)
    seen: list[int] = []

    def spied(values):
        seen.append(len(values))
        return each(values)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, each.__name__, spied)
        got = fast(series)
    expected = each(series)
    if distinct <= 60:  # few values: each parsed once, not once per row
        assert seen[0] <= distinct + len(forms) < size
    assert got.values.dtype == expected.values.dtype == pl.String
    assert got.values.to_list() == expected.values.to_list()
    assert got.problem.to_list() == expected.problem.to_list()
    assert (got.values.name, got.problem.name) == (expected.values.name, expected.problem.name)
    if nulls < 1.0:
        assert got.values.is_not_null().any() and got.problem.is_not_null().any()
