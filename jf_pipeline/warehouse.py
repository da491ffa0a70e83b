"""The DuckDB warehouse: explicit DDL from the contract, and atomic per-tenant publishing.

A tenant's rows in every published table are replaced in one transaction, inserting by
column name, so a reader sees the old set or the new set and a failure leaves the old.
Only our own constant table and column names are ever formatted into SQL, quoted;
everything from customers is a bound parameter or data in a registered frame.
"""

from __future__ import annotations

import time
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


def connect(
    path: str, *, read_only: bool = False, timeout: float = 120.0
) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting with backoff while another process holds its lock."""
    if not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables and add missing columns; never drops or retypes anything."""
    existing = {
        (t, c)
        for t, c in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"
        ).fetchall()
    }
    tables = {t for t, _ in existing}
    for table, columns in ALL_TABLES.items():
        if table not in tables:
            body = ", ".join(f"{ident(c)} {t}" for c, t in columns)
            con.execute(f"CREATE TABLE IF NOT EXISTS {ident(table)} ({body})")
            continue
        for column, type_ in columns:
            if (table, column) not in existing:
                con.execute(f"ALTER TABLE {ident(table)} ADD COLUMN {ident(column)} {type_}")


def publish_tenant(
    path: str,
    tenant: str,
    tables: dict[str, pl.DataFrame | None],
    ingestion: dict,
    timeout: float = 120.0,
) -> None:
    """Replace `tenant`'s rows in each given table (None = keep them) and log the ingestion."""
    con = connect(path, timeout=timeout)
    try:
        ensure_schema(con)
        con.execute("BEGIN TRANSACTION")
        try:
            for table, frame in tables.items():
                if frame is None:
                    continue
                columns = [c for c, _ in ALL_TABLES[table] if c != "tenant_id"]
                names = ", ".join(ident(c) for c in columns)
                con.execute(f"DELETE FROM {ident(table)} WHERE tenant_id = ?", [tenant])  # noqa: S608
                con.register("incoming_rows", frame.select(columns).to_arrow())
                con.execute(
                    f"INSERT INTO {ident(table)} (tenant_id, {names}) "  # noqa: S608
                    f"SELECT ?, {names} FROM incoming_rows",
                    [tenant],
                )
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
    finally:
        con.close()


def _read(path: str, sql: str, params: list, timeout: float) -> pl.DataFrame | None:
    if not Path(path).exists():
        return None
    con = connect(path, read_only=True, timeout=timeout)
    try:
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if not set(ALL_TABLES) <= tables:
            return None
        return con.sql(sql, params=params).pl()
    finally:
        con.close()


def published_account_ids(path: str, tenant: str, timeout: float = 120.0) -> pl.Series:
    frame = _read(
        path, "SELECT account_unique_id FROM accounts WHERE tenant_id = ?", [tenant], timeout
    )
    if frame is None:
        return pl.Series("account_unique_id", [], dtype=pl.String)
    return frame["account_unique_id"]


def last_ingestions(path: str, timeout: float = 120.0) -> pl.DataFrame:
    """The latest ingestion of every tenant (empty when nothing was published yet)."""
    frame = _read(
        path,
        f"SELECT * FROM {ident(INGESTIONS)} "  # noqa: S608
        "QUALIFY row_number() OVER (PARTITION BY tenant_id ORDER BY finished_at DESC) = 1",
        [],
        timeout,
    )
    if frame is None:
        return pl.DataFrame(schema={c: pl.String for c, _ in INGESTION_COLUMNS})
    return frame
