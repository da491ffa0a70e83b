"""S3 event notifications as per-tenant changes, without listing the bucket (issue 18).

The bucket sends `s3:ObjectCreated:*` and `s3:ObjectRemoved:*` notifications for the
landing prefix to an SQS queue; `parse_message` turns one queue message's body into
`ObjectEvent`s for the files the pipeline owns (a tenant's contract files, names that
imitate them, which the tenant's report must mention, and the tenant's settings file in the
operator area) and a reason for everything else it drops: the s3:TestEvent S3 sends when a notification is configured, malformed bodies,
other buckets, keys outside the prefix, the rest of the operator area `_jointflows/`, invalid tenant
ids, the pipeline's own reports, other files.

`apply_events` folds a tenant's events into the fingerprint the sensor plans with, using
the ETag carried in each event: the same 8-hex token per file as a listing gives
(`landing.file_token`), so an event and a later reconciliation listing agree on what "the
same drop" is, and the run keys stay exactly those of the polling sensor. Events may
arrive late, twice or out of order: per file, the newest applied event (its `sequencer`,
else its time) is remembered and an older one is ignored. A folder holding look-alike
names (`Deals.csv`) cannot be fingerprinted from one event, so such a tenant is re-listed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import unquote_plus

from jf_pipeline.contract import FILE_NAMES, is_valid_tenant_id
from jf_pipeline.core.landing import (
    LandingFile,
    TenantCursor,
    changed_files,
    file_token,
    look_alike,
)
from jf_pipeline.core.report import DATED_REPORT, REPORT_CSV, REPORT_SUMMARY
from jf_pipeline.core.tenant_settings import OPERATOR_AREA, SETTINGS_FOLDER, split_fingerprint

SETTINGS_EVENT = ""
"""`ObjectEvent.name` of a change of the tenant's settings (`_jointflows/tenants/<id>.json`):
no file token changes, but the tenant is planned again with its new settings token."""


@dataclass(frozen=True)
class ObjectEvent:
    """One created or removed object the pipeline owns."""

    tenant: str
    name: str
    """A contract file name, or a look-alike of one (`Deals.csv`)."""
    key: str
    created: bool
    version: str
    """The ETag of a created object (as a listing gives it, no quotes); "" if removed."""
    size: int = 0
    time: float | None = None
    """When S3 processed the request (epoch seconds), from `eventTime`."""
    sequencer: str = ""
    """S3's ordering of events on one key (hex; absent from some S3-compatible stores)."""


@dataclass
class ParsedMessage:
    events: list[ObjectEvent] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    """(what, why) for each record that is not a change the pipeline acts on."""


def _relative(key: str, base: str) -> str | None:
    return key[len(base) :] if key.startswith(base) else None


def classify_key(relative: str) -> tuple[str, str] | str:
    """(tenant, name) of a key relative to the landing prefix that the pipeline owns, else
    why it is dropped."""
    parts = relative.split("/")
    if parts[0] == OPERATOR_AREA:
        if len(parts) == 3 and parts[1] == SETTINGS_FOLDER and parts[2].endswith(".json"):
            tenant = parts[2].removesuffix(".json")
            if is_valid_tenant_id(tenant):
                return tenant, SETTINGS_EVENT
        return "the operator area (_jointflows/), not a tenant's drop"
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return "not a file directly in a tenant folder"
    tenant, name = parts
    if not is_valid_tenant_id(tenant):
        return "invalid tenant id"
    if name in (REPORT_CSV, REPORT_SUMMARY) or DATED_REPORT.fullmatch(name):
        return "the pipeline's own import report"
    if name not in FILE_NAMES and look_alike(name) is None:
        return "not a contract file"
    return tenant, name


