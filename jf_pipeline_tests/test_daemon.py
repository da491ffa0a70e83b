"""The README's first command, for real: `make dev` starts the Dagster webserver and daemon;
the UI is checked in a real browser; with no clicks the landing sensor's real ticks add
tenants, the daemon launches their runs, and the warehouse fills. (The daemon on S3 uploads
and overwrites, with the production instance on PostgreSQL, is in test_deploy.py.)

State goes to temporary folders (DAGSTER_HOME, JF_LANDING, JF_WAREHOUSE, JF_STORAGE), so
the tests never touch the checkout's own data. Waits are bounded; processes are stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest
import yaml
from dagster import DagsterInstance
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from jf_pipeline_tests.conftest import (
    PROJECT,
    SAMPLE_LANDING,
    SAMPLE_TENANTS,
    copy_samples,
    free_port,
)
from jf_pipeline_tests.servers import BROWSER_HINT, chromium_executable, query_warehouse, stop

pytestmark = [pytest.mark.integration, pytest.mark.daemon]

DEADLINE_SECONDS = 120


class DevServer:
    def __init__(self, process: subprocess.Popen, port: int, warehouse: str, log_path):
        self.process, self.port, self.warehouse, self.log_path = process, port, warehouse, log_path

    def log(self) -> str:
        return self.log_path.read_text()[-4000:]

    def wait_for(self, what: str, check: Callable[[], bool]) -> None:
        started = time.monotonic()
        while time.monotonic() - started < DEADLINE_SECONDS:
            assert self.process.poll() is None, self.log()
            if check():
                return
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}\n{self.log()}")

    def ui_up(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/server_info", timeout=2
            ) as r:
                return r.status == 200
        except OSError:
            return False


@contextlib.contextmanager
def make_dev(
    tmp_path, instance_changes: dict | None = None, **env_extra: str
) -> Iterator[DevServer]:
    """`make dev` on temporary state, with the checkout's dagster_home/dagster.yaml
    (`instance_changes` overrides some of its sections' keys, e.g. shorter intervals)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((PROJECT / "dagster_home" / "dagster.yaml").read_text())
    for section, values in (instance_changes or {}).items():
        config[section] = {**config.get(section, {}), **values}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    warehouse = str(tmp_path / "warehouse.duckdb")
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "JF_WAREHOUSE": warehouse,
        "JF_STORAGE": str(tmp_path / "storage"),
        "JF_SENSOR_INTERVAL": "2",
        "JF_SETTLE_SECONDS": "1",
        **env_extra,
    }
    log_path = tmp_path / "dev.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            ["make", "dev", f"PORT={port}"],
            cwd=PROJECT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield DevServer(process, port, warehouse, log_path)
        finally:
            stop(process)
    assert any(home.rglob("*.db")), "runs, cursors and partitions are kept in DAGSTER_HOME"


def _chromium() -> str:
    """The browser for the UI test. Without one the test fails in CI (CI=true: nothing may
    skip there) and is skipped elsewhere, with the line that says how to get one."""
    found = chromium_executable()
    if found:
        return found
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(BROWSER_HINT, pytrace=False)
    pytest.skip(BROWSER_HINT)


# Headless as root on a machine without a network beyond the package registries.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _open(page, url: str) -> None:
    page.goto(url, wait_until="networkidle")
    try:  # Dagster's one-time community prompt
        page.get_by_role("button", name="Skip").click(timeout=3000)
    except PlaywrightTimeout:
        pass


