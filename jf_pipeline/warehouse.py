"""The DuckDB warehouse: explicit DDL from the contract, atomic per-tenant publishing, and
a snapshot that analysts can hold open without ever blocking a run.

DuckDB lets one process write a file, and any open connection to it blocks that writer
(dagster-io/dagster#19068). So the pipeline writes a private *build* file next to the
warehouse (`warehouse.duckdb` -> `warehouse.build.duckdb`) and, after each commit, copies
it to a temporary file and atomically renames that over `warehouse.duckdb`. Analysts open
`warehouse.duckdb`: a session keeps the snapshot it opened, new sessions see the newest,
and neither waits for the other.

Why not `dagster_duckdb.DuckDBResource`: it opens every connection read-write (readers here
must be read-only, on the snapshot or the build file), and it does not close the
connection when the block raises, so a failed publish would keep the build file locked
until garbage collection and stall the next writer. Connections are therefore made here
(`connect`, `writer`, `read_only_query`); the `Warehouse` resource in resources.py is the
Dagster face of this module.

A tenant's rows in every table are replaced in one transaction, inserting by column name.
Only our own constant table and column names are ever formatted into SQL, quoted;
everything from customers is a bound parameter or data in a registered frame.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from jf_pipeline.contract import (
    CHANGE_VIEWS,
    HISTORIES,
    HISTORY_SOURCES,
    HISTORY_STORES,
    HISTORY_TABLES,
    TABLES,
    Table,
    tracked_columns,
)
from jf_pipeline.contract import INGESTIONS as INGESTIONS_TABLE
from jf_pipeline.core.plan import PublishedState, stamp_ingestion

INGESTIONS = INGESTIONS_TABLE.name
INGESTION_COLUMNS = INGESTIONS_TABLE.columns
SUCCESS = ("published", "partial")
"""Outcomes of a publish that replaced the tenant's rows (refused and failed did not)."""
GUARDED_COUNTS = {
    "deals": "deals_published",
    "accounts": "accounts_published",
    "contacts": "contacts_published",
}
GUARD_WINDOW_DAYS = 30
"""The guard's baseline is the largest count published within this many days (since the
latest approved drop), so a count cannot be walked down by many small drops."""


def ident(name: str) -> str:
    """Quote an identifier (our own names only, but quoted all the same)."""
    return '"' + name.replace('"', '""') + '"'


def build_path(path: str | Path) -> Path:
    """The pipeline's private file beside the analysts' snapshot."""
    p = Path(path)
    return p.with_name(f"{p.stem}.build{p.suffix}") if p.suffix else p.with_name(f"{p.name}.build")


class WarehouseBusy(TimeoutError):
    """Another writer held the warehouse for longer than this writer would wait."""


def connect(
    path: str | Path, *, read_only: bool = False, timeout: float = 120.0
) -> duckdb.DuckDBPyConnection:
    """Open a file, waiting with backoff while another process holds its lock."""
    if not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    retries = _backoff(timeout)
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _lock_conflict(exc):
                raise
            if not next(retries, False):
                raise WarehouseBusy(
                    f"{path} stayed locked by another process for {timeout:g} s "
                    f"({'reading' if read_only else 'writing'} waits for it): "
                    f"{_one_line(exc)}"
                ) from exc


def _backoff(timeout: float, first: float = 0.05) -> Iterator[bool]:
    """One `True` per retry until `timeout` has passed, sleeping before each (doubling, at
    most 0.25 s: a failed try costs microseconds, and a freed lock is taken soon after)."""
    deadline = time.monotonic() + timeout
    delay = first
    while time.monotonic() <= deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
        yield True


def _lock_conflict(exc: duckdb.Error) -> bool:
    """DuckDB refused the file because another process holds it."""
    return "could not set lock" in str(exc).lower()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def lock_path(path: str | Path) -> Path:
    """The writers' lock file beside the build file (`warehouse.build.duckdb.lock`)."""
    build = build_path(path)
    return build.with_name(f"{build.name}.lock")


