"""Runs per hour of the production instance on this machine, measured end to end.

    .venv/bin/python benchmarks/production_runs.py [TENANTS]      (default: 40)

Starts what deploy/docker-compose.yaml starts, as processes: a PostgreSQL cluster of its
own, the code server and the Dagster daemon with deploy/dagster.yaml unchanged (queued runs,
at most 8 at a time, one per tenant, the DuckDB writer pool at 1), plus a moto S3 server as
the landing zone and intermediate storage. It uploads TENANTS small tenants (100 deals, 10
accounts, 100 contacts each, benchmarks/generate.py) at once, as a nightly export would, and
times until every tenant's deals are published. Run history is read back from PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3
import yaml

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(HERE))

from generate import make_drop  # noqa: E402

from jf_pipeline_tests.servers import (  # noqa: E402
    free_port,
    postgres_cluster,
    query_warehouse,
    service,
)

BIN = Path(sys.executable).parent


def published_tenants(warehouse: str) -> int:
    rows = query_warehouse(warehouse, "SELECT count(DISTINCT tenant_id) FROM importable_deals")
    return rows[0][0] if rows else 0


def main(tenants: int) -> None:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    tmp = Path(tempfile.mkdtemp(prefix="jf-bench-"))
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port)
    moto.start()
    aws = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(aws)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bench")
    for t in range(tenants):
        for name, data in make_drop(100, seed=t).items():
            s3.put_object(Bucket="bench", Key=f"landing/tenant{t:04d}/{name}", Body=data)

    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    code_port = free_port()
    workspace = yaml.safe_load((PROJECT / "deploy" / "workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=code_port)
    (home / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    warehouse = str(tmp / "warehouse.duckdb")

    with postgres_cluster() as pg:
        database = pg.create_database()
        env = {
            **os.environ,
            **pg.instance_env(database),
            "DAGSTER_HOME": str(home),
            "JF_LANDING": "s3://bench/landing",
            "JF_STORAGE": "s3://bench/storage",
            "JF_WAREHOUSE": warehouse,
            "JF_SENSOR_INTERVAL": "5",
            "JF_SETTLE_SECONDS": "1",
            "JF_IMPORT_REPORT": "off",
        }
        code_args = [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1"]
        code_args += ["-p", str(code_port), "-m", "jf_pipeline.definitions"]
        daemon_args = [str(BIN / "dagster-daemon"), "run", "-w", str(home / "workspace.yaml")]
        start = time.monotonic()
        with (
            service(code_args, env, tmp / "code.log"),
            service(daemon_args, env, tmp / "daemon.log"),
        ):
            first = None
            while (done := published_tenants(warehouse)) < tenants:
                if done and first is None:
                    first = time.monotonic()
                if time.monotonic() - start > 1800:
                    raise SystemExit(f"timed out with {done} of {tenants} tenants published")
                time.sleep(0.5)
            elapsed = time.monotonic() - start
            steady = time.monotonic() - first

        os.environ.update(pg.instance_env(database))
        os.environ["DAGSTER_HOME"] = str(home)
        from dagster import DagsterInstance, DagsterRunStatus

        with DagsterInstance.get() as instance:
            records = instance.get_run_records()
            statuses = {r.dagster_run.status for r in records}
            stats = [instance.get_run_stats(r.dagster_run.run_id) for r in records]
            queued = [
                s.launch_time - r.create_timestamp.timestamp()
                for r, s in zip(records, stats, strict=True)
            ]
            worker = [s.end_time - s.launch_time for s in stats]
        con = pg.connect(database)
        with con.cursor() as cur:
            cur.execute("SELECT count(*) FROM event_logs WHERE run_id <> ''")
            events = cur.fetchone()[0]
        con.close()
    moto.stop()
    shutil.rmtree(tmp, ignore_errors=True)

    assert statuses == {DagsterRunStatus.SUCCESS}, statuses
    print(
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print()
    print(
        "| tenants | runs | all published (s) | first to last (s) | runs/hour "
        "| median queue wait (s) | median worker (launch to end, s) | event rows per run |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {tenants} | {len(records)} | {elapsed:.1f} | {steady:.1f} | "
        f"{len(records) / steady * 3600:,.0f} | {statistics.median(queued):.1f} | "
        f"{statistics.median(worker):.1f} | {events / len(records):.0f} |"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
