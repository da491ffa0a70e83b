"""The landing sensor on a local folder, evaluated tick by tick against a real instance.

Protects change detection: new tenants become partitions and runs; overwrites are found
by content, not by name, size or timestamp; identical bytes and unchanged folders request
nothing; invalid folder names never become partitions.
"""

from __future__ import annotations

import os

import pytest
from dagster import build_sensor_context

from jf_pipeline.definitions import defs
from jf_pipeline.resources import LocalLandingStore
from jf_pipeline.sensors import landing_sensor
from jf_pipeline_tests.conftest import SAMPLE_TENANTS


class Ticker:
    """Evaluates the sensor like the daemon: carries the cursor, applies partition adds."""

    def __init__(self, instance, root):
        self.instance, self.root, self.cursor = instance, root, None

    def tick(self):
        return self.tick_with(LocalLandingStore(root=str(self.root)))

    def tick_with(self, store):
        with build_sensor_context(
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            cursor=self.cursor,
            resources={"landing": store},
            definitions=defs,
        ) as context:
            data = landing_sensor.evaluate_tick(context)
        for request in data.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        self.cursor = data.cursor
        return data


@pytest.fixture
def ticker(instance, landing_root):
    return Ticker(instance, landing_root)


def test_first_tick_adds_every_sample_tenant_and_requests_one_run_each(ticker, instance):
    data = ticker.tick()
    assert sorted(r.partition_key for r in data.run_requests) == sorted(SAMPLE_TENANTS)
    assert sorted(instance.get_dynamic_partitions("tenants")) == sorted(SAMPLE_TENANTS)
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


def test_new_tenant_and_deleted_file_each_request_a_run(ticker, landing_root, instance):
    ticker.tick()
    (landing_root / "newco").mkdir()
    (landing_root / "newco" / "deals.csv").write_bytes(
        (landing_root / "globex" / "deals.csv").read_bytes()
    )
    (landing_root / "acme" / "contacts.csv").unlink()
    data = ticker.tick()
    assert sorted(r.partition_key for r in data.run_requests) == ["acme", "newco"]
    assert "newco" in instance.get_dynamic_partitions("tenants")


def test_files_the_pipeline_does_not_own_are_ignored(ticker, landing_root):
    ticker.tick()
    (landing_root / "acme" / "import_report.csv").write_text("written back for the admin\n")
    (landing_root / "acme" / "notes.txt").write_text("hello\n")
    assert ticker.tick().run_requests == []


@pytest.mark.parametrize("name", ["UPPER", "has space", "dot.ted", "-leading", "quote'd"])
def test_invalid_tenant_folders_are_skipped_never_partitions(ticker, landing_root, instance, name):
    (landing_root / name).mkdir()
    (landing_root / name / "deals.csv").write_bytes(
        (landing_root / "acme" / "deals.csv").read_bytes()
    )
    data = ticker.tick()
    assert name not in [r.partition_key for r in data.run_requests]
    assert name not in instance.get_dynamic_partitions("tenants")


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
