"""Nothing lost: failures mid-publish, a process killed mid-publish, analysts holding the
warehouse open, concurrent writers, transient landing faults, schema drift.

Each test asserts on what is published afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import duckdb
import polars as pl
import pytest

from jf_pipeline import warehouse as wh
from jf_pipeline.contract import IMPORTABLE_DEALS
from jf_pipeline.resources import LandingObject, LocalLandingStore
from jf_pipeline_tests.conftest import PROJECT, SAMPLE_TENANTS, query, run_tenant
from jf_pipeline_tests.test_history import assert_consistent

pytestmark = pytest.mark.integration


def deal_rows(tenant: str, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "deal_unique_id": [f"{tenant}-{i}" for i in range(n)],
            "name": [f"Deal {i}" for i in range(n)],
            "owner_email": ["a@b.example"] * n,
            "account_unique_id": ["A1"] * n,
            "account_name": ["Acme"] * n,
        }
    ).with_columns(
        pl.lit(None, pl.Date).alias("target_close_date"),
        pl.lit(None, pl.Decimal(18, 2)).alias("value"),
        *[
            pl.lit(None, pl.String).alias(c)
            for c in (
                "deal_stage",
                "pipeline_id",
                "project_type",
                "description",
                "account_url",
                "account_industry",
            )
        ],
    )


def publish(path: str, tenant: str, n: int) -> None:
    with wh.writer(path) as writer:
        writer.replace_tenant(
            tenant, {"importable_deals": deal_rows(tenant, n)}, {"outcome": "published"}
        )


def counts(path: str) -> dict[str, int]:
    return dict(query(path, "SELECT tenant_id, count(*) FROM importable_deals GROUP BY ALL"))


def test_an_error_between_delete_and_insert_leaves_the_previous_rows(warehouse_path):
    publish(warehouse_path, "acme", 10)
    publish(warehouse_path, "globex", 7)
    broken = deal_rows("acme", 3).drop("name")  # the INSERT fails after the DELETE ran
    with pytest.raises(pl.exceptions.ColumnNotFoundError), wh.writer(warehouse_path) as writer:
        writer.replace_tenant(
            "acme",
            {"importable_deals": deal_rows("acme", 3), "accounts": broken},
            {"outcome": "published"},
        )
    assert counts(warehouse_path) == {"acme": 10, "globex": 7}
    # The build file, which the next writer starts from, is just as untouched.
    assert counts(str(wh.build_path(warehouse_path))) == {"acme": 10, "globex": 7}


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    from jf_pipeline_tests.test_reliability import publish
    print("publishing", flush=True)
    publish(sys.argv[1], "acme", int(sys.argv[2]))
    print("done", flush=True)
    """
)


@pytest.mark.parametrize("delay", [0.4, 1.2])
def test_a_process_killed_mid_publish_leaves_complete_rows(warehouse_path, tmp_path, delay):
    publish(warehouse_path, "acme", 1_000)
    publish(warehouse_path, "globex", 5)
    script = tmp_path / "publish.py"
    script.write_text(KILL_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), warehouse_path, "2000000", str(PROJECT)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "publishing"
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # Whether the kill landed before or after the commit, each file holds one whole set.
    for path in (warehouse_path, str(wh.build_path(warehouse_path))):
        found = counts(path)
        assert found["globex"] == 5
        assert found["acme"] in (1_000, 2_000_000)
        # The deals' history was in the same transaction: its open versions are those rows.
        assert_consistent(path)
    # And the next publish works from there.
    publish(warehouse_path, "acme", 3)
    assert counts(warehouse_path) == {"acme": 3, "globex": 5}
    assert_consistent(warehouse_path)


