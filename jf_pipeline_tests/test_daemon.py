"""The README's first command, for real: `make dev` starts the Dagster webserver and daemon;
with no clicks the landing sensor's real ticks add the sample tenants, the daemon launches
their runs, and importable_deals fills in DuckDB within two minutes.

State goes to temporary folders (DAGSTER_HOME, JF_LANDING, JF_WAREHOUSE, JF_STORAGE), so
the test never touches the checkout's own data.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request

import duckdb
import pytest

from jf_pipeline_tests.conftest import PROJECT, SAMPLE_TENANTS, free_port

pytestmark = [pytest.mark.integration, pytest.mark.daemon]

DEADLINE_SECONDS = 120


def _published_tenants(warehouse: str) -> dict[str, int]:
    if not os.path.exists(warehouse):
        return {}
    try:
        con = duckdb.connect(warehouse, read_only=True)
    except duckdb.Error:  # a run holds the write lock right now
        return {}
    try:
        return dict(
            con.execute("SELECT tenant_id, count(*) FROM importable_deals GROUP BY ALL").fetchall()
        )
    except duckdb.Error:
        return {}
    finally:
        con.close()


def _stop(process: subprocess.Popen) -> None:
    """Stop make, the webserver, the daemon and any run workers (one process group)."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def test_make_dev_ingests_the_sample_tenants_with_no_clicks(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    landing = tmp_path / "landing"
    shutil.copytree(PROJECT / "data" / "landing", landing)
    warehouse = str(tmp_path / "warehouse.duckdb")
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "JF_LANDING": str(landing),
        "JF_WAREHOUSE": warehouse,
        "JF_STORAGE": str(tmp_path / "storage"),
        "JF_SENSOR_INTERVAL": "5",
    }
    log = open(tmp_path / "dev.log", "w+")  # noqa: SIM115
    process = subprocess.Popen(
        ["make", "dev", f"PORT={port}"],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        ui_up, published = False, {}
        while time.monotonic() - started < DEADLINE_SECONDS:
            assert process.poll() is None, (tmp_path / "dev.log").read_text()[-3000:]
            if not ui_up:
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/server_info", timeout=2
                    ) as r:
                        ui_up = r.status == 200
                except OSError:
                    pass
            published = _published_tenants(warehouse)
            if ui_up and set(published) == set(SAMPLE_TENANTS):
                break
            time.sleep(2)
        output = (tmp_path / "dev.log").read_text()
        assert ui_up, output[-3000:]
        assert f"http://127.0.0.1:{port}" in output  # the address is printed
        assert published == {"acme": 30, "globex": 20, "initech": 15, "umbrella": 12}, output[
            -3000:
        ]
    finally:
        _stop(process)
        log.close()
    # Runs, cursors and partitions were kept in DAGSTER_HOME.
    assert any(home.rglob("*.db"))
