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


def import_report(
    tenant: str, rejected_rows: pl.DataFrame, outcome: str, counts: dict
) -> tuple[bytes, bytes]:
    """(CSV bytes, summary text bytes) for one tenant's latest run."""
    rows = neutralise_formulas(rejected_rows.select(REJECTED_ROWS.data_names))
    errors = rejected_rows.filter(pl.col("severity") == "error").height
    verdict = {
        "published": "Your files were imported.",
        "partial": "Your files were imported, except the file(s) rejected below.",
        "refused": "Nothing was changed: the import was held back for review (see below). "
        "Your previously imported data is still in Jointflows.",
    }.get(outcome, outcome)
    lines = [
        f"Jointflows import for {tenant}: {verdict}",
        f"Deals imported: {counts.get('deals_published') if counts.get('deals_published') is not None else 'unchanged'}",
        f"Contacts imported: {counts.get('contacts_published') if counts.get('contacts_published') is not None else 'unchanged'}",
        f"Rows not imported (errors): {errors}; warnings: {rejected_rows.height - errors}.",
        f"Details, one line per problem: {REPORT_CSV}",
    ]
    by_reason = rejected_rows.group_by(["file", "severity", "reason"], maintain_order=True).len()
    for file, severity, reason, n in by_reason.iter_rows():
        lines.append(f"  {file}: {n} x {reason} ({severity})")
    return rows.write_csv().encode("utf-8-sig"), ("\n".join(lines) + "\n").encode("utf-8")