def test_make_dev_ingests_the_sample_tenants_and_the_ui_shows_them(tmp_path):
    """With no clicks the sample tenants land in DuckDB; then, in a headless Chromium
    driven by Playwright, the UI shows the lineage raw -> clean -> published, the tenants as
    partitions and a materialization's row count; each tenant's checks on their own
    (initech's failed required_values with its offending id, acme's passed); acme's next
    drop, cut from 30 to 8 deals, refused with the reason sentence on its run's page; and
    the launchpad's approve_tenant run for acme's partition publishing the refused drop. The lineage screenshot is saved with the
    test's files; with JF_UPDATE_SCREENSHOT=1 it also replaces docs/asset-graph.png, the
    picture the README shows."""
    chromium = _chromium()
    landing = tmp_path / "landing"
    copy_samples(SAMPLE_LANDING, landing)
    with make_dev(tmp_path, JF_LANDING=str(landing)) as dev:
        dev.wait_for("the UI", dev.ui_up)
        # The newcomer's greeting: the address and what happens next are the last lines
        # before Dagster's own log, with no per-package install lines or Dagster notices.
        log = dev.log_path.read_text()
        # (the last line of the split is the timestamp that starts Dagster's first line)
        before_dagster = log.split(" - dagster - ", 1)[0].splitlines()[:-1]
        ours = [line for line in before_dagster if line.strip()]
        assert f"UI          http://127.0.0.1:{dev.port}" in "\n".join(ours[-5:])
        assert "jf status" in ours[-1]
        assert not any(line.startswith(" + ") for line in before_dagster), log[:2000]
        assert "SupersessionWarning" not in log
        counts = "SELECT tenant_id, count(*) FROM importable_deals GROUP BY ALL ORDER BY ALL"
        dev.wait_for(
            "all sample tenants",
            lambda: len(query_warehouse(dev.warehouse, counts) or []) == len(SAMPLE_TENANTS),
        )
        assert dict(query_warehouse(dev.warehouse, counts)) == {
            "acme": 30,
            "globex": 20,
            "initech": 15,
            "umbrella": 12,
        }
        report = landing / "initech" / "jointflows_import_report.csv"
        dev.wait_for("initech's import report", report.exists)  # written after the publish
        # acme's next export is cut from 30 to 8 deals: the sensor's run is refused (while
        # the browser looks at the first runs).
        deals = landing / "acme" / "deals.csv"
        deals.write_text("".join(deals.read_text().splitlines(keepends=True)[:9]))

        base = f"http://127.0.0.1:{dev.port}"
        shot = tmp_path / "asset-graph.png"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            _open(page, f"{base}/assets/importable_deals?view=lineage&lineageDepth=2")
            for asset in (
                "raw_deals",
                "clean_deals",
                "raw_accounts",
                "clean_accounts",
                "importable_deals",
            ):
                page.get_by_text(asset, exact=True).first.wait_for(timeout=30_000)
            for group in ("landing", "cleaning", "warehouse"):
                assert page.get_by_text(group, exact=True).count() >= 1
            page.screenshot(path=str(shot))
            if os.environ.get("JF_UPDATE_SCREENSHOT") == "1":
                shutil.copy(shot, PROJECT / "docs" / "asset-graph.png")

            _open(page, f"{base}/assets/raw_deals?view=partitions")
            for tenant in SAMPLE_TENANTS:
                page.get_by_text(tenant, exact=True).first.wait_for(timeout=30_000)

            _open(page, f"{base}/assets/importable_deals?view=events&partition=acme")
            page.get_by_text("dagster/row_count").first.wait_for(timeout=30_000)
            assert page.get_by_text("30", exact=True).count() >= 1

            # Each tenant's checks on their own: initech's partition shows its failed check
            # with the offending id, acme's (checks passed) does not.
            _open(page, f"{base}/assets/clean_deals?view=checks")
            page.get_by_role("tab", name="Partitions").last.click()
            page.locator("text=initech >> visible=true").last.click()
            page.get_by_text("1 rows or columns miss a required value: IN-101").wait_for()
            page.locator("text=acme >> visible=true").last.click()
            page.get_by_text("Latest execution").first.wait_for()
            page.get_by_text("offending_count").first.wait_for()
            assert page.get_by_text("miss a required value: IN-101").count() == 0
            page.screenshot(path=str(tmp_path / "checks-acme.png"))

            # The refused run's page leads with the reason sentence.
            refused = (
                "SELECT run_id FROM ingestions WHERE tenant_id = 'acme' AND outcome = 'refused'"
            )
            dev.wait_for(
                "acme's refused run", lambda: bool(query_warehouse(dev.warehouse, refused))
            )
            run_id = query_warehouse(dev.warehouse, refused)[0][0]
            _open(page, f"{base}/runs/{run_id}")
            page.get_by_text(
                "Publish of tenant acme refused by the publish guard, the published rows stay: "
                "the valid deal count would fall from 30 to 8"
            ).first.wait_for(timeout=30_000)

            # The launchpad approves it: approve_tenant, acme's partition, Launch Run.
            _open(page, f"{base}/locations/jf_pipeline/jobs/approve_tenant/playground")
            partition = page.get_by_placeholder("Partition")
            partition.click()
            partition.fill("acme")
            page.keyboard.press("Enter")
            page.get_by_text("approve_publish: true").first.wait_for(timeout=30_000)
            page.get_by_text("jf/tenant: acme").first.wait_for()
            page.get_by_role("button", name="Launch Run").click()
            page.wait_for_url("**/runs/**", timeout=30_000)
            browser.close()
        approved = (
            "SELECT count(*) FROM importable_deals WHERE tenant_id = 'acme' AND ingestion_id IN "
            "(SELECT run_id FROM ingestions WHERE approved AND approved_by LIKE 'approve_tenant run%')"
        )
        dev.wait_for(
            "the approved drop published",
            lambda: (query_warehouse(dev.warehouse, approved) or [(0,)]) == [(8,)],
        )
        assert shot.stat().st_size > 10_000


