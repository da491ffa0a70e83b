"""Start-up: what every process pays before it does any work, measured from outside.

    .venv/bin/python benchmarks/startup.py          (about 2 minutes)

1. Whole processes, median of JF_BENCH_REPEATS (default 5), each with the compiled bytecode
   `make setup` leaves in the virtualenv and, in the same run, compiling every module from
   source (PYTHONDONTWRITEBYTECODE with an empty PYTHONPYCACHEPREFIX: what every process
   did before `make setup` compiled, wherever PYTHONDONTWRITEBYTECODE is set):
   `python -c "import dagster"`, importing the code location, `jf ingest` of one sample
   tenant (`initech`, 30 deals) into a new warehouse, and `jf status`.
2. `python -X importtime`: what importing the code location adds to `import dagster`,
   by top-level package (self time, summed; one run).
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import BIN, PROJECT, load_now, machine, median, run_process  # noqa: E402

REPEATS = int(os.environ.get("JF_BENCH_REPEATS", "5"))


def commands(tmp: Path) -> dict[str, list[str]]:
    landing = tmp / "landing"
    if not landing.exists():
        shutil.copytree(PROJECT / "data" / "landing", landing)
    warehouse = tmp / "w" / "warehouse.duckdb"
    return {
        'python -c "import dagster"': [sys.executable, "-c", "import dagster"],
        "import the code location": [sys.executable, "-c", "import jf_pipeline.definitions"],
        "jf ingest --tenant initech (30 deals)": [
            str(BIN / "jf"),
            "ingest",
            "--landing",
            str(landing),
            "--warehouse",
            str(warehouse),
            "--tenant",
            "initech",
        ],
        "jf status": [str(BIN / "jf"), "status", "--warehouse", str(warehouse)],
    }


def import_profile(module: str) -> dict[str, int]:
    """module -> self microseconds, from `python -X importtime -c "import module"`."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = {}
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        found[name.strip()] = int(own)
    return found


def main() -> None:
    print(machine())
    print()
    source = tempfile.mkdtemp(prefix="jf-no-bytecode-")
    from_source = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": source}
    results: dict[str, dict[str, list]] = collections.defaultdict(lambda: {"pyc": [], "src": []})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for _ in range(REPEATS):  # interleaved, so drifting load hits both alike
            for name, args in commands(tmp).items():
                if "ingest" in name:
                    shutil.rmtree(tmp / "w", ignore_errors=True)
                results[name]["pyc"].append(run_process(args))
                if "ingest" in name:
                    shutil.rmtree(tmp / "w", ignore_errors=True)
                results[name]["src"].append(run_process(args, env=from_source))
    shutil.rmtree(source, ignore_errors=True)
    print(f"Load average at the end (1/5/15 min): {load_now()}\n")
    print(
        "| process | seconds | CPU s | peak MB | from source: seconds | from source: CPU s "
        "| / import dagster (seconds) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = median([m.seconds for m in results['python -c "import dagster"']["pyc"]])
    for name, runs in results.items():
        pyc, src = runs["pyc"], runs["src"]
        seconds = median([m.seconds for m in pyc])
        print(
            f"| `{name}` | {seconds:.2f} | {median([m.cpu_seconds for m in pyc]):.2f} | "
            f"{max(m.peak_mb for m in pyc):.0f} | {median([m.seconds for m in src]):.2f} | "
            f"{median([m.cpu_seconds for m in src]):.2f} | {seconds / base:.2f} |"
        )
    dagster = import_profile("dagster")
    location = import_profile("jf_pipeline.definitions")
    extra = collections.Counter()
    for name, own in location.items():
        if name not in dagster:
            extra[name.split(".")[0]] += own
    total = sum(location.values())
    print()
    print(
        f"`python -X importtime`, one run: importing the code location took {total / 1e6:.2f} s "
        f"of import time, {sum(dagster.values()) / 1e6:.2f} s of it for what `import dagster` "
        "imports. What the code location adds, by package (self time):\n"
    )
    print("| package | seconds |")
    print("|---|---:|")
    for package, own in extra.most_common(8):
        print(f"| `{package}` | {own / 1e6:.3f} |")


if __name__ == "__main__":
    main()
