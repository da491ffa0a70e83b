"""Every setting jf-pipeline reads from the environment, in one table.

The environment (a laptop, docker compose, Kubernetes) is chosen by these variables alone:
`resources.py` turns them into resources (a folder or S3 for the landing zone, a folder or
S3 for intermediate results), so no asset or sensor has an `if production` branch. The
deployment files under `deploy/` may only name variables listed here or the ones Dagster,
PostgreSQL and boto3 read themselves (`jf_pipeline_tests/test_deploy.py` checks that).

The pure core (`jf_pipeline/core/`) never reads this module: the shell passes its limits
and thresholds as parameters. The defaults that the core also needs are taken from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from jf_pipeline.core.guard import DEFAULT_MAX_DROP_SHARE
from jf_pipeline.core.reading import DEFAULT_MAX_FILE_BYTES


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    description: str


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "JF_LANDING",
            "data/landing",
            "Landing zone: a folder, or s3://bucket/prefix, holding one folder per tenant",
        ),
        Setting(
            "JF_WAREHOUSE",
            "data/warehouse.duckdb",
            "The DuckDB file analysts open (its private build file sits beside it)",
        ),
        Setting(
            "JF_STORAGE",
            "data/storage",
            "Intermediate results between assets: a folder, or s3://bucket/prefix when runs "
            "execute in separate containers",
        ),
        Setting(
            "JF_IMPORT_REPORT",
            "on",
            "Write jointflows_import_report.csv into the tenant's folder after each run (off: no)",
        ),
        Setting(
            "JF_GUARD_MAX_DROP",
            str(DEFAULT_MAX_DROP_SHARE),
            "publish_guard refuses a publish when valid deals fall by more than this share",
        ),
        Setting(
            "JF_WRITER_WAIT_SECONDS",
            "120",
            "How long a publish waits for another writer of the warehouse before it fails",
        ),
        Setting("JF_SENSOR_INTERVAL", "15", "Seconds between landing sensor ticks"),
        Setting(
            "JF_SETTLE_SECONDS",
            "10",
            "A tenant's files must be unchanged this long before a run is requested",
        ),
        Setting(
            "JF_EVENTS",
            "",
            "S3 event notifications: sqs://<queue name> or the queue's URL (`jf events setup` "
            "creates it); the sensor drains it instead of listing the bucket every tick. "
            "Empty: list every tick",
        ),
        Setting(
            "JF_RECONCILE_SECONDS",
            "3600",
            "With JF_EVENTS: seconds between full listings that catch lost notifications "
            "(one also runs at start-up)",
        ),
        Setting(
            "JF_MAX_FILE_MB",
            str(DEFAULT_MAX_FILE_BYTES // 2**20),
            "Larger landing files are rejected whole",
        ),
        Setting(
            "DAGSTER_HOME",
            "dagster_home",
            "The Dagster instance `jf approve` submits its run to (make dev's: dagster_home)",
        ),
        Setting(
            "AWS_ENDPOINT_URL",
            "",
            "S3-compatible endpoint (MinIO, moto); empty means AWS itself",
        ),
        Setting("AWS_REGION", "", "AWS region for S3 (falls back to AWS_DEFAULT_REGION)"),
        Setting("AWS_DEFAULT_REGION", "", "AWS region for S3 when AWS_REGION is unset"),
    )
}


def get(name: str) -> str:
    """The variable's value, or its documented default when it is unset or empty."""
    return os.environ.get(name) or SETTINGS[name].default
