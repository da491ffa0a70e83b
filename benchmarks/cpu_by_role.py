"""CPU seconds of the production stack's processes, by role, while another benchmark runs.

    .venv/bin/python benchmarks/cpu_by_role.py SECONDS &
    .venv/bin/python benchmarks/production_runs.py 40

Samples every process's user + system time from /proc twice a second for SECONDS and prints,
per role (run workers, daemon, code server, PostgreSQL, the benchmark process with moto's S3
server in a thread), the sum of each process's last sample. A process's final half second
can be missed, so the figures are slightly low. Linux only.
"""

from __future__ import annotations

import collections
import os
import sys
import time

ROLES = [
    ("run worker", ("multiprocessing", "execute_run")),  # the code server spawns them
    ("daemon", ("dagster-daemon", "dagster._daemon")),
    ("code server", ("code-server", "api grpc")),
    ("postgres", ("postgres",)),
    ("benchmark (moto S3 in a thread)", ("production_runs.py", "pipeline.py")),
]


def role(command: str) -> str | None:
    for name, marks in ROLES:
        if any(mark in command for mark in marks):
            return name
    return None


def main(seconds: float) -> None:
    tick = os.sysconf("SC_CLK_TCK")
    last: dict[str, tuple[str, float]] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode(errors="replace")
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
            name = role(command)
            if name:
                last[pid] = (name, (int(fields[11]) + int(fields[12])) / tick)
        time.sleep(0.5)
    total, count = collections.Counter(), collections.Counter()
    for name, cpu in last.values():
        total[name] += cpu
        count[name] += 1
    print("| role | CPU s | processes |\n|---|---:|---:|")
    for name, _ in ROLES:
        print(f"| {name} | {total[name]:.1f} | {count[name]} |")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 330)
