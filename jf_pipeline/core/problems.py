"""Every dropped row and every doubted value becomes a problem row with a stable reason code.

Problems are polars frames with `PROBLEM_SCHEMA`; they become `rejected_rows` in the
warehouse with the tenant id added.
"""

from __future__ import annotations

import polars as pl

from jf_pipeline.contract import INGESTION_ID, REJECTED_ROWS

ERROR = "error"
WARNING = "warning"

# reason code -> (severity, what it means). The codes are stable: analysts and the app
# filter on them. A test checks that the README's reason-code table lists every one.
REASONS: dict[str, tuple[str, str]] = {
    "file_missing": (ERROR, "the file is not in the landing folder"),
    "file_unreadable": (ERROR, "the file's bytes are not text in a supported encoding"),
    "file_empty": (ERROR, "the file has no header row"),
    "file_too_large": (ERROR, "the file is over the size or column limit"),
    "file_not_regular": (ERROR, "a symbolic link, pipe, device or folder, not a file: not read"),
    "file_changing": (ERROR, "the file kept changing while it was read (an upload in progress)"),
    "missing_columns": (ERROR, "required columns are missing from the header"),
    "ambiguous_columns": (ERROR, "two columns of the file map to the same field"),
    "malformed_row": (ERROR, "the row has a different number of fields than the header"),
    "cell_too_long": (ERROR, "a cell is longer than the limit (100,000 characters)"),
    "invalid_encoding": (ERROR, "a cell holds bytes that are not text (invalid UTF-8, NUL)"),
    "missing_value": (ERROR, "a required value is blank"),
    "invalid_date": (ERROR, "the value is not a real calendar date"),
    "inconsistent_date_format": (ERROR, "the value's day/month order contradicts the column"),
    "invalid_number": (ERROR, "the value is not a number"),
    "invalid_email": (ERROR, "the value is not a valid e-mail address"),
    "no_account_name": (ERROR, "neither the deal row nor accounts.csv names the account"),
    "owner_not_an_email": (
        ERROR,
        "the owner column holds user ids or names and there is no users.csv to resolve them",
    ),
    "unknown_owner": (ERROR, "the deal's owner (a user id or name) is not in users.csv"),
    "stage_column_missing": (
        ERROR,
        "the tenant imports only some deal stages, but deals.csv has no stage column",
    ),
    "deals_filtered": (WARNING, "deals in stages the tenant does not import were left out"),
    "owner_defaulted": (WARNING, "the owner could not be resolved: the default owner was used"),
    "value_rounded": (WARNING, "the amount has more than two decimals: rounded to cents"),
    "invalid_optional_value": (WARNING, "an optional value was invalid and left blank"),
    "missing_optional_value": (WARNING, "a recommended value is blank"),
    "ambiguous_date_format": (WARNING, "no value tells day-first from month-first"),
    "duplicate_id": (WARNING, "a later row has the same id and wins"),
    "no_account_url": (WARNING, "the deal has no account URL (no brand icon)"),
    "unknown_account": (WARNING, "the contact's account is in neither accounts.csv nor deals.csv"),
    "unknown_reports_to": (WARNING, "reports_to_id names no contact in the file"),
    "reports_to_cycle": (WARNING, "the reports_to_id chain loops back to this contact"),
    "preamble_skipped": (WARNING, "lines above the header row (a report title) were skipped"),
    "ignored_columns": (WARNING, "columns that are not in the contract were ignored"),
    "ignored_file": (WARNING, "a file named like a contract file but not exactly was ignored"),
}

_POLARS = {"VARCHAR": pl.String(), "BIGINT": pl.Int64()}
LINE_NUMBER = "line_number"
"""Added once a drop's problems are gathered (`with_line_numbers`): each file's header line
is known only to its reader."""
PROBLEM_SCHEMA: dict[str, pl.DataType] = {
    f.name: _POLARS[f.type]
    for f in REJECTED_ROWS.fields
    if f.name not in ("tenant_id", LINE_NUMBER, INGESTION_ID.name)
}
"""A problem frame: rejected_rows' columns without tenant_id, line_number and ingestion_id
(contract.REJECTED_ROWS)."""


def with_line_numbers(problems: pl.DataFrame, header_lines: dict[str, int]) -> pl.DataFrame:
    """`problems` with `line_number`: the spreadsheet line the customer sees, i.e. the
    file's header line (`header_lines`, 1 when unknown) + `row_number`; NULL for a
    whole-file problem. Columns in rejected_rows' order."""
    header_line = (
        pl.col("file").replace_strict(header_lines, default=1, return_dtype=pl.Int64)
        if header_lines
        else pl.lit(1, pl.Int64)
    )
    return problems.with_columns((pl.col("row_number") + header_line).alias(LINE_NUMBER)).select(
        REJECTED_ROWS.row_names
    )


def empty_problems() -> pl.DataFrame:
    return pl.DataFrame(schema=PROBLEM_SCHEMA)


def file_problem(
    file: str, reason: str, message: str, column: str | None = None, value: str | None = None
) -> pl.DataFrame:
    """One problem about a whole file or column: `row_number` is NULL."""
    return pl.DataFrame(
        [
            {
                "file": file,
                "row_number": None,
                "record_id": None,
                "severity": REASONS[reason][0],
                "reason": reason,
                "column": column,
                "value": value,
                "message": message,
            }
        ],
        schema=PROBLEM_SCHEMA,
    )


def row_problems(
    rows: pl.DataFrame,
    *,
    file: str,
    reason: str,
    message: pl.Expr | str,
    column: str | None = None,
    value: pl.Expr | None = None,
    record_id: str | None = None,
    column_expr: pl.Expr | None = None,
) -> pl.DataFrame:
    """Problems for each row of `rows` (already filtered to the offending ones).

    `rows` carries `row_number`; `value` defaults to the raw text of `column`;
    `column_expr` names the column per row when it differs from row to row.
    """
    if value is None:
        value = pl.col(f"_raw_{column}") if f"_raw_{column}" in rows.columns else pl.lit(None)
    return rows.select(
        pl.lit(file).alias("file"),
        pl.col("row_number").cast(pl.Int64),
        (pl.col(record_id) if record_id and record_id in rows.columns else pl.lit(None))
        .cast(pl.String)
        .alias("record_id"),
        pl.lit(REASONS[reason][0]).alias("severity"),
        pl.lit(reason).alias("reason"),
        (column_expr if column_expr is not None else pl.lit(column, dtype=pl.String)).alias(
            "column"
        ),
        value.cast(pl.String).alias("value"),
        (pl.lit(message) if isinstance(message, str) else message).cast(pl.String).alias("message"),
    )


def concat_problems(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [f for f in frames if f.height]
    if not frames:
        return empty_problems()
    return pl.concat([f.cast(PROBLEM_SCHEMA) for f in frames], how="vertical")


def count_by_severity(problems: pl.DataFrame) -> dict[str, int]:
    counts = dict(problems.group_by("severity").len().iter_rows())
    return {ERROR: counts.get(ERROR, 0), WARNING: counts.get(WARNING, 0)}
