"""Per-tenant assets: raw files -> clean tables -> the published DuckDB tables.

Thin shell over `jf_pipeline.core`: read from the landing store, call the core, write
to the warehouse, report metadata for the Dagster UI.
"""

import json
from datetime import UTC, datetime

import polars as pl
from dagster import (
    AssetCheckKey,
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    AssetSpec,
    Backoff,
    Failure,
    Jitter,
    MaterializeResult,
    MetadataValue,
    Nothing,
    Output,
    ResourceParam,
    RetryPolicy,
    TableColumn,
    TableSchema,
    multi_asset,
)

from jf_pipeline import steps
from jf_pipeline import tenants as tenant_store
from jf_pipeline.approval import ApprovalConfig
from jf_pipeline.checks import (
    CONTACTS_CHECK_SPEC,
    PUBLISH_GUARD_SPEC,
    clean_check_results,
    clean_check_specs,
    contacts_check_result,
    guard_check_result,
)
from jf_pipeline.contract import DEALS, FILES, WAREHOUSE_TABLES, FileSpec, Table
from jf_pipeline.core.checks import refusal_sentence
from jf_pipeline.core.cleaning import CleanTable
from jf_pipeline.core.landing import file_token, requested_token
from jf_pipeline.core.plan import PublishPlan, PublishPolicy, RunInfo
from jf_pipeline.core.problems import count_by_severity
from jf_pipeline.core.tenant_settings import TenantSettings
from jf_pipeline.keys import clean_key, clean_name, raw_key, raw_name
from jf_pipeline.partitions import tenants
from jf_pipeline.resources import LandingStore, Warehouse
from jf_pipeline.steps import CleanFile, RawFile

OUTCOME_TAG = "jf/outcome"
"""Run tag set once a publish attempt is logged in `ingestions` (sensors.py reads it)."""
WAREHOUSE_POOL = "duckdb_warehouse"
"""Concurrency pool of every DuckDB writer; the instance config limits it (2 on one host, 1 on
Kubernetes): the writers' lock serialises the writes themselves."""

LANDING_RETRY = RetryPolicy(
    max_retries=steps.READ_RETRIES,
    delay=steps.READ_RETRY_DELAY,
    backoff=Backoff.EXPONENTIAL,
    jitter=Jitter.PLUS_MINUS,
)
"""S3 throttling and dropped connections: retried after about 1, 3 and 7 s, on top of
botocore's own retries; after that the tenant's run fails and the other tenants go on
(`jf ingest` retries the same way: steps.retry_delay)."""

RAW_GROUP, CLEAN_GROUP, WAREHOUSE_GROUP = "landing", "cleaning", "warehouse"
OWNERS = ["team:data-engineering"]

_RAW_DESCRIPTIONS = {
    "deals": "The tenant's CRM deals export (deals.csv) exactly as delivered: every cell a "
    "string, headers matched to the contract's names. The source of every deal Jointflows "
    "users can turn into a customer project.",
    "accounts": "The tenant's accounts export (accounts.csv) as delivered. Optional: it fills "
    "the account name, URL and industry that a deal row leaves blank.",
    "contacts": "The tenant's contacts export (contacts.csv) as delivered. Optional: the "
    "people shown in each project's digital sales room.",
    "users": "The tenant's CRM user export (users.csv) as delivered. Optional: turns deal "
    "owners exported as user ids or names into e-mails. Never published.",
}
_CLEAN_DESCRIPTIONS = {
    "deals": "Deals typed and validated: close dates as dates, values as DECIMAL(18,2), owner "
    "e-mails checked, URLs normalised, duplicates resolved (last row wins). Rows with errors "
    "are left out and reported.",
    "accounts": "Accounts typed and validated, one row per account id (last row wins).",
    "contacts": "Contacts typed and validated, one row per contact id (last row wins).",
    "users": "CRM users typed and validated (id, name, e-mail), for resolving deal owners.",
}


