"""`jf ingest` calls the steps directly (jf_pipeline/steps.py), without Dagster; the ingest
job's run calls them through the assets. Both must leave the same warehouse and the same
customer files, drop after drop: a first publish, a change (history), a drop the guard
refuses, the refusal approved, and a tenant's settings (mapping, stages, default owner).

The drops include a generated tenant of 3,000 mostly distinct deals, where the cleaning's
and the history's fast paths switch on, next to the four sample tenants.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import DagsterInstance

from jf_pipeline import cli, steps
from jf_pipeline import warehouse as wh
from jf_pipeline.approval import approval_run_config
from jf_pipeline.contract import HISTORY_TABLES, TABLES
from jf_pipeline.core.landing import file_versions, survey
from jf_pipeline.core.tenant_settings import Change
from jf_pipeline.onboarding import add, set_settings
from jf_pipeline.resources import LocalLandingStore, Warehouse
from jf_pipeline_tests.conftest import SAMPLE_LANDING, copy_samples, run_tenant

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from generate import write_drop  # noqa: E402

RUN_SPECIFIC = re.compile(r"(^|_)(run_id|ingestion_id)$|_at$|^valid_(from|to)$")
"""Columns that name the run or its time; everything else must be equal."""
TIMES = re.compile(rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2}( UTC)?")


def _tables(path: str, root: Path | None = None) -> dict[str, pl.DataFrame]:
    """Every table's rows (and the history views'), run-specific columns left out, the
    landing root's path masked."""
    con = duckdb.connect(path, read_only=True)
    try:
        found = {}
        for name in [*TABLES, *HISTORY_TABLES]:
            columns = [r[0] for r in con.execute(f"DESCRIBE {wh.ident(name)}").fetchall()]
            kept = [c for c in columns if not RUN_SPECIFIC.search(c)]
            listed = ", ".join(wh.ident(c) for c in kept)
            frame = wh.to_polars(con.sql(f"SELECT {listed} FROM {wh.ident(name)}"))  # noqa: S608
            if root is not None:
                frame = frame.with_columns(
                    pl.col(pl.String).str.replace_all(str(root), "<root>", literal=True)
                )
            found[name] = frame.sort(pl.all(), nulls_last=True)
        return found
    finally:
        con.close()


def _customer_files(root: Path) -> dict[str, bytes]:
    """Every file a run wrote into the tenant folders, dated copies left out, times masked."""
    return {
        str(p.relative_to(root)): TIMES.sub(b"<time>", p.read_bytes())
        for p in sorted(root.glob("*/jointflows_*"))
        if not re.search(r"_\d{8}T\d{6}Z\.", p.name)
    }


class _Log:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    def warning(self, msg: str) -> None:
        self.lines.append(msg)


def _both(tmp_path: Path):
    """Two identical landing zones and warehouses: one ingested by Dagster runs of the
    assets, one by the steps as jf ingest calls them."""
    sides = {}
    for side in ("dagster", "direct"):
        root = tmp_path / side / "landing"
        copy_samples(SAMPLE_LANDING, root)
        write_drop(3_000, root / "bench")
        sides[side] = (root, str(tmp_path / side / "w.duckdb"))
    return sides


def _ingest(sides, instance, tenants, approve_by: str | None = None) -> dict[str, str]:
    """Each tenant once on each side; returns tenant -> outcome (the same on both sides)."""
    outcomes = {}
    for tenant in tenants:
        root, path = sides["dagster"]
        config = None
        if approve_by:
            version = file_versions(
                survey(LocalLandingStore(root=str(root)).list_files()).tenants[tenant]
            )
            config = approval_run_config(approve_by, version)
        result = run_tenant(tenant, root, path, instance, run_config=config)
        root, path = sides["direct"]
        store = LocalLandingStore(root=str(root))
        version = file_versions(survey(store.list_files()).tenants[tenant])
        direct = steps.ingest_tenant(
            store,
            Warehouse(path=path),
            tenant,
            _Log(),
            approved_by=approve_by,
            approved_version=version if approve_by else "",
        )
        assert direct.success == result.success, (tenant, direct.error)
        assert direct.error is None
        outcomes[tenant] = direct.published.plan.outcome
    return outcomes


def _assert_same(sides) -> None:
    dagster, direct = (_tables(sides[s][1], sides[s][0]) for s in ("dagster", "direct"))
    for name in TABLES:
        differ = [c for c in dagster[name].columns if not dagster[name][c].equals(direct[name][c])]
        assert dagster[name].height == direct[name].height and not differ, (name, differ)
    assert _customer_files(sides["dagster"][0]) == _customer_files(sides["direct"][0])


def _edit(sides, tenant: str, name: str, edit) -> None:
    for root, _ in sides.values():
        path = root / tenant / name
        path.write_bytes(edit(path.read_bytes()))


