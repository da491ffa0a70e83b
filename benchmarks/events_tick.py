"""What one landing-sensor tick costs with S3 events (issue 18), against the listing tick.

    .venv/bin/python benchmarks/events_tick.py [N ...]      # default: 1000 10000 100000

For each number of tenants N, in one process and one run:
- the state is real: a Dagster instance on SQLite (`instance_for_test`, as `make dev`)
  holding N dynamic partitions and N state rows in its key-value table, written by the
  first (reconciliation) tick;
- the listing and the queue are simulated in process: the landing store returns a
  synthetic listing of N tenants x 3 contract files with ETags (`SimulatedLanding`), and
  the queue returns S3 event notification bodies as S3 sends them, one record per message
  (`SimulatedQueue`), so the sensor code parses, folds, plans and stages exactly as in
  production. Not included: S3's list_objects_v2 pages (1.3 ms per tenant on moto,
  benchmarks/RESULTS.md) and SQS's round trips (10 messages per receive and per delete);
  `--moto` adds a run at 1,000 tenants on a moto server (real S3 notifications and SQS)
  to show them;
- ticks: the polling tick (lists everything, reads every tenant's row) as the baseline,
  and the event tick with 10, 100 and 1,000 changes (each a new ETag for a random
  tenant's file; settle time 0, so each change is a run request); median of 3 ticks;
- latency: uploads at random moments while ticks run every JF_SENSOR_INTERVAL seconds
  with the settle time, from the upload to the tick that returns its run request.

Prints a Markdown table for benchmarks/RESULTS.md; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import socket
import statistics
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from dagster import build_sensor_context, instance_for_test

from jf_pipeline import sensors
from jf_pipeline.core.events import TenantState, listed_state
from jf_pipeline.core.landing import LandingFile, TenantCursor, file_versions, survey
from jf_pipeline.definitions import defs
from jf_pipeline.landing_state import LandingState, make_cursor, namespace_of
from jf_pipeline.resources import S3LandingStore, SensorPolicy

LANDING_SENSOR, _ = sensors.build_sensors(interval_seconds=15)
NAMES = ("accounts.csv", "contacts.csv", "deals.csv")
BUCKET = "bench-landing"
PREFIX = "tenants"

_LISTINGS: dict[str, dict[str, dict[str, tuple[str, float]]]] = {}
"""bucket -> tenant -> file name -> (ETag, modification time): the simulated bucket."""


class SimulatedLanding(S3LandingStore):
    """An S3 landing store whose listing comes from `_LISTINGS` instead of S3."""

    def _files(self, tenant: str, files: dict) -> list[LandingFile]:
        return [
            LandingFile(
                tenant,
                name,
                f"{PREFIX}/{tenant}/{name}",
                etag,
                1000,
                datetime.fromtimestamp(mtime, UTC),
            )
            for name, (etag, mtime) in sorted(files.items())
        ]

    def list_files(self) -> list[LandingFile]:
        listing = _LISTINGS[self.bucket]
        return [f for t in sorted(listing) for f in self._files(t, listing[t])]

    def list_tenant(self, tenant: str) -> list[LandingFile]:
        return self._files(tenant, _LISTINGS[self.bucket].get(tenant, {}))

    def list_operator(self, folder: str) -> dict[str, str]:
        return {}  # no tenant has settings of its own


class SimulatedQueue:
    """The sensor's EventQueue, in memory: bodies as S3 sends them to SQS."""

    def __init__(self, uri: str, bucket: str):
        self.uri, self.bucket, self.messages, self.deleted = uri, bucket, [], 0

    def send(self, tenant: str, name: str, etag: str, when: float) -> None:
        stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        record = {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventTime": stamp,
            "eventName": "ObjectCreated:Put",
            "s3": {
                "bucket": {"name": self.bucket},
                "object": {"key": f"{PREFIX}/{tenant}/{name}", "size": 1000, "eTag": etag},
            },
        }
        self.messages.append((uuid.uuid4().hex, json.dumps({"Records": [record]})))

    def receive(self, wait_seconds: float, max_messages: int = 2_000):
        taken, self.messages = self.messages[:max_messages], self.messages[max_messages:]
        return taken

    def delete(self, handles: list[str]) -> list[str]:
        self.deleted += len(handles)
        return []


def tick(instance, store, policy: SensorPolicy, cursor: str | None):
    with build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        cursor=cursor,
        resources={"landing": store, "sensor_policy": policy},
        definitions=defs,
    ) as context:
        data = LANDING_SENSOR.evaluate_tick(context)
    for request in data.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return data


