"""Runs per hour of the production instance on this machine, measured end to end.

    .venv/bin/python benchmarks/production_runs.py [TENANTS] [--dequeue-workers N,M,...]
        (default: 40 tenants; deploy/dagster.yaml's queue as it is)

Starts what deploy/docker-compose.yaml starts, as processes (benchmarks/harness.py): a
PostgreSQL cluster of its own, the code server and the Dagster daemon with deploy/dagster.yaml
(queued runs, at most 8 at a time, one per tenant, the DuckDB writer pool at 2), plus a moto
S3 server as the landing zone and intermediate storage. It uploads TENANTS small tenants (100
deals, 10 accounts, 100 contacts each, benchmarks/generate.py) at once, as a nightly export
would, and times until every tenant's deals are published. Run history (queue wait, worker
start-up, execution) comes from the runs' events in PostgreSQL.

`--dequeue-workers 0,4` measures the same upload once per setting, in this order, each on a
fresh stack: 0 is Dagster's default (one launch at a time), N launches N dequeued runs at a
time (`run_queue: {dequeue_use_threads: true, dequeue_num_workers: N}`).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import make_drop  # noqa: E402
from harness import (  # noqa: E402
    free_port,
    load_now,
    machine,
    production_stack,
    query_warehouse,
    run_history,
)


def published_tenants(warehouse: str) -> int:
    rows = query_warehouse(warehouse, "SELECT count(DISTINCT tenant_id) FROM importable_deals")
    return rows[0][0] if rows else 0


def measure(tenants: int, dequeue_workers: int | None, s3_env: dict) -> dict:
    import boto3

    bucket = f"bench-{dequeue_workers if dequeue_workers is not None else 'default'}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    for t in range(tenants):
        for name, data in make_drop(100, seed=t).items():
            s3.put_object(Bucket=bucket, Key=f"landing/tenant{t:04d}/{name}", Body=data)
    tmp = Path(tempfile.mkdtemp(prefix="jf-bench-"))
    warehouse = str(tmp / "warehouse.duckdb")
    env = {
        **s3_env,
        "JF_LANDING": f"s3://{bucket}/landing",
        "JF_STORAGE": f"s3://{bucket}/storage",
        "JF_WAREHOUSE": warehouse,
        "JF_SENSOR_INTERVAL": "5",
    }
    load_before = load_now()
    with production_stack(tmp / "stack", env, dequeue_workers, sensor_interval=5) as stack:
        start = time.monotonic()
        first = None
        while (done := published_tenants(warehouse)) < tenants:
            if done and first is None:
                first = time.monotonic()
            if time.monotonic() - start > 3600:
                raise SystemExit(f"timed out with {done} of {tenants} tenants published")
            time.sleep(0.5)
        elapsed = time.monotonic() - start
        steady = time.monotonic() - first
        # A run publishes before it ends (its last events): wait for every run to end.
        runs = run_history(stack["env"])
        while any(r["ended_at"] is None for r in runs):
            if time.monotonic() - start > 3600:
                raise SystemExit("timed out waiting for the runs to end")
            time.sleep(1)
            runs = run_history(stack["env"])
        con = stack["pg"].connect(stack["database"])
        with con.cursor() as cur:
            cur.execute("SELECT count(*) FROM event_logs WHERE run_id <> ''")
            events = cur.fetchone()[0]
        con.close()
    failed = [r for r in runs if r["status"] != "SUCCESS"]
    if failed:  # keep the code server's and daemon's logs for whoever looks into it
        print(f"{len(failed)} run(s) failed; logs kept in {tmp / 'stack'}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs if r[key] is not None)

    return {
        "dequeue_workers": dequeue_workers,
        "runs": len(runs),
        "failed": len(failed),
        "elapsed": elapsed,
        "steady": steady,
        "runs_per_hour": len(runs) / steady * 3600,
        "queued": med("queued"),
        "start_up": med("start_up"),
        "execution": med("execution"),
        "worker": med("worker"),
        "events_per_run": events / len(runs),
        "load": f"{load_before} -> {load_now()}",
    }


def main(tenants: int, settings: list[int | None]) -> None:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    print(machine())
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port)
    moto.start()
    s3_env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(s3_env)
    results = []
    try:
        for setting in settings:
            results.append(measure(tenants, setting, s3_env))
            print(results[-1], file=sys.stderr, flush=True)
    finally:
        moto.stop()
    print()
    print(
        "| tenants | launch threads | runs (failed) | all published (s) | first to last (s) | runs/hour "
        "| median queue wait (s) | median worker start-up (s) | median execution (s) "
        "| median worker, launch to end (s) | event rows per run | load average (1 min) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        threads = {None: "deploy/dagster.yaml", 0: "1 (Dagster's default)"}.get(
            r["dequeue_workers"], str(r["dequeue_workers"])
        )
        print(
            f"| {tenants} | {threads} | {r['runs']} ({r['failed']}) | {r['elapsed']:.1f} | {r['steady']:.1f} | "
            f"{r['runs_per_hour']:,.0f} | {r['queued']:.1f} | {r['start_up']:.1f} | "
            f"{r['execution']:.1f} | {r['worker']:.1f} | {r['events_per_run']:.0f} | "
            f"{r['load']} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tenants", nargs="?", type=int, default=40)
    parser.add_argument(
        "--dequeue-workers",
        help="comma-separated launcher thread counts to compare (0: one launch at a time)",
    )
    args = parser.parse_args()
    chosen = [int(x) for x in args.dequeue_workers.split(",")] if args.dequeue_workers else [None]
    main(args.tenants, chosen)
