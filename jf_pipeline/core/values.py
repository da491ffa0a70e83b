"""Cell strings as customers write them -> typed values, with a reason for every doubt.

Each parser takes a String Series (nulls are missing values) and returns a
`ParsedColumn`: the typed values, a per-row problem code where a present value was
rejected, and column-level notes. Parsers work on the *distinct* values and join back,
so slow paths (dateutil) run once per distinct string.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl
from dateutil import parser as dateutil_parser

MISSING_PLACEHOLDERS = (
    "#n/a",
    "n/a",
    "null",
    "nan",
    "none",
    "-",
    # Database dumps: `\\N` (MySQL `SELECT ... INTO OUTFILE`, PostgreSQL `COPY`, vtiger,
    # SuiteCRM), `(null)` (SQL Server Management Studio, Oracle), `<null>` / `[NULL]`
    # (DBeaver, SQuirreL), `#NULL!` (Excel, SPSS).
    "\\n",
    "(null)",
    "<null>",
    "[null]",
    "#null!",
)
"""Cells that mean "no value" in every column, required or optional (matched ignoring case):
never published as text."""
NULL_REFERENCES = ("000000000000000", "000000000000000AAA")
"""Salesforce's empty reference (the all-zero id, 15- and 18-character): a missing id."""


@dataclass
class ParsedColumn:
    values: pl.Series
    problem: pl.Series
    """Reason code (String) where a present value was rejected, else null."""
    notes: list[tuple[str, str]] = field(default_factory=list)
    """Column-level (reason, message) pairs, e.g. an ambiguous day/month order."""
    changed: pl.Series | None = None
    """Warning reason code (String) where a value was kept but changed (an amount rounded to
    cents), else null; None when the parser changes no value."""


_MISSING = "(?i)^(?:" + "|".join(re.escape(p) for p in MISSING_PLACEHOLDERS) + "|)$"


def missing_to_null(expr: pl.Expr, *, trimmed: bool = False) -> pl.Expr:
    """Trim; blank, whitespace-only and the placeholders (#N/A, NULL, \\N, -, …) -> null.

    Every text value is trimmed here (leading and trailing whitespace, non-breaking spaces
    included); inner spaces are kept. `trimmed`: `expr` is trimmed already. (An eager
    `select` does not share subexpressions: the trim written here once would run twice,
    about 0.2 s CPU per million rows of eleven columns; callers at size trim first.)"""
    text = expr if trimmed else expr.str.strip_chars()
    # One anchored, case-insensitive regex: much cheaper than lower-casing every cell.
    return pl.when(text.str.contains(_MISSING)).then(None).otherwise(text)


def missing_to_null_series(series: pl.Series) -> pl.Series:
    return series.to_frame("v").select(missing_to_null(pl.col("v"))).to_series()


def null_reference_to_null(expr: pl.Expr) -> pl.Expr:
    """Ids: Salesforce's all-zero id is an empty reference (already trimmed values)."""
    return pl.when(expr.is_in(NULL_REFERENCES)).then(None).otherwise(expr)


DISTINCT_SAMPLE = 10_000
_ROW_INDEX = pl.col("^_i$")
"""Selects `_i` when `_by_distinct` passes rows, nothing when it passes distinct values."""


