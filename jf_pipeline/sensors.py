"""The landing sensor: new tenant folders become partitions, changed files become runs.

Each tick lists the landing zone once and fingerprints every tenant's three contract files
by S3 ETag or local content hash (a local file is re-hashed only when its size, times or
inode changed; other files in a tenant folder are never read), so an overwrite with the same size in the same second is
a change and a re-upload of identical bytes is not. A changed drop is requested once it has
settled (no change for the `SensorPolicy`'s settle time, `JF_SETTLE_SECONDS`), as one run that selects only the assets
downstream of the files that changed. Each tenant's fingerprint, request count and settle
timer is a row in the instance's key-value table (`landing_state.py`); the cursor keeps a
generation number. With `JF_EVENTS` (issue 18), ticks between full listings drain the
queue of the bucket's S3 event notifications instead of listing (`event_tick`).
"""

import time
from dataclasses import replace
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterRunStatus,
    DefaultSensorStatus,
    PartitionedConfig,
    ResourceParam,
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
from jf_pipeline.assets import OUTCOME_TAG, WAREHOUSE_POOL
from jf_pipeline.contract import FILE_NAMES, is_valid_tenant_id
from jf_pipeline.core.events import (
    TenantState,
    apply_events,
    listed_state,
    parse_message,
    plan_fingerprint,
)
from jf_pipeline.core.landing import TenantCursor, file_versions, plan_tenant, survey
from jf_pipeline.core.tenant_settings import PAUSED, REMOVED, fingerprint, split_fingerprint
from jf_pipeline.events import EventQueue
from jf_pipeline.keys import PUBLISHED_KEYS, clean_key, raw_key
from jf_pipeline.landing_state import LandingState, make_cursor, namespace_of, parse_cursor
from jf_pipeline.partitions import tenants
from jf_pipeline.resources import LandingStore, S3LandingStore, SensorPolicy, Warehouse

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


def drop_request(tenant: str, state: TenantCursor, changed, datasets: set[str]) -> RunRequest:
    """The run request for a tenant's settled drop, the same from a listing tick and an
    event tick: its run key counts the tenant's requests, so a re-delivered event or a
    repeated tick never makes a second run."""
    return RunRequest(
        partition_key=tenant,
        run_key=run_key(tenant, state.requested, state.requests),
        asset_selection=assets_for(datasets),
        tags={
            TENANT_TAG: tenant,
            FILES_TAG: state.requested,
            "jf/changed": ",".join(changed),
        },
    )


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
    if hasattr(cursor, "preload"):  # the event tick's states, read only for failed runs
        cursor.preload(
            [t for t, r in latest.items() if r.dagster_run.status == DagsterRunStatus.FAILURE]
        )
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


def record_failed_run(
    context: RunFailureSensorContext, warehouse: ResourceParam[Warehouse]
) -> None:
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


_PRIMED_POOLS: set[str] = set()
"""The instances (by directory) whose publish pool row this process has seen or made."""


def prime_pools(context: SensorEvaluationContext) -> None:
    """Give the publish pool its limit row before any run needs it.

    Dagster creates a pool's row from `pools.default_limit` when the first run claims it. On
    PostgreSQL two runs that do so at once fail all but one (a unique violation aborts the
    transaction, dagster-io/dagster#33552; one of 40 first runs failed so, and was retried).
    The sensor requests every run, so the row it makes here, once, comes first. A failure is
    logged, not raised: the tick goes on and Dagster makes the row as before."""
    instance = context.instance
    key = instance.root_directory
    if key in _PRIMED_POOLS:
        return
    try:
        storage = instance.event_log_storage
        if (
            storage.supports_global_concurrency_limits
            and instance.global_op_concurrency_default_limit is not None
            and WAREHOUSE_POOL not in storage.get_concurrency_keys()
        ):
            storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
            context.log.info(f"created pool {WAREHOUSE_POOL} with the instance's default limit")
        _PRIMED_POOLS.add(key)
    except Exception as exc:  # noqa: BLE001 - Dagster's own path remains
        context.log.warning(f"could not create pool {WAREHOUSE_POOL} ahead of its runs: {exc}")


