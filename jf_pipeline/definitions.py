"""The Dagster code location: assets, the ingest job, the landing sensor and resources.

Resources come from the environment (`jf_pipeline/settings.py` lists the variables); the
same definitions serve a laptop, docker compose and Kubernetes. Nothing connects at import
time.
"""

from __future__ import annotations

from dagster import (
    Definitions,
    IOManager,
    IOManagerDefinition,
    ResourceDefinition,
    in_process_executor,
)

from jf_pipeline import settings
from jf_pipeline.assets import file_assets, publish_tenant
from jf_pipeline.resources import (
    LandingStore,
    SensorPolicy,
    Warehouse,
    landing_store_from_uri,
    sensor_policy_from_env,
    storage_from_uri,
    warehouse_from_path,
)
from jf_pipeline.sensors import approve_tenant, build_sensors, ingest_tenant
from jf_pipeline.storage import CleanTableIOManager

all_assets = [*file_assets, publish_tenant]


def build_resources(
    landing: LandingStore | None = None,
    warehouse: Warehouse | None = None,
    io_manager=None,
    sensor_policy: SensorPolicy | None = None,
) -> dict:
    landing = landing or landing_store_from_uri()
    return {
        "landing": landing,
        "warehouse": warehouse or warehouse_from_path(),
        # An S3 landing zone's S3 resource serves the storage too: one client per worker.
        "io_manager": io_manager or storage_from_uri(s3=getattr(landing, "s3", None)),
        "sensor_policy": sensor_policy or sensor_policy_from_env(),
    }


def describe(name: str, value) -> str:
    """What the Dagster UI's resources page says of one of our resources: its settings, and
    the environment variables they come from (jf_pipeline/settings.py)."""
    if isinstance(value, LandingStore):
        reports = "on" if value.write_reports else "off"
        return (
            f"Landing zone {value.describe()} (JF_LANDING): files over {value.max_file_mb} MB "
            f"are refused (JF_MAX_FILE_MB); import reports {reports} (JF_IMPORT_REPORT)."
        )
    if isinstance(value, Warehouse):
        return (
            f"DuckDB warehouse {value.path} (JF_WAREHOUSE); the publish guard refuses a drop "
            f"of more than {value.guard_max_drop_share:.0%} (JF_GUARD_MAX_DROP)."
        )
    if isinstance(value, SensorPolicy):
        events = value.events or "off: the landing zone is listed every tick"
        return (
            f"Landing sensor: files settle for {value.settle_seconds:g} s (JF_SETTLE_SECONDS); "
            f"S3 events {events} (JF_EVENTS); full listing every {value.reconcile_seconds:g} s "
            "with events (JF_RECONCILE_SECONDS)."
        )
    if isinstance(value, CleanTableIOManager):
        return (
            f"The clean tables between the two steps, as Arrow IPC objects under {value.base} "
            "(JF_STORAGE)."
        )
    return name


def _wrapped(name: str, value):
    if isinstance(value, IOManager):
        return IOManagerDefinition.hardcoded_io_manager(value, describe(name, value))
    return ResourceDefinition.hardcoded_resource(value, describe(name, value))


resources = build_resources()
"""The deployment's resources, from the environment (read once, here)."""

defs = Definitions(
    assets=all_assets,
    jobs=[ingest_tenant, approve_tenant],
    sensors=build_sensors(int(settings.get("JF_SENSOR_INTERVAL"))),
    # Our resources are plain typed models (resources.py), so jf runs them without Dagster;
    # the UI shows each one's settings in its description.
    resources={name: _wrapped(name, value) for name, value in resources.items()},
    executor=in_process_executor,
)
