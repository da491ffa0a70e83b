"""Per-tenant assets: raw files -> clean tables -> the published DuckDB tables.

Thin shell over `jf_pipeline.core`: read from the landing store, call the core, write
to the warehouse, report metadata for the Dagster UI.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import polars as pl
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetSpec,
    Backoff,
    Jitter,
    MaterializeResult,
    MetadataValue,
    Output,
    RetryPolicy,
    TableColumn,
    TableSchema,
    multi_asset,
)

from jf_pipeline.checks import (
    CONTACTS_CHECK_SPEC,
    clean_check_results,
    clean_check_specs,
    contacts_check_result,
)
from jf_pipeline.contract import DEALS, FILES, WAREHOUSE_TABLES, FileSpec
from jf_pipeline.core.cleaning import CleanTable, clean_table
from jf_pipeline.core.guard import APPROVE_TAG, publish_guard
from jf_pipeline.core.landing import LandingFile, file_versions
from jf_pipeline.core.problems import count_by_severity, empty_problems, file_problem
from jf_pipeline.core.publication import publication
from jf_pipeline.core.reading import ReadTable, empty_table, read_table
from jf_pipeline.core.report import REPORT_CSV, REPORT_SUMMARY, import_report
from jf_pipeline.partitions import tenants
from jf_pipeline.resources import LandingStore, Warehouse

WAREHOUSE_POOL = "duckdb_warehouse"
"""Concurrency pool of every DuckDB writer; the instance config limits it to 1."""

LANDING_RETRY = RetryPolicy(
    max_retries=3, delay=1.0, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)
"""S3 throttling and dropped connections: retried after about 1, 2 and 4 s, on top of
botocore's own retries; after that the tenant's run fails and the other tenants go on."""

PUBLISH_GUARD = "publish_guard"
REFUSED_COUNTS = ("deals_published", "accounts_published", "contacts_published")
"""Nothing of these was published when the guard refused; the counts stay empty."""
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


@dataclass
class RawFile:
    """A landing file as read: the string table, what was read, and the reading problems."""

    table: ReadTable
    source: LandingFile | None


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


def _schema(frame: pl.DataFrame) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()]
    )


def _by_reason(problems: pl.DataFrame) -> dict[str, int]:
    return dict(sorted(problems.group_by("reason").len().iter_rows()))


def _read_raw(landing: LandingStore, tenant: str, spec: FileSpec) -> RawFile:
    """One landing file as read; an absent file is an empty table (deals: rejected)."""
    obj = landing.read(tenant, spec.file_name)
    if obj is not None:
        return RawFile(read_table(obj.data, spec), obj.file)
    if spec is DEALS:
        problems = file_problem(
            spec.file_name,
            "file_missing",
            f"{spec.file_name} is missing from the landing folder; no deal can be "
            "imported, and the previously published deals are kept",
        )
        return RawFile(ReadTable(frame=empty_table(spec), rejected=True, problems=problems), None)
    table = ReadTable(frame=empty_table(spec), problems=empty_problems(), rejected=False)
    return RawFile(table, None)


def _raw_metadata(raw: RawFile) -> dict:
    table, source = raw.table, raw.source
    metadata = {
        "present": source is not None,
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


def _clean_metadata(cleaned: CleanTable) -> dict:
    severity = count_by_severity(cleaned.problems)
    return {
        "dagster/row_count": cleaned.rows.height,
        "rejected": cleaned.rejected,
        "errors": severity["error"],
        "warnings": severity["warning"],
        "problems_by_reason": MetadataValue.json(_by_reason(cleaned.problems)),
        "dagster/column_schema": _schema(cleaned.rows),
        "preview": _markdown(cleaned.rows),
    }


def _raw_key(spec: FileSpec) -> AssetKey:
    return AssetKey(f"raw_{spec.dataset}")


def _clean_key(spec: FileSpec) -> AssetKey:
    return AssetKey(f"clean_{spec.dataset}")


@multi_asset(
    name="read_and_clean",
    outs={
        **{
            f"raw_{spec.dataset}": AssetOut(
                group_name=RAW_GROUP,
                kinds={"csv", "polars"},
                owners=OWNERS,
                description=_RAW_DESCRIPTIONS[spec.dataset],
                is_required=False,
            )
            for spec in FILES.values()
        },
        **{
            f"clean_{spec.dataset}": AssetOut(
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
        **{f"raw_{spec.dataset}": set() for spec in FILES.values()},
        **{f"clean_{spec.dataset}": {_raw_key(spec)} for spec in FILES.values()},
    },
    check_specs=[check for spec in FILES.values() for check in clean_check_specs(spec.dataset)],
    partitions_def=tenants,
    can_subset=True,
    retry_policy=LANDING_RETRY,
)
def read_and_clean(context: AssetExecutionContext, landing: LandingStore):
    """Read and clean one tenant's landing files (the sensor selects the changed ones).

    The files are processed at the same time, one thread each: the work is mostly polars
    and hashing, which release the GIL, so a large tenant's deals and contacts use all
    cores. A selected `clean_*` without its `raw_*` cleans the landing file as it is now.
    """
    tenant = context.partition_key
    selected = context.selected_asset_keys
    specs = [s for s in FILES.values() if {_raw_key(s), _clean_key(s)} & selected]

    def work(spec: FileSpec) -> tuple[RawFile, CleanTable | None]:
        raw = _read_raw(landing, tenant, spec)
        if _clean_key(spec) not in selected:
            return raw, None
        return raw, replace(clean_table(raw.table, spec), source=raw.source)

    with ThreadPoolExecutor(max_workers=max(len(specs), 1)) as pool:
        results = list(pool.map(work, specs))
    checks = context.selected_asset_check_keys
    for spec, (raw, cleaned) in zip(specs, results, strict=True):
        if _raw_key(spec) in selected:
            if raw.source is None:
                context.log.info(f"{spec.file_name} is absent for tenant {tenant}: empty frame")
            yield Output(raw, output_name=f"raw_{spec.dataset}", metadata=_raw_metadata(raw))
        if cleaned is not None:
            yield Output(
                cleaned, output_name=f"clean_{spec.dataset}", metadata=_clean_metadata(cleaned)
            )
            for result in clean_check_results(spec.dataset, cleaned.problems):
                if AssetCheckKey(result.asset_key, result.check_name) in checks:
                    yield result


file_assets = [read_and_clean]

_PUBLISHED = {
    "importable_deals": (
        ["clean_deals", "clean_accounts", "clean_users"],
        "The deals Jointflows users browse and turn into customer projects: every valid deal "
        "with its account filled in (deal-row data first, then accounts.csv).",
    ),
    "accounts": (
        ["clean_accounts", "clean_deals"],
        "The tenant's accounts: accounts.csv merged with the account data inline in deals.csv, "
        "deal data taking precedence field by field.",
    ),
    "importable_contacts": (
        ["clean_contacts", "clean_accounts", "clean_deals"],
        "The tenant's contacts, for each project's digital sales room. Contacts with unknown "
        "accounts or managers are kept and reported.",
    ),
    "rejected_rows": (
        ["clean_deals", "clean_accounts", "clean_contacts", "clean_users"],
        "Every row that was left out and every value that was changed or doubted, with a "
        "stable reason code and a message for the customer's admin.",
    ),
}


def _write_report(
    context, landing: LandingStore, tenant: str, rejected, outcome: str, counts: dict
) -> None:
    """The customer's admin finds why rows were rejected next to their own files. A failure
    here (e.g. no write permission on the bucket) is logged, never fails the publish."""
    report, summary = import_report(tenant, rejected, outcome, counts)
    try:
        key = landing.write(tenant, REPORT_CSV, report)
        landing.write(tenant, REPORT_SUMMARY, summary)
        context.log.info(f"import report for {tenant} written to {key}")
    except Exception as exc:  # noqa: BLE001 - any storage error must not undo a publish
        context.log.warning(f"could not write the import report for {tenant}: {exc}")


def _table_schema(table: str) -> TableSchema:
    return TableSchema(columns=[TableColumn(c, t) for c, t in WAREHOUSE_TABLES[table][1]])


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
                "dagster/column_schema": _table_schema(name),
                "dagster/table_name": f"main.{name}",
            },
        )
        for name, (deps, description) in _PUBLISHED.items()
    ],
    ins={f"clean_{d}": AssetIn(f"clean_{d}") for d in FILES},
    partitions_def=tenants,
    check_specs=[
        AssetCheckSpec(
            PUBLISH_GUARD,
            asset="importable_deals",
            blocking=True,
            description="Refuses to replace a tenant's deals when a file was rejected as a "
            "whole or the valid deal count falls by more than the allowed share.",
        ),
        CONTACTS_CHECK_SPEC,
    ],
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def publish_tenant(
    context: AssetExecutionContext,
    warehouse: Warehouse,
    landing: LandingStore,
    clean_deals: CleanTable,
    clean_accounts: CleanTable,
    clean_contacts: CleanTable,
    clean_users: CleanTable,
):
    """Guard, then replace the tenant's rows in every published table in one transaction."""
    tenant = context.partition_key
    approved = context.run.tags.get(APPROVE_TAG, "").lower() == "true"
    sources = {
        "deals": clean_deals.source,
        "accounts": clean_accounts.source,
        "contacts": clean_contacts.source,
    }
    versions = {d: f.version if f else None for d, f in sources.items()}
    run_record = context.instance.get_run_record_by_id(context.run.run_id)
    started = run_record.start_time if run_record else None
    started_at = datetime.fromtimestamp(started, UTC) if started else None
    with warehouse.writer() as writer:
        result = publication(
            clean_deals,
            clean_accounts,
            clean_contacts,
            lambda: writer.published_account_ids(tenant),
            users=clean_users,
            default_owner=None,  # per-tenant settings (onboarding issue) are not built yet
        )
        new_deals = None if result.importable_deals is None else result.importable_deals.height
        guard = publish_guard(
            new_deals,
            writer.published_deal_count(tenant),
            result.rejected_rows,
            approved=approved,
            max_drop_share=warehouse.guard_max_drop_share,
        )
        # A refused publish still replaces rejected_rows, so the admin sees why.
        tables = result.tables() if guard.passed else {"rejected_rows": result.rejected_rows}
        outcome = result.outcome if guard.passed else "refused"
        writer.replace_tenant(
            tenant,
            tables,
            {
                "run_id": context.run.run_id,
                "started_at": started_at,
                "finished_at": datetime.now(UTC),
                "outcome": outcome,
                "landing_version": file_versions(
                    {
                        f"{d}.csv": f
                        for d, f in {**sources, "users": clean_users.source}.items()
                        if f
                    }
                ),
                **{f"{d}_version": v for d, v in versions.items()},
                **{f"{d}_key": f.key if f else None for d, f in sources.items()},
                **{f"{d}_size": f.size if f else None for d, f in sources.items()},
                **result.counts(),
                **({} if guard.passed else dict.fromkeys(REFUSED_COUNTS)),
            },
        )
    counts = {**result.counts(), **({} if guard.passed else dict.fromkeys(REFUSED_COUNTS))}
    if landing.write_reports:
        _write_report(context, landing, tenant, result.rejected_rows, outcome, counts)
    for name, frame in tables.items():
        if frame is None:
            context.log.warning(f"{name}: a rejected file kept tenant {tenant}'s published rows")
            continue
        yield MaterializeResult(
            asset_key=name,
            metadata={
                "dagster/row_count": frame.height,
                "outcome": outcome,
                "warehouse": warehouse.path,
                "preview": _markdown(frame),
            },
        )
    yield contacts_check_result(result.rejected_rows)
    yield AssetCheckResult(
        check_name=PUBLISH_GUARD,
        asset_key="importable_deals",
        passed=guard.passed,
        severity=AssetCheckSeverity.ERROR,
        description=guard.summary,
        metadata={
            "published_deals": guard.published_deals,
            "new_deals": -1 if guard.new_deals is None else guard.new_deals,
            "reasons": MetadataValue.json(guard.reasons),
            "approved_by_tag": guard.approved,
            "how_to_approve": f"re-run tenant {tenant} with run tag {APPROVE_TAG}=true "
            f"(Dagster UI: Materialize > add tag; CLI: jf ingest --tenant {tenant} --approve)",
        },
    )
