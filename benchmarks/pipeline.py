"""Our pipeline against the floor and against the naive way, as whole processes, in one run.

    .venv/bin/python benchmarks/pipeline.py [N ...]        (default: 100 10000 100000 1000000)
    make bench                                            (the same, all four sizes)

For each N it generates a tenant drop (benchmarks/generate.py) and measures, each run a new
process timed from outside (wall, CPU, peak memory), JF_BENCH_REPEATS times (default 3),
interleaved, reporting the median:

1. floor:  DuckDB alone loading the three files as strings (`read_csv(..., all_varchar=true)`),
           a whole `python` process (interpreter and duckdb import included);
2. jf ingest: `jf ingest --tenant bench` as a user runs it: imports, raw -> clean ->
           published in DuckDB, the summary;
3. naive:  pandas + per-row dateutil and Python string cleaning, writing the same tables, a
           whole process (pandas import included);
4. breakdown of ours, in one more process: importing the code location, then read and clean,
           publish (of which: the analysts' snapshot copy), from the run's step events;
5. daemon run: after the above, the production stack (benchmarks/harness.production_stack:
           PostgreSQL, the code server and the daemon with deploy/dagster.yaml; local landing
           folder and storage, as under docker compose) ingests the same drop; launch to
           success from the run's events, split into worker start-up (launch to the run's
           start) and execution. One run at a time, into an empty warehouse each.

Plus the reference start-up: `python -c "import dagster"` and importing the code location.
Prints Markdown tables and writes benchmarks/pipeline.png (time and memory against N).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import (  # noqa: E402
    BIN,
    idle_disk,
    load_now,
    machine,
    median,
    production_stack,
    run_history,
    run_process,
)

SIZES = [100, 10_000, 100_000, 1_000_000]
REPEATS = int(os.environ.get("JF_BENCH_REPEATS", "3"))
"""Runs per approach and size; the tables show the median run (this machine is noisy)."""
APPROACHES = ("floor", "ingest", "naive", "breakdown")


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
    """This process's peak resident memory (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(approach: str, landing: str, warehouse: str) -> None:
    sys.path.insert(0, str(HERE.parent))
    Path(warehouse).parent.mkdir(parents=True, exist_ok=True)
    if approach == "breakdown":
        start = time.perf_counter()
        import jf_pipeline.definitions  # noqa: F401 - the import is what is measured
        from jf_pipeline import warehouse as wh

        imported = time.perf_counter() - start
        copies = []
        publish_snapshot = wh.publish_snapshot

        def timed_snapshot(*args):
            began = time.perf_counter()
            publish_snapshot(*args)
            copies.append(time.perf_counter() - began)

        wh.publish_snapshot = timed_snapshot
        result = run_ours(Path(landing), Path(warehouse))
        result["stages"]["import"] = imported
        result["stages"]["snapshot"] = sum(copies)
    else:
        result = {"floor": run_floor, "naive": run_naive}[approach](Path(landing), Path(warehouse))
    result["peak_mb"] = peak_mb()
    print(json.dumps(result))


