"""A tenant's own settings (issue #13), in the pure core and one in-process run: the
column mapping wins over aliases, the day/month order, the stage filter (left-out deals
counted and noted, not errors), the default owner, the fingerprint that makes a settings
change a change, and the stored version recorded in ingestions and the run's metadata."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import polars as pl
import pytest

from jf_pipeline import tenants
from jf_pipeline.contract import ACCOUNTS, CONTACTS, DEALS
from jf_pipeline.core.cleaning import clean_table
from jf_pipeline.core.landing import (
    LandingFile,
    TenantCursor,
    changed_files,
    plan_tenant,
    requested_token,
    survey,
)
from jf_pipeline.core.plan import PublishedState, PublishPolicy, RunInfo, plan_publish
from jf_pipeline.core.reading import read_table
from jf_pipeline.core.tenant_settings import (
    Change,
    SettingsError,
    TenantSettings,
    apply_change,
    bump,
    differences,
    parse_settings,
)
from jf_pipeline.resources import LocalLandingStore
from jf_pipeline_tests.conftest import SAMPLE_LANDING, materializations, query, run_tenant

RUN = RunInfo("run-1", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, 0, 5, tzinfo=UTC))
SALESFORCE = (
    b"Id,Opportunity Name,CloseDate,Amount,Rep Contact,AccountId,Account Name,StageName\n"
    b"006A,Big deal,03/04/2027,100,ann@x.example,001A,Contoso,Closed Won\n"
    b"006B,Small deal,05/06/2027,50,bob@x.example,001A,Contoso,Closed Lost\n"
    b"006C,Other deal,07/08/2027,70,,001A,Contoso,closed won \n"
)


def _clean_deals(data: bytes, own: TenantSettings):
    read = read_table(data, DEALS, mapping=own.mapping_for("deals"))
    clean = clean_table(
        read, DEALS, day_order=own.day_order, stages=own.stages, default_owner=own.default_owner
    )
    return read, clean


def _set(**change) -> TenantSettings:
    return apply_change(TenantSettings("acme"), Change(**change))


def test_a_mapping_wins_over_the_contracts_aliases():
    """`Rep Contact` is no alias of owner_email; mapped, it fills it. A header that an alias
    would give another column is taken by the mapping instead."""
    unmapped, _ = _clean_deals(SALESFORCE, TenantSettings("acme"))
    assert unmapped.rejected and "owner_email" in unmapped.missing_columns
    own = _set(
        map_columns=(("deals", "Rep Contact", "owner_email"), ("deals", "Account Name", "Name"))
    )
    read, clean = _clean_deals(SALESFORCE, own)
    assert read.header_mapping["Rep Contact"] == "owner_email"
    assert read.header_mapping["Account Name"] == "Name"  # an alias of account_name otherwise
    assert "Opportunity Name" not in read.header_mapping  # the mapping won
    assert not read.rejected
    assert clean.rows["name"].to_list()[:2] == ["Contoso", "Contoso"]


def test_a_mapping_to_a_column_the_contract_lacks_is_refused_and_changes_nothing():
    current = _set(map_columns=(("deals", "Id", "deal_unique_id"),))
    with pytest.raises(SettingsError, match="has no column 'deal_id'.*deal_unique_id"):
        apply_change(current, Change(map_columns=(("deals", "Id", "deal_id"),)))
    with pytest.raises(SettingsError, match="unknown file 'opportunities'"):
        apply_change(current, Change(map_columns=(("opportunities", "Id", "deal_unique_id"),)))
    with pytest.raises(SettingsError, match="both mapped to deal_unique_id"):
        apply_change(current, Change(map_columns=(("deals", "Record", "deal_unique_id"),)))
    assert current.column_mapping == {"deals": {"Id": "deal_unique_id"}}
    # a published name is accepted and stored as the contract's name
    assert _set(map_columns=(("accounts", "Ident", "account_unique_id"),)).column_mapping == {
        "accounts": {"Ident": "unique_id"}
    }


@pytest.mark.parametrize(("order", "first"), [("dmy", "2027-04-03"), ("mdy", "2027-03-04")])
def test_the_tenants_day_order_decides_ambiguous_dates(order, first):
    own = _set(
        day_order=order, map_columns=(("deals", "Rep Contact", "owner_email"),), default_owner=""
    )
    _, clean = _clean_deals(SALESFORCE, own)
    assert str(clean.rows["target_close_date"][0]) == first
    assert "ambiguous_date_format" not in clean.problems["reason"].to_list()
    _, auto = _clean_deals(SALESFORCE, replace_order(own, "auto"))
    assert "ambiguous_date_format" in auto.problems["reason"].to_list()
    with pytest.raises(SettingsError, match="day order 'ymd'"):
        _set(day_order="ymd")


def replace_order(own: TenantSettings, order: str) -> TenantSettings:
    return apply_change(own, Change(day_order=order))


def test_deals_in_other_stages_are_left_out_counted_and_noted_not_errors():
    own = _set(
        stages=("Closed Won",),
        map_columns=(("deals", "Rep Contact", "owner_email"),),
        default_owner="Sales@X.example",
    )
    _, clean = _clean_deals(SALESFORCE, own)
    assert sorted(clean.rows["deal_unique_id"]) == ["006A", "006C"]  # case and spaces ignored
    assert clean.filtered == 1
    note = clean.problems.filter(pl.col("reason") == "deals_filtered").row(0, named=True)
    assert note["severity"] == "warning" and "'Closed Lost': 1" in note["message"]
    accounts = b"unique_id,name,url\n001A,Contoso,c.example\n"
    accounts = clean_table(read_table(accounts, ACCOUNTS), ACCOUNTS)
    contacts = b"first_name,last_name,email_address,account_unique_id,contact_unique_id\n"
    contacts = clean_table(read_table(contacts, CONTACTS), CONTACTS)
    plan = plan_publish(
        "acme",
        {"deals": clean, "accounts": accounts, "contacts": contacts},
        sources={"deals": None, "accounts": None, "contacts": None},
        state=PublishedState(baseline={}, account_ids=lambda: pl.Series([], dtype=pl.String)),
        policy=PublishPolicy(default_owner=own.default_owner, settings_version=3),
        run=RUN,
    )
    assert plan.guard.passed, plan.guard.reason
    assert plan.ingestion["deals_filtered"] == 1 and plan.ingestion["settings_version"] == 3
    assert plan.ingestion["deals_rejected"] == 0  # left out is not rejected
    deals = plan.tables["importable_deals"]
    assert deals.filter(pl.col("deal_unique_id") == "006C")["owner_email"][0] == "sales@x.example"
    defaulted = plan.rejected_rows.filter(pl.col("reason") == "owner_defaulted")
    assert defaulted["record_id"].to_list() == ["006C"]
    assert defaulted["severity"].to_list() == ["warning"]


def test_a_stage_filter_on_deals_without_a_stage_column_rejects_the_file_clearly():
    own = _set(stages=("Won",))
    no_stage = (SAMPLE_LANDING / "acme" / "deals.csv").read_text().splitlines()
    data = "\n".join(",".join(line.split(",")[:6]) for line in no_stage).encode()
    _, clean = _clean_deals(data, own)
    assert clean.rejected and clean.rows.height == 0
    problem = clean.problems.filter(pl.col("reason") == "stage_column_missing").row(0, named=True)
    assert problem["severity"] == "error" and "no deal stage column" in problem["message"]


def test_the_default_owner_must_be_an_email_and_other_settings_are_checked():
    assert _set(default_owner=" Ann@X.example ").default_owner == "ann@x.example"
    with pytest.raises(SettingsError, match="not an e-mail"):
        _set(default_owner="ann")
    with pytest.raises(SettingsError, match="between 0 and 1"):
        _set(guard_max_drop=1.5)
    assert _set(guard_max_drop=0.2).guard_max_drop == 0.2
    assert (
        apply_change(_set(guard_max_drop=0.2), Change(guard_max_drop=math.nan)).guard_max_drop
        is None
    )
    with pytest.raises(SettingsError, match="cannot be blank"):
        _set(stages=(" ",))
    with pytest.raises(SettingsError, match="invalid tenant id"):
        apply_change(TenantSettings("../acme"), Change(day_order="dmy"))


def test_stored_settings_round_trip_and_a_hand_edited_bad_value_is_an_error():
    own = bump(_set(stages=("Won",), day_order="dmy"), datetime(2026, 12, 1, tzinfo=UTC), "ann")
    assert own.settings_version == 1 and own.updated_by == "ann"
    assert parse_settings("acme", own.to_json()) == own
    assert differences(TenantSettings("acme"), own) == {
        "day_order": ["auto", "dmy"],
        "stages": [[], ["Won"]],
    }
    with pytest.raises(SettingsError, match="day order"):
        parse_settings("acme", own.to_json().replace('"dmy"', '"ydm"'))
    with pytest.raises(SettingsError, match="names another tenant"):
        parse_settings("globex", own.to_json())


def test_the_fingerprint_token_follows_what_is_published_not_pause_or_keys():
    base = TenantSettings("acme")
    assert base.token is None
    mapped = _set(map_columns=(("deals", "Id", "deal_unique_id"),))
    assert mapped.token and mapped.token != _set(day_order="dmy").token
    paused = bump(replace(mapped, status="paused", access_keys=("AKIA1",)), datetime.now(UTC), "a")
    assert paused.token == mapped.token  # a resumed tenant re-reads only changed files


def _files(version: str) -> dict[str, LandingFile]:
    return {"deals.csv": LandingFile("acme", "deals.csv", "acme/deals.csv", version, 1)}


def test_a_settings_change_is_a_change_of_every_file_and_the_files_part_still_parses():
    state, changed = plan_tenant(TenantCursor(), _files("v1"), now=100.0, settle_seconds=0)
    assert changed is not None
    same, none = plan_tenant(state, _files("v1"), now=101.0, settle_seconds=0)
    assert none is None
    after, changed = plan_tenant(same, _files("v1"), 102.0, 0, settings_token="s1")
    assert changed == ["accounts.csv", "contacts.csv", "deals.csv", "users.csv"]
    assert after.requested.endswith("/s1")
    assert requested_token(after.requested, "deals.csv") == requested_token(
        state.requested, "deals.csv"
    )
    newer, changed = plan_tenant(after, _files("v2"), 103.0, 0, settings_token="s1")
    assert changed == ["deals.csv"]  # same settings: only the file that changed
    assert changed_files(newer.requested, newer.requested) == []
    assert TenantCursor.from_json(after.to_json()) == after


def test_the_operator_area_is_never_a_tenant(tmp_path):
    store = LocalLandingStore(root=str(tmp_path))
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "deals.csv").write_bytes(b"x\n")
    tenants.save(store, bump(_set(day_order="dmy"), datetime.now(UTC), "ann"))
    tenants.audit(store, "acme", "set", "ann", {"day_order": ["auto", "dmy"]})
    found = survey(store.list_files())
    assert list(found.tenants) == ["acme"] and found.invalid_tenants == []
    assert tenants.load(store, "acme").day_order == "dmy"
    assert [e["action"] for e in tenants.audit_log(store, "acme")] == ["set"]
    assert tenants.audit_log(store, "globex") == []


def test_a_run_applies_the_stored_settings_and_records_their_version(
    landing_of, warehouse_path, instance
):
    """In-process, as the daemon's run does: acme's stored settings import two stages only;
    the run publishes those deals, counts the others, and records the settings version in
    ingestions and in the published tables' metadata."""
    root = landing_of("acme")
    store = LocalLandingStore(root=str(root))
    own = bump(_set(stages=("Proposal", "negotiation")), datetime.now(UTC), "ann")
    tenants.save(store, own)
    result = run_tenant("acme", store, warehouse_path, instance)
    assert result.success
    stages = query(
        warehouse_path, "SELECT deal_stage, count(*) FROM importable_deals GROUP BY ALL ORDER BY 1"
    )
    assert stages == [("Negotiation", 8), ("Proposal", 13)]
    assert query(
        warehouse_path, "SELECT deals_published, deals_filtered, settings_version FROM ingestions"
    ) == [(21, 9, 1)]
    notes = query(
        warehouse_path, "SELECT severity FROM rejected_rows WHERE reason = 'deals_filtered'"
    )
    assert notes == [("warning",)]
    assert materializations(result)["importable_deals"]["settings_version"].value == 1


