"""The landing sensor on a local folder, evaluated tick by tick against a real instance.

Protects change detection: new tenants become partitions and runs; overwrites are found
by content, not by name, size or timestamp; identical bytes and unchanged folders request
nothing; invalid folder names never become partitions.
"""

from __future__ import annotations

import json
import os
import re
import time
from unittest import mock

import pytest
from dagster import build_sensor_context, instance_for_test

from jf_pipeline import sensors
from jf_pipeline.contract import FILE_NAMES
from jf_pipeline.definitions import defs
from jf_pipeline.landing_state import namespace_of, tenant_key
from jf_pipeline.resources import LocalLandingStore, SensorPolicy
from jf_pipeline.sensors import build_sensors
from jf_pipeline_tests.conftest import SAMPLE_TENANTS

landing_sensor, record_failed_runs = build_sensors(interval_seconds=15)


class Ticker:
    """Evaluates the sensor like the daemon: carries the cursor, applies partition adds.

    `advance(seconds)` moves the sensor's clock forward (files keep their real times).
    `settle_seconds` is the sensor policy's settle time (0: files count as settled at once).
    """

    def __init__(self, instance, root, settle_seconds: float = 0.0):
        self.instance, self.root, self.cursor, self.offset = instance, root, None, 0.0
        self.settle_seconds = settle_seconds
        self.policy: dict = {}
        """More `SensorPolicy` fields (the event queue of test_events.py)."""

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def upload(self, path, data: bytes) -> None:
        """Write a file as if at the sensor's clock time."""
        path.write_bytes(data)
        stamp = time.time() + self.offset
        os.utime(path, (stamp, stamp))

    def tick(self):
        return self.tick_with(LocalLandingStore(root=str(self.root)))

    def tick_with(self, store):
        offset = self.offset
        clock = type("Clock", (), {"time": staticmethod(lambda: time.time() + offset)})
        with (
            mock.patch.object(sensors, "time", clock),
            build_sensor_context(
                instance=self.instance,
                instance_ref=self.instance.get_ref(),
                cursor=self.cursor,
                resources={
                    "landing": store,
                    "sensor_policy": SensorPolicy(
                        settle_seconds=self.settle_seconds, **self.policy
                    ),
                },
                definitions=defs,
            ) as context,
        ):
            data = landing_sensor.evaluate_tick(context)
        for request in data.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        self.cursor = data.cursor
        return data


@pytest.fixture
def ticker(persistent_instance, landing_root):
    """Files count as settled at once, unless a test sets a settle time."""
    return Ticker(persistent_instance, landing_root)


def test_first_tick_adds_every_sample_tenant_and_requests_one_run_each(ticker):
    data = ticker.tick()
    assert sorted(r.partition_key for r in data.run_requests) == sorted(SAMPLE_TENANTS)
    assert sorted(ticker.instance.get_dynamic_partitions("tenants")) == sorted(SAMPLE_TENANTS)
    assert all(r.job_name == "ingest_tenant" or r.job_name is None for r in data.run_requests)


def test_unchanged_landing_requests_nothing(ticker):
    ticker.tick()
    data = ticker.tick()
    assert data.run_requests == [] and not data.dynamic_partitions_requests


def test_same_size_overwrite_in_the_same_second_is_a_change(ticker, landing_root):
    ticker.tick()
    path = landing_root / "acme" / "deals.csv"
    stat = path.stat()
    data = path.read_bytes()
    changed = data.replace(b"D-0001", b"D-0X01", 1)
    assert len(changed) == len(data) and changed != data
    path.write_bytes(changed)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same timestamp
    requests = ticker.tick().run_requests
    assert [r.partition_key for r in requests] == ["acme"]


def test_identical_bytes_uploaded_again_are_not_a_change(ticker, landing_root):
    ticker.tick()
    path = landing_root / "initech" / "deals.csv"
    path.write_bytes(path.read_bytes())
    assert ticker.tick().run_requests == []