def measure_once(approach: str, landing: Path, warehouse: Path) -> dict:
    """One whole process of `approach`, measured from outside."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    if approach == "ingest":
        args = [str(BIN / "jf"), "ingest", "--landing", str(landing)]
        args += ["--warehouse", str(warehouse), "--tenant", "bench", "--json"]
    else:
        args = [sys.executable, __file__, "--child", approach, str(landing), str(warehouse)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JF_")}  # defaults
    idle_disk()
    measured = run_process(args, env=env)
    inner = {}
    if approach != "ingest":
        inner = json.loads(measured.stdout.strip().splitlines()[-1])
    else:
        (row,) = json.loads(measured.stdout)
        assert row["outcome"] in ("published", "partial"), row
    shutil.rmtree(warehouse.parent, ignore_errors=True)
    return {
        "seconds": measured.seconds,
        "cpu_seconds": measured.cpu_seconds,
        "peak_mb": measured.peak_mb,
        "inner_seconds": inner.get("seconds"),
        "stages": inner.get("stages"),
    }


def summarise(runs: list[dict]) -> dict:
    """The median run by wall time; peak memory is the highest of the runs."""
    runs = sorted(runs, key=lambda r: r["seconds"])
    result = dict(runs[len(runs) // 2])
    result["peak_mb"] = max(r["peak_mb"] for r in runs if r.get("peak_mb") is not None)
    result["all_seconds"] = [round(r["seconds"], 2) for r in runs]
    result["cpu_seconds"] = median([r["cpu_seconds"] for r in runs])
    return result


def reference_start_up() -> dict:
    """`python -c "import dagster"` and importing the code location, median of REPEATS."""
    found = {}
    for name, code in (
        ("import dagster", "import dagster"),
        ("import the code location", "import jf_pipeline.definitions"),
    ):
        runs = [run_process([sys.executable, "-c", code]) for _ in range(REPEATS)]
        found[name] = {
            "seconds": median([r.seconds for r in runs]),
            "cpu_seconds": median([r.cpu_seconds for r in runs]),
            "all_seconds": [round(r.seconds, 2) for r in runs],
        }
    return found


def daemon_runs(drops: dict[int, Path], tmp: Path) -> dict[int, dict]:
    """Each drop ingested by the production stack's daemon, one run at a time, REPEATS
    times (a new tenant folder each time, moved in whole, so the sensor requests it at
    once), each into an empty warehouse."""
    landing, storage = tmp / "daemon-landing", tmp / "daemon-storage"
    landing.mkdir()
    warehouse = tmp / "daemon-warehouse" / "warehouse.duckdb"
    env = {
        "JF_LANDING": str(landing),
        "JF_STORAGE": str(storage),
        "JF_WAREHOUSE": str(warehouse),
        "JF_IMPORT_REPORT": "on",  # as jf ingest and the breakdown write it
    }
    results: dict[int, dict] = {}
    with production_stack(tmp / "stack", env) as stack:
        for n, drop in drops.items():
            runs = []
            for i in range(REPEATS):
                tenant = f"n{n}-r{i}"
                idle_disk()
                (landing / tenant).parent.mkdir(exist_ok=True)
                os.rename(drop, landing / tenant)
                try:
                    deadline = time.monotonic() + 1800
                    while True:
                        done = [
                            r
                            for r in run_history(stack["env"])
                            if r["tenant"] == tenant and r["status"] in ("SUCCESS", "FAILURE")
                        ]
                        if done:
                            break
                        if time.monotonic() > deadline:
                            raise SystemExit(f"daemon run of {tenant} did not finish")
                        time.sleep(1)
                finally:
                    os.rename(landing / tenant, drop)
                (run,) = done
                assert run["status"] == "SUCCESS", run
                runs.append({**run, "seconds": run["worker"], "peak_mb": None})
                shutil.rmtree(warehouse.parent, ignore_errors=True)
                shutil.rmtree(storage, ignore_errors=True)
            results[n] = summarise_daemon(runs)
            print(n, "daemon", json.dumps(results[n]), file=sys.stderr, flush=True)
    return results


def summarise_daemon(runs: list[dict]) -> dict:
    runs = sorted(runs, key=lambda r: r["seconds"])
    result = dict(runs[len(runs) // 2])
    result["all_seconds"] = [round(r["seconds"], 2) for r in runs]
    return result


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["n"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for approach, label in LABELS.items():
        if all(approach in r for r in rows):
            left.plot(sizes, [r[approach]["seconds"] for r in rows], marker="o", label=label)
            if approach != "daemon":
                right.plot(sizes, [r[approach]["peak_mb"] for r in rows], marker="o", label=label)
    for axis, label in ((left, "seconds, whole process"), (right, "peak memory (MB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("deals (accounts = N/10, contacts = N)")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    fig.suptitle("jf-pipeline: one tenant end to end, whole processes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


LABELS = {
    "floor": "floor (DuckDB, strings)",
    "ingest": "jf ingest",
    "daemon": "daemon run",
    "naive": "naive (pandas)",
}


def print_tables(rows: list[dict], reference: dict) -> None:
    print("Start-up, whole processes (median):\n")
    print("| what | seconds | CPU seconds | runs (s) |")
    print("|---|---:|---:|---|")
    for name, m in reference.items():
        print(f"| `{name}` | {m['seconds']:.2f} | {m['cpu_seconds']:.2f} | {m['all_seconds']} |")
    print()
    print("Whole processes (median; wall and CPU seconds, the process's peak memory):\n")
    print("| deals | approach | seconds | CPU s | peak MB | deals/s | / floor | naive / this |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        for approach, label in LABELS.items():
            if approach not in r:
                continue
            m = r[approach]
            vs_floor = "" if approach == "floor" else f"{m['seconds'] / r['floor']['seconds']:.1f}"
            vs_naive = (
                f"{r['naive']['seconds'] / m['seconds']:.1f}"
                if approach in ("ingest", "daemon")
                else ""
            )
            cpu = f"{m['cpu_seconds']:.2f}" if m.get("cpu_seconds") is not None else "—"
            peak = f"{m['peak_mb']:.0f}" if m.get("peak_mb") is not None else "—"
            print(
                f"| {r['n']:,} | {label} | {m['seconds']:.2f} | {cpu} | {peak} | "
                f"{r['n'] / m['seconds']:,.0f} | {vs_floor} | {vs_naive} |"
            )
    print()
    print("Breakdown of ours in one process (median run), and of the daemon's run:\n")
    print(
        "| deals | import code location | read and clean | publish | of which snapshot "
        "| in-process total | daemon: worker start-up | daemon: execution |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        st = r["breakdown"]["stages"]
        daemon = r.get("daemon")
        start_up = f"{daemon['start_up']:.2f}" if daemon else "—"
        execution = f"{daemon['execution']:.2f}" if daemon else "—"
        print(
            f"| {r['n']:,} | {st['import']:.2f} | {st.get('read_and_clean', 0):.2f} | "
            f"{st.get('publish_tenant', 0):.2f} | {st['snapshot']:.2f} | "
            f"{r['breakdown']['inner_seconds']:.2f} | {start_up} | {execution} |"
        )
    print()
    print("Every run, seconds:\n")
    for r in rows:
        parts = [f"{LABELS[a]} {r[a]['all_seconds']}" for a in LABELS if a in r]
        print(f"- {r['n']:,}: " + "; ".join(parts))
    by_n = {r["n"]: r for r in rows}
    print()
    print("Against the targets (issue #17), same run:\n")
    print("| target | goal | result |")
    print("|---|---|---|")
    code = reference["import the code location"]["seconds"]
    print(f"| importing the code location | <= 2.0 s | {code:.2f} s |")
    if 100 in by_n:
        small = by_n[100]["ingest"]["seconds"]
        dagster = reference["import dagster"]["seconds"]
        print(
            f"| small tenant (100 deals) `jf ingest` / `import dagster` | <= 1.6x | "
            f"{small / dagster:.2f}x ({small:.2f} s / {dagster:.2f} s) |"
        )
    if 1_000_000 in by_n:
        big = by_n[1_000_000]
        ratio = big["ingest"]["seconds"] / big["floor"]["seconds"]
        print(
            f"| 1M `jf ingest` / DuckDB floor | <= 2.5x (stretch 2.0x) | {ratio:.2f}x "
            f"({big['ingest']['seconds']:.2f} s / {big['floor']['seconds']:.2f} s) |"
        )
        print(
            f"| peak memory at 1M (`jf ingest`) | <= 1.5 GB | {big['ingest']['peak_mb']:,.0f} MB |"
        )
        naive = big["naive"]["seconds"] / big["ingest"]["seconds"]
        print(f"| naive pandas at 1M / `jf ingest` | >= 5x | {naive:.1f}x |")
    if 100_000 in by_n and 1_000_000 in by_n:
        linear = by_n[1_000_000]["ingest"]["seconds"] / by_n[100_000]["ingest"]["seconds"]
        print(f"| `jf ingest` at 1M / at 100k | <= 12x | {linear:.1f}x |")


def main(sizes: list[int]) -> None:
    print(machine())
    print()
    reference = reference_start_up()
    rows = []
    with tempfile.TemporaryDirectory(prefix="jf-bench-") as tmp:
        tmp = Path(tmp)
        drops = {}
        for n in sizes:
            folder = tmp / f"drop-{n}" / "bench"
            # Generated in a process of its own: this one stays small (see run_process).
            run_process([sys.executable, str(HERE / "generate.py"), str(n), str(folder)])
            drops[n] = folder
            runs: dict[str, list] = {a: [] for a in APPROACHES}
            for i in range(REPEATS):  # interleaved: drifting load hits every approach alike
                for approach in APPROACHES:
                    warehouse = tmp / f"{approach}-{n}-{i}" / "warehouse.duckdb"
                    runs[approach].append(measure_once(approach, folder.parent, warehouse))
            row = {"n": n, **{a: summarise(runs[a]) for a in APPROACHES}}
            for approach in APPROACHES:
                print(n, approach, json.dumps(row[approach]), file=sys.stderr, flush=True)
            rows.append(row)
        if os.environ.get("JF_BENCH_DAEMON", "on") != "off":
            for n, result in daemon_runs(drops, tmp).items():
                next(r for r in rows if r["n"] == n)["daemon"] = result
    print(f"Load average at the end (1/5/15 min): {load_now()}\n")
    print_tables(rows, reference)
    if len(rows) > 1:
        chart(rows, HERE / "pipeline.png")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
    else:
        main([int(a) for a in sys.argv[1:]] or SIZES)
