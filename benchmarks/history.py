"""What the history (deal_history, account_history, contact_history) costs a publish.

    .venv/bin/python benchmarks/history.py [N]        (default N = 1000000)

One process, in the same run: a tenant drop of N deals (benchmarks/generate.py; about N
contacts and N/10 accounts) read and cleaned once by the core, then published into an empty
warehouse (the first publish: every row a new version), then its second drop, the same rows
with 1 % of the deals changed (stage and value), published over it (the history compares
every row and versions the 1 %). JF_BENCH_REPEATS times (default 3), each into a fresh
warehouse, the median reported: the publish step as the asset runs it (open the build file,
replace the tenant's rows and their history in one transaction, checkpoint, copy the
analysts' snapshot) and, of it, the transaction alone. The same publishes with the history
switched off (no history table written) show what the history itself adds.

Goal (issue #20): the second publish within 1.3x the first.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from generate import make_drop  # noqa: E402
from harness import idle_disk, load_now, machine  # noqa: E402

REPEATS = int(os.environ.get("JF_BENCH_REPEATS", "3"))
CHANGED_SHARE = 0.01
GOAL = 1.3


def clean_drop(n: int) -> dict:
    """The four tables one publish of the generated drop writes, as the core makes them."""
    from jf_pipeline.contract import FILES
    from jf_pipeline.core.cleaning import clean_table
    from jf_pipeline.core.publication import publication
    from jf_pipeline.core.reading import read_table

    files = make_drop(n)
    clean = {
        d: clean_table(read_table(files[f"{d}.csv"], FILES[d], max_bytes=2**34), FILES[d])
        for d in ("deals", "accounts", "contacts")
    }
    result = publication(clean["deals"], clean["accounts"], clean["contacts"], lambda: None)
    return result.tables()


def second_drop(tables: dict) -> dict:
    """The same drop with every 1/CHANGED_SHARE-th deal moved a stage on and its value up."""
    import polars as pl

    deals = tables["importable_deals"]
    step = round(1 / CHANGED_SHARE)
    moved = pl.int_range(pl.len()) % step == 0
    deals = deals.with_columns(
        pl.when(moved).then(pl.lit("Moved on")).otherwise(pl.col("deal_stage")).alias("deal_stage"),
        pl.when(moved).then(pl.col("value") + 1).otherwise(pl.col("value")).alias("value"),
    )
    return {**tables, "importable_deals": deals}


def publish(path: Path, tables: dict, run: str) -> dict:
    """One publish: its step's wall and CPU seconds (every thread of this process: DuckDB's
    too), the transaction's wall seconds, and the deals' changes."""
    from jf_pipeline import warehouse as wh

    ingestion = {"run_id": run, "finished_at": datetime.now(UTC), "outcome": "published"}
    idle_disk()
    start, cpu = time.perf_counter(), time.process_time()
    with wh.writer(path) as w:
        begin = time.perf_counter()
        changes = w.replace_tenant("bench", tables, ingestion)
        transaction = time.perf_counter() - begin
    return {
        "step": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
        "transaction": transaction,
        "changes": changes.get("importable_deals"),
    }


def publish_pair(first: dict, second: dict, history: bool, folder: Path) -> dict[str, dict]:
    """A first publish into an empty warehouse, then the second drop over it."""
    from jf_pipeline import warehouse as wh

    saved = wh.HISTORIES
    if not history:
        wh.HISTORIES = {}  # replace_tenant then writes no history
    folder.mkdir()
    try:
        path = folder / "warehouse.duckdb"
        return {"first": publish(path, first, "first"), "second": publish(path, second, "second")}
    finally:
        wh.HISTORIES = saved
        shutil.rmtree(folder)


def main(n: int) -> None:
    print(machine())
    started = time.perf_counter()
    first = clean_drop(n)
    second = second_drop(first)
    print(
        f"drop of {n:,} deals cleaned in {time.perf_counter() - started:.1f}s: "
        f"{first['importable_deals'].height:,} deals, {first['accounts'].height:,} accounts, "
        f"{first['importable_contacts'].height:,} contacts published"
    )
    runs: dict[bool, list[dict]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="jf-bench-history-") as tmp:
        for repeat in range(REPEATS):  # interleaved: on, off, on, off ...
            for history in (True, False):
                folder = Path(tmp) / f"{history}-{repeat}"
                runs[history].append(publish_pair(first, second, history, folder))

    def med(history: bool, which: str, what: str) -> float:
        return statistics.median(run[which][what] for run in runs[history])

    print(f"deal changes of the second publish: {runs[True][0]['second']['changes']}")
    print(f"\nPublish of a {n:,}-deal tenant, median of {REPEATS} (load after: {load_now()})\n")
    print(
        "| publish | history | publish step, wall (s) | CPU (s) | of which the transaction, wall (s) |"
    )
    print("|---|---|---:|---:|---:|")
    for history, label in ((True, "on"), (False, "off")):
        for which, name in (
            ("first", "first (empty warehouse)"),
            ("second", "second, 1 % changed"),
        ):
            print(
                f"| {name} | {label} | {med(history, which, 'step'):.2f} | "
                f"{med(history, which, 'cpu'):.2f} | {med(history, which, 'transaction'):.2f} |"
            )
    wall = med(True, "second", "step") / med(True, "first", "step")
    cpu = med(True, "second", "cpu") / med(True, "first", "cpu")
    verdict = "met" if wall <= GOAL else "NOT met"
    print(
        f"\nsecond / first publish with history: {wall:.2f}x wall, {cpu:.2f}x CPU "
        f"(goal <= {GOAL}x wall: {verdict}); history's cost on a first publish: "
        f"{med(True, 'first', 'step') / med(False, 'first', 'step'):.2f}x wall, "
        f"{med(True, 'first', 'cpu') / med(False, 'first', 'cpu'):.2f}x CPU"
    )
    for history in (True, False):
        every = {
            f"{which} {what}": [round(run[which][what], 2) for run in runs[history]]
            for which in ("first", "second")
            for what in ("step", "cpu")
        }
        print(f"every run, history {'on' if history else 'off'}: {every}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