def _markdown(frame: pl.DataFrame, rows: int = 5) -> MetadataValue:
    with pl.Config(
        tbl_formatting="ASCII_MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_cols=-1,
        fmt_str_lengths=40,
        tbl_width_chars=10_000,
    ):
        return MetadataValue.md(str(frame.head(rows)))


def _schema(frame: pl.DataFrame, docs: dict[str, str] | None = None) -> TableSchema:
    """The frame's columns and types; `docs` (column -> the contract's description) where
    the contract describes them."""
    docs = docs or {}
    return TableSchema(
        columns=[
            TableColumn(name, str(dtype), description=docs.get(name))
            for name, dtype in frame.schema.items()
        ]
    )


CLEAN_DOCS = {
    dataset: {f.name: f.doc for f in WAREHOUSE_TABLES[table].fields}
    for dataset, table in (
        ("deals", "importable_deals"),
        ("accounts", "accounts"),
        ("contacts", "importable_contacts"),
    )
}
"""A clean file's columns mean what the published table's columns of the same name mean
(accounts.csv's `unique_id` is published as `account_unique_id`)."""


def _by_reason(problems: pl.DataFrame) -> dict[str, int]:
    return dict(sorted(problems.group_by("reason").len().iter_rows()))


class LandingChanged(RuntimeError):
    """A file read by a sensor-requested run is not the version the sensor requested."""


def _check_requested(context: AssetExecutionContext, spec: FileSpec, raw: RawFile) -> None:
    """A run the sensor requested publishes the version the sensor saw, or fails and is
    retried (LANDING_RETRY). Otherwise a read that caught a file mid-rewrite could publish
    a cut file while the sensor's cursor already holds the final bytes' fingerprint, and an
    identical re-export written in place would never be ingested again. A genuinely newer
    version has a different fingerprint, so the sensor requests its own run."""
    fingerprint = context.run.tags.get("jf/files")
    expected = requested_token(fingerprint, spec.file_name) if fingerprint else None
    if expected is None:
        return  # not requested by the sensor (jf ingest, a manual materialization)
    found = file_token(raw.source)
    if found != expected:
        raise LandingChanged(
            f"{spec.file_name} changed after the landing sensor requested this run (requested "
            f"version {expected}, read {found}); retrying so that the run publishes exactly "
            "the version the sensor recorded"
        )


def _raw_metadata(raw: RawFile) -> dict:
    table, source = raw.table, raw.source
    metadata = {
        "present": source is not None and source.present,
        "rejected": table.rejected,
        "dagster/row_count": table.frame.height,
        "source_key": source.key if source else "(absent)",
        "source_version": source.version if source else "(absent)",
        "source_size_bytes": source.size if source else 0,
        "encoding": table.encoding or "",
        "delimiter": json.dumps(table.delimiter) if table.delimiter else "",
        "header_mapping": MetadataValue.json(table.header_mapping),
        "ignored_columns": ", ".join(table.ignored_columns),
        "problems": MetadataValue.json(_by_reason(table.problems)),
        "dagster/column_schema": _schema(table.frame),
        "preview": _markdown(table.frame),
    }
    if source and source.modified:
        metadata["source_modified"] = MetadataValue.timestamp(source.modified)
    return metadata


def _clean_metadata(cleaned: CleanTable, dataset: str) -> dict:
    severity = count_by_severity(cleaned.problems)
    return {
        "dagster/row_count": cleaned.rows.height,
        "rejected": cleaned.rejected,
        "errors": severity["error"],
        "warnings": severity["warning"],
        "problems_by_reason": MetadataValue.json(_by_reason(cleaned.problems)),
        "dagster/column_schema": _schema(cleaned.rows, CLEAN_DOCS.get(dataset)),
        "preview": _markdown(cleaned.rows),
    }


