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
    RetryPolicy,
    TableColumn,
    TableSchema,
    multi_asset,
)

from jf_pipeline import tenants as tenant_store
from jf_pipeline.approval import ApprovalConfig
from jf_pipeline.checks import (
    CONTACTS_CHECK_SPEC,
    PUBLISH_GUARD_SPEC,
    clean_check_results,
    clean_check_specs,
    contacts_check_result,
    guard_check_result,
    refusal_sentence,
)
from jf_pipeline.contract import DEALS, FILES, WAREHOUSE_TABLES, FileSpec, Table
from jf_pipeline.core.cleaning import CleanTable, clean_table
from jf_pipeline.core.landing import (
    LandingFile,
    file_token,
    ignored_file_problems,
    requested_token,
)
from jf_pipeline.core.plan import PublishPlan, PublishPolicy, RunInfo, plan_publish
from jf_pipeline.core.problems import concat_problems, count_by_severity, file_problem
from jf_pipeline.core.reading import ReadTable, empty_table, read_table
from jf_pipeline.core.report import (
    ERROR_FILES,
    REPORT_CSV,
    REPORT_HISTORY,
    REPORT_SUMMARY,
    dated_report_names,
    reports_to_prune,
    with_changes,
)
from jf_pipeline.core.tenant_settings import TenantSettings
from jf_pipeline.keys import clean_key, clean_name, raw_key, raw_name
from jf_pipeline.partitions import tenants
from jf_pipeline.resources import LandingStore, Warehouse

OUTCOME_TAG = "jf/outcome"
"""Run tag set once a publish attempt is logged in `ingestions` (sensors.py reads it)."""
WAREHOUSE_POOL = "duckdb_warehouse"
"""Concurrency pool of every DuckDB writer; the instance config limits it to 1."""

LANDING_RETRY = RetryPolicy(
    max_retries=3, delay=1.0, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)
"""S3 throttling and dropped connections: retried after about 1, 2 and 4 s, on top of
botocore's own retries; after that the tenant's run fails and the other tenants go on."""

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


@dataclass
class CleanFile:
    """What a `clean_*` asset hands the publish step: the core's clean table and the landing
    file it was read from (the publish records which versions it published)."""

    table: CleanTable
    source: LandingFile | None

    @classmethod
    def of(cls, value) -> "CleanFile":
        """Accept a clean table stored by an earlier version (a CleanTable carrying .source)."""
        if isinstance(value, cls):
            return value
        return cls(value, getattr(value, "source", None))


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


def _read_raw(
    landing: LandingStore, tenant: str, spec: FileSpec, mapping: dict[str, str] | None = None
) -> RawFile:
    """One landing file as read; an absent file is an empty table (deals: rejected).
    A refused file (a link, a pipe, too large, still changing) is rejected as a whole;
    look-alike names (`Deals.csv`) become `ignored_file` warnings."""
    obj = landing.read(tenant, spec.file_name)
    source = obj.file if obj is not None else None
    notices = ignored_file_problems(spec.file_name, source.ignored if source else ())
    if obj is not None and obj.problem is not None:
        reason, message = obj.problem
        problems = concat_problems([file_problem(spec.file_name, reason, message), notices])
        return RawFile(ReadTable(frame=empty_table(spec), rejected=True, problems=problems), source)
    if obj is not None and obj.data is not None:
        table = read_table(obj.data, spec, max_bytes=landing.max_file_bytes, mapping=mapping)
        return RawFile(replace(table, problems=concat_problems([table.problems, notices])), source)
    if spec is DEALS:
        problems = file_problem(
            spec.file_name,
            "file_missing",
            f"{spec.file_name} is missing from the landing folder; no deal can be "
            "imported, and the previously published deals are kept",
        )
        problems = concat_problems([problems, notices])
        return RawFile(ReadTable(frame=empty_table(spec), rejected=True, problems=problems), source)
    table = ReadTable(frame=empty_table(spec), problems=notices, rejected=False)
    return RawFile(table, source)


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
def read_and_clean(context: AssetExecutionContext, landing: LandingStore):
    """Read and clean one tenant's landing files (the sensor selects the changed ones).

    The files are processed at the same time, one thread each: the work is mostly polars
    and hashing, which release the GIL, so a large tenant's deals and contacts use all
    cores. A selected `clean_*` without its `raw_*` cleans the landing file as it is now.
    """
    tenant = context.partition_key
    selected = context.selected_asset_keys
    specs = [s for s in FILES.values() if {raw_key(s.dataset), clean_key(s.dataset)} & selected]
    own = tenant_store.load(landing, tenant)  # the tenant's settings (jf tenant set)

    def work(spec: FileSpec) -> tuple[RawFile, CleanFile | None]:
        raw = _read_raw(landing, tenant, spec, own.mapping_for(spec.dataset))
        _check_requested(context, spec, raw)
        if clean_key(spec.dataset) not in selected:
            return raw, None
        deals = spec is DEALS
        cleaned = clean_table(
            raw.table,
            spec,
            day_order=own.day_order,
            stages=own.stages if deals else (),
            default_owner=own.default_owner if deals else None,
        )
        return raw, CleanFile(cleaned, raw.source)

    with ThreadPoolExecutor(max_workers=max(len(specs), 1)) as pool:
        results = list(pool.map(work, specs))
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