def test_the_sensor_requests_a_run_on_a_settings_change_and_holds_a_paused_tenant(
    persistent_instance, landing_of
):
    """Real ticks: a mapping set means a run that re-reads every file, without an upload;
    a paused tenant's upload requests nothing (the tick says why); resumed, only the file
    that changed meanwhile is re-read; a broken settings file skips that tenant only."""
    from jf_pipeline.core.tenant_settings import PAUSED
    from jf_pipeline_tests.test_sensor import Ticker

    root = landing_of("acme", "globex")
    store = LocalLandingStore(root=str(root))
    ticker = Ticker(persistent_instance, root)
    assert len(ticker.tick().run_requests) == 2
    assert ticker.tick().run_requests == []

    own = bump(_set(map_columns=(("deals", "Id", "deal_unique_id"),)), datetime.now(UTC), "a")
    tenants.save(store, own)
    (request,) = ticker.tick().run_requests
    assert request.partition_key == "acme" and request.tags["jf/changed"].count(".csv") == 4
    assert ticker.tick().run_requests == []

    paused = bump(replace(own, status=PAUSED), datetime.now(UTC), "a")
    tenants.save(store, paused)
    ticker.upload(root / "acme" / "deals.csv", b"Name\n")
    held = ticker.tick()
    assert held.run_requests == [] and "'acme': tenant paused" in held.skip_message
    tenants.save(store, bump(replace(paused, status="active"), datetime.now(UTC), "a"))
    (request,) = ticker.tick().run_requests
    assert request.tags["jf/changed"] == "deals.csv"

    (root / "_jointflows" / "tenants" / "globex.json").write_text("{not json")
    ticker.upload(root / "globex" / "deals.csv", b"Name\n")
    broken = ticker.tick()
    assert (
        broken.run_requests == [] and "'globex': its settings cannot be read" in broken.skip_message
    )
