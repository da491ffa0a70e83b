"""Real servers for the tests and benchmarks: a PostgreSQL cluster of our own, Dagster's
services as process groups that are always stopped, and a reader of the warehouse they fill."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb


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


def _postgres_bin() -> Path:
    """Debian's server binaries (scripts/ensure-test-tools installs them)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError(
            "PostgreSQL's initdb is missing: run ./scripts/ensure-test-tools (make test does)"
        )
    return Path(found[-1]).parent


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresServer]:
    """A fresh cluster in a temporary folder on a free loopback port (the machine's own
    clusters are not touched). As root it runs as the `postgres` user, which Debian's
    package creates; initdb refuses root."""
    bindir = _postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="jf-pg-"))
    data = folder / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True)

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
    try:
        yield PostgresServer("127.0.0.1", port, "jf")
    finally:
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