def _event_time(text) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def parse_record(record, bucket: str, base: str) -> ObjectEvent | tuple[str, str]:
    """One `Records` entry: an event, or (what, why) it is dropped."""
    if not isinstance(record, dict):
        return ("a record", "not an object")
    s3 = record.get("s3")
    name = record.get("eventName")
    obj = s3.get("object") if isinstance(s3, dict) else None
    if (
        not isinstance(name, str)
        or not isinstance(obj, dict)
        or not isinstance(obj.get("key"), str)
    ):
        return ("a record", "not an S3 object event")
    key = unquote_plus(obj["key"])  # S3 URL-encodes keys in notifications
    what = repr(key)
    record_bucket = (
        (s3.get("bucket") or {}).get("name") if isinstance(s3.get("bucket"), dict) else None
    )
    if record_bucket != bucket:
        return (what, f"an event of another bucket ({record_bucket!r})")
    if name.startswith("ObjectCreated:"):
        created = True
    elif name.startswith("ObjectRemoved:"):
        created = False
    else:
        return (what, f"event {name!r} changes no object")
    relative = _relative(key, base)
    if relative is None:
        return (what, "outside the landing prefix")
    owned = classify_key(relative)
    if isinstance(owned, str):
        return (what, owned)
    tenant, file_name = owned
    etag = obj.get("eTag") or obj.get("etag") or ""
    if file_name == SETTINGS_EVENT:
        etag = etag or "settings"
    if created and not (isinstance(etag, str) and etag.strip('"')):
        return (what, "a created object without an ETag")
    size = obj.get("size")
    sequencer = obj.get("sequencer")
    return ObjectEvent(
        tenant=tenant,
        name=file_name,
        key=key,
        created=created,
        version=etag.strip('"') if created else "",
        size=size if isinstance(size, int) and created else 0,
        time=_event_time(record.get("eventTime")),
        sequencer=sequencer if isinstance(sequencer, str) else "",
    )


def parse_message(body: str, bucket: str, prefix: str) -> ParsedMessage:
    """The events in one SQS message body sent by the bucket's notification (directly, or
    through SNS without raw delivery), for the landing zone `s3://bucket/prefix`."""
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    result = ParsedMessage()
    try:
        message = json.loads(body)
    except (ValueError, TypeError):
        result.dropped.append(("a message", "not JSON"))
        return result
    if isinstance(message, dict) and message.get("Type") == "Notification":
        try:  # an SNS envelope
            message = json.loads(message.get("Message") or "")
        except (ValueError, TypeError):
            result.dropped.append(("a message", "an SNS notification without a JSON message"))
            return result
    if not isinstance(message, dict):
        result.dropped.append(("a message", "not a JSON object"))
        return result
    if message.get("Event") == "s3:TestEvent":
        result.dropped.append(("a message", "S3's test event (sent when notifications are set up)"))
        return result
    records = message.get("Records")
    if not isinstance(records, list):
        result.dropped.append(("a message", "no Records: not an S3 event notification"))
        return result
    for record in records:
        parsed = parse_record(record, bucket, base)
        if isinstance(parsed, ObjectEvent):
            result.events.append(parsed)
        else:
            result.dropped.append(parsed)
    return result


# --- folding events into a tenant's state -------------------------------------------------


def _sequencer_key(sequencer: str) -> str:
    # S3: compare sequencers of one key as hex strings after right-padding the shorter.
    return sequencer.upper().ljust(32, "0")


def is_newer(event: ObjectEvent, mark: tuple[str, float | None] | None) -> bool:
    """Whether `event` comes after the last applied event or listing of its file (`mark`:
    its sequencer, or "" for a listing, and its time)."""
    if mark is None:
        return True
    sequencer, when = mark
    if event.sequencer and sequencer:
        return _sequencer_key(event.sequencer) > _sequencer_key(sequencer)
    if event.time is not None and when is not None:
        return event.time >= when  # equal times: the later delivery wins (S3 ms resolution)
    return True