def landing_tick(
    context: SensorEvaluationContext,
    landing: ResourceParam[LandingStore],
    sensor_policy: ResourceParam[SensorPolicy],
) -> SensorResult:
    """The landing sensor's tick (see `build_sensors`): a listing of the landing zone, or
    with `JF_EVENTS` the queue's events (`event_tick`) between listings."""
    prime_pools(context)
    generation, reconciled_at, old_cursor = parse_cursor(context.cursor)
    state_store = LandingState(
        context.instance.run_storage, generation, namespace_of(landing.describe())
    )
    queue = event_queue(context, landing, sensor_policy)
    if queue is not None:
        if state_store.committed_handles:  # their tick was committed: runs are requested
            for failure in queue.delete(state_store.committed_handles):
                context.log.warning(f"could not delete an event message: {failure}")
        due = (
            reconciled_at is None
            or queue.uri not in _RECONCILED
            or time.time() - reconciled_at >= sensor_policy.reconcile_seconds
        )
        if old_cursor is None and not due:
            return event_tick(context, landing, sensor_policy, queue, state_store, reconciled_at)
        _RECONCILED.add(queue.uri)
        context.log.info("listing the landing zone to reconcile with the events")
    settle = sensor_policy.settle_seconds
    listed_at = time.time()
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
    known = set(context.instance.get_dynamic_partitions(tenants.name))
    previous_states = load_states(state_store, set(found.tenants) | known, old_cursor)
    previous = {t: s.cursor for t, s in previous_states.items()}
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
        requests.append(drop_request(tenant, state, changed, datasets))
    busy = {r.partition_key for r in requests}
    retried = rerequest_failed_drops(
        context, cursor, now, busy | set(skipped), sensor_policy.rerequest_backoff_seconds
    )
    requests += retried
    explanation = explain_tick(sorted(busy), settling, unchanged, skipped, settle, len(retried))
    for line in explanation:
        context.log.info(line)
    listed = {  # a skipped (paused) tenant keeps its state as it was
        t: listed_state(previous_states.get(t, TenantState()), found.tenants[t])
        if t in found.tenants
        else previous_states.get(t, TenantState())
        for t in cursor
    }
    generation = stage_states(
        state_store, previous_states, listed, cursor, old_cursor, queue is not None
    )
    return SensorResult(
        run_requests=requests,
        skip_reason=None if requests else "; ".join(explanation),
        dynamic_partitions_requests=[tenants.build_add_request(new_tenants)] if new_tenants else [],
        cursor=make_cursor(generation, listed_at if queue is not None else None),
    )


# --- state out of the cursor, and S3 event notifications (issue 18) ----------------------

_QUEUES: dict[tuple, EventQueue] = {}
_RECONCILED: set[str] = set()
"""The queues whose sensor listed the landing zone since this process started."""
EMPTY_DROP = file_versions({})


def load_states(
    store: LandingState, tenant_ids: set[str], old_cursor: dict | None
) -> dict[str, TenantState]:
    """The committed state of the tenants a listing tick plans; from an old JSON cursor
    (one entry per tenant) when the sensor ran before the state moved out of it."""
    if old_cursor:
        return {t: TenantState(TenantCursor.from_json(v)) for t, v in old_cursor.items()}
    return store.tenants(tenant_ids)


def stage_states(
    store: LandingState,
    previous: dict[str, TenantState],
    listed: dict[str, TenantState],
    cursor: dict[str, TenantCursor],
    old_cursor: dict | None,
    with_marks: bool,
) -> int:
    """Stage what a listing tick decided: the rows of tenants whose state changed (every
    row when migrating an old cursor), tenants no longer listed forgotten, the pending set.
    Returns the generation for the tick's cursor."""
    states = {
        t: replace(listed[t], cursor=c) if with_marks else TenantState(c) for t, c in cursor.items()
    }
    changed: dict[str, TenantState | None] = {
        t: s for t, s in states.items() if old_cursor or s != previous.get(t)
    }
    changed.update({t: None for t in previous if t not in cursor})
    pending = {t for t, c in cursor.items() if c.pending is not None}
    return store.stage(changed, pending)