def test_new_tenant_and_deleted_file_each_request_a_run(ticker, landing_root):
    ticker.tick()
    (landing_root / "newco").mkdir()
    (landing_root / "newco" / "deals.csv").write_bytes(
        (landing_root / "globex" / "deals.csv").read_bytes()
    )
    (landing_root / "acme" / "contacts.csv").unlink()
    data = ticker.tick()
    assert sorted(r.partition_key for r in data.run_requests) == ["acme", "newco"]
    assert "newco" in ticker.instance.get_dynamic_partitions("tenants")


def test_files_the_pipeline_does_not_own_are_ignored(ticker, landing_root):
    ticker.tick()
    (landing_root / "acme" / "import_report.csv").write_text("written back for the admin\n")
    (landing_root / "acme" / "notes.txt").write_text("hello\n")
    assert ticker.tick().run_requests == []


@pytest.mark.parametrize("name", ["UPPER", "has space", "dot.ted", "-leading", "quote'd"])
def test_invalid_tenant_folders_are_skipped_never_partitions(ticker, landing_root, name):
    (landing_root / name).mkdir()
    (landing_root / name / "deals.csv").write_bytes(
        (landing_root / "acme" / "deals.csv").read_bytes()
    )
    data = ticker.tick()
    assert name not in [r.partition_key for r in data.run_requests]
    assert name not in ticker.instance.get_dynamic_partitions("tenants")


def test_a_drop_flipping_between_two_versions_runs_every_time(ticker, landing_root):
    """A, B, A, B: each change is a new run key. (A key made of the new and the previous
    fingerprint repeated at the second B, and Dagster skipped that run: B was never
    published again.)"""
    ticker.tick()
    path = landing_root / "globex" / "deals.csv"
    a = path.read_bytes()
    b = a.replace(b"Proposal", b"Won")
    assert a != b
    keys = []
    for version in (b, a, b, a, b):
        path.write_bytes(version)
        requests = [r for r in ticker.tick().run_requests if r.partition_key == "globex"]
        assert len(requests) == 1
        keys.append(requests[0].run_key)
    assert len(set(keys)) == 5, keys


def test_run_keys_repeat_for_a_repeated_tick_but_not_for_a_revert(ticker, landing_root):
    first = {r.partition_key: r.run_key for r in ticker.tick().run_requests}
    path = landing_root / "globex" / "deals.csv"
    original = path.read_bytes()
    path.write_bytes(original + b"Late,2027-01-01,x@y.example,1,GX-99,GXA-x,Proposal,X,,\n")
    second = ticker.tick().run_requests[0].run_key
    path.write_bytes(original)  # back to the first version
    third = ticker.tick().run_requests[0].run_key
    assert len({first["globex"], second, third}) == 3
    # Re-evaluating a tick from the same cursor yields the same key (no duplicate run).
    ticker.cursor = None
    assert {r.partition_key: r.run_key for r in ticker.tick().run_requests}["globex"] == first[
        "globex"
    ]


def test_files_uploaded_one_after_another_inside_the_settle_window_make_one_run(
    ticker, landing_root, monkeypatch
):
    ticker.settle_seconds = 10.0
    assert len(ticker.tick().run_requests) == 4  # the samples' files are already old
    folder = landing_root / "lateco"
    folder.mkdir()
    ticker.upload(folder / "deals.csv", (landing_root / "acme" / "deals.csv").read_bytes())
    assert ticker.tick().run_requests == []  # just uploaded: wait
    ticker.advance(4)
    ticker.upload(folder / "accounts.csv", (landing_root / "acme" / "accounts.csv").read_bytes())
    assert ticker.tick().run_requests == []
    ticker.advance(4)
    ticker.upload(folder / "contacts.csv", (landing_root / "acme" / "contacts.csv").read_bytes())
    assert ticker.tick().run_requests == []
    ticker.advance(6)
    assert ticker.tick().run_requests == []  # 6 s since the last change
    ticker.advance(5)
    requests = ticker.tick().run_requests
    assert [r.partition_key for r in requests] == ["lateco"]
    # A tenant's first drop: every contract file counts as changed (users.csv included).
    assert requests[0].tags["jf/changed"] == ",".join(sorted(FILE_NAMES))
    ticker.advance(30)
    assert ticker.tick().run_requests == []


