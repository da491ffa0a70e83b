"""Asset checks the Dagster UI shows per tenant partition, each with the offending ids.

The publish guard (blocking) lives with the publish step in assets.py; these are warnings
about the customer's data, computed from the problems the core already found.
"""

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

UNIQUE_IDS = "unique_ids"
REQUIRED_VALUES = "required_values"
CONTACTS_REFERENCE_ACCOUNTS = "contacts_reference_accounts"
MAX_IDS_SHOWN = 100


def clean_check_specs(dataset: str) -> list[AssetCheckSpec]:
    asset = f"clean_{dataset}"
    return [
        AssetCheckSpec(
            UNIQUE_IDS,
            asset=asset,
            description="Each id appears once in the file (earlier duplicates lose).",
        ),
        AssetCheckSpec(REQUIRED_VALUES, asset=asset, description="No row misses a required value."),
    ]


CONTACTS_CHECK_SPEC = AssetCheckSpec(
    CONTACTS_REFERENCE_ACCOUNTS,
    asset="importable_contacts",
    description="Every contact's account is in accounts.csv or deals.csv.",
)


def _result(name: str, asset: str, offending: pl.DataFrame, what: str) -> AssetCheckResult:
    ids = offending.select(pl.coalesce("record_id", pl.format("row {}", "row_number"))).to_series()
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
    asset = f"clean_{dataset}"
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
            problems.filter(pl.col("reason") == "missing_value"),
            "rows miss a required value",
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
