"""Asset checks the Dagster UI shows per tenant partition, each with the offending ids.

Every check is partitioned like its asset (`partitions_def=tenants`), so each tenant's
checks pass or fail on their own: the catalog, lineage and partition views show which
tenants fail, instead of whichever tenant ran last.

Warnings about the customer's data and the blocking `publish_guard`: the verdicts come from
the core (`jf_pipeline/core/checks.py`, which `jf ingest` prints from too); this module makes
them Dagster check specs and results.
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

from jf_pipeline.core.checks import (
    CHECK_DESCRIPTIONS,
    CONTACTS_REFERENCE_ACCOUNTS,
    PUBLISH_GUARD,
    REQUIRED_VALUES,
    UNIQUE_IDS,
    Verdict,
    clean_verdicts,
    contacts_verdict,
    guard_verdict,
)
from jf_pipeline.core.guard import GuardDecision
from jf_pipeline.keys import clean_key
from jf_pipeline.partitions import tenants

# Partitioned checks are a preview feature of Dagster 1.13, used deliberately (see above):
# its warning would be printed by every `jf` command.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=PreviewWarning
)


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


def _result(verdict: Verdict) -> AssetCheckResult:
    checked = CHECK_DESCRIPTIONS[verdict.name]
    return AssetCheckResult(
        check_name=verdict.name,
        asset_key=verdict.asset,
        passed=verdict.passed,
        severity=AssetCheckSeverity.WARN,
        description=verdict.description,
        metadata={
            "checked": checked,
            "offending_count": verdict.offending_count,
            "offending_ids": MetadataValue.json(verdict.offending_ids),
        },
    )


def clean_check_results(dataset: str, problems: pl.DataFrame) -> list[AssetCheckResult]:
    return [_result(v) for v in clean_verdicts(dataset, problems)]


def contacts_check_result(rejected_rows: pl.DataFrame) -> AssetCheckResult:
    return _result(contacts_verdict(rejected_rows))


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
        description=guard_verdict(guard).description,
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
