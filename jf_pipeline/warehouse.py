"""The DuckDB warehouse: explicit DDL from the contract, atomic per-tenant publishing, and
a snapshot that analysts can hold open without ever blocking a run.

DuckDB lets one process write a file, and any open connection to it blocks that writer
(dagster-io/dagster#19068). So the pipeline writes a private *build* file next to the
warehouse (`warehouse.duckdb` -> `warehouse.build.duckdb`) and, after each commit, copies
it to a temporary file and atomically renames that over `warehouse.duckdb`. Analysts open
`warehouse.duckdb`: a session keeps the snapshot it opened, new sessions see the newest,
and neither waits for the other.

A tenant's rows in every table are replaced in one transaction, inserting by column name.
Only our own constant table and column names are ever formatted into SQL, quoted;
everything from customers is a bound parameter or data in a registered frame.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

from jf_pipeline.contract import WAREHOUSE_TABLES

INGESTIONS = "ingestions"
INGESTION_COLUMNS: list[tuple[str, str]] = [
    ("tenant_id", "VARCHAR"),
    ("run_id", "VARCHAR"),
    ("finished_at", "TIMESTAMPTZ"),
    ("outcome", "VARCHAR"),
    ("landing_version", "VARCHAR"),
    ("deals_version", "VARCHAR"),
    ("accounts_version", "VARCHAR"),
    ("contacts_version", "VARCHAR"),
    ("deals_published", "BIGINT"),
    ("deals_rejected", "BIGINT"),
    ("accounts_published", "BIGINT"),
    ("contacts_published", "BIGINT"),
    ("errors", "BIGINT"),
    ("warnings", "BIGINT"),
]
ALL_TABLES: dict[str, list[tuple[str, str]]] = {
    **{name: columns for name, (_, columns) in WAREHOUSE_TABLES.items()},
    INGESTIONS: INGESTION_COLUMNS,
}


def ident(name: str) -> str:
    """Quote an identifier (our own names only, but quoted all the same)."""
    return '"' + name.replace('"', '""') + '"'


def build_path(path: str | Path) -> Path:
    """The pipeline's private file beside the analysts' snapshot."""
    p = Path(path)
    return p.with_name(f"{p.stem}.build{p.suffix}") if p.suffix else p.with_name(f"{p.name}.build")


def connect(
    path: str | Path, *, read_only: bool = False, timeout: float = 120.0
) -> duckdb.DuckDBPyConnection:
    """Open a file, waiting with backoff while another process holds its lock."""
    if not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables and add missing columns; never drops or retypes anything."""
    existing = set(
        con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"
        ).fetchall()
    )
    tables = {t for t, _ in existing}
    for table, columns in ALL_TABLES.items():
        if table not in tables:
            body = ", ".join(f"{ident(c)} {t}" for c, t in columns)
            con.execute(f"CREATE TABLE IF NOT EXISTS {ident(table)} ({body})")
            continue
        for column, type_ in columns:
            if (table, column) not in existing:
                con.execute(f"ALTER TABLE {ident(table)} ADD COLUMN {ident(column)} {type_}")


class Writer:
    """The single writer's connection to the build file (see `writer`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def published_deal_count(self, tenant: str) -> int:
        return self.con.execute(
            "SELECT count(*) FROM importable_deals WHERE tenant_id = ?", [tenant]
        ).fetchone()[0]

    def published_account_ids(self, tenant: str) -> pl.Series:
        rows = self.con.execute(
            "SELECT account_unique_id FROM accounts WHERE tenant_id = ?", [tenant]
        ).fetchall()
        return pl.Series("account_unique_id", [r[0] for r in rows], dtype=pl.String)

    def replace_tenant(
        self, tenant: str, tables: dict[str, pl.DataFrame | None], ingestion: dict
    ) -> None:
        """Replace `tenant`'s rows in each given table (None = keep them) and log the
        ingestion, all in one transaction: on any error nothing changes."""
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            for table, frame in tables.items():
                if frame is None:
                    continue
                columns = [c for c, _ in ALL_TABLES[table] if c != "tenant_id"]
                names = ", ".join(ident(c) for c in columns)
                con.execute(f"DELETE FROM {ident(table)} WHERE tenant_id = ?", [tenant])  # noqa: S608
                con.register("incoming_rows", frame.select(columns).to_arrow())
                try:
                    con.execute(
                        f"INSERT INTO {ident(table)} (tenant_id, {names}) "  # noqa: S608
                        f"SELECT ?, {names} FROM incoming_rows",
                        [tenant],
                    )
                finally:
                    con.unregister("incoming_rows")
            columns = [c for c, _ in INGESTION_COLUMNS]
            con.execute(
                f"INSERT INTO {ident(INGESTIONS)} ({', '.join(ident(c) for c in columns)}) "  # noqa: S608
                f"VALUES ({', '.join('?' for _ in columns)})",
                [tenant if c == "tenant_id" else ingestion.get(c) for c in columns],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


@contextlib.contextmanager
def writer(path: str | Path, timeout: float = 120.0) -> Iterator[Writer]:
    """Open the build file for writing, then publish it as the analysts' snapshot.

    Writers are serialised by DuckDB's file lock on the build file (and, in Dagster, by the
    `duckdb_warehouse` pool); analysts' connections to the snapshot never take that lock.
    """
    build = build_path(path)
    if not build.exists() and Path(path).exists():
        shutil.copyfile(path, build)  # adopt a warehouse made before the build file existed
    con = connect(build, timeout=timeout)
    try:
        ensure_schema(con)
        yield Writer(con)
        con.execute("CHECKPOINT")
        publish_snapshot(build, Path(path))
    finally:
        con.close()


def publish_snapshot(build: Path, path: Path) -> None:
    """Copy the checkpointed build file beside `path` and rename it over `path` (atomic)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(build, temporary)
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _read(path: str, sql: str, params: list) -> pl.DataFrame | None:
    """Query the analysts' snapshot, as an analyst would (read-only, never blocking a run)."""
    if not Path(path).is_file():
        return None
    con = duckdb.connect(path, read_only=True)
    try:
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if not set(ALL_TABLES) <= tables:
            return None
        return con.sql(sql, params=params).pl()
    finally:
        con.close()


def last_ingestions(path: str) -> pl.DataFrame:
    """The latest ingestion of every tenant (empty when nothing was published yet)."""
    frame = _read(
        path,
        f"SELECT * FROM {ident(INGESTIONS)} "  # noqa: S608
        "QUALIFY row_number() OVER (PARTITION BY tenant_id ORDER BY finished_at DESC) = 1",
        [],
    )
    if frame is None:
        return pl.DataFrame(schema={c: pl.String for c, _ in INGESTION_COLUMNS})
    return frame