@contextlib.contextmanager
def writers_lock(path: str | Path, timeout: float = 120.0) -> Iterator[None]:
    """Hold the warehouse's writer lock: one writer at a time, across processes.

    DuckDB's own lock on the build file is not enough. It is a POSIX (`fcntl`) lock, which
    the kernel drops as soon as the holding process closes *any* handle on that file, and a
    publish does exactly that when it copies the build file to the snapshot. A second
    writer could then open the build file, take the swap file for a dead writer's and
    delete it, and fail the first writer's publish after its commit. This lock is an
    `flock` on a file of its own, held from before the build file is opened until after
    the swap, and released by the kernel when its holder dies. The holder's pid and start
    are written into the file for the message a waiting writer gives up with.
    """
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    # O_NOFOLLOW: never take (or write into) a file a link planted under our name points at.
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        retries = _backoff(timeout, first=0.01)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not next(retries, False):
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
                    raise WarehouseBusy(
                        f"another writer held the warehouse {path} for more than {timeout:g} s "
                        f"({'held by ' + holder if holder else 'holder unknown'}; lock file "
                        f"{lock}): nothing was written"
                    ) from None
        os.ftruncate(fd, 0)
        stamp = f"pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n"
        os.pwrite(fd, stamp.encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock (the kernel does too if the process dies)


VIEWS = {
    "deals_by_stage": (
        "Deals and total value by tenant, pipeline and stage, with subtotals ('(all)') per tenant "
        "and pipeline and a grand total.",
        """
        SELECT
            CASE WHEN grouping(tenant_id) = 1 THEN '(all)' ELSE tenant_id END AS tenant_id,
            CASE WHEN grouping(pipeline_id) = 1 THEN '(all)' ELSE coalesce(pipeline_id, '(none)') END AS pipeline_id,
            CASE WHEN grouping(deal_stage) = 1 THEN '(all)' ELSE coalesce(deal_stage, '(none)') END AS deal_stage,
            count(*) AS deals,
            sum(value) AS total_value
        FROM importable_deals
        GROUP BY ROLLUP (tenant_id, pipeline_id, deal_stage)
        """,
    ),
    "tenant_freshness": (
        "Per tenant: the last successful publish, its age, and the last attempt's outcome.",
        """
        SELECT
            tenant_id,
            max(finished_at) FILTER (WHERE outcome IN ('published', 'partial')) AS last_published_at,
            current_timestamp - max(finished_at) FILTER (WHERE outcome IN ('published', 'partial')) AS age,
            max(finished_at) AS last_attempt_at,
            arg_max(outcome, finished_at) AS last_outcome
        FROM ingestions
        GROUP BY tenant_id
        """,
    ),
}


# --- history (issue #20): versions written with each publish, changes read from them ------


def _literal(text: str) -> str:
    """One of our own names as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def change_view_sql(history: Table) -> str:
    """What each ingestion changed in `history`: every row it started (`new`, or `changed`
    when it ended the row's previous version, with the fields whose values differ, old ->
    new) and every row it ended without a successor (`gone`)."""
    key, h = ident(history.key[1]), ident(history.name)
    fields = ", ".join(
        f"{{'field': {_literal(c)}, 'old': CAST(o.{ident(c)} AS VARCHAR), "
        f"'new': CAST(n.{ident(c)} AS VARCHAR)}}"
        for c in tracked_columns(history)
        if c != history.key[1]
    )
    return f"""
        SELECT coalesce(n.tenant_id, o.tenant_id) AS tenant_id,
               coalesce(n.valid_from_ingestion_id, o.valid_to_ingestion_id) AS ingestion_id,
               coalesce(n.valid_from, o.valid_to) AS changed_at,
               coalesce(n.{key}, o.{key}) AS {key},
               CASE WHEN o.{key} IS NULL THEN 'new' WHEN n.{key} IS NULL THEN 'gone'
                    ELSE 'changed' END AS change,
               CASE WHEN o.{key} IS NOT NULL AND n.{key} IS NOT NULL
                    THEN list_filter([{fields}], lambda f: f.old IS DISTINCT FROM f.new) END
                   AS changed_fields
        FROM {h} n FULL JOIN {h} o
          ON o.tenant_id = n.tenant_id AND o.{key} = n.{key}
         AND o.valid_to_ingestion_id = n.valid_from_ingestion_id
        WHERE n.tenant_id IS NOT NULL OR o.valid_to IS NOT NULL
        """  # noqa: S608 - our own names only


def change_views() -> dict[str, tuple[str, str]]:
    """deal_changes, account_changes, contact_changes: (doc, SQL) as in VIEWS."""
    return {
        view: (
            f"Per ingestion (ingestions.run_id), each {history.removesuffix('_history')} it "
            "made new, changed (changed_fields: the fields that differ, old -> new, as text) "
            f"or gone (missing from the drop), read from {history}.",
            change_view_sql(HISTORY_TABLES[history]),
        )
        for history, view in CHANGE_VIEWS.items()
    }


VIEWS.update(change_views())


def history_view_sql(history: Table) -> str:
    """`history` as analysts read it: the ended versions, and the published rows as their
    current versions (valid_to NULL), with when and by which ingestion each started."""
    ended, current = (ident(t.name) for t in HISTORY_STORES[history.name])
    source, key = ident(HISTORY_SOURCES[history.name]), ident(history.key[1])
    types = {f.name: f.type for f in history.fields}
    started = {"valid_from", "valid_from_ingestion_id", "row_hash"}
    current_columns = ", ".join(
        f"c.{ident(n)}"
        if n in started
        else f"CAST(NULL AS {types[n]}) AS {ident(n)}"
        if n.startswith("valid_to")
        else f"p.{ident(n)}"
        for n in history.names
    )
    names = ", ".join(ident(n) for n in history.names)
    return f"""
        SELECT {names} FROM {ended}
        UNION ALL
        SELECT {current_columns}
        FROM {source} p JOIN {current} c ON c.tenant_id = p.tenant_id AND c.{key} = p.{key}
        """  # noqa: S608 - our own names only


FIRST_VERSIONS_DIRECT = True
"""A tenant without current versions gets them straight from the published rows (see
`start_versions`); False takes the general path (the tests compare both)."""


def _history_names(history: Table) -> tuple[str, str, str, str, list[str]]:
    ended, current = (ident(t.name) for t in HISTORY_STORES[history.name])
    source, key = ident(HISTORY_SOURCES[history.name]), ident(history.key[1])
    return ended, current, source, key, tracked_columns(history)


def end_versions(
    con: duckdb.DuckDBPyConnection, tenant: str, history: Table, ingestion: dict
) -> dict[str, int] | None:
    """First half of bringing `tenant`'s versions in `history` in line with a publish,
    inside the caller's transaction, while the rows to publish are registered as
    `incoming_rows` and the published table still holds the previous ones: rows whose
    values changed or that are missing end their current version, which is copied, with
    the old values, into the ended versions. Set-wise: the incoming rows' hashes are
    compared with the current versions' through a temporary table (`history_diff`, which
    `start_versions` uses and drops); when most rows' hashes differ, the values are
    compared too (so a DuckDB whose hash() differs refreshes the hashes instead of
    inventing versions). Returns the counts of new, changed and gone rows, or None when the
    tenant has no current versions (its first publish: nothing to compare)."""
    ended, current, source, key, columns = _history_names(history)
    types = {f.name: f.type for f in history.fields}
    when, run = ingestion.get("finished_at") or datetime.now(UTC), ingestion.get("run_id")
    (current_versions,) = con.execute(
        f"SELECT count(*) FROM {current} WHERE tenant_id = ?",  # noqa: S608
        [tenant],
    ).fetchone()
    if FIRST_VERSIONS_DIRECT and not current_versions:
        return None
    # Hashed as the published table will hold them: each value cast to its column's type.
    incoming = ", ".join(f"CAST({ident(n)} AS {types[n]})" for n in columns)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE history_diff AS
        SELECT coalesce(n.k, o.k) AS k, o.row_hash AS old_hash, n.row_hash AS new_hash
        FROM (SELECT CAST({key} AS {types[history.key[1]]}) AS k, hash({incoming}) AS row_hash
              FROM incoming_rows) n
        FULL JOIN (SELECT {key} AS k, row_hash FROM {current} WHERE tenant_id = ?) o
          ON n.k = o.k
        WHERE n.row_hash IS DISTINCT FROM o.row_hash
        """,  # noqa: S608
        [tenant],
    )
    counts = (
        "SELECT count(*) FILTER (WHERE old_hash IS NULL), "
        "count(*) FILTER (WHERE old_hash IS NOT NULL AND new_hash IS NOT NULL), "
        "count(*) FILTER (WHERE new_hash IS NULL) FROM history_diff"
    )
    new, changed, gone = con.execute(counts).fetchone()
    # Within one DuckDB, equal values hash equally: a differing hash is a change. Another
    # DuckDB's hash() would differ for (nearly) every row, as every row has a VARCHAR key
    # and the deals a DATE and a DECIMAL: only when at least half of the rows look changed
    # are the values compared (reading every column of both sides: 0.3 s CPU at 1M rows).
    if changed and 2 * changed >= current_versions:
        same = " AND ".join(
            f"CAST(n.{ident(c)} AS {types[c]}) IS NOT DISTINCT FROM p.{ident(c)}" for c in columns
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE history_same AS
            SELECT d.k, d.new_hash
            FROM history_diff d
            JOIN incoming_rows n ON CAST(n.{key} AS {types[history.key[1]]}) = d.k
            JOIN {source} p ON p.{key} = d.k AND p.tenant_id = ?
            WHERE d.old_hash IS NOT NULL AND d.new_hash IS NOT NULL AND {same}
            """,  # noqa: S608
            [tenant],
        )
        if con.execute("SELECT count(*) FROM history_same").fetchone()[0]:
            con.execute(
                f"UPDATE {current} SET row_hash = s.new_hash FROM history_same s "  # noqa: S608
                f"WHERE {current}.tenant_id = ? AND {current}.{key} = s.k",
                [tenant],
            )
            con.execute("DELETE FROM history_diff WHERE k IN (SELECT k FROM history_same)")
            new, changed, gone = con.execute(counts).fetchone()
        con.execute("DROP TABLE history_same")
    if changed or gone:
        names = ", ".join(ident(n) for n in columns)
        con.execute(
            f"INSERT INTO {ended} (tenant_id, {names}, valid_from, valid_to, "  # noqa: S608
            "valid_from_ingestion_id, valid_to_ingestion_id, row_hash) "
            f"SELECT p.tenant_id, {', '.join(f'p.{ident(n)}' for n in columns)}, c.valid_from, "
            "?, c.valid_from_ingestion_id, ?, c.row_hash "
            f"FROM history_diff d JOIN {current} c ON c.{key} = d.k AND c.tenant_id = ? "
            f"JOIN {source} p ON p.{key} = d.k AND p.tenant_id = ? WHERE d.old_hash IS NOT NULL",
            [when, run, tenant, tenant],
        )
        con.execute(
            f"DELETE FROM {current} WHERE tenant_id = ? AND {key} IN "  # noqa: S608
            "(SELECT k FROM history_diff WHERE old_hash IS NOT NULL)",
            [tenant],
        )
    return {"new": new, "changed": changed, "gone": gone}


def start_versions(
    con: duckdb.DuckDBPyConnection,
    tenant: str,
    history: Table,
    ingestion: dict,
    counts: dict[str, int] | None,
) -> dict[str, int]:
    """Second half (after the published rows are replaced): the new and changed rows start
    a current version. A tenant's first publish (`counts` None) starts one per published
    row, hashed from the table, with no comparison to make (the general path gives the
    same rows through the diff table; test_history.py compares the two)."""
    _, current, source, key, columns = _history_names(history)
    when, run = ingestion.get("finished_at") or datetime.now(UTC), ingestion.get("run_id")
    if counts is None:
        names = ", ".join(ident(n) for n in columns)
        (inserted,) = con.execute(
            f"INSERT INTO {current} (tenant_id, {key}, valid_from, valid_from_ingestion_id, "  # noqa: S608
            f"row_hash) SELECT ?, {key}, ?, ?, hash({names}) FROM {source} WHERE tenant_id = ?",
            [tenant, when, run, tenant],
        ).fetchone()
        return {"new": inserted, "changed": 0, "gone": 0}
    if counts["new"] or counts["changed"]:
        con.execute(
            f"INSERT INTO {current} (tenant_id, {key}, valid_from, valid_from_ingestion_id, "  # noqa: S608
            "row_hash) SELECT ?, k, ?, ?, new_hash FROM history_diff WHERE new_hash IS NOT NULL",
            [tenant, when, run],
        )
    con.execute("DROP TABLE history_diff")
    return counts


def _comment(con: duckdb.DuckDBPyConnection, target: str, text: str) -> None:
    # COMMENT ON takes no parameters; the text is ours (contract docs), quoted as a literal.
    con.execute(f"COMMENT ON {target} IS '" + text.replace("'", "''") + "'")


def document(con: duckdb.DuckDBPyConnection, tables: dict[str, Table] = TABLES) -> None:
    """Views and `COMMENT ON` every table, view and column (the contract's docs), in one
    transaction. Only comments that differ from the contract's are written: each publish
    calls this, and rewriting ~80 unchanged comments cost about half a second a run."""
    current = dict(
        con.execute(
            "SELECT table_name || '.' || column_name, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' UNION ALL "
            "SELECT table_name, comment FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name = 'main'"
        ).fetchall()
    )
    stored = dict(
        con.execute(
            "SELECT view_name, sql FROM duckdb_views() "
            "WHERE database_name = current_database() AND schema_name = 'main'"
        ).fetchall()
    )
    con.execute("BEGIN TRANSACTION")
    try:
        # The histories first (the change views read them), each replaced only when its
        # definition differs from the stored one, as DuckDB normalises it (a temporary
        # probe view): replacing drops a view's column comments, and rewriting them on
        # every publish is what this function avoids.
        for history in HISTORY_TABLES.values():
            sql = history_view_sql(history)
            con.execute(f"CREATE OR REPLACE TEMP VIEW jf_view_probe AS {sql}")
            (probe,) = con.execute(
                "SELECT sql FROM duckdb_views() WHERE database_name = 'temp' "
                "AND view_name = 'jf_view_probe'"
            ).fetchone()
            con.execute("DROP VIEW temp.jf_view_probe")
            if stored.get(history.name, "").partition(" AS ")[2] != probe.partition(" AS ")[2]:
                con.execute(f"CREATE OR REPLACE VIEW {ident(history.name)} AS {sql}")
                current = {k: v for k, v in current.items() if k.split(".")[0] != history.name}
            _comment(con, f"VIEW {ident(history.name)}", history.doc)
            for field in history.fields:
                if current.get(f"{history.name}.{field.name}") != field.doc:
                    _comment(con, f"COLUMN {ident(history.name)}.{ident(field.name)}", field.doc)
        for view, (doc, sql) in VIEWS.items():  # cheap, and follows a changed definition
            con.execute(f"CREATE OR REPLACE VIEW {ident(view)} AS {sql}")
            _comment(con, f"VIEW {ident(view)}", doc)
        for table in tables.values():
            if current.get(table.name) != table.doc:
                _comment(con, f"TABLE {ident(table.name)}", table.doc)
            for field in table.fields:
                if current.get(f"{table.name}.{field.name}") != field.doc:
                    _comment(con, f"COLUMN {ident(table.name)}.{ident(field.name)}", field.doc)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def ensure_schema(con: duckdb.DuckDBPyConnection, tables: dict[str, Table] = TABLES) -> None:
    """Create missing tables and add missing columns; never drops or retypes anything."""
    existing = set(
        con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"
        ).fetchall()
    )
    present = {t for t, _ in existing}
    for table, columns in ((t.name, t.columns) for t in tables.values()):
        if table not in present:
            body = ", ".join(f"{ident(c)} {t}" for c, t in columns)
            con.execute(f"CREATE TABLE IF NOT EXISTS {ident(table)} ({body})")
            continue
        for column, type_ in columns:
            if (table, column) not in existing:
                con.execute(f"ALTER TABLE {ident(table)} ADD COLUMN {ident(column)} {type_}")


class ArrowStream:
    """A polars frame as DuckDB scans it: through the Arrow C stream interface only.

    polars hands its buffers over as they are (string views, no copy; `to_arrow()`'s
    default converted every string, ~1 s at 1M rows), and neither side imports pyarrow:
    DuckDB's own polars support goes through `to_arrow()`, which needs pyarrow and numpy,
    0.2-0.5 s of every run worker's start-up."""

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema=None):
        return self.frame.__arrow_c_stream__(requested_schema)


def to_polars(relation: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """A query's result as a polars frame, through the Arrow C stream interface (no
    pyarrow). polars cannot import INTERVAL columns (it panics), so a result holding one
    goes through Python values instead."""
    if any("INTERVAL" in str(t) for t in relation.types):
        return pl.DataFrame(relation.fetchall(), schema=relation.columns, orient="row")
    return pl.DataFrame(relation)


class Writer:
    """The single writer's connection to the build file (see `writer`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def published_deal_count(self, tenant: str) -> int:
        return self.published_counts(tenant)["deals"]

    def published_counts(self, tenant: str) -> dict[str, int]:
        """dataset -> rows the tenant has published now."""
        tables = {
            "deals": "importable_deals",
            "accounts": "accounts",
            "contacts": "importable_contacts",
        }
        return {
            dataset: self.con.execute(
                f"SELECT count(*) FROM {ident(table)} WHERE tenant_id = ?",  # noqa: S608
                [tenant],
            ).fetchone()[0]
            for dataset, table in tables.items()
        }

    def guard_baseline(self, tenant: str, window_days: int = GUARD_WINDOW_DAYS) -> dict[str, int]:
        """dataset -> the count new drops are compared with: the largest of what is published
        now and every successful publish of the last `window_days` since the latest approved
        one. A run of drops each just within the allowed share (1,000 -> 510 -> 260 ...) is
        thus refused at the step that crosses it; only an approval lowers the baseline."""
        now = self.published_counts(tenant)
        selects = ", ".join(f"max({ident(column)})" for column in GUARDED_COUNTS.values())
        row = self.con.execute(
            f"""
            WITH recent AS (
                SELECT * FROM {ident(INGESTIONS)}
                WHERE tenant_id = ? AND outcome IN ('published', 'partial')
                  AND finished_at >= current_timestamp - to_days(CAST(? AS INTEGER))
            )
            SELECT {selects} FROM recent
            WHERE finished_at >= coalesce(
                (SELECT max(finished_at) FROM recent WHERE approved), '-infinity'::TIMESTAMPTZ)
            """,  # noqa: S608
            [tenant, window_days],
        ).fetchone()
        return {
            dataset: max(now[dataset], found or 0)
            for (dataset, found) in zip(GUARDED_COUNTS, row, strict=True)
        }

    def published_state(self, tenant: str) -> PublishedState:
        """What the core's publish plan needs to know of the tenant's published data."""
        return PublishedState(
            baseline=self.guard_baseline(tenant),
            account_ids=lambda: self.published_account_ids(tenant),
            refused_version=self.refused_version(tenant),
        )

    def refused_version(self, tenant: str) -> str | None:
        """The landing_version of the tenant's latest publish attempt if the guard refused
        it (failed runs, which attempted nothing, are passed over), else None."""
        row = self.con.execute(
            f"SELECT outcome, landing_version FROM {ident(INGESTIONS)} "  # noqa: S608
            "WHERE tenant_id = ? AND outcome IN ('published', 'partial', 'refused') "
            "ORDER BY finished_at DESC LIMIT 1",
            [tenant],
        ).fetchone()
        return row[1] if row and row[0] == "refused" else None

    def published_account_ids(self, tenant: str) -> pl.Series:
        rows = self.con.execute(
            "SELECT account_unique_id FROM accounts WHERE tenant_id = ?", [tenant]
        ).fetchall()
        return pl.Series("account_unique_id", [r[0] for r in rows], dtype=pl.String)

    def replace_tenant(
        self, tenant: str, tables: dict[str, pl.DataFrame | None], ingestion: dict
    ) -> dict[str, dict[str, int]]:
        """Replace `tenant`'s rows in each given table (None = keep them), record the
        versions that changed in the tables' histories and log the ingestion, all in one
        transaction: on any error nothing changes. Returns, per replaced table with a
        history, its counts of `new`, `changed` and `gone` rows. Every row written
        gets `ingestion_id` = the ingestion's `run_id`."""
        con = self.con
        changes: dict[str, dict[str, int]] = {}
        # The rows carry the id their ingestion is logged under, whoever built the frames.
        tables = stamp_ingestion(tables, ingestion.get("run_id"))
        con.execute("BEGIN TRANSACTION")
        try:
            for table, frame in tables.items():
                if frame is None:
                    continue
                columns = TABLES[table].data_names
                names = ", ".join(ident(c) for c in columns)
                history = HISTORIES.get(table)
                con.register("incoming_rows", ArrowStream(frame.select(columns)))
                try:
                    # Versions that end are copied with the old values, before they go.
                    counts = end_versions(con, tenant, history, ingestion) if history else None
                    con.execute(f"DELETE FROM {ident(table)} WHERE tenant_id = ?", [tenant])  # noqa: S608
                    con.execute(
                        f"INSERT INTO {ident(table)} (tenant_id, {names}) "  # noqa: S608
                        f"SELECT ?, {names} FROM incoming_rows",
                        [tenant],
                    )
                    if history:
                        changes[table] = start_versions(con, tenant, history, ingestion, counts)
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
        return changes


@contextlib.contextmanager
def writer(path: str | Path, timeout: float = 120.0) -> Iterator[Writer]:
    """Open the build file for writing, then publish it as the analysts' snapshot.

    Writers are serialised by the writers' lock (`writers_lock`, and in Dagster also by the
    `duckdb_warehouse` pool), held until the snapshot is swapped in; analysts' connections
    to the snapshot never take it. `timeout` bounds the whole wait, raising `WarehouseBusy`.
    """
    build = build_path(path)
    with _locked_build(path, timeout) as con:
        # Holding the writers' lock, no other swap can be under way: any swap temp file
        # left beside the snapshot is from a writer killed mid-copy.
        remove_stale_swaps(Path(path))
        # The schema and any upgrade of older histories in one transaction: a writer
        # killed here leaves the warehouse as it was, to be upgraded by the next.
        layouts = history_layouts(con)
        con.execute("BEGIN TRANSACTION")
        try:
            ensure_schema(con)
            upgrade_histories(con, layouts)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        document(con)
        yield Writer(con)
        con.execute("CHECKPOINT")
        publish_snapshot(build, Path(path))


@contextlib.contextmanager
def _locked_build(path: str | Path, timeout: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """The build file opened for writing, under the writers' lock; `timeout` bounds both
    waits together."""
    deadline = time.monotonic() + timeout
    with writers_lock(path, timeout):
        build = build_path(path)
        if not build.exists() and Path(path).exists():
            shutil.copyfile(path, build)  # adopt a warehouse made before the build file existed
        # Waits only for a process outside the lock (an analyst holding the build file).
        con = connect(build, timeout=max(deadline - time.monotonic(), 0.0))
        try:
            yield con
        finally:
            con.close()


def _swap_pattern(path: Path) -> re.Pattern:
    # `.warehouse.duckdb.swap-<pid>.tmp`, and `.warehouse.duckdb.<pid>.tmp` of older versions.
    return re.compile(rf"\.{re.escape(path.name)}\.(?:swap-)?[0-9]+\.tmp")


def swap_temporary(path: Path) -> Path:
    """The name a snapshot swap copies to before renaming it over `path`."""
    return path.with_name(f".{path.name}.swap-{os.getpid()}.tmp")


def remove_stale_swaps(path: Path) -> list[Path]:
    """Delete swap temp files of `path` that a killed writer left (each as big as the
    warehouse). Only names of exactly our pattern are touched; a link is removed, never
    followed. Call it holding the writers' lock."""
    removed = []
    if not path.parent.is_dir():
        return removed
    pattern = _swap_pattern(path)
    for entry in os.scandir(path.parent):
        if pattern.fullmatch(entry.name) and not entry.is_dir(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return removed


def repair_snapshot(path: str | Path, timeout: float = 120.0) -> bool:
    """Bring the analysts' snapshot up to the build file after a writer died between its
    commit and the swap (`kill -9` mid-copy): the commit is in the build file, the snapshot
    still shows the old rows, and a full-size swap file is left beside it. Cheap when
    nothing is wrong (two stats). Returns whether the snapshot was replaced."""
    snapshot, build = Path(path), build_path(path)

    def stale() -> bool:
        return not snapshot.is_file() or snapshot.stat().st_mtime_ns < build.stat().st_mtime_ns

    if not build.is_file():
        return False
    pattern = _swap_pattern(snapshot)
    leftovers = snapshot.parent.is_dir() and any(
        pattern.fullmatch(e.name) for e in os.scandir(snapshot.parent)
    )
    if not stale() and not leftovers:
        return False
    with _locked_build(path, timeout) as con:  # no swap is under way now
        remove_stale_swaps(snapshot)
        if not stale():
            return False
        con.execute("CHECKPOINT")
        publish_snapshot(build, snapshot)
        return True


def publish_snapshot(build: Path, path: Path) -> None:
    """Copy the checkpointed build file beside `path` and rename it over `path` (atomic)."""
    temporary = swap_temporary(path)
    temporary.unlink(missing_ok=True)  # never write through a link planted under our name
    try:
        shutil.copyfile(build, temporary)
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
        # A WAL beside the snapshot belongs to the file just replaced (an analyst who wrote
        # into the snapshot): DuckDB would refuse to open the new file with it.
        Path(f"{path}.wal").unlink(missing_ok=True)
    finally:
        temporary.unlink(missing_ok=True)


def last_ingestions(path: str) -> pl.DataFrame:
    """The latest ingestion of every tenant (empty when nothing was published yet).

    Read from the build file, the writers' own copy: an analyst may hold the snapshot open
    read-write, and DuckDB then refuses every other process, even read-only.
    """
    try:
        return read_only_query(
            path,
            f"SELECT * FROM {ident(INGESTIONS)} "  # noqa: S608
            "QUALIFY row_number() OVER (PARTITION BY tenant_id ORDER BY finished_at DESC) = 1",
            prefer_build=True,
        )
    except (NoWarehouse, duckdb.CatalogException):
        return pl.DataFrame(schema={c: pl.String for c, _ in INGESTION_COLUMNS})


def record_failure(
    path: str,
    tenant: str,
    run_id: str,
    landing_version: str | None,
    reason: str,
    run_started_at: datetime | None = None,
    timeout: float = 120.0,
) -> bool:
    """Log a run that failed before it could publish (worker killed, a read that kept
    failing) as outcome `failed`, so status and freshness do not claim the tenant's latest
    drop was published. Nothing else changes; a run that already logged an attempt (a
    refusal) is left as it is, and so is a failure overtaken by a run that started later
    and published. Returns whether a row was added."""
    with writer(path, timeout) as w:
        done = w.con.execute(
            f"SELECT count(*) FROM {ident(INGESTIONS)} WHERE run_id = ?",  # noqa: S608
            [run_id],
        ).fetchone()[0]
        if done:
            return False
        if run_started_at is not None:
            # A newer run already published a later drop (this run read a version that was
            # replaced meanwhile): the tenant's latest drop is published, not failed.
            newer = w.con.execute(
                f"SELECT count(*) FROM {ident(INGESTIONS)} WHERE tenant_id = ? "  # noqa: S608
                "AND outcome IN ('published', 'partial') AND started_at > ?",
                [tenant, run_started_at],
            ).fetchone()[0]
            if newer:
                return False
        w.replace_tenant(
            tenant,
            {},
            {
                "run_id": run_id,
                "finished_at": datetime.now(UTC),
                "outcome": "failed",
                "landing_version": landing_version,
                "reason": reason,
            },
        )
        return True


class NoWarehouse(FileNotFoundError):
    pass


def _open_for_reading(
    path: str, prefer_build: bool, timeout: float = 120.0
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the snapshot, or to the build file it is a copy of.

    Never opens either for writing. DuckDB refuses a read-only connection to a file another
    process holds read-write: the build file while a writer publishes, the snapshot while
    an analyst holds it read-write (or left a WAL that no longer matches it). Both hold the
    same committed rows but for the publish under way, so the other file is read instead,
    and only when both are refused does this wait (up to `timeout`).
    """
    snapshot, build = Path(path), build_path(path)
    if not snapshot.is_file() and not build.is_file():
        raise NoWarehouse(f"no warehouse at {path}: run `jf ingest` or `make dev` first")
    files = [build, snapshot] if prefer_build else [snapshot, build]
    retries = _backoff(timeout)
    while True:
        errors = []
        for file in files:
            if not file.is_file():
                continue
            try:
                return duckdb.connect(str(file), read_only=True)
            except duckdb.IOException as exc:
                errors.append(exc)
        if not errors:  # both gone between the checks (a purge): as if never made
            raise NoWarehouse(f"no warehouse at {path}: run `jf ingest` or `make dev` first")
        locked = [e for e in errors if _lock_conflict(e)]
        if not locked:
            raise errors[0]
        if not next(retries, False):
            raise WarehouseBusy(
                f"{path} and its build file stayed locked by other processes for "
                f"{timeout:g} s: {_one_line(locked[0])}"
            ) from locked[0]


def read_only_query(
    path: str, sql: str, params: list | None = None, *, prefer_build: bool = False
) -> pl.DataFrame:
    """Run a query on the analysts' snapshot. The connection is read-only: nothing a query
    says can change the warehouse."""
    con = _open_for_reading(path, prefer_build)
    try:
        relation = con.sql(sql, params=params or [])
        if relation is None:  # a statement, not a query
            return pl.DataFrame()
        return to_polars(relation)
    finally:
        con.close()


JSON_NATIVE_TYPES = {
    "boolean", "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint",
    "uinteger", "ubigint", "uhugeint", "float", "double", "varchar", "null",
}  # fmt: skip
"""DuckDB type ids whose Python values are JSON values as they are."""
JSON_NESTED_TYPES = {"list", "array", "struct", "map", "union"}
"""Nested types, handed over as DuckDB's own JSON (`to_json`)."""


@dataclasses.dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple]


def query_rows(path: str, sql: str, *, as_json: bool = False) -> QueryResult:
    """Any query on the analysts' snapshot (read-only), every value converted by DuckDB
    itself: as text (`CAST(... AS VARCHAR)`, DuckDB's own rendering of intervals, decimals,
    lists, infinite timestamps; NULL stays None), or, `as_json`, as JSON values (numbers,
    booleans and text as they are, nested types through `to_json`, other types as text).

    No Arrow or polars conversion is involved, so no column type can make it fail (polars
    panics on INTERVAL columns); columns are addressed by position, so duplicate or odd
    names need no quoting."""
    con = _open_for_reading(path, prefer_build=False)
    try:
        relation = con.sql(sql)
        if relation is None:  # a statement, not a query
            return QueryResult([], [], [])
        ids = [t.id for t in relation.types]
        if as_json:
            expressions = [
                f"#{i}"
                if kind in JSON_NATIVE_TYPES
                else f"CAST(to_json(#{i}) AS VARCHAR)"
                if kind in JSON_NESTED_TYPES
                else f"CAST(#{i} AS VARCHAR)"
                for i, kind in enumerate(ids, 1)
            ]
        else:
            expressions = [f"CAST(#{i} AS VARCHAR)" for i in range(1, len(ids) + 1)]
        rows = relation.project(", ".join(expressions)).fetchall() if ids else []
        if as_json:
            nested = [i for i, kind in enumerate(ids) if kind in JSON_NESTED_TYPES]
            floats = [i for i, kind in enumerate(ids) if kind in ("float", "double")]
            if nested or floats:
                rows = [_json_row(row, nested, floats) for row in rows]
        return QueryResult(list(relation.columns), [str(t) for t in relation.types], rows)
    finally:
        con.close()


def _json_row(row: tuple, nested: list[int], floats: list[int]) -> tuple:
    values = list(row)
    for i in nested:
        if values[i] is not None:
            values[i] = json.loads(values[i])
    for i in floats:  # NaN and infinities are not JSON numbers
        if values[i] is not None and not math.isfinite(values[i]):
            values[i] = str(values[i])
    return tuple(values)


def tenant_status(path: str) -> pl.DataFrame:
    """One row per tenant: its latest publish attempt, the last success and its age, the
    counts that are live now (read from the published tables, whatever the latest attempt
    was), and for a refused drop, the counts it held and the reason."""
    return read_only_query(
        path,
        """
        WITH live_deals AS (SELECT tenant_id, count(*) AS n FROM importable_deals GROUP BY ALL),
             live_accounts AS (SELECT tenant_id, count(*) AS n FROM accounts GROUP BY ALL),
             live_contacts AS (SELECT tenant_id, count(*) AS n FROM importable_contacts GROUP BY ALL)
        SELECT i.tenant_id, i.outcome, i.finished_at AS last_attempt_at,
               f.last_published_at,
               CAST(epoch(current_timestamp) - epoch(f.last_published_at) AS BIGINT) AS published_age_s,
               coalesce(d.n, 0) AS deals, i.deals_rejected,
               coalesce(a.n, 0) AS accounts, coalesce(c.n, 0) AS contacts,
               i.errors, i.warnings,
               CASE WHEN i.outcome = 'refused' THEN i.deals_in_drop END AS refused_deals,
               CASE WHEN i.outcome = 'refused' THEN i.accounts_in_drop END AS refused_accounts,
               CASE WHEN i.outcome = 'refused' THEN i.contacts_in_drop END AS refused_contacts,
               i.reason
        FROM ingestions i JOIN tenant_freshness f USING (tenant_id)
        LEFT JOIN live_deals d ON d.tenant_id = i.tenant_id
        LEFT JOIN live_accounts a ON a.tenant_id = i.tenant_id
        LEFT JOIN live_contacts c ON c.tenant_id = i.tenant_id
        QUALIFY row_number() OVER (PARTITION BY i.tenant_id ORDER BY i.finished_at DESC) = 1
        ORDER BY i.tenant_id
        """,
    )


def refused_drop(path: str, tenant: str) -> dict | None:
    """The tenant's latest publish attempt (failed runs passed over) if the publish guard
    refused it: its run id, landing_version, settings_version, reason and finish time; else
    None."""
    frame = read_only_query(
        path,
        "SELECT run_id, outcome, landing_version, settings_version, reason, finished_at "  # noqa: S608
        f"FROM {ident(INGESTIONS)} "
        "WHERE tenant_id = ? AND outcome IN ('published', 'partial', 'refused') "
        "ORDER BY finished_at DESC LIMIT 1",
        [tenant],
        prefer_build=True,
    )
    if not frame.height or frame["outcome"][0] != "refused":
        return None
    row = frame.row(0, named=True)
    del row["outcome"]
    return row


def known_tenants(path: str) -> list[str]:
    """Every tenant the warehouse has an ingestion of (published, refused or failed)."""
    try:
        frame = read_only_query(
            path,
            f"SELECT DISTINCT tenant_id FROM {ident(INGESTIONS)} ORDER BY 1",  # noqa: S608
        )
    except duckdb.CatalogException:
        return []
    return frame["tenant_id"].to_list() if frame.height else []


def tenant_rejects(path: str, tenant: str) -> pl.DataFrame:
    """The tenant's problems, one row each, in file and row order."""
    return read_only_query(
        path,
        """
        SELECT file, row_number, line_number, record_id, severity, reason, "column", value, message
        FROM rejected_rows WHERE tenant_id = ?
        ORDER BY file, severity, reason, row_number NULLS FIRST
        """,
        [tenant],
    )


def last_changes(path: str) -> pl.DataFrame:
    """Per tenant, the deals its latest successful publish made new, changed and gone
    (`deals_new`, `deals_changed`, `deals_gone`; zeros when it changed nothing). Empty for
    a warehouse without history (made before it existed and not published since)."""
    schema = {"tenant_id": pl.String, "deals_new": pl.Int64, "deals_changed": pl.Int64,
              "deals_gone": pl.Int64}  # fmt: skip
    try:
        return read_only_query(
            path,
            """
            WITH last AS (
                SELECT tenant_id, run_id FROM ingestions WHERE outcome IN ('published', 'partial')
                QUALIFY row_number() OVER (PARTITION BY tenant_id ORDER BY finished_at DESC) = 1
            ), opened AS (
                SELECT h.tenant_id, h.deal_unique_id FROM deal_history h
                JOIN last l ON h.tenant_id = l.tenant_id AND h.valid_from_ingestion_id = l.run_id
            ), closed AS (
                SELECT h.tenant_id, h.deal_unique_id FROM deal_history h
                JOIN last l ON h.tenant_id = l.tenant_id AND h.valid_to_ingestion_id = l.run_id
            ), counted AS (
                SELECT coalesce(o.tenant_id, c.tenant_id) AS tenant_id,
                       count(*) FILTER (WHERE c.tenant_id IS NULL) AS deals_new,
                       count(*) FILTER (WHERE o.tenant_id IS NOT NULL AND c.tenant_id IS NOT NULL)
                           AS deals_changed,
                       count(*) FILTER (WHERE o.tenant_id IS NULL) AS deals_gone
                FROM opened o FULL JOIN closed c USING (tenant_id, deal_unique_id)
                GROUP BY ALL
            )
            SELECT l.tenant_id, coalesce(deals_new, 0) AS deals_new,
                   coalesce(deals_changed, 0) AS deals_changed,
                   coalesce(deals_gone, 0) AS deals_gone
            FROM last l LEFT JOIN counted USING (tenant_id) ORDER BY l.tenant_id
            """,
            prefer_build=True,
        ).cast(schema)
    except (NoWarehouse, duckdb.CatalogException):
        return pl.DataFrame(schema=schema)


def prune_history(
    path: str, older_than_days: int, tenant: str | None = None, *, dry_run: bool = False
) -> dict[str, int]:
    """Delete the history versions that ended (valid_to) more than `older_than_days` days
    ago, of one tenant or of all; a current version (valid_to NULL) is never deleted, so
    the history always holds the published rows. One transaction; the analysts' snapshot
    follows. `dry_run` counts them and changes nothing. Returns history table -> versions."""
    if not Path(path).is_file() and not build_path(path).is_file():
        raise NoWarehouse(f"no warehouse at {path}: run `jf ingest` or `make dev` first")
    where = "valid_to IS NOT NULL AND valid_to < current_timestamp - to_days(CAST(? AS INTEGER))"
    params: list = [older_than_days]
    if tenant is not None:
        where += " AND tenant_id = ?"
        params.append(tenant)
    if dry_run:
        con = _open_for_reading(path, prefer_build=True)
        try:
            return {
                name: con.execute(
                    f"SELECT count(*) FROM {ident(name)} WHERE {where}",  # noqa: S608
                    params,
                ).fetchone()[0]
                for name in HISTORY_TABLES  # the views (any layout): ended versions only
            }
        finally:
            con.close()
    deleted = {}
    with writer(path) as w:
        w.con.execute("BEGIN TRANSACTION")
        try:
            for name, (ended, _) in HISTORY_STORES.items():
                deleted[name] = w.con.execute(
                    f"DELETE FROM {ident(ended.name)} WHERE {where}",  # noqa: S608
                    params,
                ).fetchone()[0]
            w.con.execute("COMMIT")
        except BaseException:
            w.con.execute("ROLLBACK")
            raise
    return deleted


def history_layouts(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """How each history is stored in this warehouse: `stores` (a view of its ended and
    current tables), `table` (one table of every version, before the stores) or `missing`
    (made before the histories existed)."""
    tables = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
        ).fetchall()
    }
    return {
        name: "table" if name in tables else "stores" if stores[1].name in tables else "missing"
        for name, stores in HISTORY_STORES.items()
    }


def upgrade_histories(con: duckdb.DuckDBPyConnection, layouts: dict[str, str]) -> None:
    """Bring histories stored the older ways (`history_layouts`) into their just created
    stores. `table`: the ended versions move as they are, the current
    ones keep when they started (only for rows still published: the current version is the
    published row), and the old table gives way to the view. `missing`: every
    published row starts a current version, dated by the tenant's latest successful
    publish, so the first publish after an upgrade does not report every row as new.
    Inside the caller's transaction (the one that created the stores)."""
    for name, layout in layouts.items():
        if layout == "stores":
            continue
        history = HISTORY_TABLES[name]
        ended, current = (ident(t.name) for t in HISTORY_STORES[name])
        source, key = ident(HISTORY_SOURCES[name]), ident(history.key[1])
        columns = ", ".join(f"c.{ident(n)}" for n in tracked_columns(history))
        if layout == "table":
            # The columns both have: a table from before a column was added to the contract
            # lacks it (ensure_schema no longer adds columns to it); those versions get NULL.
            legacy = {
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' "
                    "AND table_name = ?",
                    [name],
                ).fetchall()
            }
            names = ", ".join(ident(n) for n in history.names if n in legacy)
            con.execute(
                f"INSERT INTO {ended} ({names}) SELECT {names} FROM {ident(name)} "  # noqa: S608
                "WHERE valid_to IS NOT NULL"
            )
            con.execute(
                f"""
                INSERT INTO {current}
                SELECT h.tenant_id, h.{key}, h.valid_from, h.valid_from_ingestion_id, h.row_hash
                FROM {ident(name)} h
                SEMI JOIN {source} c ON c.tenant_id = h.tenant_id AND c.{key} = h.{key}
                WHERE h.valid_to IS NULL
                """  # noqa: S608 - our own names only
            )
            con.execute(f"DROP TABLE {ident(name)}")
        # The view in the same transaction: a writer killed after it commits leaves every
        # history readable (`document` adds the comments).
        con.execute(f"CREATE OR REPLACE VIEW {ident(name)} AS {history_view_sql(history)}")
        # Published rows without a current version (all of them when `missing`).
        con.execute(
            f"""
            INSERT INTO {current}
            SELECT c.tenant_id, c.{key}, i.finished_at, i.run_id, hash({columns})
            FROM {source} c LEFT JOIN (
                SELECT tenant_id, finished_at, run_id FROM {ident(INGESTIONS)}
                WHERE outcome IN ('published', 'partial')
                QUALIFY row_number() OVER (PARTITION BY tenant_id ORDER BY finished_at DESC) = 1
            ) i ON i.tenant_id = c.tenant_id
            ANTI JOIN {current} o ON o.tenant_id = c.tenant_id AND o.{key} = c.{key}
            """  # noqa: S608 - our own names only
        )


def purge_tenant(path: str, tenant: str) -> dict[str, int]:
    """Delete `tenant`'s rows from every table jf-pipeline writes (`contract.TABLES`, so a
    table added there is purged too), in one transaction; table -> rows deleted."""
    deleted: dict[str, int] = {}
    with writer(path) as w:
        w.con.execute("BEGIN TRANSACTION")
        try:
            # Counted as analysts see them (a history by its view, before its stores go).
            stored_in = {t.name: name for name, stores in HISTORY_STORES.items() for t in stores}
            for name in [t for t in TABLES if t not in stored_in] + list(HISTORY_STORES):
                (deleted[name],) = w.con.execute(
                    f"SELECT count(*) FROM {ident(name)} WHERE tenant_id = ?",  # noqa: S608
                    [tenant],
                ).fetchone()
            for table in TABLES:
                w.con.execute(f"DELETE FROM {ident(table)} WHERE tenant_id = ?", [tenant])  # noqa: S608
            w.con.execute("COMMIT")
        except BaseException:
            w.con.execute("ROLLBACK")
            raise
    return deleted


def published_state_read_only(path: str, tenant: str) -> PublishedState:
    """What a publish of `tenant` would be compared with, read without the writer's lock
    (`jf check`): the build file read-only; nothing published yet when there is none."""
    try:
        con = _open_for_reading(path, prefer_build=True)
    except NoWarehouse:
        con = None
    if con is None:
        return PublishedState(baseline={}, account_ids=lambda: pl.Series([], dtype=pl.String))
    try:
        state = Writer(con).published_state(tenant)
        ids = state.account_ids()
        return PublishedState(baseline=state.baseline, account_ids=lambda: ids)
    except duckdb.CatalogException:  # a warehouse without our tables yet
        return PublishedState(baseline={}, account_ids=lambda: pl.Series([], dtype=pl.String))
    finally:
        con.close()