HOLD_LOCK = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])  # read-write: every other writer waits for this lock
print("holding", flush=True)
sys.stdin.readline()
"""


def _session_processes(session: int) -> dict[int, str]:
    """pid -> command line of every process in the session `make dev` started."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getsid(int(entry)) != session:
                continue
            found[int(entry)] = (
                open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            )
        except (OSError, ProcessLookupError):
            continue
    return found


def test_a_run_worker_killed_in_publish_frees_its_pool_slot_and_the_runs_go_on(tmp_path):
    """kill -9 of the run worker while publish_tenant holds the duckdb_warehouse pool slot:
    the dead run's slot is freed by run monitoring, the run is retried, and a later run of
    another tenant publishes too, with nobody freeing slots by hand. (The worker is held in
    publish_tenant by a process holding the build file's write lock.) Then, on the same
    daemon, a slow in-place re-export of identical bytes (`_identical_reexport_in_place`)."""
    landing = tmp_path / "landing"
    landing.mkdir()
    copy_samples(SAMPLE_LANDING / "acme", landing / "acme")
    warehouse = tmp_path / "warehouse.duckdb"
    build = tmp_path / "warehouse.build.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(build)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    fast = {"poll_interval_seconds": 2, "free_slots_after_run_end_seconds": 2}
    try:
        assert holder.stdout.readline().strip() == "holding"
        with make_dev(tmp_path, {"run_monitoring": fast}, JF_LANDING=str(landing)) as dev:
            with DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:

                def claimed() -> list:
                    info = instance.event_log_storage.get_concurrency_info("duckdb_warehouse")
                    return info.claimed_slots

                dev.wait_for("publish_tenant to take the pool slot", lambda: bool(claimed()))
                workers = {
                    pid: cmd
                    for pid, cmd in _session_processes(dev.process.pid).items()
                    if "spawn_main" in cmd
                }
                assert len(workers) == 1, workers  # the one run worker, waiting in publish
                os.kill(next(iter(workers)), signal.SIGKILL)
                holder.stdin.write("\n")
                holder.stdin.flush()
                holder.wait(timeout=30)
                copy_samples(SAMPLE_LANDING / "globex", landing / "globex")
                counts = "SELECT tenant_id, count(*) FROM importable_deals GROUP BY ALL"
                dev.wait_for(
                    "acme (retried) and globex published",
                    lambda: (
                        dict(query_warehouse(str(warehouse), counts) or [])
                        == {"acme": 30, "globex": 20}
                    ),
                )
                dev.wait_for("no pool slot held", lambda: not claimed())
                _identical_reexport_in_place(dev, landing, str(warehouse), instance)
    finally:
        holder.kill()
        holder.wait()


