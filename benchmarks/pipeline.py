"""Our pipeline against the floor and against the naive way, side by side in one run.

    .venv/bin/python benchmarks/pipeline.py [N ...]        (default: 100 10000 100000 1000000)

For each N it generates a tenant drop (benchmarks/generate.py) and runs each approach three
times (JF_BENCH_REPEATS), each run in its own process so peak memory (its VmHWM) is measured
per approach; the table shows the median run:

1. ours:  raw -> clean -> published in DuckDB through Dagster in-process, per-step times
          (read_and_clean, publish_tenant) taken from the run's step events;
2. floor: DuckDB alone loading the three files as strings (`read_csv(..., all_varchar=true)`);
3. naive: pandas + per-row dateutil and Python string cleaning, writing the same tables.

Prints a Markdown table and writes benchmarks/pipeline.png (time and memory against N).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = [100, 10_000, 100_000, 1_000_000]


def run_ours(landing: Path, warehouse: Path) -> dict:
    from dagster import DagsterInstance, materialize, mem_io_manager

    from jf_pipeline.definitions import all_assets, build_resources
    from jf_pipeline.resources import LocalLandingStore, Warehouse

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["bench"])
    resources = build_resources(
        LocalLandingStore(root=str(landing)), Warehouse(path=str(warehouse)), mem_io_manager
    )
    start = time.perf_counter()
    result = materialize(
        all_assets,
        partition_key="bench",
        instance=instance,
        resources=resources,
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
    )
    seconds = time.perf_counter() - start
    assert result.success
    stages: dict[str, float] = {}
    starts: dict[str, float] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            stage = event.step_key  # read_and_clean / publish_tenant
            stages[stage] = stages.get(stage, 0.0) + entry.timestamp - starts[event.step_key]
    return {"seconds": seconds, "stages": stages}


def run_floor(landing: Path, warehouse: Path) -> dict:
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect(str(warehouse))
    for name in ("deals", "accounts", "contacts"):
        path = str(landing / "bench" / f"{name}.csv")
        con.execute(
            f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_csv(?, all_varchar = true)",  # noqa: S608
            [path],
        )
    con.close()
    return {"seconds": time.perf_counter() - start}


def run_naive(landing: Path, warehouse: Path) -> dict:
    """What many teams write first: pandas, then Python per row for dates, money, e-mails."""
    import re

    import duckdb
    import pandas as pd
    from dateutil import parser

    def date_or_none(text):
        try:
            return parser.parse(text).date() if isinstance(text, str) and text.strip() else None
        except (ValueError, OverflowError):
            return None

    def money_or_none(text):
        if not isinstance(text, str):
            return None
        cleaned = re.sub(r"[^0-9.\-]", "", text.replace(",", ""))
        try:
            return round(float(cleaned), 2)
        except ValueError:
            return None

    def email_or_none(text):
        return (
            text.strip().lower()
            if isinstance(text, str) and re.match(r"[^@\s]+@[^@\s]+\.[^@\s]+$", text.strip())
            else None
        )

    start = time.perf_counter()
    folder = landing / "bench"
    deals = pd.read_csv(folder / "deals.csv", dtype=str, keep_default_na=False)
    accounts = pd.read_csv(folder / "accounts.csv", dtype=str, keep_default_na=False)
    contacts = pd.read_csv(folder / "contacts.csv", dtype=str, keep_default_na=False)
    deals["target_close_date"] = deals["target_close_date"].apply(date_or_none)
    deals["value"] = deals["value"].apply(money_or_none)
    deals["owner_email"] = deals["owner_email"].apply(email_or_none)
    deals = deals.drop_duplicates("deal_unique_id", keep="last")
    joined = deals.merge(accounts, left_on="account_unique_id", right_on="unique_id", how="left")
    joined["account_name"] = joined.apply(lambda r: r["account_name"] or r["name"], axis=1)
    good = joined.dropna(subset=["target_close_date", "value", "owner_email", "account_name"])
    contacts["email_address"] = contacts["email_address"].apply(email_or_none)
    contacts = contacts.drop_duplicates("contact_unique_id", keep="last")
    con = duckdb.connect(str(warehouse))
    con.register(
        "good", good[["deal_unique_id", "Name", "target_close_date", "value", "account_name"]]
    )
    con.register("people", contacts)
    con.execute("CREATE OR REPLACE TABLE importable_deals AS SELECT * FROM good")
    con.execute("CREATE OR REPLACE TABLE importable_contacts AS SELECT * FROM people")
    con.close()
    return {"seconds": time.perf_counter() - start}


def peak_mb() -> float:
    """This process's peak resident memory. Not getrusage's ru_maxrss: Linux carries that
    over exec, so a child would report the parent's peak (the generator's) when larger."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(approach: str, landing: str, warehouse: str) -> None:
    sys.path.insert(0, str(HERE.parent))
    Path(warehouse).parent.mkdir(parents=True, exist_ok=True)
    result = {"ours": run_ours, "floor": run_floor, "naive": run_naive}[approach](
        Path(landing), Path(warehouse)
    )
    result["peak_mb"] = peak_mb()
    print(json.dumps(result))


