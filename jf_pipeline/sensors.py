"""The landing sensor: new tenant folders become partitions, changed files become runs.

Each tick lists the landing zone once and fingerprints every tenant's three contract files
by S3 ETag or local content hash (a local file is re-hashed only when its size, times or
inode changed; other files in a tenant folder are never read), so an overwrite with the same size in the same second is
a change and a re-upload of identical bytes is not. A changed drop is requested once it has
settled (no change for the `SensorPolicy`'s settle time, `JF_SETTLE_SECONDS`), as one run that selects only the assets
downstream of the files that changed. The cursor keeps one short fingerprint per tenant.
"""

import json
import time
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterRunStatus,
    DefaultSensorStatus,
    PartitionedConfig,
    RunFailureSensorContext,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    in_process_executor,
    run_failure_sensor,
    sensor,
)
from dagster._core.storage.tags import WILL_RETRY_TAG

from jf_pipeline import tenants as tenant_store
from jf_pipeline import warehouse as wh
from jf_pipeline.approval import APPROVE_JOB, approval_run_config
from jf_pipeline.assets import OUTCOME_TAG
from jf_pipeline.contract import FILE_NAMES, is_valid_tenant_id
from jf_pipeline.core.landing import TenantCursor, plan_tenant, survey
from jf_pipeline.core.tenant_settings import PAUSED, REMOVED
from jf_pipeline.keys import PUBLISHED_KEYS, clean_key, raw_key
from jf_pipeline.partitions import tenants
from jf_pipeline.resources import LandingStore, SensorPolicy, Warehouse

# Every run of a tenant carries this tag; deployments limit runs per tenant with it.
TENANT_TAG = "jf/tenant"
FILES_TAG = "jf/files"
"""The fingerprint of the drop a run was requested for."""
ATTEMPT_TAG = "jf/attempt"
"""How many times the landing sensor re-requested this drop after a failed run."""
MAX_REREQUESTS = 3
RUN_LOOKBACK_SECONDS = 2 * 86_400
RUN_LOOKBACK_LIMIT = 5_000

ingest_tenant = define_asset_job(
    "ingest_tenant",
    selection=AssetSelection.all(),
    partitions_def=tenants,
    executor_def=in_process_executor,
    description="Read, clean and publish one tenant's landing files.",
)


def _approval_tags(tenant: str) -> dict[str, str]:
    return {TENANT_TAG: tenant}


approve_tenant = define_asset_job(
    APPROVE_JOB,
    selection=AssetSelection.all(),
    config=PartitionedConfig(
        partitions_def=tenants,
        run_config_for_partition_key_fn=lambda _: approval_run_config("", None),
        tags_for_partition_key_fn=_approval_tags,
    ),
    executor_def=in_process_executor,
    description="Publish one tenant's drop that the publish guard refused, once an engineer "
    "knows it is real: pick the tenant's partition and launch (approve_publish: true). Only "
    "the refused drop is approved (or the one landing_version names): if the files changed "
    "since, the guard judges them as usual. The same as `jf approve TENANT`; recorded in "
    "ingestions (approved, approved_by, approved_at, approved_version).",
)


MAX_TICK_DETAILS = 10
"""A tick's explanation names at most this many settling tenants and skipped folders."""


def settled_seconds(state: TenantCursor, files: dict, now: float) -> float:
    """How long a pending drop has stayed unchanged: since the sensor first saw it, or since
    its newest file's modification, whichever is longer (what `plan_tenant` compares with
    the settle time)."""
    since = now - state.pending_since if state.pending_since is not None else 0.0
    newest = max((f.modified.timestamp() for f in files.values() if f.modified), default=None)
    return max(since, 0.0 if newest is None else now - newest, 0.0)


def explain_tick(
    requested: list[str],
    settling: dict[str, float],
    unchanged: int,
    skipped: dict[str, str],
    settle_seconds: float,
    retried: int = 0,
) -> list[str]:
    """The sentences a tick logs (and, when it requests nothing, its skip reason): which
    tenants got a run, which are settling and for how long, how many are unchanged, and
    which folders were skipped and why. Folder names are shown with repr (escaped)."""

    def capped(items: list[str], what: str) -> list[str]:
        extra = len(items) - MAX_TICK_DETAILS
        return items[:MAX_TICK_DETAILS] + ([f"... and {extra} more {what}"] if extra > 0 else [])

    lines = []
    if requested:
        lines.append(f"requested a run for {len(requested)} tenant(s): {', '.join(requested)}")
    if retried:
        lines.append(f"re-requested {retried} failed drop(s)")
    lines += capped(
        [
            f"{tenant}: settling {int(quiet)}/{settle_seconds:g} s"
            for tenant, quiet in sorted(settling.items())
        ],
        "settling",
    )
    if unchanged:
        lines.append(f"{unchanged} tenant{'' if unchanged == 1 else 's'} unchanged")
    lines += capped(
        [f"skipped folder {name!r}: {why}" for name, why in sorted(skipped.items())],
        "skipped folders",
    )
    return lines or ["no tenant folders in the landing zone"]


