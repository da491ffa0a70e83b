"""What bounds a deployment of many tenants: run start-up and the serialised publish step.

    .venv/bin/python benchmarks/scaling.py [W ...]      (default: 0 1000000 5000000)

1. Run start-up: every run worker (a subprocess under docker compose, a pod on Kubernetes)
   is a new Python process that imports the code location; median of three imports.
2. A typical small tenant (1,000 deals, 100 accounts, 1,000 contacts from generate.py) end
   to end in process, with the per-stage seconds.
3. The same tenant published into a warehouse that already holds W deal rows and W contact
   rows of other tenants: only publishing is serialised (the `duckdb_warehouse` pool), and
   its cost grows with the warehouse because each publish checkpoints and copies the whole
   file to the analysts' snapshot. Reports the publish step, the snapshot copy alone and
   the file size.

Prints a Markdown table; docs/deployment.md turns it into runs per hour.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from generate import write_drop  # noqa: E402
from pipeline import run_ours  # noqa: E402

from jf_pipeline.warehouse import build_path  # noqa: E402

TENANT_DEALS = 1_000
EXISTING = [0, 1_000_000, 5_000_000]


def import_seconds() -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import jf_pipeline.definitions"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fill(warehouse: Path, rows: int) -> None:
    """Copy the published tenant's rows as other tenants of 1,000 deals each until the
    deal and contact tables hold `rows` more rows (accounts: a tenth)."""
    build = build_path(warehouse)
    con = duckdb.connect(str(build))
    copies = rows // TENANT_DEALS
    for table, key in (
        ("importable_deals", "deal_unique_id"),
        ("accounts", "account_unique_id"),
        ("importable_contacts", "contact_unique_id"),
    ):
        con.execute(
            f"INSERT INTO {table} SELECT t.* REPLACE ("  # noqa: S608 - our table names
            f"'filler' || i AS tenant_id, {key} || '-' || i AS {key}) "
            f"FROM {table} t, range(?) r(i) WHERE t.tenant_id = 'bench'",
            [copies],
        )
    con.execute("CHECKPOINT")
    con.close()
    shutil.copyfile(build, warehouse)


def main(existing: list[int]) -> None:
    print(f"Machine: {platform.platform()}, 2 cores, Python {platform.python_version()}\n")
    print(f"Run worker start-up (import of the code location): {import_seconds():.2f} s\n")
    print(
        "| other tenants' deal rows | small tenant run (s) | read and clean / publish (s) "
        "| snapshot copy (s) | warehouse MB |"
    )
    print("|---:|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp) / "landing"
        write_drop(TENANT_DEALS, landing / "bench")
        for rows in existing:
            warehouse = Path(tmp) / f"w{rows}" / "warehouse.duckdb"
            warehouse.parent.mkdir()
            run_ours(landing, warehouse)  # the tenant's first publish
            if rows:
                fill(warehouse, rows)
            os.sync()  # the disk idle, as in pipeline.py
            result = run_ours(landing, warehouse)  # the measured re-publish
            start = time.perf_counter()
            shutil.copyfile(build_path(warehouse), Path(tmp) / "copy.duckdb")
            copy = time.perf_counter() - start
            stages = result["stages"]
            print(
                f"| {rows:,} | {result['seconds']:.2f} | {stages['read_and_clean']:.2f} / "
                f"{stages['publish_tenant']:.2f} | {copy:.2f} | "
                f"{build_path(warehouse).stat().st_size / 1e6:,.0f} |"
            )
            shutil.rmtree(warehouse.parent)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or EXISTING)