def test_jf_ingest_without_dagster_publishes_what_the_dagster_run_publishes(tmp_path):
    sides = _both(tmp_path)
    instance = DagsterInstance.ephemeral()
    everyone = ["acme", "bench", "globex", "initech", "umbrella"]
    assert set(_ingest(sides, instance, everyone).values()) == {"published"}
    _assert_same(sides)
    assert len(_tables(sides["direct"][1])["importable_deals"]) > 2_900

    # A change: one deal's stage and value in the generated tenant, one deal gone in acme.
    _edit(sides, "bench", "deals.csv", lambda b: b.replace(b",Prospecting,", b",Closed Won,", 40))
    _edit(sides, "acme", "deals.csv", lambda b: b"".join(b.splitlines(keepends=True)[:-1]))
    assert set(_ingest(sides, instance, ["acme", "bench"]).values()) == {"published"}
    _assert_same(sides)
    changes = _tables(sides["direct"][1])["deal_history"]
    assert changes.height > _tables(sides["direct"][1])["importable_deals"].height

    # A drop the guard refuses (20 deals -> 2), then the same drop approved.
    _edit(sides, "globex", "deals.csv", lambda b: b"".join(b.splitlines(keepends=True)[:3]))
    assert _ingest(sides, instance, ["globex"]) == {"globex": "refused"}
    _assert_same(sides)
    assert _ingest(sides, instance, ["globex"], approve_by="ana (test)") == {"globex": "published"}
    _assert_same(sides)

    # The tenant's settings: only some stages, and a default owner.
    for root, _ in sides.values():
        store = LocalLandingStore(root=str(root))
        add(store, "umbrella", by="test")
        change = Change(
            stages=("Negotiation",), default_owner="owner@umbrella.example", guard_max_drop=1.0
        )
        set_settings(store, "umbrella", change, by="test")
    assert _ingest(sides, instance, ["umbrella"]) == {"umbrella": "published"}
    _assert_same(sides)
    assert (
        0
        < _tables(sides["direct"][1])["importable_deals"]
        .filter(pl.col("tenant_id") == "umbrella")
        .height
        < 12
    )


def test_jf_ingest_reports_a_failing_step_and_goes_on(tmp_path, landing_root, capsys, monkeypatch):
    """A step that raises (here the warehouse cannot be written) fails that tenant with the
    step and the error, after the read step's retries; the other tenants are ingested."""
    warehouse_path = str(tmp_path / "w.duckdb")
    real = steps.publish

    def publish(warehouse, tenant, *args, **kwargs):
        if tenant == "globex":
            raise OSError("disk full")
        return real(warehouse, tenant, *args, **kwargs)

    monkeypatch.setattr(steps, "publish", publish)
    rc = cli.main(["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path])
    captured = capsys.readouterr()
    assert rc == 1
    assert "globex publish_tenant: OSError: disk full" in captured.err
    outcomes = dict(wh.last_ingestions(warehouse_path).select("tenant_id", "outcome").iter_rows())
    assert outcomes == {
        "acme": "published",
        "globex": "failed",
        "initech": "published",
        "umbrella": "published",
    }


def test_the_read_step_is_retried_as_the_asset_s_retry_policy_retries(landing_root, tmp_path):
    """jf ingest retries a failing read as often as the asset's RetryPolicy, with its delays."""
    from jf_pipeline.assets import LANDING_RETRY

    class Flaky(LocalLandingStore):
        def read(self, tenant, name):
            if name == "deals.csv" and len(waits) < failures:
                raise ConnectionError("S3 went away")
            return super().read(tenant, name)

    waits: list[float] = []
    for failures in (LANDING_RETRY.max_retries, LANDING_RETRY.max_retries + 1):
        waits.clear()
        result = steps.ingest_tenant(
            Flaky(root=str(landing_root)),
            Warehouse(path=str(tmp_path / f"w{failures}.duckdb")),
            "acme",
            _Log(),
            sleep=waits.append,
        )
        assert len(waits) == min(failures, steps.READ_RETRIES)
        for retry, wait in enumerate(waits, 1):
            assert abs(wait - LANDING_RETRY.calculate_delay(retry)) <= 2 * LANDING_RETRY.delay
    assert result.error == "read_and_clean: ConnectionError: S3 went away"


@pytest.mark.parametrize("where", ["publish", "read"])
def test_ctrl_c_stops_jf_ingest_at_that_tenant(where, landing_root, tmp_path, capsys, monkeypatch):
    """Ctrl-C stops `jf ingest` (exit 130) where it is, and the tenants after it are not
    ingested. In the publish, DuckDB turns the interrupt into an ordinary error ("Query
    interrupted"), which must not read as the tenant's own failure and let the loop go on
    (an outside attack found it did, in both paths); in the read step it is a
    KeyboardInterrupt. The tenant before is published, the interrupted one keeps nothing
    half-written."""
    warehouse_path = str(tmp_path / "w.duckdb")
    real_publish, real_read = steps.publish, steps.read_and_clean

    def interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler raises KeyboardInterrupt here, long before

    def publish(warehouse, tenant, *args, **kwargs):
        if tenant == "globex":
            try:
                interrupt()
            except KeyboardInterrupt:
                raise RuntimeError("Query interrupted") from None  # as DuckDB does
        return real_publish(warehouse, tenant, *args, **kwargs)

    def read_and_clean(landing, tenant, *args, **kwargs):
        if tenant == "globex":
            interrupt()
        return real_read(landing, tenant, *args, **kwargs)

    monkeypatch.setattr(
        steps,
        "publish" if where == "publish" else "read_and_clean",
        publish if where == "publish" else read_and_clean,
    )
    before = signal.getsignal(signal.SIGINT)
    rc = cli.main(["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path])
    err = capsys.readouterr().err
    assert rc == 130
    assert "interrupted (Ctrl-C) during globex" in err and "2 more tenant(s) not ingested" in err
    assert signal.getsignal(signal.SIGINT) is before  # our handler is gone again
    rows = wh.last_ingestions(warehouse_path).select("tenant_id", "outcome", "reason")
    outcomes = {t: o for t, o, _ in rows.iter_rows()}
    if where == "publish":
        assert outcomes == {"acme": "published", "globex": "failed"}
        reason = rows.filter(pl.col("tenant_id") == "globex")["reason"][0]
        assert reason.startswith("interrupted (Ctrl-C)"), reason
    else:
        assert outcomes == {"acme": "published"}
    published = duckdb.connect(warehouse_path, read_only=True)
    try:
        tenants = published.execute("SELECT DISTINCT tenant_id FROM importable_deals").fetchall()
    finally:
        published.close()
    assert tenants == [("acme",)]
