"""The landing sensor's per-tenant state, out of its cursor (issue 18).

Where: the Dagster instance's key-value table (`run_storage.get_cursor_values` /
`set_cursor_values`), one row per tenant under `jf/landing/v1/<landing zone>/t/<tenant>`.
It is the instance's own storage, so it is as durable as the run history and needs nothing new to
deploy: PostgreSQL in production (`deploy/dagster.yaml`), SQLite under `make dev`, and the
code server, where sensors are evaluated, already reaches it. A state file next to the
Dagster storage would need a volume shared by the code server's pods, and the warehouse
is the analysts' file that only the publish step writes.

The cursor keeps only a generation number and the time of the last full listing: a few
bytes at any number of tenants, instead of a fingerprint per tenant rewritten every tick.
A tick reads the rows of the tenants it plans and writes only the rows that changed.

Writing state that Dagster might not commit: the daemon stores a tick's cursor together
with the run requests it reserves, and submits them even when the tick later fails. A row
staged by the tick of generation G+1 holds both values, {"c": before, "s": after, "g":
G+1}, and "after" counts once the cursor says generation G+1 was committed. Before its
rows, a tick writes a journal naming them (and the SQS messages it consumed); a tick that
finds a journal newer than its cursor knows that tick's result was lost, puts those rows
back to "before" and decides again from the same state, making the same run keys. SQS
messages are deleted by the next tick, once its cursor shows their tick was committed, so
a message is never deleted before its runs are requested.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from jf_pipeline.core.events import TenantState

PREFIX = "jf/landing/v1/"
"""Keys are `PREFIX<landing zone>/...`: `<landing zone>` is 8 hex chars of the landing zone's
description (`namespace_of`), so sensors of several landing zones (shards, as code locations
on one instance) never share a row."""
TENANT = "t/"
PENDING = "pending"
"""The tenants with a drop waiting to settle: the ticks between listings plan them."""
JOURNAL = "journal"
"""The last tick's generation, the rows it staged and the SQS receipt handles it consumed."""


def namespace_of(landing_description: str) -> str:
    """The key namespace of one landing zone (`LandingStore.describe()`)."""
    return hashlib.sha256(landing_description.encode()).hexdigest()[:8]


def tenant_key(namespace: str, tenant: str) -> str:
    return f"{PREFIX}{namespace}/{TENANT}{tenant}"


def journal_key(namespace: str) -> str:
    return f"{PREFIX}{namespace}/{JOURNAL}"


def pending_key(namespace: str) -> str:
    return f"{PREFIX}{namespace}/{PENDING}"


READ_CHUNK = 5_000
WRITE_CHUNK = 2_000
CURSOR_VERSION = 2


def _effective(raw: str | None, generation: int):
    """The committed value of a row written by `_staged`."""
    if raw is None:
        return None
    row = json.loads(raw)
    return row["s"] if row["g"] <= generation else row["c"]


def _staged(before, after, generation: int) -> str:
    return json.dumps({"c": before, "s": after, "g": generation}, separators=(",", ":"))