def run_key(tenant: str, fingerprint: str, requests: int) -> str:
    """Same drop on a repeated tick -> same key (no duplicate run). `requests` counts the
    tenant's requested runs (the cursor keeps it), so a drop that returns to an earlier
    version (A, B, A, B) still gets a new key every time it changes."""
    return f"{tenant}:{fingerprint}:{requests}"


def assets_for(datasets: set[str]) -> list[AssetKey]:
    """The raw and clean assets of the changed files, and the published tables after them."""
    keys = [key(d) for d in sorted(datasets) for key in (raw_key, clean_key)]
    return keys + PUBLISHED_KEYS


def rerequest_failed_drops(
    context: SensorEvaluationContext,
    cursor: dict[str, TenantCursor],
    now: float,
    busy: set[str],
    backoff_seconds: float,
) -> list[RunRequest]:
    """Run requests for tenants whose latest drop never published.

    A run whose worker died while reading (or whose reads kept failing) leaves the tenant
    stale, and the cursor already holds the drop's fingerprint, so the change detection
    alone would never ask again. When a tenant's latest run failed for the drop the cursor
    holds, logged no publish attempt (a refusal is final until approved) and Dagster will not
    retry it, the drop is requested again with a new run key after a backoff (1, 2, 4 x
    `backoff_seconds`), at most MAX_REREQUESTS times.
    """
    since = datetime.fromtimestamp(now - RUN_LOOKBACK_SECONDS, UTC)
    records = context.instance.get_run_records(
        RunsFilter(job_name=ingest_tenant.name, created_after=since), limit=RUN_LOOKBACK_LIMIT
    )
    latest = {}
    for record in records:  # newest first
        tenant = record.dagster_run.tags.get(TENANT_TAG)
        if tenant and tenant not in latest:
            latest[tenant] = record
    requests = []
    for tenant, record in sorted(latest.items()):
        run, state = record.dagster_run, cursor.get(tenant)
        if (
            state is None
            or tenant in busy
            or run.status != DagsterRunStatus.FAILURE
            or run.tags.get(FILES_TAG) != state.requested
            or OUTCOME_TAG in run.tags
            or run.tags.get(WILL_RETRY_TAG) == "true"
        ):
            continue
        attempt = int(run.tags.get(ATTEMPT_TAG, "0") or 0)
        ended = record.end_time or record.update_timestamp.timestamp()
        if attempt >= MAX_REREQUESTS or now < ended + backoff_seconds * 2**attempt:
            continue
        context.log.info(
            f"re-requesting tenant {tenant}: its run {run.run_id} failed before publishing "
            f"(attempt {attempt + 1} of {MAX_REREQUESTS})"
        )
        requests.append(
            RunRequest(
                partition_key=tenant,
                run_key=f"{tenant}:{state.requested}:retry-{attempt + 1}:{run.run_id[:8]}",
                asset_selection=assets_for({spec.dataset for spec in FILE_NAMES.values()}),
                tags={
                    TENANT_TAG: tenant,
                    FILES_TAG: state.requested or "",
                    "jf/changed": run.tags.get("jf/changed", ""),
                    ATTEMPT_TAG: str(attempt + 1),
                },
            )
        )
    return requests


def record_failed_run(context: RunFailureSensorContext, warehouse: Warehouse) -> None:
    """The record_failed_runs sensor's tick (see `build_sensors`)."""
    run = context.dagster_run
    tenant = run.tags.get(TENANT_TAG) or run.tags.get("dagster/partition")
    if not tenant or not is_valid_tenant_id(tenant) or OUTCOME_TAG in run.tags:
        return
    message = (context.failure_event.message or "the run failed").strip().splitlines()[0]
    record = context.instance.get_run_record_by_id(run.run_id)
    started = record.start_time if record and record.start_time else None
    started_at = datetime.fromtimestamp(started, UTC) if started else None
    if wh.record_failure(
        warehouse.path, tenant, run.run_id, run.tags.get(FILES_TAG), message, started_at
    ):
        context.log.info(f"recorded failed run {run.run_id} of tenant {tenant}")


