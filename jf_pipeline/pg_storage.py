"""Dagster's PostgreSQL storage, holding its connections open (deploy/dagster.yaml).

`dagster_postgres` opens a new PostgreSQL connection for every statement it runs outside
the webserver (SQLAlchemy's NullPool), "to prevent accumulating connections per
DagsterInstance". A small run opens well over a hundred: every event row, its asset and
check index rows, the run's status and heartbeats. Each connection is a TCP handshake,
authentication and a new PostgreSQL backend process, on both sides of the socket.

`PooledPostgresStorage` is the same storage with the connections Dagster gives its own
webserver (`optimize_for_webserver`): one kept open per storage (runs, event log,
schedules) and recycled hourly, more opened only while that one is busy (up to
`MAX_OVERFLOW`, closed when returned). Unlike the webserver's, a kept connection is checked
before each use (`pool_pre_ping`, one round trip): after PostgreSQL restarts or drops it,
the next statement gets a new connection instead of an error. Statements get no timeout,
as under NullPool. A run worker is one process with one instance, so it holds three
connections for its lifetime; the daemon and the code server three each, plus overflow
while their threads overlap. The webserver applies its own settings over these.

Configured as `storage: custom:` in deploy/dagster.yaml with the `postgres_db` block that
`storage: postgres:` takes; the Helm chart keeps Dagster's own class.
"""

from __future__ import annotations

from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 10


class PooledPostgresStorage(DagsterPostgresStorage):
    """`DagsterPostgresStorage` with one connection held open per storage."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
            # As each storage's optimize_for_webserver builds its engine, plus the ping.
            options = storage._engine.url.query.get("options")
            engine = create_pg_engine(
                storage.postgres_url,
                storage._token_provider,
                isolation_level="AUTOCOMMIT",
                pool_size=1,
                max_overflow=MAX_OVERFLOW,
                pool_recycle=POOL_RECYCLE_SECONDS,
                pool_pre_ping=True,
                **({"connect_args": {"options": options}} if options else {}),
            )
            storage._engine.dispose()
            storage._engine = engine

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