def _mostly_distinct(series: pl.Series, share: float) -> bool:
    """More than `share` of about DISTINCT_SAMPLE present values, taken evenly over the
    column, differ (1,000 at least). Evenly, not the first ones: an export sorted by date
    may leave a column blank or repeated for its first 10,000 rows only."""
    if DISTINCT_SAMPLE <= 0:  # tests: always the distinct path
        return False
    step = max(1, len(series) // DISTINCT_SAMPLE)
    sample = series.gather_every(step).drop_nulls()
    return sample.len() >= 1_000 and sample.n_unique() > share * sample.len()


def _by_distinct(series: pl.Series, parse) -> tuple[pl.Series, pl.Series, list, pl.Series | None]:
    """Run `parse(distinct: DataFrame[raw, n]) -> DataFrame[raw, value, problem]` (and
    `changed`, if the parser reports kept-but-changed values) and join back.

    When nearly every value differs (amounts, ids), counting distinct values and joining
    them back by string costs more than it saves: then `parse` gets the rows themselves,
    `n` = 1 and an `_i` row index it must pass through, and the join is by that integer.
    """
    if _mostly_distinct(series, 0.9):
        rows = (
            series.to_frame("raw")
            .with_row_index("_i")
            .drop_nulls("raw")
            .with_columns(n=pl.lit(1, pl.UInt32))
        )
        parsed, notes = parse(rows)
        # The contract every parser must keep on this path: one output row per input row,
        # `_i` passed through. Broken, the join below would fail or duplicate rows.
        if "_i" not in parsed.columns or parsed.height != rows.height:
            raise AssertionError(
                f"{getattr(parse, '__qualname__', parse)} broke the row path's contract: "
                f"{parsed.height} rows for {rows.height}, columns {parsed.columns}"
            )
        joined = (
            pl.int_range(len(series), dtype=pl.UInt32, eager=True)
            .to_frame("_i")
            .join(parsed, on="_i", how="left", maintain_order="left")
        )
    else:
        counts = series.drop_nulls().value_counts(name="n").rename({series.name: "raw"})
        parsed, notes = parse(counts)
        joined = series.to_frame("raw").join(parsed, on="raw", how="left", maintain_order="left")
    changed = joined["changed"].alias(series.name) if "changed" in joined.columns else None
    return joined["value"].alias(series.name), joined["problem"].alias(series.name), notes, changed


# --- dates -------------------------------------------------------------------------------

_ISO = r"^(\d{4})-(\d{1,2})-(\d{1,2})$"
_ISO_DATETIME = r"^(\d{4}-\d{2}-\d{2})[T ]\d{1,2}:\d{2}"
_YMD = r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})$"
_NUMERIC = (
    r"^(\d{1,2})([./-])(\d{1,2})[./-](\d{4}|\d{2})(?:[ T]\d{1,2}[:.]\d{2}.*)?$"  # time ignored
)
_SERIAL = r"^\d{5}(\.\d+)?$"
_EXCEL_EPOCH = date(1899, 12, 30)
_SERIAL_RANGE = (25569, 73051)  # 1970-01-01 .. 2100-01-01