def landing_tick(
    context: SensorEvaluationContext, landing: LandingStore, sensor_policy: SensorPolicy
) -> SensorResult:
    """The landing sensor's tick (see `build_sensors`)."""
    settle = sensor_policy.settle_seconds
    found = survey(landing.list_files())
    skipped = {name: "invalid tenant id" for name in found.invalid_tenants}
    skipped.update(found.refused_tenants)
    # The tenants' own settings (jf tenant set): those that change what is published are
    # part of each fingerprint; a paused or removed tenant's uploads are not ingested.
    tenant_settings, broken = tenant_store.load_all(landing)
    for tenant, why in broken.items():
        skipped[tenant] = f"its settings cannot be read: {why}"
        found.tenants.pop(tenant, None)
    for tenant, settings_ in tenant_settings.items():
        if settings_.status in (PAUSED, REMOVED) and tenant in found.tenants:
            skipped[tenant] = f"tenant {settings_.status} (jf tenant show {tenant})"
            found.tenants.pop(tenant)
    for name, why in skipped.items():
        context.log.warning(f"skipped landing folder {name!r}: {why}")
    settling: dict[str, float] = {}
    unchanged = 0
    previous = {t: TenantCursor.from_json(v) for t, v in json.loads(context.cursor or "{}").items()}
    known = set(context.instance.get_dynamic_partitions(tenants.name))
    new_tenants = sorted(set(found.tenants) - known)
    now = time.time()

    never_cleaned: dict[str, set[str]] | None = None
    cursor: dict[str, TenantCursor] = {}
    requests = []
    for tenant in skipped:  # paused: the cursor keeps what was last requested
        if tenant in previous:
            cursor[tenant] = previous[tenant]
    for tenant, files in sorted(found.tenants.items()):
        if not files and tenant not in previous:
            continue  # a folder with nothing we own
        token = tenant_settings[tenant].token if tenant in tenant_settings else None
        state, changed = plan_tenant(
            previous.get(tenant, TenantCursor()), files, now, settle, token
        )
        cursor[tenant] = state
        if changed is None:
            if state.pending is not None:
                settling[tenant] = settled_seconds(state, files, now)
            else:
                unchanged += 1
            continue
        if never_cleaned is None:  # a clean asset never built for a tenant must be built now
            never_cleaned = {
                spec.dataset: known
                - context.instance.get_materialized_partitions(clean_key(spec.dataset))
                for spec in FILE_NAMES.values()
            }
        datasets = {FILE_NAMES[name].dataset for name in changed}
        datasets |= {
            d for d, missing in never_cleaned.items() if tenant in missing or tenant not in known
        }
        requests.append(
            RunRequest(
                partition_key=tenant,
                run_key=run_key(tenant, state.requested, state.requests),
                asset_selection=assets_for(datasets),
                tags={
                    TENANT_TAG: tenant,
                    FILES_TAG: state.requested,
                    "jf/changed": ",".join(changed),
                },
            )
        )
    busy = {r.partition_key for r in requests}
    retried = rerequest_failed_drops(
        context, cursor, now, busy | set(skipped), sensor_policy.rerequest_backoff_seconds
    )
    requests += retried
    explanation = explain_tick(sorted(busy), settling, unchanged, skipped, settle, len(retried))
    for line in explanation:
        context.log.info(line)
    return SensorResult(
        run_requests=requests,
        skip_reason=None if requests else "; ".join(explanation),
        dynamic_partitions_requests=[tenants.build_add_request(new_tenants)] if new_tenants else [],
        cursor=json.dumps({t: s.to_json() for t, s in cursor.items()}, separators=(",", ":")),
    )


def build_sensors(interval_seconds: int) -> list[SensorDefinition]:
    """The code location's two sensors, ticking at most every `interval_seconds`
    (`JF_SENSOR_INTERVAL`, read by the definitions' wiring, not here): the landing sensor,
    whose settle time and backoff come from its `sensor_policy` resource, and the recorder
    of failed runs."""
    landing = sensor(
        name="landing_sensor",
        job=ingest_tenant,
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval_seconds,
        description="Watches the landing zone; requests one ingest_tenant run per tenant whose "
        "deals/accounts/contacts files were added, overwritten or deleted, once they settle.",
    )(landing_tick)
    failures = run_failure_sensor(
        name="record_failed_runs",
        monitored_jobs=[ingest_tenant, approve_tenant],
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval_seconds,
        description="Logs an ingest_tenant or approve_tenant run that failed before publishing (worker killed, "
        "landing reads failing) as outcome `failed` in the ingestions table, so `jf status` "
        "and tenant_freshness never call the tenant's latest drop published.",
    )(record_failed_run)
    return [landing, failures]
