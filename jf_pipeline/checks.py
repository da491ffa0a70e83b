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


def clean_check_specs(dataset: str) -> list[AssetCheckSpec]:
    asset = clean_key(dataset)
    return [
        AssetCheckSpec(
            UNIQUE_IDS,
            asset=asset,
            description="Each id appears once in the file (earlier duplicates lose).",
            partitions_def=tenants,
        ),
        AssetCheckSpec(
            REQUIRED_VALUES,
            asset=asset,
            description="The file has every required column and no row misses a required value.",
            partitions_def=tenants,
        ),
    ]


CONTACTS_CHECK_SPEC = AssetCheckSpec(
    CONTACTS_REFERENCE_ACCOUNTS,
    asset="importable_contacts",
    description="Every contact's account is in accounts.csv or deals.csv.",
    partitions_def=tenants,
)


def _result(name: str, asset: str, offending: pl.DataFrame, what: str) -> AssetCheckResult:
    ids = offending.select(
        pl.coalesce(
            "record_id",
            pl.format("row {}", "row_number"),
            pl.format("missing column(s) {}", "value"),  # a file problem (no row)
        )
    ).to_series()
    unique = ids.unique(maintain_order=True)
    return AssetCheckResult(
        check_name=name,
        asset_key=asset,
        passed=unique.len() == 0,
        severity=AssetCheckSeverity.WARN,
        description=f"{unique.len()} {what}" if unique.len() else None,
        metadata={
            "offending_count": unique.len(),
            "offending_ids": MetadataValue.json(unique.head(MAX_IDS_SHOWN).to_list()),
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
