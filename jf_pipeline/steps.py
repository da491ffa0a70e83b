"""The two steps of a tenant's ingestion, without Dagster: read and clean, then publish.

The assets (`assets.py`) are thin Dagster shells over these functions: they add the run's
tags, metadata and check results. `jf ingest` calls the same functions directly
(`ingest_tenant`), so a local ingestion starts without importing Dagster or making an
instance, an event log and a run (most of a small tenant's time, issue 17). Whatever a
tenant publishes, and what its customer reads in the import report, comes from here either
way; `test_ingest_paths.py` compares the two paths table by table.
"""

from __future__ import annotations

import random
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from jf_pipeline import tenants as tenant_store
from jf_pipeline.contract import DEALS, FILES, FileSpec
from jf_pipeline.core.checks import Verdict, clean_verdicts, contacts_verdict, guard_verdict
from jf_pipeline.core.cleaning import CleanTable, clean_table
from jf_pipeline.core.landing import LandingFile, ignored_file_problems
from jf_pipeline.core.plan import PublishPlan, PublishPolicy, RunInfo, plan_publish
from jf_pipeline.core.problems import concat_problems, file_problem
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
from jf_pipeline.resources import LandingStore, Warehouse
from jf_pipeline.warehouse import WarehouseBusy

READ_RETRIES = 3
"""Attempts after the first of a tenant's read-and-clean step when it raises: S3 throttling
and dropped connections, on top of botocore's own retries (the asset's RetryPolicy and
`jf ingest` both use these)."""
READ_RETRY_DELAY = 1.0
"""The retries' base delay in seconds: retry n waits (2^n - 1) times it, +/- up to it once
(Dagster's exponential backoff with PLUS_MINUS jitter): about 1, 3 and 7 s."""


def retry_delay(retry: int) -> float:
    """Seconds before retry number `retry` (1, 2, ...), as Dagster's RetryPolicy waits."""
    return (2**retry - 1) * READ_RETRY_DELAY + random.uniform(-1, 1) * READ_RETRY_DELAY


class Log(Protocol):
    """Where a step says what it did: Dagster's `context.log`, or `jf ingest`'s stderr."""

    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...


@dataclass
class RawFile:
    """A landing file as read: the string table, what was read, and the reading problems."""

    table: ReadTable
    source: LandingFile | None


@dataclass
class CleanFile:
    """What the read-and-clean step hands the publish step: the core's clean table and the
    landing file it was read from (the publish records which versions it published)."""

    table: CleanTable
    source: LandingFile | None

    @classmethod
    def of(cls, value) -> CleanFile:
        """Accept a clean table stored by an earlier version (a CleanTable carrying .source)."""
        if isinstance(value, cls):
            return value
        return cls(value, getattr(value, "source", None))


