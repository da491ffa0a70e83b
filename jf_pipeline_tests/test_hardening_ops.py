"""Operations hardening: the publish guard cannot be walked down and guards every dataset,
refusals and failures are visible and recorded, the analysts' snapshot is never opened for
writing, a killed swap leaves no litter, customer text cannot drive a terminal, and a drop
whose run died is requested again.

Each test asserts on what is published in DuckDB, what the commands print, or exit codes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from unittest import mock

import pytest
from dagster import DagsterRunStatus, build_sensor_context

from jf_pipeline import sensors
from jf_pipeline import warehouse as wh
from jf_pipeline.approval import approval_run_config
from jf_pipeline.cli import main
from jf_pipeline.definitions import defs
from jf_pipeline.resources import LocalLandingStore, SensorPolicy
from jf_pipeline_tests.conftest import check_results, query, run_tenant

pytestmark = pytest.mark.integration

DEALS_HEADER = (
    "deal_unique_id,name,owner_email,account_unique_id,account_name,target_close_date,value\n"
)


def write_deals(folder, n: int) -> None:
    """`n` distinct deals, each with its own account."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(
        f"D{i},Deal {i},owner{i}@example.com,A{i},Account {i},2026-{i % 12 + 1:02d}-{i % 28 + 1:02d},"
        f"{1000 + i}.50\n"
        for i in range(n)
    )
    (folder / "deals.csv").write_text(DEALS_HEADER + rows)


def ingestion_log(warehouse: str, tenant: str) -> list[tuple]:
    return query(
        warehouse,
        "SELECT outcome, deals_published, reason, approved, approved_by FROM ingestions "
        "WHERE tenant_id = ? ORDER BY finished_at",
        [tenant],
    )


def published_count(warehouse: str, table: str, tenant: str) -> int:
    sql = f"SELECT count(*) FROM {wh.ident(table)} WHERE tenant_id = ?"  # noqa: S608
    return query(warehouse, sql, [tenant])[0][0]


# --- item 7: the guard ------------------------------------------------------------------------


def test_deals_cannot_be_walked_down_by_drops_each_within_the_allowed_share(
    tmp_path, warehouse_path, instance
):
    """1,000 -> 510 is within the 50 % share; 510 -> 260 is too, but it is 74 % below the
    largest recent publish (1,000), so it is refused and the 510 deals stay."""
    landing = tmp_path / "landing"
    for n in (1_000, 510):
        write_deals(landing / "walk", n)
        assert run_tenant("walk", landing, warehouse_path, instance).success
    write_deals(landing / "walk", 260)
    result = run_tenant("walk", landing, warehouse_path, instance)
    guard = check_results(result)["publish_guard"]
    assert not result.success and not guard.passed
    assert "from 1000 to 260" in guard.description
    assert published_count(warehouse_path, "importable_deals", "walk") == 510
    log = ingestion_log(warehouse_path, "walk")
    assert [row[0] for row in log] == ["published", "published", "refused"]
    assert "from 1000 to 260" in log[-1][2] and log[-1][3] is False


def test_contacts_and_accounts_are_guarded_and_an_approval_is_recorded_and_resets_the_baseline(
    landing_root, warehouse_path, instance
):
    """acme's contacts file cut to its header (40 -> 0) and accounts.csv cut to 2 of its
    rows are refused; the approved run publishes them and records who approved; the next
    drop is compared with the approved counts."""
    assert run_tenant("acme", landing_root, warehouse_path, instance).success
    contacts = landing_root / "acme" / "contacts.csv"
    contacts.write_text(contacts.read_text().splitlines(keepends=True)[0])
    refused = run_tenant("acme", landing_root, warehouse_path, instance)
    guard = check_results(refused)["publish_guard"]
    assert not refused.success
    assert "the valid contact count would fall from 40 to 0" in guard.description
    assert published_count(warehouse_path, "importable_contacts", "acme") == 40
    assert ingestion_log(warehouse_path, "acme")[-1][:4] == (
        "refused",
        None,
        guard.description.split(": ", 1)[1],
        False,
    )

    approve = approval_run_config("dana@jointflows", None)
    approved = run_tenant("acme", landing_root, warehouse_path, instance, run_config=approve)
    assert approved.success
    assert published_count(warehouse_path, "importable_contacts", "acme") == 0
    outcome, _, reason, was_approved, approved_by = ingestion_log(warehouse_path, "acme")[-1]
    assert (outcome, was_approved, approved_by) == ("published", True, "dana@jointflows")
    assert "contact count would fall from 40 to 0" in reason
    assert query(
        warehouse_path,
        "SELECT count(*) FROM ingestions WHERE approved AND approved_at IS NOT NULL",
    ) == [(1,)]
    # After the approval the baseline is the approved drop: an unchanged drop publishes.
    assert run_tenant("acme", landing_root, warehouse_path, instance).success