def _deals_export(rows: int) -> bytes:
    """A deals.csv of `rows` distinct, valid deals."""
    header = "deal_unique_id,Name,target_close_date,owner_email,value,account_unique_id,account_name,account_url\n"
    body = "".join(
        f"L{i:05d},Deal {i},2026-{1 + i % 12:02d}-{1 + i % 28:02d},o{i}@late.example,"
        f"{100 + i},A{i % 40},Late {i % 40},late{i % 40}.example\n"
        for i in range(rows)
    )
    return (header + body).encode()


def _identical_reexport_in_place(dev: DevServer, landing, warehouse, instance) -> None:
    """Issue 19, item 4, under the real daemon: the customer's exporter rewrites deals.csv
    in place with the very same bytes and stalls mid-file until the sensor has requested a
    run for the partial file. Whatever a run publishes carries the hash of exactly the bytes
    it read (the export's own hash only with all of its deals), and once the writer is done
    the tenant's rows are the whole export again, with its hash (before the fix 3,291 of
    20,000 deals were lost for good: the final bytes equalled the sensor's cursor, so no run
    came)."""
    from dagster import DagsterRunStatus, RunsFilter

    rows = 5_000
    export = _deals_export(rows)
    digest = hashlib.sha256(export).hexdigest()
    (landing / "lateco").mkdir()
    path = landing / "lateco" / "deals.csv"
    path.write_bytes(export)
    count = "SELECT count(*) FROM importable_deals WHERE tenant_id = 'lateco'"
    ingestions = (
        "SELECT outcome, deals_published, deals_version, finished_at FROM ingestions "
        "WHERE tenant_id = 'lateco' ORDER BY finished_at"
    )
    lateco_runs = RunsFilter(tags={"jf/tenant": "lateco"})
    dev.wait_for(
        "lateco's first publish", lambda: (query_warehouse(warehouse, count) or [[0]])[0][0]
    )
    assert query_warehouse(warehouse, count)[0][0] == rows
    before = len(instance.get_runs(lateco_runs))

    with open(path, "r+b") as f:  # the exporter: truncate, write a third, stall, ...
        f.truncate(0)
        f.write(export[: len(export) // 3])
        f.flush()
        dev.wait_for(
            "a run requested for the partial file",
            lambda: len(instance.get_runs(lateco_runs)) > before,
        )
        f.write(export[len(export) // 3 : 2 * len(export) // 3])
        f.flush()
        time.sleep(3)  # > JF_SETTLE_SECONDS (1) + a JF_SENSOR_INTERVAL (2)
        f.write(export[2 * len(export) // 3 :])

    busy = [
        DagsterRunStatus.QUEUED,
        DagsterRunStatus.NOT_STARTED,
        DagsterRunStatus.STARTING,
        DagsterRunStatus.STARTED,
    ]
    time.sleep(6)  # settle + two ticks after the last write
    dev.wait_for(
        "no run queued or running", lambda: not instance.get_runs(RunsFilter(statuses=busy))
    )
    history = query_warehouse(warehouse, ingestions)

    assert query_warehouse(warehouse, count)[0][0] == rows, history
    assert history[-1][:3] == ("published", rows, digest), history
    for outcome, published, version, _ in history:
        # a publish under the export's hash is all of it; a cut one never borrows that hash
        assert outcome != "published" or (version == digest) == (published == rows), history