ANALYST_SCRIPT = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1])  # read-write: the worst case for a writer
    count = "SELECT count(*) FROM importable_deals"
    print(con.execute(count).fetchone()[0], flush=True)
    sys.stdin.readline()  # hold the connection open until told
    print(con.execute(count).fetchone()[0], flush=True)
    """
)


def test_an_analyst_holding_the_warehouse_open_never_blocks_a_run(
    landing_root, warehouse_path, instance, tmp_path
):
    assert run_tenant("acme", landing_root, warehouse_path, instance).success
    script = tmp_path / "analyst.py"
    script.write_text(ANALYST_SCRIPT)
    analyst = subprocess.Popen(
        [sys.executable, str(script), warehouse_path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert analyst.stdout.readline().strip() == "30"
        started = time.monotonic()
        assert run_tenant("globex", landing_root, warehouse_path, instance).success
        assert time.monotonic() - started < 30
        # A new session sees the new rows; the analyst's session keeps its snapshot.
        assert counts(warehouse_path) == {"acme": 30, "globex": 20}
        analyst.stdin.write("\n")
        analyst.stdin.flush()
        assert analyst.stdout.readline().strip() == "30"
    finally:
        analyst.kill()
        analyst.wait()


def test_concurrent_writers_for_different_tenants_are_serialised(landing_root, warehouse_path):
    jf = [
        sys.executable,
        "-m",
        "jf_pipeline.cli",
        "ingest",
        "--landing",
        str(landing_root),
        "--warehouse",
    ]
    processes = [
        subprocess.Popen(
            [*jf, warehouse_path, "--tenant", t],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for t in SAMPLE_TENANTS
    ]
    for p in processes:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()
    assert counts(warehouse_path) == {"acme": 30, "globex": 20, "initech": 15, "umbrella": 12}
    assert query(warehouse_path, "SELECT count(DISTINCT tenant_id) FROM ingestions") == [(4,)]


HOLDER_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from jf_pipeline import warehouse as wh
    from jf_pipeline_tests.test_reliability import deal_rows
    with wh.writer(sys.argv[1]) as w:
        w.replace_tenant("acme", {"importable_deals": deal_rows("acme", 7)}, {"outcome": "published"})
        # What the snapshot copy does: open and close a handle on the build file. The kernel
        # drops DuckDB's own (fcntl) lock on it here, while this writer is still publishing.
        open(wh.build_path(sys.argv[1]), "rb").close()
        print("holding", flush=True)
        sys.stdin.readline()
    print("published", flush=True)
    """
)