def test_a_run_selects_only_assets_downstream_of_the_changed_files(
    ticker, landing_root, warehouse_path
):
    from jf_pipeline_tests.conftest import run_tenant

    ticker.tick()
    assert run_tenant(
        "acme", landing_root, warehouse_path, ticker.instance
    ).success  # clean_* exist now
    contacts = landing_root / "acme" / "contacts.csv"
    contacts.write_bytes(contacts.read_bytes() + b"Zoe,Ng,zoe@acme.example,ACC-001,C-9999,,,,\n")
    request = ticker.tick().run_requests[0]
    assert sorted(k.to_user_string() for k in request.asset_selection) == sorted(
        [
            "raw_contacts",
            "clean_contacts",
            "importable_deals",
            "accounts",
            "importable_contacts",
            "rejected_rows",
        ]
    )


def test_a_tenant_never_cleaned_gets_every_asset_even_for_one_file(ticker, landing_root):
    ticker.tick()
    contacts = landing_root / "acme" / "contacts.csv"
    contacts.write_bytes(contacts.read_bytes() + b"Zoe,Ng,zoe@acme.example,ACC-001,C-9999,,,,\n")
    request = ticker.tick().run_requests[0]
    # raw_* and clean_* of every contract file, and the 4 published tables.
    assert len(request.asset_selection) == 2 * len(FILE_NAMES) + 4


def test_the_cursor_stays_small_and_each_tenant_has_one_short_state_row(ticker, landing_root):
    """Issue 18: the per-tenant state is in the instance's key-value table, not the cursor;
    the cursor is a few bytes at any number of tenants, and a steady tick writes no row."""
    for i in range(200):
        (landing_root / f"t{i:03d}").mkdir()
        (landing_root / f"t{i:03d}" / "deals.csv").write_text(f"Name\n{i}\n")
    ticker.tick()
    small = ticker.cursor
    assert len(small) < 40
    storage = ticker.instance.run_storage
    space = namespace_of(LocalLandingStore(root=str(landing_root)).describe())
    keys = {tenant_key(space, f"t{i:03d}") for i in range(200)} | {tenant_key(space, "acme")}
    rows = storage.get_cursor_values(keys)
    assert len(rows) == 201 and all(len(v) < 120 for v in rows.values())
    ticker.tick()
    assert ticker.cursor == small  # nothing changed: nothing staged, same generation
    assert storage.get_cursor_values(keys) == rows


def test_a_tick_whose_result_was_lost_is_decided_again_with_the_same_run_keys(ticker, landing_root):
    """The state rows are written during the tick, before Dagster commits its cursor and
    run requests. A tick whose result is lost (the daemon died in between) must not leave
    its decisions behind: evaluated again from the committed cursor it requests the same
    runs with the same keys (Dagster skips a key it has), and nothing is lost."""
    ticker.tick()
    committed = ticker.cursor
    path = landing_root / "acme" / "deals.csv"
    path.write_bytes(path.read_bytes() + b"\n")
    lost = ticker.tick()
    (request,) = lost.run_requests
    ticker.cursor = committed  # the daemon never stored that tick
    again = ticker.tick()
    assert [(r.partition_key, r.run_key) for r in again.run_requests] == [("acme", request.run_key)]
    assert ticker.tick().run_requests == []


def test_an_old_json_cursor_is_migrated_without_new_runs(ticker, landing_root):
    """A cursor written before issue 18 (one entry per tenant) is moved into the state
    table on the first tick: the same drops request nothing, a changed one requests its
    run with the next run key."""
    first = ticker.tick()
    keys = {r.partition_key: r.run_key for r in first.run_requests}
    space = namespace_of(LocalLandingStore(root=str(landing_root)).describe())
    rows = ticker.instance.run_storage.get_cursor_values(
        {tenant_key(space, t) for t in SAMPLE_TENANTS}
    )
    old = {key.rsplit("/", 1)[1]: json.loads(value)["s"]["c"] for key, value in rows.items()}
    assert all(isinstance(v, str) and "~1" in v for v in old.values())
    with instance_for_test() as fresh:  # the old deployment's instance: no state rows
        fresh.add_dynamic_partitions("tenants", list(SAMPLE_TENANTS))
        migrated = Ticker(fresh, landing_root)
        migrated.cursor = json.dumps(old)
        assert migrated.tick().run_requests == []
        assert len(migrated.cursor) < 40
        path = landing_root / "acme" / "deals.csv"
        path.write_bytes(path.read_bytes() + b"\n")
        (request,) = migrated.tick().run_requests
        assert request.run_key == f"acme:{request.tags['jf/files']}:2"
        assert keys["acme"].endswith(":1")