def test_a_sharp_fall_in_accounts_alone_is_refused(tmp_path, warehouse_path, instance):
    """Deals keep their count, but accounts.csv loses most of its accounts."""
    landing = tmp_path / "landing"
    write_deals(landing / "acc", 10)
    accounts = "unique_id,name,url\n" + "".join(
        f"X{i},Extra {i},x{i}.example\n" for i in range(100)
    )
    (landing / "acc" / "accounts.csv").write_text(accounts)
    assert run_tenant("acc", landing, warehouse_path, instance).success
    assert published_count(warehouse_path, "accounts", "acc") == 110
    (landing / "acc" / "accounts.csv").write_text("unique_id,name,url\nX1,Extra 1,x1.example\n")
    result = run_tenant("acc", landing, warehouse_path, instance)
    assert not result.success
    assert (
        "account count would fall from 110 to 11"
        in check_results(result)["publish_guard"].description
    )
    assert published_count(warehouse_path, "accounts", "acc") == 110


def test_plain_jf_ingest_exits_non_zero_while_a_tenant_stays_refused(
    landing_of, warehouse_path, capsys
):
    """A refused drop is not 'up to date': every later plain `jf ingest` exits 1 and names
    the tenant and the reason, until the drop changes or is approved."""
    landing_root = landing_of("globex")
    args = ["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path]
    assert main(args) == 0
    deals = landing_root / "globex" / "deals.csv"
    deals.write_text("".join(deals.read_text().splitlines(keepends=True)[:3]))
    assert main(args) == 1
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "globex: still refused by the publish guard" in err
    assert "from 20 to 2" in err and "jf approve globex" in err
    assert main([*args, "--tenant", "globex", "--approve"]) == 0
    assert main(args) == 0


# --- item 8: an analyst holding the snapshot read-write ---------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1])  # read-write, as a careless analyst would
    print("holding", flush=True)
    sys.stdin.readline()
    """
)


def test_jf_ingest_and_status_work_while_an_analyst_holds_the_snapshot_read_write(
    landing_of, publish_samples, warehouse_path, tmp_path, capsys
):
    """An analyst's process holds warehouse.duckdb read-write (DuckDB then refuses every
    other process, even read-only): `jf ingest` still publishes (it writes the build file and
    swaps the snapshot under the analyst) and `jf status` still answers, without a
    traceback. (jf runs in-process here: the lock is the analyst process's either way.)"""
    landing_root = landing_of("acme", "globex")
    publish_samples("acme")
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script), warehouse_path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        args = ["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path]
        assert main(args) == 0
        assert "Traceback" not in capsys.readouterr().err
        assert main(["status", "--json", "--warehouse", warehouse_path]) == 0
        status = json.loads(capsys.readouterr().out)
        assert {row["tenant_id"]: row["deals"] for row in status} == {"acme": 30, "globex": 20}
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    # The snapshot was swapped under the analyst: new sessions see every tenant.
    assert query(warehouse_path, "SELECT count(DISTINCT tenant_id) FROM importable_deals") == [(2,)]


# --- item 9: stale swap files, terminal output ------------------------------------------------


def test_a_swap_temp_file_left_by_a_killed_writer_is_removed_by_the_next_publish(
    landing_root, warehouse_path, instance, tmp_path
):
    assert run_tenant("acme", landing_root, warehouse_path, instance).success
    folder = tmp_path
    stale = [
        folder / ".warehouse.duckdb.swap-99999.tmp",
        folder / ".warehouse.duckdb.4242.tmp",  # the name older versions used
    ]
    for path in stale:
        shutil.copyfile(warehouse_path, path)  # full size, as a kill mid-copy leaves it
    unrelated = folder / ".warehouse.duckdb.notes.tmp"
    unrelated.write_text("not ours")
    assert run_tenant("globex", landing_root, warehouse_path, instance).success
    assert not any(p.exists() for p in stale)
    assert unrelated.read_text() == "not ours"
    assert [p.name for p in folder.glob(".warehouse.duckdb*")] == [unrelated.name]
    assert published_count(warehouse_path, "importable_deals", "globex") == 20


def test_control_characters_in_values_are_escaped_in_text_output_and_exact_in_json(
    tmp_path, warehouse_path, instance, capsys
):
    landing = tmp_path / "landing"
    write_deals(landing / "ansi", 3)
    evil = "\x1b]0;pwned\x07\x1b[2J\rbad"
    deals = landing / "ansi" / "deals.csv"
    deals.write_text(deals.read_text() + f"D9,Deal 9,{evil},A9,Account 9,2026-01-01,5\n")
    assert run_tenant("ansi", landing, warehouse_path, instance).success
    for command in (
        ["rejects", "ansi"],
        ["sql", "SELECT value, message FROM rejected_rows"],
        ["status"],
    ):
        assert main([*command, "--warehouse", warehouse_path]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\r" not in out, command
        if command[0] != "status":
            assert "\\x1b]0;pwned\\x07\\x1b[2J\\x0dbad" in out
    assert main(["rejects", "ansi", "--json", "--warehouse", warehouse_path]) == 0
    values = [row["value"] for row in json.loads(capsys.readouterr().out)]
    assert evil in values


# --- item 1: a drop whose run failed before publishing ---------------------------------------


class FailingStore(LocalLandingStore):
    """Reads that fail for good, as when the worker dies while reading: the step is not
    retried within the run (its retries are spent at once; retries that run out are
    test_reliability's), so the run fails and only the sensor can ask again."""

    def read(self, tenant, name):
        from dagster import Failure

        raise Failure("worker lost while reading", allow_retries=False)


POLICY = SensorPolicy(settle_seconds=0.0)
LANDING_SENSOR, _ = sensors.build_sensors(interval_seconds=15)


def tick(instance, landing_root, cursor, at):
    clock = type("Clock", (), {"time": staticmethod(lambda: at)})
    with (
        mock.patch.object(sensors, "time", clock),
        build_sensor_context(
            instance=instance,
            instance_ref=instance.get_ref(),
            cursor=cursor,
            resources={
                "landing": LocalLandingStore(root=str(landing_root)),
                "sensor_policy": POLICY,
            },
            definitions=defs,
        ) as context,
    ):
        data = LANDING_SENSOR.evaluate_tick(context)
    for request in data.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return data


def launch(instance, request, store, warehouse_path):
    """Execute a sensor's run request in-process with the ingest_tenant job, as the daemon
    would launch it."""
    from dagster import Definitions

    from jf_pipeline.definitions import all_assets, build_resources
    from jf_pipeline.resources import Warehouse

    job = Definitions(
        assets=all_assets,
        jobs=[sensors.ingest_tenant],
        resources=build_resources(store, Warehouse(path=warehouse_path)),
    ).resolve_job_def("ingest_tenant")
    return job.execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        asset_selection=request.asset_selection,
        tags=request.tags,
        raise_on_error=False,
    )


def test_a_drop_whose_run_failed_before_publishing_is_requested_again_with_backoff(
    persistent_instance, landing_root, warehouse_path, monkeypatch, tmp_path
):
    """The run of initech's drop fails while reading; the failure is logged (`jf status`
    says failed, not published); after the backoff the sensor requests the same drop again
    (new run key), which publishes."""
    monkeypatch.setenv("JF_STORAGE", str(tmp_path / "storage"))
    for other in ("acme", "globex", "umbrella"):
        shutil.rmtree(landing_root / other)
    instance = persistent_instance
    now = time.time()
    first = tick(instance, landing_root, None, now)
    (request,) = first.run_requests
    failed = launch(instance, request, FailingStore(root=str(landing_root)), warehouse_path)
    assert not failed.success
    assert instance.get_run_by_id(failed.run_id).status == DagsterRunStatus.FAILURE
    # What the record_failed_runs sensor does for the daemon:
    assert wh.record_failure(
        warehouse_path, "initech", failed.run_id, request.tags["jf/files"], "worker lost"
    )
    status = wh.tenant_status(warehouse_path).row(0, named=True)
    assert (status["tenant_id"], status["outcome"], status["reason"]) == (
        "initech",
        "failed",
        "worker lost",
    )

    # Within the backoff nothing is requested; after it, the same drop again.
    assert tick(instance, landing_root, first.cursor, now + 1).run_requests == []
    ended = instance.get_run_record_by_id(failed.run_id).end_time
    assert tick(instance, landing_root, first.cursor, ended + 30).run_requests == []
    later = ended + POLICY.rerequest_backoff_seconds + 1
    retry = tick(instance, landing_root, first.cursor, later)
    (again,) = retry.run_requests
    assert again.partition_key == "initech" and again.run_key != request.run_key
    assert again.tags["jf/attempt"] == "1"
    assert launch(
        instance, again, LocalLandingStore(root=str(landing_root)), warehouse_path
    ).success
    assert published_count(warehouse_path, "importable_deals", "initech") == 15
    # Published now: nothing more is requested.
    assert tick(instance, landing_root, retry.cursor, later + 10_000).run_requests == []


def test_a_drop_that_keeps_failing_is_re_requested_a_bounded_number_of_times(
    persistent_instance, landing_root, warehouse_path, monkeypatch, tmp_path
):
    """... and one that keeps failing is asked for MAX_REREQUESTS times, then left alone."""
    monkeypatch.setenv("JF_STORAGE", str(tmp_path / "storage"))
    for other in ("acme", "globex", "umbrella"):
        shutil.rmtree(landing_root / other)
    instance, at = persistent_instance, time.time()
    data = tick(instance, landing_root, None, at)
    cursor, attempts = data.cursor, 0
    request = data.run_requests[0]
    while True:
        run = launch(instance, request, FailingStore(root=str(landing_root)), warehouse_path)
        assert not run.success
        ended = instance.get_run_record_by_id(run.run_id).end_time
        # Not within its backoff (which doubles each attempt) ...
        assert not tick(instance, landing_root, cursor, ended + 1).run_requests
        at = ended + POLICY.rerequest_backoff_seconds * 2**attempts + 1
        data = tick(instance, landing_root, cursor, at)
        if not data.run_requests:
            break
        (request,) = data.run_requests
        attempts += 1
        assert attempts <= sensors.MAX_REREQUESTS
    assert attempts == sensors.MAX_REREQUESTS


def test_a_failure_overtaken_by_a_later_publish_is_not_recorded(
    landing_root, warehouse_path, instance
):
    """A run that read a version replaced meanwhile fails (LandingChanged) after the run
    for the newer version published: `jf status` must keep saying published. (Found by an
    outside attack: the late failure row made status say `failed` for a published drop.)"""
    from datetime import UTC, datetime, timedelta

    assert run_tenant("acme", landing_root, warehouse_path, instance).success
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    assert not wh.record_failure(
        warehouse_path, "acme", "stale-run", None, "acme changed", run_started_at=long_ago
    )
    assert wh.tenant_status(warehouse_path).row(0, named=True)["outcome"] == "published"
    # A failure of a run that started after the publish is recorded.
    assert wh.record_failure(
        warehouse_path, "acme", "later-run", None, "worker lost", run_started_at=datetime.now(UTC)
    )
    assert wh.tenant_status(warehouse_path).row(0, named=True)["outcome"] == "failed"


def test_jf_ingest_brings_a_snapshot_left_behind_by_a_killed_swap_up_to_date(
    landing_of, warehouse_path, tmp_path, capsys
):
    """A writer killed between its commit and the snapshot swap leaves the commit in the
    build file, the old rows in the snapshot and a full-size swap file; the next plain
    `jf ingest` (with nothing new to ingest) must repair it, not report "nothing to ingest"
    over a stale snapshot. (Found by an outside attack.)"""
    import duckdb

    landing_root = landing_of("acme")

    args = ["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path]
    assert main(args) == 0
    # What the killed writer committed: acme's deals moved stage, in the build file only.
    build = wh.build_path(warehouse_path)
    con = duckdb.connect(str(build))
    con.execute("UPDATE importable_deals SET deal_stage = 'Won' WHERE tenant_id = 'acme'")
    con.execute("CHECKPOINT")
    con.close()
    swap = tmp_path / ".warehouse.duckdb.swap-99999.tmp"
    shutil.copyfile(build, swap)  # the half-done copy
    won = "SELECT count(*) FROM importable_deals WHERE tenant_id = 'acme' AND deal_stage = 'Won'"
    assert query(warehouse_path, won) == [(0,)]

    capsys.readouterr()
    assert main(args) == 0
    assert "brought up to date" in capsys.readouterr().err
    assert query(warehouse_path, won) == [(30,)]
    assert not swap.exists()
    assert main(args) == 0 and "brought up to date" not in capsys.readouterr().err


def test_status_survives_an_analyst_who_wrote_into_the_snapshot_and_was_killed(
    landing_of, warehouse_path, tmp_path
):
    """An analyst who writes into the snapshot (against the README's advice) and is killed
    leaves a WAL that belongs to a replaced file: DuckDB then refuses to open the snapshot.
    `jf status` reads through the build file instead, and the next publish removes the
    orphaned WAL. (Found by an outside attack: a traceback, and a snapshot that stayed
    unreadable.)"""
    landing_root = landing_of("acme")
    args = ["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path]
    assert main(args) == 0
    script = tmp_path / "writer.py"
    script.write_text(
        "import sys, duckdb, os\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "con.execute('CREATE TABLE mine AS SELECT 1 AS x')\n"
        "print('written', flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    subprocess.run([sys.executable, str(script), warehouse_path], capture_output=True, timeout=60)
    deals = landing_root / "acme" / "deals.csv"
    deals.write_text(deals.read_text().replace("Proposal", "Won"))
    assert main(args) == 0  # publishes and swaps the snapshot
    assert not os.path.exists(warehouse_path + ".wal")
    assert main(["status", "--json", "--warehouse", warehouse_path]) == 0
    won = (
        "SELECT count(*) > 0 FROM importable_deals WHERE tenant_id = 'acme' AND deal_stage = 'Won'"
    )
    assert query(warehouse_path, won) == [(True,)]
