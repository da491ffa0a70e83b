"""The import report a customer's admin finds next to their own files after each run.

A CSV of every problem (row number, id, column, value, reason, a plain-English message)
and a short text summary. Cells that a spreadsheet would run as a formula are neutralised.
"""

from __future__ import annotations

import polars as pl

from jf_pipeline.contract import REJECTED_ROWS

REPORT_CSV = "jointflows_import_report.csv"
REPORT_SUMMARY = "jointflows_import_summary.txt"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


def import_report(
    tenant: str,
    rejected_rows: pl.DataFrame,
    outcome: str,
    counts: dict,
    reason: str | None = None,
) -> tuple[bytes, bytes]:
    """(CSV bytes, summary text bytes) for one tenant's latest run.

    `counts` holds the ingestion's counts (`deals_published`, `deals_in_drop`, ...);
    `reason` is the publish guard's reason. A refused import says so, and why, first."""
    rows = neutralise_formulas(rejected_rows.select(REJECTED_ROWS.data_names))
    errors = rejected_rows.filter(pl.col("severity") == "error").height
    if outcome == "refused":
        lines = [
            f"Jointflows import for {tenant}: NOT IMPORTED. Nothing was changed: the import "
            "was held back for review.",
            f"Why: {reason or 'the publish guard refused it'}.",
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
            f"Deals imported: {_count(counts, 'deals')}",
            f"Contacts imported: {_count(counts, 'contacts')}",
        ]
    lines += [
        f"Rows not imported (errors): {errors}; warnings: {rejected_rows.height - errors}.",
        f"Details, one line per problem: {REPORT_CSV}",
    ]
    by_reason = rejected_rows.group_by(["file", "severity", "reason"], maintain_order=True).len()
    for file, severity, reason_code, n in by_reason.iter_rows():
        lines.append(f"  {file}: {n} x {reason_code} ({severity})")
    return rows.write_csv().encode("utf-8-sig"), ("\n".join(lines) + "\n").encode("utf-8")