def _ymd(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:
    """Build a Date from string parts; impossible dates (Feb 30) become null."""
    return pl.format("{}-{}-{}", y, m.str.zfill(2), d.str.zfill(2)).str.to_date(
        "%Y-%m-%d", strict=False
    )


def _full_year(y: pl.Expr) -> pl.Expr:
    # Two-digit years: 00-69 -> 2000s, 70-99 -> 1900s (the POSIX strptime pivot).
    return (
        pl.when(y.str.len_chars() == 2)
        .then(
            (y.cast(pl.Int32) + pl.when(y.cast(pl.Int32) < 70).then(2000).otherwise(1900)).cast(
                pl.String
            )
        )
        .otherwise(y)
    )


def _dateutil(raw: str, dayfirst: bool) -> date | None:
    """A complete date written in a form dateutil reads; None for anything partial or not a date."""
    try:
        with warnings.catch_warnings():
            # Unknown time-zone names are irrelevant: only the calendar date is kept.
            warnings.simplefilter("ignore", dateutil_parser.UnknownTimezoneWarning)
            a = dateutil_parser.parse(raw, dayfirst=dayfirst, default=datetime(2001, 1, 1))
            b = dateutil_parser.parse(raw, dayfirst=dayfirst, default=datetime(2002, 2, 2))
    except (ValueError, OverflowError, TypeError):
        return None
    # A component missing from the text was filled from the default: not a full date.
    return a.date() if a.date() == b.date() else None


def parse_dates(series: pl.Series, day_order: str = "auto") -> ParsedColumn:
    """Dates in the forms CRMs export; day/month order decided once for the whole column
    (`auto`), or set by the tenant: `dmy` day-first, `mdy` month-first (values that
    contradict it are `inconsistent_date_format` errors)."""
    if day_order not in ("auto", "dmy", "mdy"):
        raise ValueError(f"day order {day_order!r}: expected auto, dmy or mdy")

    def parse(d: pl.DataFrame):
        notes: list[tuple[str, str]] = []
        raw = pl.col("raw")
        num = raw.str.extract_groups(_NUMERIC)
        d = d.with_columns(
            iso=_ymd(raw.str.extract(_ISO, 1), raw.str.extract(_ISO, 2), raw.str.extract(_ISO, 3)),
            isodt=raw.str.extract(_ISO_DATETIME, 1).str.to_date("%Y-%m-%d", strict=False),
            ymd=_ymd(raw.str.extract(_YMD, 1), raw.str.extract(_YMD, 2), raw.str.extract(_YMD, 3)),
            a=num.struct.field("1").cast(pl.Int32),
            sep=num.struct.field("2"),
            b=num.struct.field("3").cast(pl.Int32),
            y=_full_year(num.struct.field("4")),
            a_s=num.struct.field("1"),
            b_s=num.struct.field("3"),
            serial=pl.when(raw.str.contains(_SERIAL)).then(raw.cast(pl.Float64, strict=False)),
        )
        numeric = d.filter(pl.col("a").is_not_null())
        day_votes = int(numeric.filter((pl.col("a") > 12) & (pl.col("b") <= 12))["n"].sum())
        month_votes = int(numeric.filter((pl.col("b") > 12) & (pl.col("a") <= 12))["n"].sum())
        if day_order != "auto":
            dayfirst = day_order == "dmy"
        elif day_votes and month_votes:
            dayfirst = day_votes > month_votes
            notes.append(
                (
                    "inconsistent_date_format",
                    f"{day_votes} value(s) are day-first and {month_votes} month-first; "
                    f"read as {'day' if dayfirst else 'month'}-first, the others are rejected",
                )
            )
        elif day_votes or month_votes:
            dayfirst = bool(day_votes)
        else:
            dayfirst = False
            ambiguous = numeric.filter(pl.col("a") != pl.col("b"))
            if ambiguous.height:
                notes.append(
                    (
                        "ambiguous_date_format",
                        f"no value tells day-first from month-first (e.g. {ambiguous['raw'][0]!r}); "
                        "read as month-first",
                    )
                )
        day, month = (pl.col("a_s"), pl.col("b_s")) if dayfirst else (pl.col("b_s"), pl.col("a_s"))
        contradicts = (
            (pl.col("b") > 12) & (pl.col("a") <= 12)
            if dayfirst
            else (pl.col("a") > 12) & (pl.col("b") <= 12)
        )
        d = d.with_columns(
            numeric_date=_ymd(pl.col("y"), month, day),
            serial_date=pl.when(pl.col("serial").is_between(*_SERIAL_RANGE)).then(
                pl.lit(_EXCEL_EPOCH) + pl.duration(days=pl.col("serial").floor().cast(pl.Int64))
            ),
        ).with_columns(
            value=pl.coalesce("iso", "isodt", "ymd", "numeric_date", "serial_date"),
            fast=pl.any_horizontal(
                raw.str.contains(p) for p in (_ISO, _ISO_DATETIME, _YMD, _NUMERIC, _SERIAL)
            ),
        )
        slow = d.filter(~pl.col("fast"))["raw"].unique()
        if slow.len():
            # Once per distinct string: on the row path (mostly distinct values) `raw`
            # repeats, and a join against repeated keys would multiply rows.
            parsed = [_dateutil(v, dayfirst) for v in slow]
            slow_values = pl.DataFrame({"raw": slow, "slow": pl.Series(parsed, dtype=pl.Date)})
            d = d.join(slow_values, on="raw", how="left", maintain_order="left").with_columns(
                value=pl.coalesce("value", "slow")
            )
        d = d.with_columns(
            problem=pl.when(pl.col("a").is_not_null() & contradicts)
            .then(pl.lit("inconsistent_date_format"))
            .when(pl.col("value").is_null())
            .then(pl.lit("invalid_date"))
        ).with_columns(value=pl.when(pl.col("problem").is_null()).then(pl.col("value")))
        return d.select(_ROW_INDEX, "raw", "value", "problem"), notes

    values, problem, notes, _ = _by_distinct(series, parse)
    return ParsedColumn(values.cast(pl.Date), problem.cast(pl.String), notes)


# --- money -------------------------------------------------------------------------------

_CURRENCY_CODE = r"^[A-Z]{3}\s*|\s*[A-Z]{3}$"  # ISO 4217 codes are upper case
_SCIENTIFIC = r"^\d+([.,]\d+)?[eE][+-]?\d{1,2}$"  # Excel: 1.03444E11
_SPACES = r"[\s\u00a0\u202f\u2009']"


_PLAIN_NUMBER = r"^\s*-?\d{1,16}(\.\d{1,2})?\s*$"
_US_AMOUNT = r"^(?:\$|USD ?)?(?:[0-9]{1,3}(?:,[0-9]{3})+\.[0-9]{1,2}|[0-9]{1,16}(?:\.[0-9]{1,2})?)$"
"""`$1,234.56`, `USD 99`, `$5.5`: read the same whatever the column's decimal mark (a comma
before the dot only groups; no mark, nothing to decide), so they skip the general parser.
Each with a dot votes for `.` as the general parser would count it. `$1,234` (a comma and no
dot) depends on the vote: not here."""
SHAPED_FAST_PATH = True


def parse_money(series: pl.Series) -> ParsedColumn:
    """Amounts with currency signs or codes, thousands separators and accounting negatives.

    Which of `.` and `,` is the decimal mark is decided per value where it can be
    (`1,234.56`, `1.234,56`, `12,5`), and from the column's other values where it can't
    (`1.234` is 1234 in a column that writes `1.234,56`, else 1.234).
    """

    def parse(d: pl.DataFrame):
        # Most amounts are plain (`1234.5`): cast those directly; they still vote for `.`.
        is_plain = pl.col("raw").str.contains(_PLAIN_NUMBER)
        plain = d.filter(is_plain)
        plain_dot_votes = plain.filter(pl.col("raw").str.contains(".", literal=True))["n"].sum()
        plain = plain.select(
            _ROW_INDEX,
            "raw",
            value=pl.col("raw").str.strip_chars().cast(pl.Decimal(18, 2), strict=False),
            changed=pl.lit(None, pl.String),  # two decimals at most: nothing to round
        )
        d = d.filter(~is_plain)
        is_shaped = pl.col("raw").str.contains(_US_AMOUNT) if SHAPED_FAST_PATH else pl.lit(False)
        shaped = d.filter(is_shaped)
        shaped_dot_votes = shaped.filter(pl.col("raw").str.contains(".", literal=True))["n"].sum()
        shaped = shaped.select(
            _ROW_INDEX,
            "raw",
            value=pl.col("raw")
            .str.replace(r"^(?:\$|USD ?)", "")
            .str.replace_all(",", "", literal=True)
            .cast(pl.Decimal(18, 2), strict=False),
            changed=pl.lit(None, pl.String),
        )
        d = d.filter(~is_shaped)
        raw = pl.col("raw")
        d = d.with_columns(
            # `(1,000)`, `($5)`, `$(5)`, `USD (5)`: one parenthesised amount, signs around it.
            negative=raw.str.contains(r"^[^\d()]*\([^()]*\d[^()]*\)[^\d()]*$")
            | raw.str.contains(r"^\s*[^\d]*-")
            | raw.str.contains(r"-\s*$"),
            # Signs and symbols off first, so `-CHF 5`, `USD -5` and `-$5` all lose the code.
            core=raw.str.replace_all(r"[()]|\p{Sc}", "")
            .str.strip_chars()
            .str.strip_chars("+-")
            .str.strip_chars()
            .str.replace_all(_CURRENCY_CODE, "")
            .str.replace_all(_SPACES, "")
            .str.strip_chars("+-"),
        ).with_columns(
            shape_ok=pl.col("core").str.contains(r"^(\d+|\d{1,3}([.,]\d{3})+|\d*)([.,]\d+)?$")
            & pl.col("core").str.contains(r"\d"),
            last_dot=pl.col("core").str.find(r"\.[^.]*$"),
            last_comma=pl.col("core").str.find(r",[^,]*$"),
            dots=pl.col("core").str.count_matches(".", literal=True),
            commas=pl.col("core").str.count_matches(",", literal=True),
        )
        # Evidence for a decimal comma: `1.234,56`, `12,5`, `0,99`.
        comma_decimal = d.filter(
            pl.col("shape_ok")
            & (pl.col("commas") == 1)
            & (
                (pl.col("last_dot").is_not_null() & (pl.col("last_comma") > pl.col("last_dot")))
                | pl.col("core").str.contains(r",\d{1,2}$")
            )
        )["n"].sum()
        dot_decimal = d.filter(
            pl.col("shape_ok")
            & (pl.col("dots") == 1)
            & (
                (pl.col("last_comma").is_not_null() & (pl.col("last_dot") > pl.col("last_comma")))
                | pl.col("core").str.contains(r"\.\d{1,2}$")
            )
        )["n"].sum()
        comma_is_decimal = comma_decimal > dot_decimal + plain_dot_votes + shaped_dot_votes
        decimal_mark = (
            pl.when((pl.col("dots") > 0) & (pl.col("commas") > 0))
            .then(
                pl.when(pl.col("last_comma") > pl.col("last_dot"))
                .then(pl.lit(","))
                .otherwise(pl.lit("."))
            )
            .when(pl.col("commas") == 1)
            .then(
                pl.when(pl.col("core").str.contains(r",\d{3}$") & ~pl.lit(comma_is_decimal))
                .then(pl.lit(None, pl.String))
                .otherwise(pl.lit(","))
            )
            .when(pl.col("dots") == 1)
            .then(
                pl.when(pl.col("core").str.contains(r"\.\d{3}$") & pl.lit(comma_is_decimal))
                .then(pl.lit(None, pl.String))
                .otherwise(pl.lit("."))
            )
        )
        scientific = pl.col("core").str.contains(_SCIENTIFIC)
        d = (
            d.with_columns(mark=decimal_mark)
            .with_columns(
                normal=pl.when(pl.col("mark") == ",")
                .then(
                    pl.col("core")
                    .str.replace_all(".", "", literal=True)
                    .str.replace(",", ".", literal=True)
                )
                .when(pl.col("mark") == ".")
                .then(pl.col("core").str.replace_all(",", "", literal=True))
                .otherwise(pl.col("core").str.replace_all(r"[.,]", ""))
            )
            .with_columns(
                value=pl.when(pl.col("shape_ok"))
                .then(
                    (
                        pl.when(pl.col("negative")).then(pl.lit("-")).otherwise(pl.lit(""))
                        + pl.col("normal")
                    ).cast(pl.Decimal(18, 2), strict=False)
                )
                .when(scientific)
                .then(
                    (
                        pl.col("core")
                        .str.replace(",", ".", literal=True)
                        .cast(pl.Float64, strict=False)
                        * pl.when(pl.col("negative")).then(-1.0).otherwise(1.0)
                    ).cast(pl.Decimal(18, 2), strict=False)
                )
            )
            .with_columns(
                # DECIMAL(18,2) keeps cents: `5.555` is stored as 5.56 (half to even), and
                # said so. Trailing zeros (`5.550`) change nothing. (`core` has no sign.)
                changed=pl.when(
                    pl.col("value").is_not_null()
                    & pl.when(pl.col("shape_ok"))
                    .then(pl.col("normal").str.contains(r"\.\d{2}\d*[1-9]"))
                    .otherwise(
                        pl.col("value").cast(pl.Float64).abs()
                        != pl.col("core")
                        .str.replace(",", ".", literal=True)
                        .cast(pl.Float64, strict=False)
                    )
                ).then(pl.lit("value_rounded")),
            )
        )
        parsed = pl.concat([plain, shaped, d.select(_ROW_INDEX, "raw", "value", "changed")])
        return (
            parsed.with_columns(
                problem=pl.when(pl.col("value").is_null()).then(pl.lit("invalid_number"))
            ),
            [],
        )

    values, problem, notes, changed = _by_distinct(series, parse)
    return ParsedColumn(
        values.cast(pl.Decimal(18, 2)), problem.cast(pl.String), notes, changed.cast(pl.String)
    )


# --- e-mails and URLs --------------------------------------------------------------------

# The WHATWG HTML "valid e-mail address" production (what a browser's form accepts),
# widened to Unicode letters and digits for internationalised addresses (RFC 6531).
_LABEL = r"[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?"
_EMAIL = rf"^[\p{{L}}\p{{N}}.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+$"


_ASCII_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ASCII_EMAIL = rf"^[a-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_ASCII_LABEL}(?:\.{_ASCII_LABEL})+$"


def _on_subset(series: pl.Series, mask: pl.Series, fn) -> pl.Series:
    """Apply `fn` only where `mask` holds: a slow expression on the few rows that need it."""
    if not mask.any():
        return series
    where = mask.arg_true()
    return series.scatter(where, fn(series.gather(where)))


def _per_distinct(series: pl.Series, parse: Callable[[pl.Series], ParsedColumn]) -> ParsedColumn:
    """`parse`, a parser whose every result depends on its value alone, run once per distinct
    value when values repeat (a deal file names a few dozen owners and accounts' URLs over a
    million rows; a file without the column is all null), and joined back; on the rows
    themselves when most differ (where counting them costs more than it saves)."""
    if len(series) < 1_000 or _mostly_distinct(series, 0.5):
        return parse(series)
    distinct = series.drop_nulls().unique()
    parsed = parse(distinct)
    if distinct.len() == 0:  # all null (a column the file does not have): nothing to join
        return ParsedColumn(
            pl.repeat(None, len(series), dtype=parsed.values.dtype, eager=True).alias(
                parsed.values.name
            ),
            pl.repeat(None, len(series), dtype=pl.String, eager=True).alias(parsed.problem.name),
            parsed.notes,
        )
    lookup = pl.DataFrame(
        {"raw": distinct, "value": parsed.values, "problem": parsed.problem.cast(pl.String)}
    )
    joined = series.to_frame("raw").join(lookup, on="raw", how="left", maintain_order="left")
    return ParsedColumn(
        joined["value"].alias(parsed.values.name),
        joined["problem"].alias(parsed.problem.name),
        parsed.notes,
    )


def parse_emails(series: pl.Series) -> ParsedColumn:
    """Trimmed and lower-cased; anything a browser's e-mail field would refuse is invalid."""
    return _per_distinct(series, _parse_emails_each)


def _parse_emails_each(series: pl.Series) -> ParsedColumn:
    lowered = series.str.strip_chars().str.to_lowercase()
    # `Ann Lee <ann@x.example>` (Outlook) and `mailto:ann@x.example` keep just the address.
    lowered = _on_subset(
        lowered,
        lowered.str.contains("<", literal=True).fill_null(False)
        | lowered.str.starts_with("mailto:").fill_null(False),
        lambda s: (
            s.str.replace(r"^.*<([^<>]+)>$", "$1").str.replace(r"^mailto:", "").str.strip_chars()
        ),
    )
    # Almost every address is ASCII: the simple pattern first, the Unicode one for the rest.
    ok = lowered.str.contains(_ASCII_EMAIL).fill_null(False)
    ok = _on_subset(
        ok,
        ~ok & lowered.is_not_null(),
        lambda _: lowered.filter(~ok & lowered.is_not_null()).str.contains(_EMAIL),
    )
    values = lowered.set(~ok, None).alias(series.name)
    problem = (
        pl.repeat(None, len(series), dtype=pl.String, eager=True)
        .alias(series.name)
        .set(lowered.is_not_null() & ~ok, "invalid_email")
    )
    return ParsedColumn(values, problem)


_URL = r"^(?:([A-Za-z][A-Za-z0-9+.-]*)://)?([^/?#\s]+)([/?#]\S*)?$"
_HOST = rf"^{_LABEL}(?:\.{_LABEL})+(?::\d{{1,5}})?\.?$"
_ASCII_HOST = rf"^{_ASCII_LABEL}(?:\.{_ASCII_LABEL})+(?::\d{{1,5}})?\.?$"


def parse_urls(series: pl.Series) -> ParsedColumn:
    """A missing scheme gets https://, the host is lower-cased; spaces or no dotted host is invalid."""
    return _per_distinct(series, _parse_urls_each)


def _parse_urls_each(series: pl.Series) -> ParsedColumn:
    parts = series.str.strip_chars().str.extract_groups(_URL)
    frame = pl.DataFrame(
        {
            "present": series.is_not_null(),
            "scheme": parts.struct.field("1").str.to_lowercase(),
            "host": parts.struct.field("2").str.to_lowercase(),
            "rest": parts.struct.field("3"),
        }
    )
    # Almost every host is ASCII: the simple pattern first, the Unicode one (35x slower)
    # only for the rest.
    host = frame["host"]
    ok = host.str.contains(_ASCII_HOST).fill_null(False)
    ok = _on_subset(
        ok,
        ~ok & host.is_not_null(),
        lambda _: host.filter(~ok & host.is_not_null()).str.contains(_HOST),
    )
    out = frame.select(
        value=pl.when(ok).then(
            pl.concat_str(
                pl.col("scheme").fill_null("https"),
                pl.lit("://"),
                pl.col("host"),
                pl.col("rest").fill_null(""),
            )
        ),
    ).with_columns(
        problem=pl.when(frame["present"] & pl.col("value").is_null()).then(pl.lit("invalid_url"))
    )
    return ParsedColumn(out["value"].alias(series.name), out["problem"].cast(pl.String))