def test_a_tick_that_requests_nothing_says_why(ticker, landing_root, monkeypatch):
    """The sensor explains itself instead of a bare "0 runs requested": settling tenants with
    how long they have been quiet, how many are unchanged, and skipped folders with why."""
    ticker.settle_seconds = 10.0
    first = ticker.tick()
    assert len(first.run_requests) == 4 and first.skip_message is None
    assert ticker.tick().skip_message == "4 tenants unchanged"

    (landing_root / "UPPER").mkdir()
    (landing_root / "UPPER" / "deals.csv").write_bytes(b"x\n")
    ticker.upload(
        landing_root / "globex" / "deals.csv",
        (landing_root / "acme" / "deals.csv").read_bytes(),
    )
    # Quiet seconds are whole seconds of the sensor's clock; a slow tick may add one.
    assert re.fullmatch(
        r"globex: settling [01]/10 s; 3 tenants unchanged; "
        r"skipped folder 'UPPER': invalid tenant id",
        ticker.tick().skip_message,
    )
    ticker.advance(4)
    assert re.match(r"globex: settling [45]/10 s; 3 tenants unchanged", ticker.tick().skip_message)
    ticker.advance(7)
    settled = ticker.tick()
    assert [r.partition_key for r in settled.run_requests] == ["globex"]
    assert settled.skip_message is None


def test_a_tick_explanation_stays_short_with_many_tenants():
    lines = sensors.explain_tick(
        [], {f"t{i:03d}": 1.0 for i in range(500)}, 2, {"UP": "invalid tenant id"}, 10.0
    )
    assert lines[:2] == ["t000: settling 1/10 s", "t001: settling 1/10 s"]
    assert "... and 490 more settling" in lines and "2 tenants unchanged" in lines
    assert len(lines) == 13


@pytest.mark.integration
def test_the_sensor_gives_the_publish_pool_its_row_before_runs_race_to(
    tmp_path, postgres_server, landing_root, monkeypatch
):
    """On PostgreSQL, runs that create a pool's row at once fail all but one
    (dagster-io/dagster#33552; seen as one failed run in 40 first runs): the landing sensor,
    which requests every run, creates the publish pool's row from deploy/dagster.yaml's
    default limit before its first run request, once per process, and leaves a limit an
    operator set alone."""
    import shutil

    from dagster import DagsterInstance

    from jf_pipeline.assets import WAREHOUSE_POOL
    from jf_pipeline_tests.conftest import PROJECT

    database = postgres_server.create_database()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for key, value in postgres_server.instance_env(database).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sensors, "_PRIMED_POOLS", set())
    with DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage

        def pools() -> dict:
            return {p.name: (p.limit, p.from_default) for p in storage.get_pool_limits()}

        assert WAREHOUSE_POOL not in pools()
        data = Ticker(instance, landing_root).tick()
        assert data.run_requests  # the first tick requests the sample tenants' runs
        limit = instance.global_op_concurrency_default_limit  # deploy/dagster.yaml's
        assert pools()[WAREHOUSE_POOL] == (limit, True)
        # What Dagster's claim checks before making the row itself: now there is one.
        assert storage.get_concurrency_info(WAREHOUSE_POOL).slot_count == limit

        storage.set_concurrency_slots(WAREHOUSE_POOL, 3)  # an operator's own limit
        monkeypatch.setattr(sensors, "_PRIMED_POOLS", set())  # a restarted code server
        Ticker(instance, landing_root).tick()
        assert pools()[WAREHOUSE_POOL] == (3, False)