@multi_asset(
    name="read_and_clean",
    outs={
        **{
            raw_name(spec.dataset): AssetOut(
                dagster_type=Nothing,
                group_name=RAW_GROUP,
                kinds={"csv", "polars"},
                owners=OWNERS,
                description=_RAW_DESCRIPTIONS[spec.dataset],
                is_required=False,
            )
            for spec in FILES.values()
        },
        **{
            clean_name(spec.dataset): AssetOut(
                group_name=CLEAN_GROUP,
                kinds={"polars"},
                owners=OWNERS,
                description=_CLEAN_DESCRIPTIONS[spec.dataset],
                is_required=False,
            )
            for spec in FILES.values()
        },
    },
    internal_asset_deps={
        **{raw_name(spec.dataset): set() for spec in FILES.values()},
        **{clean_name(spec.dataset): {raw_key(spec.dataset)} for spec in FILES.values()},
    },
    check_specs=[check for spec in FILES.values() for check in clean_check_specs(spec.dataset)],
    partitions_def=tenants,
    can_subset=True,
    retry_policy=LANDING_RETRY,
)
def read_and_clean(context: AssetExecutionContext, landing: ResourceParam[LandingStore]):
    """Read and clean one tenant's landing files (the sensor selects the changed ones), one
    thread each (`steps.read_and_clean`). A selected `clean_*` without its `raw_*` cleans
    the landing file as it is now.
    """
    tenant = context.partition_key
    selected = context.selected_asset_keys
    specs = [s for s in FILES.values() if {raw_key(s.dataset), clean_key(s.dataset)} & selected]
    own = tenant_store.load(landing, tenant)  # the tenant's settings (jf tenant set)
    results = steps.read_and_clean(
        landing,
        tenant,
        specs,
        own,
        clean=lambda spec: clean_key(spec.dataset) in selected,
        check=lambda spec, raw: _check_requested(context, spec, raw),
    )
    checks = context.selected_asset_check_keys
    for spec, (raw, cleaned) in zip(specs, results, strict=True):
        if raw_key(spec.dataset) in selected:
            # Metadata only: nothing loads a raw frame, so none is stored. An absent file
            # says so there (`present: false`), not in a log line: one event row fewer in
            # most tenants' runs (users.csv is optional).
            metadata = {**_raw_metadata(raw), "settings_version": own.settings_version}
            yield Output(None, output_name=raw_name(spec.dataset), metadata=metadata)
        if cleaned is not None:
            metadata = {
                **_clean_metadata(cleaned.table, spec.dataset),
                "settings_version": own.settings_version,
            }
            if spec is DEALS and own.stages:
                metadata["deals_filtered"] = cleaned.table.filtered
            yield Output(cleaned, output_name=clean_name(spec.dataset), metadata=metadata)
            for result in clean_check_results(spec.dataset, cleaned.table.problems):
                if AssetCheckKey(result.asset_key, result.check_name) in checks:
                    yield result


file_assets = [read_and_clean]

_PUBLISHED = {
    "importable_deals": (
        [clean_name("deals"), clean_name("accounts"), clean_name("users")],
        "The deals Jointflows users browse and turn into customer projects: every valid deal "
        "with its account filled in (deal-row data first, then accounts.csv).",
    ),
    "accounts": (
        [clean_name("accounts"), clean_name("deals")],
        "The tenant's accounts: accounts.csv merged with the account data inline in deals.csv, "
        "deal data taking precedence field by field.",
    ),
    "importable_contacts": (
        [clean_name("contacts"), clean_name("accounts"), clean_name("deals")],
        "The tenant's contacts, for each project's digital sales room. Contacts with unknown "
        "accounts or managers are kept and reported.",
    ),
    "rejected_rows": (
        [clean_name(d) for d in FILES],
        "Every row that was left out and every value that was changed or doubted, with a "
        "stable reason code and a message for the customer's admin.",
    ),
}


def table_schema(table: Table) -> TableSchema:
    """The table's columns with their types and the contract's descriptions."""
    return TableSchema(
        columns=[TableColumn(f.name, f.type, description=f.doc) for f in table.fields]
    )


