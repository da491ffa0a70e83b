"""Whole-process `jf ingest` of one generated drop, at two git revisions, in the same run.

    .venv/bin/python benchmarks/compare_revisions.py BASE [HEAD] [--deals N] [--repeats R]

Each revision is checked out into a temporary worktree and run as a user runs `jf ingest`
(a new process, imports included, into a fresh warehouse), with this checkout's virtual
environment and that worktree first on the import path: the revisions must share their
dependencies (`uv.lock`). The runs are interleaved (A, B, A, B, ...) so drifting load hits
both alike. Wall and CPU seconds (user + system, from `os.wait4`) and peak memory; medians
and every run. HEAD defaults to the working tree as it is (uncommitted changes included).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from harness import machine  # noqa: E402


def worktree(revision: str, into: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(into), revision],
        check=True,
        capture_output=True,
    )
    return into


def ingest(tree: Path, landing: Path, warehouse: Path) -> tuple[float, float, float]:
    env = dict(os.environ, PYTHONPATH=str(tree), JF_IMPORT_REPORT="on")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "jf_pipeline.cli", "ingest", "--landing", str(landing)]
        + ["--warehouse", str(warehouse)],
        env=env,
        cwd=tempfile.gettempdir(),  # not this checkout: its package must not shadow the tree's
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"jf ingest failed in {tree}: {process.stderr.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("head", nargs="?", default=None, help="default: the working tree")
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="jf-compare-") as tmp:
        tmp = Path(tmp)
        trees = {args.base: worktree(args.base, tmp / "base")}
        trees[args.head or "working tree"] = (
            worktree(args.head, tmp / "head") if args.head else ROOT
        )
        landing = tmp / "landing"
        subprocess.run(
            [sys.executable, str(HERE / "generate.py"), str(args.deals), str(landing / "bench")],
            check=True,
        )
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in trees}
        try:
            for i in range(args.repeats):
                for name, tree in trees.items():
                    warehouse = tmp / f"warehouse-{len(runs[name])}-{i}" / "warehouse.duckdb"
                    runs[name].append(ingest(tree, landing, warehouse))
                    shutil.rmtree(warehouse.parent)
        finally:
            for tree in trees.values():
                if tree != ROOT:
                    subprocess.run(
                        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                        capture_output=True,
                    )
    print(
        f"Load average at the end (1/5/15 min): {' / '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"\n`jf ingest` of {args.deals:,} deals, whole process, median of {args.repeats}:\n")
    print("| revision | seconds | CPU s | peak MB | every run (s) | every run (CPU s) |")
    print("|---|---:|---:|---:|---|---|")
    for name, results in runs.items():
        wall, cpu, peak = (statistics.median(r[k] for r in results) for k in range(3))
        print(
            f"| {name} | {wall:.2f} | {cpu:.2f} | {peak:,.0f} | "
            f"{[round(r[0], 2) for r in results]} | {[round(r[1], 2) for r in results]} |"
        )


if __name__ == "__main__":
    main()
