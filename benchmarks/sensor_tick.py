"""How much one landing-sensor tick costs at 100, 1,000 and 5,000 tenants.

    .venv/bin/python benchmarks/sensor_tick.py [N ...]

Against a moto S3 server on loopback (three objects per tenant) and a local folder. The
baseline, measured in the same run, is the listing a tick cannot avoid: paginating
`list_objects_v2` over the same keys (S3), or walking the folder and hashing every file
(local). Prints a Markdown table for benchmarks/RESULTS.md; progress goes to stderr.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from dagster import build_sensor_context, instance_for_test
from moto.server import ThreadedMotoServer

from jf_pipeline import sensors
from jf_pipeline.definitions import defs
from jf_pipeline.resources import LocalLandingStore, SensorPolicy, landing_store_from_uri

LANDING_SENSOR, _ = sensors.build_sensors(interval_seconds=15)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "landing" / "acme"
FILES = {
    name: (SAMPLE / name).read_bytes() for name in ("deals.csv", "accounts.csv", "contacts.csv")
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tick(instance, store, cursor):
    with build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        cursor=cursor,
        resources={"landing": store, "sensor_policy": SensorPolicy(settle_seconds=0.0)},
        definitions=defs,
    ) as context:
        data = LANDING_SENSOR.evaluate_tick(context)
    for request in data.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return data


def _median_seconds(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _upload(client, bucket: str, n: int) -> None:
    def one(i: int) -> None:
        for name, data in FILES.items():
            client.put_object(Bucket=bucket, Key=f"t{i:05d}/{name}", Body=data)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(n)))


def measure(n: int, client, tmp: Path) -> dict:
    bucket = f"bench-{os.getpid()}-{n}"
    client.create_bucket(Bucket=bucket)
    _upload(client, bucket, n)
    folder = tmp / f"local-{n}"
    for i in range(n):
        (folder / f"t{i:05d}").mkdir(parents=True)
        for name, data in FILES.items():
            (folder / f"t{i:05d}" / name).write_bytes(data)

    def s3_floor():
        paginator = client.get_paginator("list_objects_v2")
        return sum(len(p.get("Contents", [])) for p in paginator.paginate(Bucket=bucket))

    result: dict = {"tenants": n}
    stores = {
        "s3": (landing_store_from_uri(f"s3://{bucket}"), s3_floor),
        "local": (
            LocalLandingStore(root=str(folder)),
            LocalLandingStore(root=str(folder)).list_files,
        ),
    }
    for kind, (store, floor) in stores.items():
        with instance_for_test() as instance:
            start = time.perf_counter()
            data = _tick(instance, store, None)
            first = time.perf_counter() - start
            assert len(data.run_requests) == n
            cursor = data.cursor
            steady = _median_seconds(
                lambda store=store, cursor=cursor, instance=instance: _tick(instance, store, cursor)
            )
            result[kind] = {
                "first_tick_s": round(first, 3),
                "steady_tick_s": round(steady, 3),
                "listing_floor_s": round(_median_seconds(floor), 3),
                "cursor_bytes": len(cursor),
            }
    shutil.rmtree(folder)
    return result


def main(sizes: list[int]) -> None:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    client = boto3.client("s3")
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                rows.append(measure(n, client, Path(tmp)))
                print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        server.stop()
    print(
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    print(
        "| tenants | store | first tick (s) | steady tick (s) | listing floor (s) | steady / floor | cursor (KB) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        for kind in ("s3", "local"):
            m = r[kind]
            ratio = (
                m["steady_tick_s"] / m["listing_floor_s"] if m["listing_floor_s"] else float("nan")
            )
            print(
                f"| {r['tenants']:,} | {kind} | {m['first_tick_s']:.2f} | {m['steady_tick_s']:.2f} | "
                f"{m['listing_floor_s']:.2f} | {ratio:.2f} | {m['cursor_bytes'] / 1024:.0f} |"
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 5000])
