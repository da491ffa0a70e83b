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


def publish(path: Path, tables: dict, run: str) -> tuple[float, float, dict]:
    """(publish step seconds, transaction seconds, changes) of one publish."""
    from jf_pipeline import warehouse as wh

    ingestion = {"run_id": run, "finished_at": datetime.now(UTC), "outcome": "published"}
    start = time.perf_counter()
    with wh.writer(path) as w:
        begin = time.perf_counter()
        changes = w.replace_tenant("bench", tables, ingestion)
        transaction = time.perf_counter() - begin
    return time.perf_counter() - start, transaction, changes


def measure(first: dict, second: dict, history: bool, tmp: Path) -> dict[str, list[float]]:
    from jf_pipeline import warehouse as wh

    saved = dict(wh.HISTORIES)
    if not history:
        wh.HISTORIES.clear()
    try:
        times: dict[str, list[float]] = {
            k: [] for k in ("first", "first_tx", "second", "second_tx")
        }
        for repeat in range(REPEATS):
            folder = tmp / f"{'with' if history else 'without'}-{repeat}"
            folder.mkdir()
            path = folder / "warehouse.duckdb"
            idle_disk()
            seconds, tx, changes = publish(path, first, "first")
            times["first"].append(seconds)
            times["first_tx"].append(tx)
            idle_disk()
            seconds, tx, changes = publish(path, second, "second")
            times["second"].append(seconds)
            times["second_tx"].append(tx)
            times.setdefault("changes", []).append(changes.get("importable_deals"))
            shutil.rmtree(folder)
        return times
    finally:
        wh.HISTORIES.update(saved)


def main(n: int) -> None:
    print(machine())
    started = time.perf_counter()
    first = clean_drop(n)
    second = second_drop(first)
    print(
        f"drop of {n:,} deals cleaned in {time.perf_counter() - started:.1f}s: "
        f"{first['importable_deals'].height:,} deals, {first['accounts'].height:,} accounts, "
        f"{first['importable_contacts'].height:,} contacts published",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="jf-bench-history-") as tmp:
        results = {history: measure(first, second, history, Path(tmp)) for history in (True, False)}
    with_history = results[True]
    print(f"deal changes of the second publish: {with_history['changes'][0]}")
    print(f"\nPublish of a {n:,}-deal tenant, median of {REPEATS} (load after: {load_now()})\n")
    print("| publish | history | publish step (s) | of which the transaction (s) |")
    print("|---|---|---:|---:|")
    for history, label in ((True, "on"), (False, "off")):
        times = results[history]
        for which, name in (
            ("first", "first (empty warehouse)"),
            ("second", "second, 1 % changed"),
        ):
            step = statistics.median(times[which])
            tx = statistics.median(times[f"{which}_tx"])
            print(f"| {name} | {label} | {step:.2f} | {tx:.2f} |")
    ratio = statistics.median(with_history["second"]) / statistics.median(with_history["first"])
    tx_ratio = statistics.median(with_history["second_tx"]) / statistics.median(
        with_history["first_tx"]
    )
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(
        f"\nsecond / first publish with history: {ratio:.2f}x the publish step, "
        f"{tx_ratio:.2f}x the transaction (goal <= {GOAL}x: {verdict})"
    )
    print(
        "every run:",
        {k: [round(x, 2) for x in v] for k, v in with_history.items() if k != "changes"},
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
