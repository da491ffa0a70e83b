"""The pure core of event-driven change detection (issue 18): S3 notification bodies become
per-tenant events or a reason they were dropped, and events fold into the same fingerprint
(and so the same run keys) a listing of the folder gives."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime
from urllib.parse import quote_plus

import pytest

from jf_pipeline.contract import FILE_NAMES
from jf_pipeline.core.events import (
    SETTINGS_EVENT,
    ObjectEvent,
    TenantState,
    apply_events,
    listed_state,
    parse_message,
    plan_fingerprint,
)
from jf_pipeline.core.landing import LandingFile, TenantCursor, file_versions, plan_tenant, survey

BUCKET = "landing-bucket"
NAMES = sorted(FILE_NAMES)


def record(key: str, name: str = "ObjectCreated:Put", etag: str | None = "e1", **extra) -> dict:
    obj = {"key": quote_plus(key), "size": 10, **extra}
    if etag is not None:
        obj["eTag"] = etag
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": extra.pop("time", "2026-12-04T20:00:00.000Z"),
        "eventName": name,
        "s3": {"bucket": {"name": extra.get("bucket", BUCKET)}, "object": obj},
    }


def body(*records: dict) -> str:
    return json.dumps({"Records": list(records)})


def test_a_created_contract_file_becomes_an_event_with_its_etag_and_decoded_key():
    """Keys arrive URL-encoded (a space as +): the event carries the real key, the ETag
    without quotes, the size and the event time."""
    parsed = parse_message(body(record("drops/acme/deals.csv", etag='"abc"')), BUCKET, "drops")
    assert parsed.dropped == []
    (event,) = parsed.events
    assert (event.tenant, event.name, event.key, event.version) == (
        "acme",
        "deals.csv",
        "drops/acme/deals.csv",
        "abc",
    )
    assert event.created and event.size == 10
    assert event.time == datetime(2026, 12, 4, 20, tzinfo=UTC).timestamp()
    removed = parse_message(
        body(record("drops/acme/deals.csv", "ObjectRemoved:Delete", etag=None)), BUCKET, "drops/"
    ).events
    assert [(e.created, e.version) for e in removed] == [(False, "")]
    lookalike = parse_message(body(record("drops/acme/Deals.csv ")), BUCKET, "drops").events
    assert [e.name for e in lookalike] == ["Deals.csv "]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("drops/_jointflows/settings/acme.json", "operator area"),
        ("drops/_jointflows/audit/20261204T200000Z-acme-1234.json", "operator area"),
        ("drops/_jointflows/tenants/Bad Id.json", "operator area"),
        ("drops/acme/jointflows_import_report.csv", "own import report"),
        ("drops/acme/jointflows_import_summary.txt", "own import report"),
        ("drops/acme/jointflows_import_report_20261204T200000Z.csv", "own import report"),
        ("drops/Acme Corp/deals.csv", "invalid tenant id"),
        ("drops/x'; drop table importable_deals; --/deals.csv", "invalid tenant id"),
        ("drops/caf\u00e9/deals.csv", "invalid tenant id"),
        ("drops/../deals.csv", "invalid tenant id"),
        ("drops/acme/archive/deals.csv", "not a file directly in a tenant folder"),
        ("drops/README.txt", "not a file directly in a tenant folder"),
        ("drops/acme/", "not a file directly in a tenant folder"),
        ("drops/acme/notes.txt", "not a contract file"),
        ("elsewhere/acme/deals.csv", "outside the landing prefix"),
        ("dropsx/acme/deals.csv", "outside the landing prefix"),
    ],
)
def test_keys_the_pipeline_does_not_own_are_dropped_with_a_reason(key, reason):
    parsed = parse_message(body(record(key)), BUCKET, "drops")
    assert parsed.events == []
    ((what, why),) = parsed.dropped
    assert reason in why and what == repr(key)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json at all", "not JSON"),
        ("", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"hello": 1}', "no Records"),
        ('{"Records": "x"}', "no Records"),
        (
            json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}),
            "test event",
        ),
        (json.dumps({"Type": "Notification", "Message": "{oops"}), "SNS"),
        (body({"eventName": "ObjectCreated:Put"}), "not an S3 object event"),
        (body("a string record"), "not an object"),
        (body(record("drops/acme/deals.csv", bucket="other")), "another bucket"),
        (body(record("drops/acme/deals.csv", "ObjectTagging:Put")), "changes no object"),
        (body(record("drops/acme/deals.csv", etag=None)), "without an ETag"),
    ],
)
def test_test_events_and_malformed_messages_are_dropped_with_a_reason(message, reason):
    parsed = parse_message(message, BUCKET, "drops")
    assert parsed.events == [] and len(parsed.dropped) == 1
    assert reason in parsed.dropped[0][1]


def test_a_change_of_a_tenants_settings_plans_that_tenant_without_changing_its_files():
    """`_jointflows/tenants/<id>.json` (jf tenant set) is the tenant's settings: its event
    names the tenant, and folding it changes no file token (the sensor adds the settings
    token it reads)."""
    (event,) = parse_message(
        body(record("drops/_jointflows/tenants/acme.json")), BUCKET, "drops"
    ).events
    assert (event.tenant, event.name) == ("acme", SETTINGS_EVENT)
    state = TenantState(
        TenantCursor(requested=file_versions(_listing("acme", {"deals.csv": "a"})) + "/v3")
    )
    _, files_part = apply_events(state, [event])
    assert files_part == file_versions(_listing("acme", {"deals.csv": "a"}))


def test_an_sns_envelope_is_unwrapped_and_one_bad_record_spares_the_others():
    inner = body(record("drops/acme/deals.csv"), record("drops/BAD/deals.csv"), 7)
    parsed = parse_message(json.dumps({"Type": "Notification", "Message": inner}), BUCKET, "drops")
    assert [(e.tenant, e.name) for e in parsed.events] == [("acme", "deals.csv")]
    assert [why for _, why in parsed.dropped] == ["invalid tenant id", "not an object"]


def test_no_prefix_means_the_bucket_root():
    parsed = parse_message(body(record("acme/deals.csv"), record("a/b/c.csv")), BUCKET, "")
    assert [e.tenant for e in parsed.events] == ["acme"] and len(parsed.dropped) == 1


def test_random_bodies_never_raise():
    """Whatever a queue holds (truncated JSON, wrong types), parsing answers with events
    or reasons, never an exception: one bad message never stops a tick."""
    rng = random.Random(18)
    good = body(record("drops/acme/deals.csv"), record("drops/globex/accounts.csv"))
    values = [None, 1, "x", [], {}, {"key": 3}, {"name": None}, [{"s3": 1}]]
    for _ in range(2000):
        cut = good[: rng.randrange(len(good) + 1)]
        parse_message(cut, BUCKET, "drops")
        message = json.loads(good)
        target = rng.choice(message["Records"])
        path = rng.choice([("s3",), ("s3", "object"), ("s3", "bucket"), ("eventName",)])
        node = target
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = rng.choice(values)
        parsed = parse_message(json.dumps(message), BUCKET, "drops")
        assert len(parsed.events) + len(parsed.dropped) == 2


def _listing(tenant: str, versions: dict[str, str], ts: float = 1_000.0) -> dict:
    files = [
        LandingFile(tenant, n, f"{tenant}/{n}", v, 1, datetime.fromtimestamp(ts, UTC))
        for n, v in versions.items()
    ]
    return survey(files).tenants[tenant]


def _event(tenant, name, etag=None, t=2_000.0, seq=""):
    return ObjectEvent(tenant, name, f"{tenant}/{name}", etag is not None, etag or "", 1, t, seq)


def test_events_give_the_fingerprint_a_listing_of_the_folder_gives():
    """At size: 3,000 tenants, each file created, overwritten, removed at random over
    30,000 events delivered in random batches; each tenant's fingerprint from events equals
    `file_versions` of a listing holding the same objects (so the run keys are the same)."""
    rng = random.Random(7)
    truth: dict[str, dict[str, str]] = {}
    states: dict[str, TenantState] = {}
    clock = 10_000.0
    pending: list[ObjectEvent] = []
    for _ in range(30_000):
        tenant, name = f"t{rng.randrange(3000):04d}", rng.choice(NAMES)
        clock += 0.001
        if rng.random() < 0.2:
            truth.setdefault(tenant, {}).pop(name, None)
            pending.append(_event(tenant, name, None, clock))
        else:
            etag = f"{rng.getrandbits(64):016x}"
            truth.setdefault(tenant, {})[name] = etag
            pending.append(_event(tenant, name, etag, clock))
        if rng.random() < 0.05:
            rng.shuffle(pending)  # a batch arrives in any order
            by_tenant: dict[str, list] = {}
            for e in pending:
                by_tenant.setdefault(e.tenant, []).append(e)
            for t, events in by_tenant.items():
                state, current = apply_events(states.get(t, TenantState()), events)
                assert current is not None
                cursor, _ = plan_fingerprint(state.cursor, current, state.newest, clock, 0.0)
                states[t] = TenantState(cursor, state.newest, state.marks)
            pending = []
    for t, events in itertools.groupby(sorted(pending, key=lambda e: e.tenant), lambda e: e.tenant):
        state, current = apply_events(states.get(t, TenantState()), list(events))
        states[t] = TenantState(TenantCursor(requested=current), state.newest, state.marks)
    for tenant, files in truth.items():
        listed = file_versions(_listing(tenant, files)) if files else file_versions({})
        assert states[tenant].current() == listed, tenant


def test_a_duplicated_or_older_event_changes_nothing():
    state = TenantState(TenantCursor(requested=file_versions(_listing("acme", {"deals.csv": "a"}))))
    state, first = apply_events(state, [_event("acme", "deals.csv", "b", 5.0, "0055")])
    state = TenantState(TenantCursor(requested=first), state.newest, state.marks)
    again, current = apply_events(state, [_event("acme", "deals.csv", "b", 5.0, "0055")])
    assert current == first
    older, current = apply_events(state, [_event("acme", "deals.csv", "z", 4.0, "0054FF")])
    assert current == first  # an earlier sequencer (padded on the right) is older
    newer, current = apply_events(state, [_event("acme", "deals.csv", "c", 4.0, "0056")])
    assert current != first  # the sequencer, not the clock, orders events on one key
    # A listing marks files at their modification time: an event older than it is stale.
    listed = listed_state(state, _listing("acme", {"deals.csv": "b"}, ts=100.0))
    assert apply_events(listed, [_event("acme", "deals.csv", "old", 99.0)])[1] == first


def test_a_look_alike_name_or_a_folder_with_one_asks_for_a_listing():
    state = TenantState(TenantCursor(requested="-.-.-.-"[: 2 * len(NAMES) - 1]))
    state, current = apply_events(state, [_event("acme", "Deals.csv", "x")])
    assert current is None and state.relist
    listed = listed_state(TenantState(), _listing("acme", {"deals.csv": "a", "Deals.csv": "b"}))
    assert listed.relist
    assert apply_events(listed, [_event("acme", "deals.csv", "c")])[1] is None
    plain = listed_state(TenantState(), _listing("acme", {"deals.csv": "a"}))
    assert not plain.relist


def test_state_round_trips_and_reads_an_old_cursor_entry():
    state = TenantState(TenantCursor("a.b.c", "a.b.d", 12.5, 3), 11.0, {"deals.csv": ("01", 2.0)})
    assert TenantState.from_json(json.loads(json.dumps(state.to_json()))) == state
    old = TenantCursor("a.b.c", requests=4).to_json()  # the polling cursor's entry
    assert TenantState.from_json(old) == TenantState(TenantCursor("a.b.c", requests=4))


def test_planning_a_fingerprint_decides_as_planning_a_listing():
    """plan_fingerprint (events) and plan_tenant (listing) make the same states and
    changes for the same drop, clock and settle time: the two modes share run keys."""
    drops = [{}, {"deals.csv": "a"}, {"deals.csv": "b", "accounts.csv": "c"}]
    for before, after, now, settle, since, age in itertools.product(
        drops, drops, (100.0, 130.0), (0.0, 10.0), (None, 95.0, 125.0), (1.0, 50.0)
    ):
        files = _listing("acme", after, ts=now - age) if after else {}
        current = file_versions(files)
        requested = file_versions(_listing("acme", before)) if before else None
        pending = current if since is not None else None
        cursor = TenantCursor(requested, pending, since, 2)
        newest = now - age if files else None
        assert plan_fingerprint(cursor, current, newest, now, settle) == plan_tenant(
            cursor, files, now, settle
        )