def _etag(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def measure(n: int, changes: list[int], latency_uploads: int, interval: float, settle: float):
    rng = random.Random(n)
    bucket = f"{BUCKET}-{n}"
    old = time.time() - 86_400
    _LISTINGS[bucket] = {f"t{i:06d}": {name: (_etag(rng), old) for name in NAMES} for i in range(n)}
    store = SimulatedLanding(bucket=bucket, prefix=PREFIX)
    row: dict = {"tenants": n}
    with instance_for_test() as instance:
        events_uri = f"sqs://bench-{n}"
        queue = SimulatedQueue(events_uri, bucket)
        sensors._QUEUES[(events_uri, None, None)] = queue
        polling = SensorPolicy(settle_seconds=0.0)
        evented = SensorPolicy(settle_seconds=0.0, events=events_uri, events_wait_seconds=0)

        # A deployment that already serves n tenants: n partitions and n state rows, as
        # the sensor leaves them once every tenant's drop was requested (a first tick
        # would request n runs, and Dagster checks each one's partition: 4 ms apiece).
        found = survey(store.list_files())
        instance.add_dynamic_partitions("tenants", sorted(found.tenants))
        seeded = {
            t: replace(
                listed_state(TenantState(), files),
                cursor=TenantCursor(file_versions(files), requests=1),
            )
            for t, files in found.tenants.items()
        }
        cursor = make_cursor(
            LandingState(instance.run_storage, 0, namespace_of(store.describe())).stage(
                seeded, set()
            ),
            None,
        )
        start = time.perf_counter()
        data = tick(instance, store, evented, cursor)  # start-up: a full listing
        row["first_listing_s"] = round(time.perf_counter() - start, 2)
        assert data.run_requests == []
        cursor = data.cursor
        row["cursor_bytes"] = len(cursor)

        empty = []
        for _ in range(3):
            start = time.perf_counter()
            cursor = tick(instance, store, evented, cursor).cursor
            empty.append(time.perf_counter() - start)
        row["event_tick_0_s"] = round(statistics.median(empty), 3)
        for c in changes:
            times = []
            for _ in range(3):
                now = time.time()
                for tenant in rng.sample(sorted(_LISTINGS[bucket]), c):
                    name, etag = rng.choice(NAMES), _etag(rng)
                    _LISTINGS[bucket][tenant][name] = (etag, now)
                    queue.send(tenant, name, etag, now)
                start = time.perf_counter()
                data = tick(instance, store, evented, cursor)
                times.append(time.perf_counter() - start)
                assert len(data.run_requests) == c, (len(data.run_requests), c)
                cursor = data.cursor
            row[f"event_tick_{c}_s"] = round(statistics.median(times), 3)
            print(json.dumps(row), file=sys.stderr)

        # Latency: uploads at random moments while the sensor ticks every `interval`.
        settled = SensorPolicy(settle_seconds=settle, events=events_uri, events_wait_seconds=0)
        uploads = sorted(rng.uniform(0, 2 * interval) for _ in range(latency_uploads))
        tenants = rng.sample(sorted(_LISTINGS[bucket]), latency_uploads)
        uploaded: dict[str, float] = {}
        latencies: list[float] = []
        begin = time.time()
        next_tick = begin
        while len(latencies) < latency_uploads and time.time() - begin < 120 + settle:
            now = time.time()
            while uploads and now - begin >= uploads[0]:
                uploads.pop(0)
                tenant = tenants[len(uploaded)]
                etag = _etag(rng)
                _LISTINGS[bucket][tenant]["deals.csv"] = (etag, now)
                queue.send(tenant, "deals.csv", etag, now)
                uploaded[tenant] = now
            if now >= next_tick:
                data = tick(instance, store, settled, cursor)
                cursor = data.cursor
                done = time.time()
                latencies += [done - uploaded[r.partition_key] for r in data.run_requests]
                next_tick += interval
            time.sleep(0.05)
        row["latency_s"] = [round(x, 1) for x in sorted(latencies)]
        row["messages_deleted"] = queue.deleted

        # The baseline: polling ticks over the same state, after one that drops the
        # events' marks from every row (a switch from events to polling does that once).
        cursor = tick(instance, store, polling, cursor).cursor
        times = []
        for _ in range(3):
            start = time.perf_counter()
            cursor = tick(instance, store, polling, cursor).cursor
            times.append(time.perf_counter() - start)
        row["polling_tick_s"] = round(statistics.median(times), 3)
    del _LISTINGS[bucket]
    print(json.dumps(row), file=sys.stderr)
    return row


def measure_moto(n: int, changes: list[int]) -> dict:
    """The event tick with real S3 notifications and SQS on a moto server (n tenants)."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from moto.server import ThreadedMotoServer

    from jf_pipeline import events
    from jf_pipeline.resources import landing_store_from_uri

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    row: dict = {"tenants": n, "store": "moto S3 + SQS"}
    try:
        s3 = boto3.client("s3")
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)

        def fill(i: int) -> None:
            for name in NAMES:
                s3.put_object(Bucket=bucket, Key=f"{PREFIX}/t{i:06d}/{name}", Body=b"Name\nx\n")

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(fill, range(n)))
        done = events.setup(bucket, PREFIX, f"q-{bucket}", endpoint, "us-east-1")
        store = landing_store_from_uri(f"s3://{bucket}/{PREFIX}")
        policy = SensorPolicy(settle_seconds=0.0, events=done["events"], events_wait_seconds=0)
        polling = SensorPolicy(settle_seconds=0.0)
        with instance_for_test() as instance:
            cursor = tick(instance, store, policy, None).cursor
            start = time.perf_counter()
            tick(instance, store, polling, cursor)
            row["polling_tick_s"] = round(time.perf_counter() - start, 3)
            start = time.perf_counter()
            cursor = tick(instance, store, policy, cursor).cursor  # makes the SQS client
            row["event_tick_first_s"] = round(time.perf_counter() - start, 3)
            start = time.perf_counter()
            cursor = tick(instance, store, policy, cursor).cursor
            row["event_tick_0_s"] = round(time.perf_counter() - start, 3)
            rng = random.Random(1)
            for c in changes:
                tenants = rng.sample(range(n), c)
                with ThreadPoolExecutor(16) as pool:
                    list(
                        pool.map(
                            lambda i: s3.put_object(
                                Bucket=bucket,
                                Key=f"{PREFIX}/t{i:06d}/deals.csv",
                                Body=f"Name\n{rng.random()}\n".encode(),
                            ),
                            tenants,
                        )
                    )
                # Ticks until every change is requested (a tick takes at most 2,000
                # messages and drains for at most 10 s), then one that deletes them.
                requested, ticks, start = 0, 0, time.perf_counter()
                while requested < c and ticks < 50:
                    data = tick(instance, store, policy, cursor)
                    requested, ticks, cursor = (
                        requested + len(data.run_requests),
                        ticks + 1,
                        data.cursor,
                    )
                row[f"event_tick_{c}_s"] = round(time.perf_counter() - start, 3)
                row[f"event_ticks_{c}"] = ticks
                assert requested == c, (requested, c)
                start = time.perf_counter()
                cursor = tick(instance, store, policy, cursor).cursor  # deletes the messages
                row[f"delete_tick_{c}_s"] = round(time.perf_counter() - start, 3)
    finally:
        server.stop()
    print(json.dumps(row), file=sys.stderr)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 10000, 100000])
    parser.add_argument("--changes", default="10,100,1000")
    parser.add_argument("--interval", type=float, default=5.0, help="JF_SENSOR_INTERVAL")
    parser.add_argument("--settle", type=float, default=10.0, help="JF_SETTLE_SECONDS")
    parser.add_argument("--uploads", type=int, default=5, help="latency samples per size")
    parser.add_argument("--moto", type=int, default=0, help="also N tenants on moto S3+SQS")
    parser.add_argument("--moto-only", action="store_true", help="only the --moto run")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the ticks' explanations and moto's request lines
    changes = [int(c) for c in args.changes.split(",")]
    sizes = [] if args.moto_only else args.sizes
    rows = [measure(n, changes, args.uploads, args.interval, args.settle) for n in sizes]
    moto = measure_moto(args.moto, changes) if args.moto else None
    load = os.getloadavg()
    print(
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load[0]:.1f} at the end\n"
    )
    heads = " | ".join(f"event tick, {c:,} changes (s)" for c in changes)
    print(
        f"| tenants | listing tick, nothing changed (s) | polling tick (s) | event tick, no change (s) "
        f"| {heads} | upload to run requested (s), settle {args.settle:g} s, interval "
        f"{args.interval:g} s | cursor (bytes) |"
    )
    print("|---:|---:|---:|---:|" + "---:|" * len(changes) + "---|---:|")
    for r in rows:
        cells = " | ".join(f"{r[f'event_tick_{c}_s']:.3f}" for c in changes)
        print(
            f"| {r['tenants']:,} | {r['first_listing_s']:.1f} | {r['polling_tick_s']:.3f} | "
            f"{r['event_tick_0_s']:.3f} | {cells} | {', '.join(map(str, r['latency_s']))} | "
            f"{r['cursor_bytes']} |"
        )
    if moto:
        cells = "; ".join(
            f"{c:,} changes {moto[f'event_tick_{c}_s']:.2f} s in {moto[f'event_ticks_{c}']} "
            f"tick(s) (+{moto[f'delete_tick_{c}_s']:.2f} s the tick that deletes them)"
            for c in changes
        )
        print(
            f"\nmoto S3 + SQS, {moto['tenants']:,} tenants: polling tick "
            f"{moto['polling_tick_s']:.3f} s; event tick: the first (makes the SQS client) "
            f"{moto['event_tick_first_s']:.2f} s, empty queue {moto['event_tick_0_s']:.3f} s; "
            f"{cells}"
        )


if __name__ == "__main__":
    main()