class LandingState:
    """Reads and stages the rows of one tick. `generation` is the committed cursor's; what
    this tick stages becomes visible at the next generation, once Dagster commits the
    tick's cursor."""

    def __init__(self, storage, generation: int, namespace: str):
        self.storage, self.generation, self.namespace = storage, generation, namespace
        self.journal_key, self.pending_key = journal_key(namespace), pending_key(namespace)
        self._raw: dict[str, str | None] = {}
        self._before: dict[str, object] = {}
        self.committed_handles: list[str] = []
        """Receipt handles of messages whose tick was committed: safe to delete now."""
        self.lost_handles: list[str] = []
        """Receipt handles of messages whose tick was lost: they will be delivered again."""
        self.rolled_back = 0
        self.last_generation = 0
        """The newest generation ever staged: a new one is always above it."""
        self.written = 0
        self._recover()

    def _recover(self) -> None:
        raw = self.storage.get_cursor_values({self.journal_key}).get(self.journal_key)
        self._raw[self.journal_key] = raw
        if raw is None:
            return
        journal = json.loads(raw)
        self.last_generation = journal["g"]
        if self.generation == 0:
            return  # a fresh cursor: no state is read, nothing is undone (see `tenants`)
        if journal["g"] <= self.generation:
            self.committed_handles = journal.get("h", [])
            return
        self.lost_handles = journal.get("h", [])
        keys = journal.get("k", [])
        self._read(keys)
        rows = {k: _staged(self._before[k], self._before[k], 0) for k in keys if self._raw[k]}
        self._write(rows)
        self.rolled_back = len(rows)
        cleared = {"g": journal["g"], "k": [], "h": []}
        self._write({self.journal_key: json.dumps(cleared, separators=(",", ":"))})

    # reading ------------------------------------------------------------------------------

    def _read(self, keys: Iterable[str]) -> None:
        missing = sorted({k for k in keys if k not in self._raw})
        for start in range(0, len(missing), READ_CHUNK):
            chunk = missing[start : start + READ_CHUNK]
            found = self.storage.get_cursor_values(set(chunk))
            for key in chunk:
                self._raw[key] = found.get(key)
                # Generation 0 is a sensor without a cursor (new, or its cursor was reset):
                # it starts from no state, as the cursor-held state did.
                self._before[key] = (
                    _effective(found.get(key), self.generation) if self.generation else None
                )

    def tenants(self, tenants: Iterable[str]) -> dict[str, TenantState]:
        """The committed state of each named tenant that has one."""
        keys = {t: tenant_key(self.namespace, t) for t in tenants}
        self._read(keys.values())
        return {
            t: TenantState.from_json(self._before[k])
            for t, k in keys.items()
            if self._before[k] is not None
        }

    def pending(self) -> set[str]:
        self._read([self.pending_key])
        return set(self._before[self.pending_key] or [])

    # writing ------------------------------------------------------------------------------

    def _write(self, rows: dict[str, str]) -> None:
        # Dagster's SQL key-value write inserts, and on any conflict only updates the keys
        # that exist (SQLite): new keys and existing keys are written separately.
        existing = [k for k in rows if self._raw.get(k) is not None]
        fresh = [k for k in rows if self._raw.get(k) is None]
        for keys in (fresh, existing):
            for start in range(0, len(keys), WRITE_CHUNK):
                chunk = keys[start : start + WRITE_CHUNK]
                self.storage.set_cursor_values({k: rows[k] for k in chunk})
        for key, value in rows.items():
            self._raw[key] = value

    def stage(
        self,
        changed: dict[str, TenantState | None],
        pending: set[str] | None = None,
        consumed: list[str] | None = None,
    ) -> int:
        """Write the tenants' rows that changed (None forgets a tenant), the pending set
        when given, and the journal naming them and this tick's consumed receipt handles,
        all visible at generation + 1. Returns the generation for the tick's cursor: the
        next one, or the same when nothing was staged."""
        after_of = {
            tenant_key(self.namespace, t): (s.to_json() if s else None) for t, s in changed.items()
        }
        if pending is not None:
            after_of[self.pending_key] = sorted(pending)
        self._read(after_of)
        new = max(self.generation, self.last_generation) + 1
        rows = {
            key: _staged(self._before[key], after, new)
            for key, after in after_of.items()
            if after != self._before[key]
        }
        if not rows and not consumed and not self.committed_handles:
            return self.generation  # nothing to stage: the cursor keeps its generation
        journal = {"g": new, "k": sorted(rows), "h": consumed or []}
        self._write({self.journal_key: json.dumps(journal, separators=(",", ":"))})
        self._write(rows)
        self.written = len(rows)
        return new


def parse_cursor(cursor: str | None) -> tuple[int, float | None, dict | None]:
    """(generation, last full listing time, entries of an old JSON cursor to migrate)."""
    try:
        value = json.loads(cursor) if cursor else {}
    except ValueError:
        value = {}
    if isinstance(value, dict) and value.get("_v") == CURSOR_VERSION:
        return int(value["_g"]), value.get("_r"), None
    return 0, None, value if isinstance(value, dict) else {}


def make_cursor(generation: int, reconciled_at: float | None) -> str:
    value: dict = {"_v": CURSOR_VERSION, "_g": generation}
    if reconciled_at is not None:
        value["_r"] = round(reconciled_at, 3)
    return json.dumps(value, separators=(",", ":"))