def test_a_writer_keeps_the_warehouse_until_its_snapshot_is_swapped_in(warehouse_path, tmp_path):
    """Protects the writers' lock: DuckDB's lock on the build file is gone once its holder
    closes any handle on the file, as the snapshot copy does; a second writer must still
    wait (it would otherwise delete the first's swap file as stale and fail its publish)."""
    publish(warehouse_path, "globex", 5)
    script = tmp_path / "holder.py"
    script.write_text(HOLDER_SCRIPT)
    holder = subprocess.Popen(
        [sys.executable, str(script), warehouse_path, str(PROJECT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with pytest.raises(wh.WarehouseBusy) as busy, wh.writer(warehouse_path, timeout=1.0):
            pass
        assert 1.0 <= time.monotonic() - started < 10
        message = str(busy.value)
        assert f"held by pid {holder.pid} since " in message
        assert "nothing was written" in message
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "published"
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()
        holder.wait()
    publish(warehouse_path, "initech", 3)
    assert counts(warehouse_path) == {"acme": 7, "globex": 5, "initech": 3}


def test_jf_ingest_beside_a_long_publish_gives_up_with_a_clear_message(
    landing_root, warehouse_path, tmp_path
):
    """Protects `jf ingest` when another writer holds the warehouse longer than
    JF_WRITER_WAIT_SECONDS: one clear line naming the holder, exit 1, no traceback, no
    second wait; the next `jf ingest` publishes the tenant."""
    publish(warehouse_path, "globex", 5)
    script = tmp_path / "holder.py"
    script.write_text(HOLDER_SCRIPT.replace("open(wh.build_path", "print or open(wh.build_path"))
    holder = subprocess.Popen(
        [sys.executable, str(script), warehouse_path, str(PROJECT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    jf = [sys.executable, "-m", "jf_pipeline.cli", "ingest", "--landing", str(landing_root)]
    jf += ["--warehouse", warehouse_path]
    env = {**os.environ, "JF_WRITER_WAIT_SECONDS": "2"}
    try:
        assert holder.stdout.readline().strip() == "holding"
        for args in (["--tenant", "acme"], []):  # named, and every changed tenant
            started = time.monotonic()
            done = subprocess.run(
                [*jf, *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120
            )
            assert time.monotonic() - started < 60
            assert done.returncode == 1, done.stderr
            assert "Traceback" not in done.stderr
            assert f"held by pid {holder.pid} since " in done.stderr
            assert "not logged as failed while the warehouse is busy" in done.stderr
            if not args:  # the others would wait as long again: it stops after the first
                assert "3 more tenant(s) not ingested while the warehouse is busy" in done.stderr
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "published"
    finally:
        holder.kill()
        holder.wait()
    done = subprocess.run(
        [*jf, "--tenant", "acme"], cwd=PROJECT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert counts(warehouse_path) == {"acme": 30, "globex": 5}


_COUNTER_LOCK = threading.Lock()


class FlakyLandingStore(LocalLandingStore):
    """A landing store whose reads fail like a throttled or dropped S3 connection: every
    read of `always_failing_tenant`, and the first `failures_left` reads of deals.csv (the
    one file every attempt reads, whichever of the files read in parallel fails first)."""

    failures_left: int = 0
    always_failing_tenant: str = ""

    def read(self, tenant: str, name: str) -> LandingObject | None:
        if tenant == self.always_failing_tenant:
            raise ConnectionError(f"connection reset while reading {tenant}/{name}")
        if name == "deals.csv":
            counter = self.root + ".failures"
            with _COUNTER_LOCK:
                left = int(open(counter).read()) if os.path.exists(counter) else self.failures_left
                with open(counter, "w") as f:
                    f.write(str(max(left - 1, 0)))
            if left > 0:
                raise ConnectionError(
                    f"SlowDown: please reduce your request rate ({tenant}/{name})"
                )
        return super().read(tenant, name)


def test_transient_read_failures_are_retried(landing_root, warehouse_path, instance):
    """A throttled read fails the attempt; the step is retried and the third attempt
    publishes the whole drop."""
    store = FlakyLandingStore(root=str(landing_root), failures_left=2)
    result = run_tenant("initech", store, warehouse_path, instance)
    assert result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 2
    assert counts(warehouse_path) == {"initech": 15}


def test_a_tenant_failing_after_its_retries_does_not_block_the_others(
    landing_root, warehouse_path, instance
):
    store = FlakyLandingStore(root=str(landing_root), always_failing_tenant="globex")
    outcomes = {
        t: run_tenant(t, store, warehouse_path, instance).success
        for t in ("acme", "globex", "umbrella")
    }
    assert outcomes == {"acme": True, "globex": False, "umbrella": True}
    assert counts(warehouse_path) == {"acme": 30, "umbrella": 12}


def test_schema_drift_across_runs_never_breaks_the_tables(landing_root, warehouse_path, instance):
    deals = landing_root / "acme" / "deals.csv"
    original = pl.read_csv(deals, infer_schema=False)
    assert run_tenant("acme", landing_root, warehouse_path, instance).success
    # The customer reorders columns, drops optional ones and adds new ones.
    drifted = original.select(
        list(reversed([c for c in original.columns if c not in ("deal_stage", "description")]))
    ).with_columns(pl.lit("x").alias("Region"), pl.lit("y").alias("Forecast Category"))
    drifted.write_csv(deals)
    assert run_tenant("acme", landing_root, warehouse_path, instance).success
    assert query(warehouse_path, "SELECT count(*), count(deal_stage) FROM importable_deals") == [
        (30, 0)
    ]
    columns = [
        r[0]
        for r in query(
            warehouse_path,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'importable_deals' ORDER BY ordinal_position",
        )
    ]
    assert "Region" not in columns and "region" not in columns
    assert columns == IMPORTABLE_DEALS.names  # the contract's, in its order


def test_a_warehouse_missing_a_contract_column_is_migrated(landing_root, warehouse_path, instance):
    assert run_tenant("acme", landing_root, warehouse_path, instance).success
    build = str(wh.build_path(warehouse_path))
    con = duckdb.connect(build)
    con.execute("ALTER TABLE importable_deals DROP COLUMN description")
    con.close()
    assert run_tenant("globex", landing_root, warehouse_path, instance).success
    assert query(
        warehouse_path,
        "SELECT count(*), count(description) FROM importable_deals WHERE tenant_id = 'globex'",
    ) == [(20, 0)]