@dataclass(frozen=True)
class TenantState:
    """What the event-driven sensor keeps per tenant (in the instance's key-value store)."""

    cursor: TenantCursor = TenantCursor()
    newest: float | None = None
    """The newest modification of the tenant's files known (event or listing time)."""
    marks: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    """contract file name -> (sequencer, time) of the last event or listing applied."""
    relist: bool = False
    """The folder holds look-alike names: events cannot fingerprint it, list it instead."""

    def to_json(self) -> dict:
        value: dict = {"c": self.cursor.to_json()}
        if self.newest is not None:
            value["m"] = round(self.newest, 3)
        if self.marks:
            value["q"] = {n: [s, t] for n, (s, t) in sorted(self.marks.items())}
        if self.relist:
            value["l"] = 1
        return value

    @classmethod
    def from_json(cls, value) -> TenantState:
        if not isinstance(value, dict):  # a cursor entry of the polling sensor
            return cls(cursor=TenantCursor.from_json(value))
        marks = {n: (m[0], m[1]) for n, m in (value.get("q") or {}).items()}
        return cls(
            TenantCursor.from_json(value.get("c")), value.get("m"), marks, bool(value.get("l"))
        )

    def current(self) -> str | None:
        """The fingerprint of what is in the folder now, as far as known."""
        return self.cursor.pending or self.cursor.requested


def apply_events(state: TenantState, events: list[ObjectEvent]) -> tuple[TenantState, str | None]:
    """(state with the events' marks, the files part of the tenant's new fingerprint), or
    (state, None) when the folder must be listed (look-alike names, or a state that cannot
    be extended). The caller adds the settings token (`tenant_settings.fingerprint`).

    The files part is `landing.file_versions` of the folder after the events: each contract
    file's token comes from the newest event for it, the others from the known fingerprint.
    """
    names = sorted(FILE_NAMES)
    known = state.current()
    tokens = split_fingerprint(known)[0].split(".") if known else ["-"] * len(names)
    if state.relist or len(tokens) != len(names):
        return state, None
    marks, newest = dict(state.marks), state.newest
    for event in sorted(events, key=lambda e: (e.time or 0.0, _sequencer_key(e.sequencer))):
        if event.name == SETTINGS_EVENT:  # the settings token is the caller's
            continue
        if event.name not in FILE_NAMES:  # a look-alike: the folder decides the token
            return replace(state, relist=True), None
        if not is_newer(event, marks.get(event.name)):
            continue
        marks[event.name] = (event.sequencer, event.time)
        file = None
        if event.created:
            file = LandingFile(event.tenant, event.name, event.key, event.version, event.size)
            if event.time is not None:
                newest = max(newest or event.time, event.time)
        tokens[names.index(event.name)] = file_token(file)
    return replace(state, marks=marks, newest=newest), ".".join(tokens)


def listed_state(state: TenantState, files: dict[str, LandingFile]) -> TenantState:
    """The state after a listing of the tenant's folder (authoritative): marks at the
    files' modification times, newest modification, whether look-alikes are there."""
    marks = {
        name: ("", f.modified.timestamp() if f.modified else None)
        for name, f in files.items()
        if f.present
    }
    times = [f.modified.timestamp() for f in files.values() if f.modified]
    relist = any(f.ignored or not f.present for f in files.values())
    return replace(state, marks=marks, newest=max(times) if times else None, relist=relist)


def plan_fingerprint(
    state: TenantCursor, current: str, newest: float | None, now: float, settle_seconds: float
) -> tuple[TenantCursor, list[str] | None]:
    """`landing.plan_tenant` for a fingerprint known from events rather than from a
    listing's files (same decisions, same states: a test holds the two together)."""
    if current == state.requested:
        return TenantCursor(requested=current, requests=state.requests), None
    since = state.pending_since if state.pending == current else now
    seen_quiet = now - since >= settle_seconds
    already_old = newest is not None and now - newest >= settle_seconds
    if seen_quiet or already_old:
        requested = TenantCursor(requested=current, requests=state.requests + 1)
        return requested, changed_files(state.requested, current)
    return TenantCursor(state.requested, current, since, state.requests), None
