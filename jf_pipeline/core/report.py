"""The import report a customer's admin finds next to their own files after each run.

A CSV of every problem (row number, id, column, value, reason, a plain-English message)
and a short text summary. Cells that a spreadsheet would run as a formula are neutralised.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import polars as pl

from jf_pipeline.contract import FILES, OWNER, OWNER_REF, REJECTED_ROWS, FileSpec
from jf_pipeline.core.cleaning import CleanTable
from jf_pipeline.core.landing import LandingFile

REPORT_CSV = "jointflows_import_report.csv"
REPORT_SUMMARY = "jointflows_import_summary.txt"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
REPORT_HISTORY = 5
"""Dated copies of the report kept in the tenant's folder (the newest runs'); older ones go."""
DATED_REPORT = re.compile(
    r"jointflows_import_(?:report|summary)_(?P<stamp>[0-9]{8}T[0-9]{6}Z)\.(?:csv|txt)"
)
"""The dated copies' names: only names of exactly this shape are ever deleted."""


def dated_report_names(when: datetime) -> tuple[str, str]:
    """(report CSV, summary) names of the dated copies for a run that finished `when`."""
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"jointflows_import_report_{stamp}.csv", f"jointflows_import_summary_{stamp}.txt"


def reports_to_prune(names: list[str], keep: int = REPORT_HISTORY) -> list[str]:
    """Of a tenant folder's file names, the dated reports older than the newest `keep`
    runs' (a run's report and summary share a stamp). Other names are never returned."""
    stamps = sorted({m["stamp"] for n in names if (m := DATED_REPORT.fullmatch(n))}, reverse=True)
    old = set(stamps[keep:])
    return sorted(n for n in names if (m := DATED_REPORT.fullmatch(n)) and m["stamp"] in old)


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix a quote to text cells a spreadsheet would evaluate (CSV/formula injection, OWASP)."""
    return frame.with_columns(
        pl.when(
            pl.any_horizontal(pl.col(c).str.starts_with(p).fill_null(False) for p in FORMULA_START)
        )
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c, dtype in frame.schema.items()
        if dtype == pl.String
    )


def _count(counts: dict, dataset: str) -> str:
    published = counts.get(f"{dataset}_published")
    return "unchanged" if published is None else str(published)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "unknown"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def drop_lines(files: dict[str, LandingFile | None], imported_at: datetime | None) -> list[str]:
    """Which upload the report is about: its date (the newest file's modification time),
    when it was processed, and each file's version, size and modification time, so the
    admin can tell this report from an older one and match it to their own files."""
    present = {d: f for d, f in files.items() if f is not None and f.present}
    newest = max((f.modified for f in present.values() if f.modified), default=None)
    lines = [f"Upload of {_when(newest)} (processed {_when(imported_at)}):"]
    for dataset in sorted(files, key=lambda d: (d == "users", d)):
        file = present.get(dataset)
        if file is None:
            if dataset != "users":  # users.csv is optional: say nothing when it is absent
                lines.append(f"  {dataset}.csv: not in the folder")
            continue
        lines.append(
            f"  {file.name}: version {file.version[:12]}, {file.size:,} bytes, "
            f"modified {_when(file.modified)}"
        )
    return lines


def import_report(
    tenant: str,
    rejected_rows: pl.DataFrame,
    outcome: str,
    counts: dict,
    reason: str | None = None,
    files: dict[str, LandingFile | None] | None = None,
    imported_at: datetime | None = None,
) -> tuple[bytes, bytes]:
    """(CSV bytes, summary text bytes) for one tenant's latest run.

    `counts` holds the ingestion's counts (`deals_published`, `deals_in_drop`, ...);
    `reason` is the publish guard's reason. A refused import says so, and why, first; then
    the upload's date and file versions (`files`: dataset -> the landing file read)."""
    rows = neutralise_formulas(rejected_rows.select(REJECTED_ROWS.row_names))
    errors = rejected_rows.filter(pl.col("severity") == "error").height
    if outcome == "refused":
        lines = [
            f"Jointflows import for {tenant}: NOT IMPORTED. Nothing was changed: the import "
            "was held back for review.",
            f"Why: {reason or 'the publish guard refused it'}.",
            *drop_lines(files or {}, imported_at),
            "Your previously imported data is still in Jointflows. If this upload is "
            "complete and correct, ask your Jointflows contact to approve it; otherwise "
            "upload the complete files again.",
        ]
        for dataset in ("deals", "accounts", "contacts"):
            in_drop = counts.get(f"{dataset}_in_drop")
            shown = "file not readable" if in_drop is None else in_drop
            lines.append(f"{dataset.capitalize()} in this upload: {shown} (not imported)")
    else:
        verdict = {
            "published": "Your files were imported.",
            "partial": "Your files were imported, except the file(s) rejected below.",
        }.get(outcome, outcome)
        lines = [
            f"Jointflows import for {tenant}: {verdict}",
            *drop_lines(files or {}, imported_at),
            f"Deals imported: {_count(counts, 'deals')}",
            f"Contacts imported: {_count(counts, 'contacts')}",
        ]
    lines += [
        f"Rows not imported (errors): {errors}; warnings: {rejected_rows.height - errors}.",
        f"Details, one line per problem: {REPORT_CSV}",
    ]
    with_rows = rejected_rows.filter(
        (pl.col("severity") == "error") & pl.col("row_number").is_not_null()
    )["file"].unique(maintain_order=True)
    if with_rows.len():
        names = ", ".join(error_file_name(f.removesuffix(".csv")) for f in sorted(with_rows))
        lines.append(
            f"Rows to fix, with your own columns and an ERROR column, to correct and upload "
            f"again: {names}"
        )
    by_reason = rejected_rows.group_by(["file", "severity", "reason"], maintain_order=True).len()
    for file, severity, reason_code, n in by_reason.iter_rows():
        lines.append(f"  {file}: {n} x {reason_code} ({severity})")
    return rows.write_csv().encode("utf-8-sig"), ("\n".join(lines) + "\n").encode("utf-8")


def change_summary(changes: dict[str, int] | None) -> str:
    """`3 new, 5 changed, 1 gone` (the deals a publish started, changed and ended)."""
    changes = changes or {}
    return ", ".join(f"{changes.get(k, 0)} {k}" for k in ("new", "changed", "gone"))


def with_changes(summary: bytes, changes: dict[str, int] | None) -> bytes:
    """The import summary with the deals' changes since the last import, under the line of
    the deals imported (known only once the publish has compared them with the history;
    a refused import, which has no such line, is returned as it is)."""
    if changes is None:
        return summary
    lines = summary.decode("utf-8").split("\n")
    at = next((i for i, line in enumerate(lines) if line.startswith("Deals imported:")), None)
    if at is None:
        return summary
    lines.insert(at + 1, f"Deals since the last import: {change_summary(changes)}")
    return "\n".join(lines).encode("utf-8")


ERROR_COLUMN = "ERROR"
"""The error file's last column, as Salesforce Data Loader names it in its error files."""


def error_file_name(dataset: str) -> str:
    return f"jointflows_errors_{dataset}.csv"


ERROR_FILES = tuple(error_file_name(d) for d in FILES)
"""The error files' names (one per contract file): the only ones written or deleted."""


def _inert(text: str) -> str:
    """One cell made inert for a spreadsheet, as `neutralise_formulas` does to a column."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _as_delivered(spec: FileSpec, clean: CleanTable, wanted: pl.Series) -> pl.DataFrame:
    """The file's rows that cleaning kept, as text under the contract's names: what an
    error found later (a deal without an account name, an owner users.csv does not list)
    shows. Cleaning's own errors keep the cells exactly as delivered (`clean.delivered`)."""
    rows = clean.rows.filter(pl.col("row_number").is_in(wanted.implode()))
    columns = []
    for column in spec.columns:
        if column.name not in clean.headers or column.out not in rows.columns:
            continue
        value = pl.col(column.out).cast(pl.String)
        if column.name == OWNER and OWNER_REF in rows.columns:
            value = pl.coalesce(value, pl.col(OWNER_REF))  # the owner as written
        columns.append(value.alias(column.name))
    return rows.select("row_number", *columns)


def error_files(
    rejected_rows: pl.DataFrame, clean: dict[str, CleanTable], present: set[str]
) -> dict[str, bytes]:
    """One CSV per file of the drop (`present` datasets), as Salesforce Data Loader's error
    files: each row left out for an error, with the customer's own columns and cells (the
    contract's columns, under their headers, values as delivered) and an `ERROR` column
    giving its line and every error on it, so the rows can be fixed and uploaded again.
    Cells a spreadsheet would evaluate are neutralised. Only files with such rows get one
    (the shell deletes the other error files, so none is left from an earlier run)."""
    files = {}
    for dataset in sorted(present):
        spec, table = FILES[dataset], clean.get(dataset)
        if table is None:
            continue
        errors = rejected_rows.filter(
            (pl.col("file") == spec.file_name)
            & (pl.col("severity") == "error")
            & pl.col("row_number").is_not_null()
        )
        if not errors.height:
            continue
        per_row = (
            errors.group_by("row_number", maintain_order=True)
            .agg(pl.col("line_number").first(), pl.col("message").unique(maintain_order=True))
            .sort("row_number")
            .select(
                "row_number",
                pl.format(
                    "line {}: {}",
                    pl.col("line_number").fill_null(pl.col("row_number") + 1),
                    pl.col("message").list.join("; "),
                ).alias(ERROR_COLUMN),
            )
        )
        names = [c.name for c in spec.columns if c.name in table.headers]
        cells = pl.DataFrame(schema={"row_number": pl.Int64, **dict.fromkeys(names, pl.String)})
        sources = [table.delivered, _as_delivered(spec, table, per_row["row_number"])]
        for source in sources:
            if source is not None and source.height:
                cells = pl.concat([cells, source.select("row_number", *names)], how="vertical")
        cells = cells.unique("row_number", keep="first", maintain_order=True)
        # The customer's headers are text a spreadsheet evaluates too (`=Name` is read as
        # the Name column): neutralised like the cells.
        out = per_row.join(cells, on="row_number", how="left").select(
            *[pl.col(n).alias(_inert(table.headers[n])) for n in names], ERROR_COLUMN
        )
        files[error_file_name(dataset)] = neutralise_formulas(out).write_csv().encode("utf-8-sig")
    return files