def _write_error_files(context, landing: LandingStore, tenant: str, files: dict[str, bytes]):
    """The Data Loader style error files of the drop's files with rows to fix; the other
    error files (an earlier run's) are deleted (only our own ERROR_FILES names)."""
    try:
        for name, data in files.items():
            landing.write(tenant, name, data)
        for name in sorted(set(ERROR_FILES) - set(files)):
            landing.delete_report(tenant, name)
    except Exception as exc:  # noqa: BLE001 - as the report: never undoes a publish
        context.log.warning(f"could not write the error files of {tenant}: {exc}")


def _write_report(
    context, landing: LandingStore, tenant: str, report: tuple[bytes, bytes], when: datetime
):
    """The customer's admin finds why rows were rejected next to their own files: the
    latest report under fixed names, plus dated copies of the last REPORT_HISTORY runs'
    (older dated copies are deleted). A failure here (e.g. no write permission on the
    bucket) is logged, never fails the publish."""
    try:
        key = landing.write(tenant, REPORT_CSV, report[0])
        landing.write(tenant, REPORT_SUMMARY, report[1])
        dated_csv, dated_summary = dated_report_names(when)
        landing.write(tenant, dated_csv, report[0])
        landing.write(tenant, dated_summary, report[1])
        context.log.info(f"import report for {tenant} written to {key} and {dated_csv}")
    except Exception as exc:  # noqa: BLE001 - any storage error must not undo a publish
        context.log.warning(f"could not write the import report for {tenant}: {exc}")
        return
    try:
        for name in reports_to_prune(landing.dated_reports(tenant), REPORT_HISTORY):
            landing.delete_report(tenant, name)
    except Exception as exc:  # noqa: BLE001 - e.g. no s3:DeleteObject: old copies stay
        context.log.warning(f"could not delete old import reports of {tenant}: {exc}")


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
    warehouse: Warehouse,
    landing: LandingStore,
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
    with warehouse.writer() as writer:
        plan = plan_publish(
            tenant,
            {d: f.table for d, f in files.items()},
            sources={d: f.source for d, f in files.items()},
            state=writer.published_state(tenant),
            policy=_policy(context, config, warehouse, own),
            run=_run_info(context),
        )
        changes = writer.replace_tenant(tenant, plan.tables, plan.ingestion)
    # The attempt is logged: the landing sensor must not re-request this drop (sensors.py).
    context.instance.add_run_tags(context.run.run_id, {OUTCOME_TAG: plan.outcome})
    if landing.write_reports if own.import_report is None else own.import_report:
        report = (plan.report[0], with_changes(plan.report[1], changes.get("importable_deals")))
        _write_report(context, landing, tenant, report, plan.ingestion["finished_at"])
        _write_error_files(context, landing, tenant, plan.error_files)
    if plan.approval_note:
        context.log.warning(f"{tenant}: {plan.approval_note}")
    yield from _materializations(context, plan, warehouse.path, changes)
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
    """The publish's policy: the deployment's, with the tenant's own settings over it, and
    the approval the run's config carries (approval.py)."""
    own = own or TenantSettings("-")
    return PublishPolicy(
        max_drop_share=warehouse.guard_max_drop_share
        if own.guard_max_drop is None
        else own.guard_max_drop,
        approved=config.approve_publish,
        approved_by=config.approved_by.strip()
        or f"{context.run.job_name} run {context.run.run_id[:8]}",
        approved_version=config.landing_version.strip() or None,
        default_owner=own.default_owner,
        settings_version=own.settings_version or None,
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