def read_raw(
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


def read_and_clean(
    landing: LandingStore,
    tenant: str,
    specs: list[FileSpec],
    own: TenantSettings,
    *,
    clean: Callable[[FileSpec], bool] = lambda spec: True,
    check: Callable[[FileSpec, RawFile], None] = lambda spec, raw: None,
    keep_raw: bool = True,
) -> list[tuple[RawFile | None, CleanFile | None]]:
    """Read and clean `specs`' files of one tenant, with the tenant's settings `own`.

    The files are processed at the same time, one thread each: the work is mostly polars
    and hashing, which release the GIL, so a large tenant's deals and contacts use all
    cores. `clean(spec)` False: read only. `check(spec, raw)` may raise to stop the step
    (the asset's check that it read what the sensor requested). `keep_raw` False: the
    string tables are let go as soon as each file is cleaned (None in their place), so a
    large file's read and clean tables are not all held until the publish."""

    def work(spec: FileSpec) -> tuple[RawFile | None, CleanFile | None]:
        raw = read_raw(landing, tenant, spec, own.mapping_for(spec.dataset))
        check(spec, raw)
        if not clean(spec):
            return raw, None
        deals = spec is DEALS
        cleaned = clean_table(
            raw.table,
            spec,
            day_order=own.day_order,
            stages=own.stages if deals else (),
            default_owner=own.default_owner if deals else None,
        )
        return raw if keep_raw else None, CleanFile(cleaned, raw.source)

    with ThreadPoolExecutor(max_workers=max(len(specs), 1)) as pool:
        return list(pool.map(work, specs))


def publish_policy(
    warehouse: Warehouse,
    own: TenantSettings | None,
    *,
    approved: bool = False,
    approved_by: str = "",
    approved_version: str = "",
) -> PublishPolicy:
    """The publish's policy: the deployment's, with the tenant's own settings over it, and
    the approval the run carries (approval.py)."""
    own = own or TenantSettings("-")
    return PublishPolicy(
        max_drop_share=warehouse.guard_max_drop_share
        if own.guard_max_drop is None
        else own.guard_max_drop,
        approved=approved,
        approved_by=approved_by,
        approved_version=approved_version.strip() or None,
        default_owner=own.default_owner,
        settings_version=own.settings_version or None,
    )


@dataclass
class Published:
    """What one publish did: the plan it carried out and the history's changes per table."""

    plan: PublishPlan
    changes: dict = field(default_factory=dict)


def publish(
    warehouse: Warehouse,
    tenant: str,
    files: dict[str, CleanFile],
    policy: PublishPolicy,
    run: Callable[[], RunInfo],
) -> Published:
    """Guard, then replace the tenant's rows in every published table in one transaction.
    `run()` is asked once the warehouse is held (its finish time is the publish's)."""
    with warehouse.writer() as writer:
        plan = plan_publish(
            tenant,
            {d: f.table for d, f in files.items()},
            sources={d: f.source for d, f in files.items()},
            state=writer.published_state(tenant),
            policy=policy,
            run=run(),
        )
        changes = writer.replace_tenant(tenant, plan.tables, plan.ingestion)
    return Published(plan, changes)


def write_customer_files(
    landing: LandingStore, tenant: str, own: TenantSettings, done: Published, log: Log
) -> None:
    """The import report and error files next to the customer's own files, unless the
    deployment (JF_IMPORT_REPORT) or the tenant's settings turn them off."""
    if not (landing.write_reports if own.import_report is None else own.import_report):
        return
    plan = done.plan
    report = (plan.report[0], with_changes(plan.report[1], done.changes.get("importable_deals")))
    _write_report(landing, tenant, report, plan.ingestion["finished_at"], log)
    _write_error_files(landing, tenant, plan.error_files, log)


def _write_error_files(landing: LandingStore, tenant: str, files: dict[str, bytes], log: Log):
    """The Data Loader style error files of the drop's files with rows to fix; the other
    error files (an earlier run's) are deleted (only our own ERROR_FILES names)."""
    try:
        for name, data in files.items():
            landing.write(tenant, name, data)
        for name in sorted(set(ERROR_FILES) - set(files)):
            landing.delete_report(tenant, name)
    except Exception as exc:  # noqa: BLE001 - as the report: never undoes a publish
        log.warning(f"could not write the error files of {tenant}: {exc}")


def _write_report(
    landing: LandingStore, tenant: str, report: tuple[bytes, bytes], when: datetime, log: Log
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
        log.info(f"import report for {tenant} written to {key} and {dated_csv}")
    except Exception as exc:  # noqa: BLE001 - any storage error must not undo a publish
        log.warning(f"could not write the import report for {tenant}: {exc}")
        return
    try:
        for name in reports_to_prune(landing.dated_reports(tenant), REPORT_HISTORY):
            landing.delete_report(tenant, name)
    except Exception as exc:  # noqa: BLE001 - e.g. no s3:DeleteObject: old copies stay
        log.warning(f"could not delete old import reports of {tenant}: {exc}")


def verdicts(files: dict[str, CleanFile], plan: PublishPlan) -> list[Verdict]:
    """Every check's verdict for this ingestion, in the order the Dagster run reports them:
    each file's checks, the contacts' references, the publish guard."""
    found = [v for d, f in files.items() for v in clean_verdicts(d, f.table.problems)]
    return [*found, contacts_verdict(plan.rejected_rows), guard_verdict(plan.guard)]


# --- a whole ingestion, as `jf ingest` runs it -----------------------------------------


@dataclass
class Ingested:
    """One tenant's ingestion by `ingest_tenant`."""

    run_id: str
    published: Published | None = None
    """None: it failed before a publish attempt was logged (see `error`)."""
    error: str | None = None
    """`<step>: <exception>` when a step raised."""
    failed_checks: list[Verdict] = field(default_factory=list)
    """The checks that failed, when the ingestion failed (the guard refused)."""
    busy: bool = False
    """The publish gave up waiting for another writer: nothing of it was written."""

    @property
    def success(self) -> bool:
        return (
            self.error is None and self.published is not None and self.published.plan.guard.passed
        )


def _one_line(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()


def ingest_tenant(
    landing: LandingStore,
    warehouse: Warehouse,
    tenant: str,
    log: Log,
    *,
    approved_by: str | None = None,
    approved_version: str = "",
    sleep: Callable[[float], None] = time.sleep,
) -> Ingested:
    """Read, clean and publish every file of one tenant, as the ingest job's run does
    (the same functions, retries and policy), without Dagster. `approved_by`: approve a
    drop the guard refused (`approved_version`, else the tenant's latest refused drop)."""
    run_id = str(uuid.uuid4())
    started = datetime.now(UTC)
    specs = list(FILES.values())
    for attempt in range(READ_RETRIES + 1):
        try:
            own = tenant_store.load(landing, tenant)
            results = read_and_clean(landing, tenant, specs, own, keep_raw=False)
            break
        except Exception as exc:  # noqa: BLE001 - as the asset's RetryPolicy: any error
            if attempt == READ_RETRIES:
                return Ingested(run_id, error=f"read_and_clean: {_one_line(exc)}")
            sleep(retry_delay(attempt + 1))
    files = {spec.dataset: cleaned for spec, (_, cleaned) in zip(specs, results, strict=True)}
    del results
    try:
        policy = publish_policy(
            warehouse,
            own,
            approved=approved_by is not None,
            approved_by=approved_by or "",
            approved_version=approved_version,
        )
        done = publish(
            warehouse, tenant, files, policy, lambda: RunInfo(run_id, started, datetime.now(UTC))
        )
    except Exception as exc:  # noqa: BLE001 - reported per tenant; the others go on
        return Ingested(
            run_id, error=f"publish_tenant: {_one_line(exc)}", busy=isinstance(exc, WarehouseBusy)
        )
    write_customer_files(landing, tenant, own, done, log)
    if done.plan.approval_note:
        log.warning(f"{tenant}: {done.plan.approval_note}")
    result = Ingested(run_id, done)
    if not result.success:
        result.failed_checks = [v for v in verdicts(files, done.plan) if not v.passed]
    return result