REPEATS = int(os.environ.get("JF_BENCH_REPEATS", "3"))
"""Runs per approach and size; the table shows the median run (this machine is noisy)."""


def measure(approach: str, landing: Path, tmp: Path) -> dict:
    """The median of REPEATS fresh runs (each into a new warehouse file); peak = the max."""
    runs = []
    for i in range(REPEATS):
        # Start every run with the disk idle: without this, the write-back of the previous
        # run's files (a DuckDB file of up to 400 MB) slows whichever run comes next.
        os.sync()
        time.sleep(1)
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                approach,
                str(landing),
                str(tmp / f"{approach}-{i}" / "warehouse.duckdb"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    runs.sort(key=lambda r: r["seconds"])
    median = dict(runs[len(runs) // 2])
    median["peak_mb"] = max(r["peak_mb"] for r in runs)
    median["all_seconds"] = [r["seconds"] for r in runs]
    return median


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["n"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for approach in ("ours", "floor", "naive"):
        left.plot(sizes, [r[approach]["seconds"] for r in rows], marker="o", label=approach)
        right.plot(sizes, [r[approach]["peak_mb"] for r in rows], marker="o", label=approach)
    for axis, label in ((left, "seconds"), (right, "peak memory (MB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("deals (accounts = N/10, contacts = N)")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    fig.suptitle("jf-pipeline: one tenant end to end")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(sizes: list[int]) -> None:
    sys.path.insert(0, str(HERE))
    from generate import write_drop

    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            landing = Path(tmp) / "landing"
            write_drop(n, landing / "bench")
            row = {"n": n}
            for approach in ("floor", "ours", "naive"):
                row[approach] = measure(approach, landing, Path(tmp))
                print(n, approach, json.dumps(row[approach]), file=sys.stderr, flush=True)
            rows.append(row)
    print(
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    print(
        "| deals | approach | seconds | peak MB | deals/s | ours/floor | naive/ours | stages (ours: read and clean / publish s) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        for approach in ("floor", "ours", "naive"):
            m = r[approach]
            ratio_floor = (
                f"{r['ours']['seconds'] / r['floor']['seconds']:.1f}" if approach == "ours" else ""
            )
            ratio_naive = (
                f"{r['naive']['seconds'] / r['ours']['seconds']:.1f}" if approach == "naive" else ""
            )
            stages = (
                " / ".join(
                    f"{m['stages'].get(s, 0):.2f}" for s in ("read_and_clean", "publish_tenant")
                )
                if "stages" in m
                else ""
            )
            print(
                f"| {r['n']:,} | {approach} | {m['seconds']:.2f} | {m['peak_mb']:.0f} | "
                f"{r['n'] / m['seconds']:,.0f} | {ratio_floor} | {ratio_naive} | {stages} |"
            )
    if len(rows) > 1:
        chart(rows, HERE / "pipeline.png")
        big = {r["n"]: r["ours"]["seconds"] for r in rows}
        if 100_000 in big and 1_000_000 in big:
            print(f"\nLinearity: time at 1M / time at 100k = {big[1_000_000] / big[100_000]:.1f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
    else:
        main([int(a) for a in sys.argv[1:]] or SIZES)
