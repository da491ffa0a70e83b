"""The landing sensor: new tenant folders become partitions, changed files become runs.

Each tick lists the landing zone once and fingerprints every tenant's three contract files
by S3 ETag or local content hash (a local file is re-hashed only when its size, times or
inode changed; other files in a tenant folder are never read), so an overwrite with the same size in the same second is
a change and a re-upload of identical bytes is not. A changed drop is requested once it has
settled (no change for `JF_SETTLE_SECONDS`), as one run that selects only the assets
downstream of the files that changed. The cursor keeps one short fingerprint per tenant.
"""

import json
import time

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    in_process_executor,
    sensor,
)

from jf_pipeline import settings
from jf_pipeline.contract import FILE_NAMES, WAREHOUSE_TABLES
from jf_pipeline.core.landing import TenantCursor, plan_tenant, survey
from jf_pipeline.partitions import tenants
from jf_pipeline.resources import LandingStore

# Every run of a tenant carries this tag; deployments limit runs per tenant with it.
TENANT_TAG = "jf/tenant"
SENSOR_INTERVAL_SECONDS = int(settings.get("JF_SENSOR_INTERVAL"))
SETTLE_SECONDS = float(settings.get("JF_SETTLE_SECONDS"))

ingest_tenant = define_asset_job(
    "ingest_tenant",
    selection=AssetSelection.all(),
    partitions_def=tenants,
    executor_def=in_process_executor,
    description="Read, clean and publish one tenant's landing files.",
)


def run_key(tenant: str, fingerprint: str, previous: str | None) -> str:
    """Same drop on a repeated tick -> same key (no duplicate run); a drop that returns to
    an earlier version after another one still gets a new key, because `previous` differs."""
    return f"{tenant}:{fingerprint}:{previous or 'new'}"


def assets_for(datasets: set[str]) -> list[AssetKey]:
    """The raw and clean assets of the changed files, and the published tables after them."""
    keys = [AssetKey(f"{stage}_{d}") for d in sorted(datasets) for stage in ("raw", "clean")]
    return keys + [AssetKey(name) for name in WAREHOUSE_TABLES]


@sensor(
    job=ingest_tenant,
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    description="Watches the landing zone; requests one ingest_tenant run per tenant whose "
    "deals/accounts/contacts files were added, overwritten or deleted, once they settle.",
)
def landing_sensor(context: SensorEvaluationContext, landing: LandingStore) -> SensorResult:
    found = survey(landing.list_files())
    for name in found.invalid_tenants:
        context.log.warning(f"skipped landing folder {name!r}: not a valid tenant id")
    for name, why in found.refused_tenants.items():
        context.log.warning(f"skipped landing folder {name!r}: {why}")
    previous = {t: TenantCursor.from_json(v) for t, v in json.loads(context.cursor or "{}").items()}
    known = set(context.instance.get_dynamic_partitions(tenants.name))
    new_tenants = sorted(set(found.tenants) - known)
    now = time.time()

    never_cleaned: dict[str, set[str]] | None = None
    cursor: dict[str, TenantCursor] = {}
    requests = []
    for tenant, files in sorted(found.tenants.items()):
        if not files and tenant not in previous:
            continue  # a folder with nothing we own
        state, changed = plan_tenant(
            previous.get(tenant, TenantCursor()), files, now, SETTLE_SECONDS
        )
        cursor[tenant] = state
        if changed is None:
            continue
        if never_cleaned is None:  # a clean asset never built for a tenant must be built now
            never_cleaned = {
                spec.dataset: known
                - context.instance.get_materialized_partitions(AssetKey(f"clean_{spec.dataset}"))
                for spec in FILE_NAMES.values()
            }
        datasets = {FILE_NAMES[name].dataset for name in changed}
        datasets |= {
            d for d, missing in never_cleaned.items() if tenant in missing or tenant not in known
        }
        old = previous.get(tenant, TenantCursor()).requested
        requests.append(
            RunRequest(
                partition_key=tenant,
                run_key=run_key(tenant, state.requested, old),
                asset_selection=assets_for(datasets),
                tags={
                    TENANT_TAG: tenant,
                    "jf/files": state.requested,
                    "jf/changed": ",".join(changed),
                },
            )
        )
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[tenants.build_add_request(new_tenants)] if new_tenants else [],
        cursor=json.dumps({t: s.to_json() for t, s in cursor.items()}, separators=(",", ":")),
    )
