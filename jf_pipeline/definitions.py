"""The Dagster code location: assets, the ingest job, the landing sensor and resources.

Resources come from the environment (`jf_pipeline/settings.py` lists the variables); the
same definitions serve a laptop, docker compose and Kubernetes. Nothing connects at import
time.
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor

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

all_assets = [*file_assets, publish_tenant]


def build_resources(
    landing: LandingStore | None = None,
    warehouse: Warehouse | None = None,
    io_manager=None,
    sensor_policy: SensorPolicy | None = None,
) -> dict:
    return {
        "landing": landing or landing_store_from_uri(),
        "warehouse": warehouse or warehouse_from_path(),
        "io_manager": io_manager or storage_from_uri(),
        "sensor_policy": sensor_policy or sensor_policy_from_env(),
    }


defs = Definitions(
    assets=all_assets,
    jobs=[ingest_tenant, approve_tenant],
    sensors=build_sensors(int(settings.get("JF_SENSOR_INTERVAL"))),
    resources=build_resources(),
    executor=in_process_executor,
)
