"""Asset checks the Dagster UI shows per tenant partition, each with the offending ids.

Every check is partitioned like its asset (`partitions_def=tenants`), so each tenant's
checks pass or fail on their own: the catalog, lineage and partition views show which
tenants fail, instead of whichever tenant ran last.

Warnings about the customer's data, computed from the problems the core already found, and
the blocking `publish_guard`, whose verdict the core's publish plan carries.
"""

import warnings

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    PreviewWarning,
)

from jf_pipeline.core.guard import GuardDecision
from jf_pipeline.keys import clean_key
from jf_pipeline.partitions import tenants

# Partitioned checks are a preview feature of Dagster 1.13, used deliberately (see above):
# its warning would be printed by every `jf` command.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning
)

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


def clean_check_specs(dataset: str) -> list[AssetCheckSpec]:
    asset = clean_key(dataset)
    return [
        AssetCheckSpec(
            name, asset=asset, description=CHECK_DESCRIPTIONS[name], partitions_def=tenants
        )
        for name in (UNIQUE_IDS, REQUIRED_VALUES)
    ]


CONTACTS_CHECK_SPEC = AssetCheckSpec(
    CONTACTS_REFERENCE_ACCOUNTS,
    asset="importable_contacts",
    description=CHECK_DESCRIPTIONS[CONTACTS_REFERENCE_ACCOUNTS],
    partitions_def=tenants,
)


def _describe(what: str, ids: list[str], count: int) -> str:
    """`3 rows miss a required value: row 17, IN-103, ...`: the count and the first few."""
    shown = ", ".join(ids[:IDS_IN_DESCRIPTION])
    more = f" and {count - IDS_IN_DESCRIPTION} more" if count > IDS_IN_DESCRIPTION else ""
    return f"{count} {what}: {shown}{more}"


def _result(name: str, asset: str, offending: pl.DataFrame, what: str) -> AssetCheckResult:
    ids = offending.select(
        pl.coalesce(
            "record_id",
            pl.format("row {}", "row_number"),
            pl.format("missing column(s) {}", "value"),  # a file problem (no row)
        )
    ).to_series()
    unique = ids.unique(maintain_order=True)
    shown = unique.head(MAX_IDS_SHOWN).to_list()
    checked = CHECK_DESCRIPTIONS[name]
    return AssetCheckResult(
        check_name=name,
        asset_key=asset,
        passed=unique.len() == 0,
        severity=AssetCheckSeverity.WARN,
        # What was checked when it passed; when it failed, how often and the first few ids.
        description=_describe(what, shown, unique.len()) if unique.len() else checked,
        metadata={
            "checked": checked,
            "offending_count": unique.len(),
            "offending_ids": MetadataValue.json(shown),
        },
    )


def clean_check_results(dataset: str, problems: pl.DataFrame) -> list[AssetCheckResult]:
    asset = clean_key(dataset)
    return [
        _result(
            UNIQUE_IDS,
            asset,
            problems.filter(pl.col("reason") == "duplicate_id"),
            "ids appear more than once",
        ),
        _result(
            REQUIRED_VALUES,
            asset,
            problems.filter(pl.col("reason").is_in(["missing_columns", "missing_value"])),
            "rows or columns miss a required value",
        ),
    ]


def contacts_check_result(rejected_rows: pl.DataFrame) -> AssetCheckResult:
    unknown = rejected_rows.filter(pl.col("reason") == "unknown_account")
    return _result(
        CONTACTS_REFERENCE_ACCOUNTS,
        "importable_contacts",
        unknown,
        "contacts name an unknown account",
    )


PUBLISH_GUARD_SPEC = AssetCheckSpec(
    PUBLISH_GUARD,
    asset="importable_deals",
    blocking=True,
    description="Refuses to replace a tenant's rows when a file was rejected as a whole or "
    "the valid count of deals, accounts or contacts falls by more than the allowed share of "
    "its baseline (the largest recent publish) or to zero.",
    partitions_def=tenants,
)


def refusal_sentence(tenant: str, reason: str | None) -> str:
    """What a refused run's failure says first, in one sentence: who, what, why, what next."""
    return (
        f"Publish of tenant {tenant} refused by the publish guard, the published rows stay: "
        f"{reason or 'see the publish_guard check'}. If the drop is real, approve it: launch "
        f"approve_tenant for partition {tenant}, or run jf approve {tenant}."
    )


def guard_check_result(guard: GuardDecision, tenant: str) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=PUBLISH_GUARD,
        asset_key="importable_deals",
        passed=guard.passed,
        severity=AssetCheckSeverity.ERROR,
        description=guard.summary,
        metadata={
            "published_deals": guard.published_deals,
            "new_deals": -1 if guard.new_deals is None else guard.new_deals,
            "baseline": MetadataValue.json(guard.baseline),
            "new_counts": MetadataValue.json(guard.new_counts),
            "reasons": MetadataValue.json(guard.reasons),
            "approved": guard.approved,
            "how_to_approve": f"if the drop is real: launch job approve_tenant for partition "
            f"{tenant} (launchpad: approve_publish: true), or run: jf approve {tenant}",
        },
    )