def event_queue(
    context: SensorEvaluationContext, landing: LandingStore, policy: SensorPolicy
) -> EventQueue | None:
    """The queue of `JF_EVENTS` for an S3 landing zone; None: list every tick."""
    if not policy.events:
        return None
    if not isinstance(landing, S3LandingStore):
        context.log.warning(
            "JF_EVENTS is set but the landing zone is not on S3: listing it every tick"
        )
        return None
    key = (policy.events, landing.s3.endpoint_url, landing.s3.region_name)
    if key not in _QUEUES:
        _QUEUES[key] = EventQueue(*key)
    return _QUEUES[key]


class _StatesForRetries:
    """The tenant states `rerequest_failed_drops` asks for: this tick's, else read from
    the store for the tenants whose latest run failed (never every tenant's)."""

    def __init__(self, store: LandingState, planned: dict[str, TenantState]):
        self.store, self.states = store, {t: s.cursor for t, s in planned.items()}

    def preload(self, tenant_ids: list[str]) -> None:
        missing = [t for t in tenant_ids if t not in self.states]
        self.states.update({t: s.cursor for t, s in self.store.tenants(missing).items()})

    def get(self, tenant: str) -> TenantCursor | None:
        return self.states.get(tenant)


def _never_cleaned(context: SensorEvaluationContext, tenant_ids: set[str]) -> dict[str, set[str]]:
    """dataset -> the tenants among `tenant_ids` whose clean table was never built (one
    query per dataset for these tenants only, not every tenant's partitions)."""
    return {
        spec.dataset: tenant_ids
        - set(
            context.instance.get_latest_storage_id_by_partition(
                clean_key(spec.dataset), DagsterEventType.ASSET_MATERIALIZATION, tenant_ids
            )
        )
        for spec in FILE_NAMES.values()
    }


