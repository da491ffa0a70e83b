"""The landing sensor: new tenant folders become partitions, changed files become runs.

Change detection compares each tenant's `landing_version` (built from S3 ETags or
local content hashes of its three contract files) with the one in the cursor, so an
overwrite with the same size in the same second is a change and identical bytes are not.
"""

import json
import os

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    define_asset_job,
    in_process_executor,
    sensor,
)

from jf_pipeline.core.landing import landing_version, survey
from jf_pipeline.partitions import tenants
from jf_pipeline.resources import LandingStore

SENSOR_INTERVAL_SECONDS = int(os.environ.get("JF_SENSOR_INTERVAL", "15"))

ingest_tenant = define_asset_job(
    "ingest_tenant",
    selection=AssetSelection.all(),
    partitions_def=tenants,
    executor_def=in_process_executor,
    description="Read, clean and publish one tenant's landing files.",
)


def run_key(tenant: str, version: str, previous: str | None) -> str:
    """Same drop on a repeated tick -> same key (no duplicate run); a drop that returns to
    an earlier version after another one still gets a new key, because `previous` differs."""
    return f"{tenant}:{version}:{previous or 'new'}"


@sensor(
    job=ingest_tenant,
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    description="Watches the landing zone; requests one ingest_tenant run per tenant whose "
    "deals/accounts/contacts files were added, overwritten or deleted.",
)
def landing_sensor(context: SensorEvaluationContext, landing: LandingStore) -> SensorResult:
    found = survey(landing.list_files())
    for name in found.invalid_tenants:
        context.log.warning(f"skipped landing folder {name!r}: not a valid tenant id")
    previous: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    known = set(context.instance.get_dynamic_partitions(tenants.name))
    new_tenants = sorted(set(found.tenants) - known)

    cursor: dict[str, str] = {}
    requests = []
    for tenant, files in sorted(found.tenants.items()):
        version = landing_version({name: f.version for name, f in files.items()})
        cursor[tenant] = version
        if previous.get(tenant) == version or (not files and tenant not in previous):
            continue
        requests.append(
            RunRequest(
                partition_key=tenant,
                run_key=run_key(tenant, version, previous.get(tenant)),
                tags={"jf/tenant": tenant, "jf/landing_version": version},
            )
        )
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[tenants.build_add_request(new_tenants)] if new_tenants else [],
        cursor=json.dumps(cursor, separators=(",", ":"), sort_keys=True),
    )