@multi_asset(
    name="publish_tenant",
    specs=[
        AssetSpec(
            name,
            deps=deps,
            description=description,
            group_name=WAREHOUSE_GROUP,
            kinds={"duckdb"},
            owners=OWNERS,
            partitions_def=tenants,
            skippable=name != "rejected_rows",
            metadata={
                "dagster/column_schema": table_schema(WAREHOUSE_TABLES[name]),
                "dagster/table_name": f"main.{name}",
            },
        )
        for name, (deps, description) in _PUBLISHED.items()
    ],
    ins={clean_name(d): AssetIn(clean_key(d)) for d in FILES},
    partitions_def=tenants,
    check_specs=[
        PUBLISH_GUARD_SPEC,
        CONTACTS_CHECK_SPEC,
    ],
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def publish_tenant(
    context: AssetExecutionContext,
    config: ApprovalConfig,
    warehouse: ResourceParam[Warehouse],
    landing: ResourceParam[LandingStore],
    clean_deals,
    clean_accounts,
    clean_contacts,
    clean_users,
):
    """Guard, then replace the tenant's rows in every published table in one transaction.

    The inputs are CleanFiles (untyped here so that clean tables an earlier version stored
    still load; `CleanFile.of` converts them). `config` approves a refused drop
    (jf_pipeline/approval.py: the approve_tenant job, jf approve, jf ingest --approve)."""
    tenant = context.partition_key
    inputs = (clean_deals, clean_accounts, clean_contacts, clean_users)
    files = {d: CleanFile.of(v) for d, v in zip(FILES, inputs, strict=True)}
    own = tenant_store.load(landing, tenant)  # the tenant's settings (jf tenant set)
    done = steps.publish(
        warehouse,
        tenant,
        files,
        _policy(context, config, warehouse, own),
        lambda: _run_info(context),
    )
    plan = done.plan
    # The attempt is logged: the landing sensor must not re-request this drop (sensors.py).
    context.instance.add_run_tags(context.run.run_id, {OUTCOME_TAG: plan.outcome})
    steps.write_customer_files(landing, tenant, own, done, context.log)
    if plan.approval_note:
        context.log.warning(f"{tenant}: {plan.approval_note}")
    yield from _materializations(context, plan, warehouse.path, done.changes)
    yield contacts_check_result(plan.rejected_rows)
    yield guard_check_result(plan.guard, tenant)
    if not plan.guard.passed:
        # The run's failure leads with the reason (else Dagster's own error for a failed
        # blocking check: "1 blocking asset check failed"); nothing is left to retry.
        raise Failure(
            description=refusal_sentence(tenant, plan.ingestion["reason"]),
            metadata={"reason": plan.ingestion["reason"] or "", "tenant": tenant},
            allow_retries=False,
        )


def _policy(
    context, config: ApprovalConfig, warehouse: Warehouse, own: TenantSettings | None = None
) -> PublishPolicy:
    """`steps.publish_policy` with the approval this run's config carries (approval.py)."""
    return steps.publish_policy(
        warehouse,
        own,
        approved=config.approve_publish,
        approved_by=config.approved_by.strip()
        or f"{context.run.job_name} run {context.run.run_id[:8]}",
        approved_version=config.landing_version,
    )


def _run_info(context: AssetExecutionContext) -> RunInfo:
    record = context.instance.get_run_record_by_id(context.run.run_id)
    started = record.start_time if record and record.start_time else None
    started_at = datetime.fromtimestamp(started, UTC) if started else None
    return RunInfo(context.run.run_id, started_at, datetime.now(UTC))


def _materializations(context, plan: PublishPlan, path: str, changes: dict | None = None):
    """One materialization per replaced table; a table with a history also carries its rows
    `new`, `changed` and `gone` since the tenant's last publish (the UI plots them)."""
    changes = changes or {}
    for name, frame in plan.tables.items():
        if frame is None:
            context.log.warning(f"{name}: a rejected file kept the tenant's published rows")
            continue
        yield MaterializeResult(
            asset_key=name,
            metadata={
                "dagster/row_count": frame.height,
                "outcome": plan.outcome,
                "settings_version": plan.ingestion.get("settings_version") or 0,
                "warehouse": path,
                "preview": _markdown(frame),
                **changes.get(name, {}),
            },
        )