def event_tick(
    context: SensorEvaluationContext,
    landing: S3LandingStore,
    policy: SensorPolicy,
    queue: EventQueue,
    store: LandingState,
    reconciled_at: float | None,
) -> SensorResult:
    """A tick between listings: drain the queue, fold each tenant's events into its
    fingerprint, plan those tenants and the ones still settling; same decisions and run
    keys as a listing tick. Reads and writes the rows of those tenants only."""
    settle = policy.settle_seconds
    received = queue.receive(policy.events_wait_seconds)
    by_tenant: dict[str, list] = {}
    dropped: list[tuple[str, str]] = []
    for _, body in received:
        parsed = parse_message(body, landing.bucket, landing.prefix)
        for event in parsed.events:
            by_tenant.setdefault(event.tenant, []).append(event)
        dropped += parsed.dropped
    for what, why in dropped[:MAX_TICK_DETAILS]:
        context.log.info(f"dropped an event for {what}: {why}")
    if len(dropped) > MAX_TICK_DETAILS:
        context.log.info(f"... and {len(dropped) - MAX_TICK_DETAILS} more dropped events")
    now = time.time()
    waiting = store.pending()
    planned = set(by_tenant) | waiting
    previous = store.tenants(planned)
    # The tenants' settings, as a listing tick reads them (one listing of the settings
    # folder; a settings file is read again only when it changed): paused, removed and
    # unreadable tenants are not planned, the others' settings token is in the fingerprint.
    tenant_settings, broken = tenant_store.load_all(landing)
    skipped = {
        t: f"its settings cannot be read: {why}" for t, why in broken.items() if t in planned
    }
    for tenant, settings_ in tenant_settings.items():
        if settings_.status in (PAUSED, REMOVED) and tenant in planned:
            skipped[tenant] = f"tenant {settings_.status} (jf tenant show {tenant})"
    for name, why in skipped.items():
        context.log.warning(f"skipped landing folder {name!r}: {why}")
    planned -= set(skipped)
    # A skipped tenant's events are not lost: folded into its state, it is looked at again
    # by every tick (the pending set) and planned once it is active again.
    held: dict[str, TenantState] = {}
    for tenant in skipped:
        before = previous.get(tenant, TenantState())
        after, files_part = apply_events(before, by_tenant.get(tenant, []))
        if files_part is not None and files_part != split_fingerprint(before.current() or "")[0]:
            cursor, _ = plan_fingerprint(
                after.cursor, fingerprint(files_part, None), after.newest, now, float("inf")
            )
            after = replace(after, cursor=cursor)
        if tenant in previous or tenant in by_tenant:
            held[tenant] = after
    states: dict[str, TenantState] = {}
    changes: dict[str, list[str]] = {}
    settling: dict[str, float] = {}
    relisted: list[str] = []
    unchanged = 0
    for tenant in sorted(planned):
        before = previous.get(tenant, TenantState())
        token = tenant_settings[tenant].token if tenant in tenant_settings else None
        after, files_part = apply_events(before, by_tenant.get(tenant, []))
        if files_part is None:  # look-alike names in the folder: list it
            relisted.append(tenant)
            files = survey(landing.list_tenant(tenant)).tenants.get(tenant, {})
            if not files and tenant not in previous:
                continue
            cursor, changed = plan_tenant(after.cursor, files, now, settle, token)
            after = listed_state(after, files)
        else:
            if tenant not in previous and files_part == EMPTY_DROP:
                continue  # removals in a folder never seen: nothing we own is there
            current = fingerprint(files_part, token)
            cursor, changed = plan_fingerprint(after.cursor, current, after.newest, now, settle)
        states[tenant] = replace(after, cursor=cursor)
        if changed is not None:
            changes[tenant] = changed
        elif cursor.pending is not None:
            quiet = [now - (cursor.pending_since or now)]
            quiet += [now - after.newest] if after.newest is not None else []
            settling[tenant] = max(*quiet, 0.0)
        else:
            unchanged += 1
    # A tenant's first request makes it a partition (a listing tick adds every folder it
    # finds; here only the tenants requested for the first time are asked about).
    new_tenants = sorted(
        t
        for t in changes
        if states[t].cursor.requests <= 1
        and not context.instance.has_dynamic_partition(tenants.name, t)
    )
    never_cleaned = _never_cleaned(context, set(changes)) if changes else {}
    requests = []
    for tenant, changed in sorted(changes.items()):
        state = states[tenant].cursor
        datasets = {FILE_NAMES[name].dataset for name in changed}
        datasets |= {
            d for d, missing in never_cleaned.items() if tenant in missing or tenant in new_tenants
        }
        requests.append(drop_request(tenant, state, changed, datasets))
    busy = set(changes)
    retried = rerequest_failed_drops(
        context,
        _StatesForRetries(store, states),
        now,
        busy | set(skipped),
        policy.rerequest_backoff_seconds,
    )
    requests += retried
    pending = (waiting - planned - set(skipped)) | set(held)
    pending |= {t for t, s in states.items() if s.cursor.pending is not None}
    states.update(held)
    generation = store.stage(
        {t: s for t, s in states.items() if s != previous.get(t)},
        pending,
        consumed=[handle for handle, _ in received],
    )
    events = sum(len(v) for v in by_tenant.values())
    explanation = [
        f"{len(received)} event message(s): {events} event(s) for {len(by_tenant)} tenant(s), "
        f"{len(dropped)} dropped"
    ]
    if relisted:
        explanation.append(f"listed {len(relisted)} folder(s) with look-alike file names")
    if store.rolled_back:
        explanation.append(f"a lost tick's state was undone for {store.rolled_back} row(s)")
    explanation += explain_tick(sorted(busy), settling, unchanged, skipped, settle, len(retried))
    for line in explanation:
        context.log.info(line)
    return SensorResult(
        run_requests=requests,
        skip_reason=None if requests else "; ".join(explanation),
        dynamic_partitions_requests=[tenants.build_add_request(new_tenants)] if new_tenants else [],
        cursor=make_cursor(generation, reconciled_at),
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
