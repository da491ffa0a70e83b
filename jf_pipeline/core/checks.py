"""The data checks' verdicts, computed from the problems the core already found.

Pure: `jf_pipeline/checks.py` turns each verdict into the Dagster asset check result the UI
shows per tenant partition, and `jf ingest` prints the failed ones; both read the same
verdicts, so the terminal and the UI never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from jf_pipeline.contract import clean_name
from jf_pipeline.core.guard import GuardDecision

PUBLISH_GUARD = "publish_guard"
UNIQUE_IDS = "unique_ids"
REQUIRED_VALUES = "required_values"
CONTACTS_REFERENCE_ACCOUNTS = "contacts_reference_accounts"
MAX_IDS_SHOWN = 100
"""Offending ids kept in a check's metadata (the count says how many there were)."""
IDS_IN_DESCRIPTION = 5
"""Offending ids named in a failed check's one-line description."""

CHECK_DESCRIPTIONS = {
    UNIQUE_IDS: "Each id appears once in the file (earlier duplicates lose).",
    REQUIRED_VALUES: "The file has every required column and no row misses a required value.",
    CONTACTS_REFERENCE_ACCOUNTS: "Every contact's account is in accounts.csv or deals.csv.",
}
"""What each warning check checks: its spec's description, and its result's when it passes."""


@dataclass(frozen=True)
class Verdict:
    """One check's result for one tenant: which asset, passed or not, and why."""

    name: str
    asset: str
    """The checked asset's key, as a path string (`clean_deals`, `importable_contacts`)."""
    passed: bool
    description: str
    offending_ids: list[str] = field(default_factory=list)
    offending_count: int = 0


def _describe(what: str, ids: list[str], count: int) -> str:
    """`3 rows miss a required value: row 17, IN-103, ...`: the count and the first few."""
    shown = ", ".join(ids[:IDS_IN_DESCRIPTION])
    more = f" and {count - IDS_IN_DESCRIPTION} more" if count > IDS_IN_DESCRIPTION else ""
    return f"{count} {what}: {shown}{more}"


def _verdict(name: str, asset: str, offending: pl.DataFrame, what: str) -> Verdict:
    ids = offending.select(
        pl.coalesce(
            "record_id",
            pl.format("row {}", "row_number"),
            pl.format("missing column(s) {}", "value"),  # a file problem (no row)
        )
    ).to_series()
    unique = ids.unique(maintain_order=True)
    shown = unique.head(MAX_IDS_SHOWN).to_list()
    count = unique.len()
    # What was checked when it passed; when it failed, how often and the first few ids.
    description = _describe(what, shown, count) if count else CHECK_DESCRIPTIONS[name]
    return Verdict(name, asset, count == 0, description, shown, count)


def clean_verdicts(dataset: str, problems: pl.DataFrame) -> list[Verdict]:
    """The clean file's checks: unique ids and required values."""
    asset = clean_name(dataset)
    return [
        _verdict(
            UNIQUE_IDS,
            asset,
            problems.filter(pl.col("reason") == "duplicate_id"),
            "ids appear more than once",
        ),
        _verdict(
            REQUIRED_VALUES,
            asset,
            problems.filter(pl.col("reason").is_in(["missing_columns", "missing_value"])),
            "rows or columns miss a required value",
        ),
    ]


def contacts_verdict(rejected_rows: pl.DataFrame) -> Verdict:
    unknown = rejected_rows.filter(pl.col("reason") == "unknown_account")
    return _verdict(
        CONTACTS_REFERENCE_ACCOUNTS,
        "importable_contacts",
        unknown,
        "contacts name an unknown account",
    )


def guard_verdict(guard: GuardDecision) -> Verdict:
    return Verdict(PUBLISH_GUARD, "importable_deals", guard.passed, guard.summary)


def refusal_sentence(tenant: str, reason: str | None) -> str:
    """What a refused run's failure says first, in one sentence: who, what, why, what next."""
    return (
        f"Publish of tenant {tenant} refused by the publish guard, the published rows stay: "
        f"{reason or 'see the publish_guard check'}. If the drop is real, approve it: launch "
        f"approve_tenant for partition {tenant}, or run jf approve {tenant}."
    )
