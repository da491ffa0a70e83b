"""Each sample tenant through the real assets into a real DuckDB file.

Protects the end-to-end promise of issue 2: files in a tenant folder become the contract
tables with the right rows, types and rejected_rows, and a rerun replaces a tenant's rows
atomically without touching other tenants.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import pytest
from dagster import AssetKey

from jf_pipeline.approval import approval_run_config
from jf_pipeline.contract import WAREHOUSE_TABLES
from jf_pipeline.definitions import defs
from jf_pipeline_tests.conftest import (
    SAMPLE_TENANTS,
    check_results,
    materializations,
    query,
    run_tenant,
)

pytestmark = pytest.mark.integration


def tenant_rows(warehouse: str, table: str, tenant: str) -> list[tuple]:
    assert table in WAREHOUSE_TABLES  # our own constant names only
    return query(warehouse, f"SELECT * FROM {table} WHERE tenant_id = ? ORDER BY ALL", [tenant])  # noqa: S608


@pytest.fixture
def published(publish_samples):
    """The sample tenants published into a warehouse of this test's own (it may change it)."""
    return publish_samples(*SAMPLE_TENANTS)


@pytest.fixture
def sample(sample_warehouse) -> str:
    """The sample tenants' warehouse, shared read-only by the tests that only read it."""
    return sample_warehouse.warehouse


def test_contract_tables_have_exactly_the_contract_columns_and_types(sample):
    con = duckdb.connect(sample, read_only=True)
    for table, columns in ((t.name, t.columns) for t in WAREHOUSE_TABLES.values()):
        found = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        assert [(c, t.replace(" ", "")) for c, t in found] == [(c, t) for c, t in columns], table
    con.close()


def test_exact_format_tenant_publishes_every_row(sample):
    assert query(sample, "SELECT count(*) FROM importable_deals WHERE tenant_id = 'acme'") == [
        (30,)
    ]
    assert query(sample, "SELECT count(*) FROM importable_contacts WHERE tenant_id = 'acme'") == [
        (40,)
    ]
    assert query(sample, "SELECT count(*) FROM accounts WHERE tenant_id = 'acme'") == [(8,)]
    assert query(sample, "SELECT count(*) FROM rejected_rows WHERE tenant_id = 'acme'") == [(0,)]
    # Deal D-0010 names its account inline ("... (EMEA)"): the deal row wins over accounts.csv,
    # while the URL it leaves blank comes from accounts.csv.
    name, url = query(
        sample,
        "SELECT account_name, account_url FROM importable_deals WHERE tenant_id = 'acme' AND deal_unique_id = 'D-0010'",
    )[0]
    assert name.endswith("(EMEA)") and url.startswith("https://www.")


def test_inline_only_tenant_builds_accounts_from_deals_and_warns_on_missing_urls(sample):
    assert query(sample, "SELECT count(*) FROM importable_deals WHERE tenant_id = 'globex'") == [
        (20,)
    ]
    accounts = query(sample, "SELECT count(*), count(url) FROM accounts WHERE tenant_id = 'globex'")
    assert accounts[0][0] > 0
    warnings = query(
        sample,
        "SELECT DISTINCT reason, severity FROM rejected_rows WHERE tenant_id = 'globex'",
    )
    assert warnings == [("no_account_url", "warning")]
    assert query(sample, "SELECT count(*) FROM importable_contacts WHERE tenant_id = 'globex'") == [
        (0,)
    ]


def test_messy_tenant_is_cleaned_and_every_bad_row_explained(sample):
    rows = dict(
        query(
            sample,
            "SELECT deal_unique_id, target_close_date FROM importable_deals WHERE tenant_id = 'initech'",
        )
    )
    assert len(rows) == 15
    assert all(isinstance(d, date) for d in rows.values())
    value, owner = query(
        sample,
        "SELECT value, owner_email FROM importable_deals WHERE tenant_id = 'initech' AND deal_unique_id = 'IN-003'",
    )[0]
    assert value == Decimal("9.99")  # the later duplicate row wins
    assert owner == "bill@initech.example"
    reasons = query(
        sample,
        "SELECT row_number, record_id, severity, reason FROM rejected_rows "
        "WHERE tenant_id = 'initech' AND file = 'deals.csv' ORDER BY row_number NULLS FIRST, reason",
    )
    assert reasons == [
        (None, None, "warning", "ignored_columns"),
        (3, "IN-003", "warning", "duplicate_id"),
        (16, "IN-100", "error", "invalid_date"),
        (17, "IN-101", "error", "missing_value"),
        (18, "IN-102", "error", "invalid_number"),
        (20, "IN-103", "error", "no_account_name"),
    ]
    # cp1252 accounts.csv: accents survive; URL host lower-cased with a scheme.
    assert ("Société Générale d'Études",) in query(
        sample, "SELECT name FROM accounts WHERE tenant_id = 'initech'"
    )
    assert query(
        sample,
        "SELECT url FROM accounts WHERE tenant_id = 'initech' AND account_unique_id = 'K1'",
    ) == [("https://litware.example",)]
    contact_reasons = query(
        sample,
        "SELECT reason, count(*) FROM rejected_rows WHERE tenant_id = 'initech' AND file = 'contacts.csv' GROUP BY ALL ORDER BY ALL",
    )
    assert contact_reasons == [
        ("reports_to_cycle", 3),
        ("unknown_account", 1),
        ("unknown_reports_to", 1),
    ]


def test_utf16_tab_export_with_other_crm_labels_is_read(sample):
    rows = query(
        sample,
        "SELECT count(*), min(value), count(DISTINCT account_name) FROM importable_deals WHERE tenant_id = 'umbrella'",
    )
    count, minimum, named_accounts = rows[0]
    assert count == 12 and minimum < 0 and named_accounts >= 1  # (1,234.00) is a negative amount


def test_rerun_replaces_one_tenants_rows_and_leaves_others(landing_root, published, instance):
    before_acme = query(
        published, "SELECT * FROM importable_deals WHERE tenant_id = 'acme' ORDER BY ALL"
    )
    deals = landing_root / "globex" / "deals.csv"
    lines = deals.read_text().splitlines(keepends=True)
    deals.write_text("".join(lines[:13]))  # the header and 12 of 20 deals: within the guard
    assert run_tenant("globex", landing_root, published, instance).success
    assert query(published, "SELECT count(*) FROM importable_deals WHERE tenant_id = 'globex'") == [
        (12,)
    ]
    assert (
        query(published, "SELECT * FROM importable_deals WHERE tenant_id = 'acme' ORDER BY ALL")
        == before_acme
    )
    # Same files again: the same rows, not duplicates.
    assert run_tenant("globex", landing_root, published, instance).success
    assert query(published, "SELECT count(*) FROM importable_deals WHERE tenant_id = 'globex'") == [
        (12,)
    ]


def test_a_file_rejected_as_a_whole_is_refused_by_the_guard_and_keeps_the_last_good_data(
    landing_root, published, instance
):
    tables = ("importable_deals", "accounts", "importable_contacts")
    before = {t: tenant_rows(published, t, "acme") for t in tables}
    (landing_root / "acme" / "deals.csv").write_text("Name,owner_email\nOops,a@b.example\n")
    result = run_tenant("acme", landing_root, published, instance)
    assert not result.success
    guard = check_results(result)["publish_guard"]
    assert not guard.passed and "deals.csv was rejected as a whole" in guard.description
    assert "approve_tenant" in guard.metadata["how_to_approve"].value
    assert "jf approve acme" in guard.metadata["how_to_approve"].value
    assert {t: tenant_rows(published, t, "acme") for t in tables} == before
    assert query(
        published,
        "SELECT file, row_number, severity, reason FROM rejected_rows WHERE tenant_id = 'acme'",
    ) == [("deals.csv", None, "error", "missing_columns")]
    assert query(
        published,
        "SELECT outcome FROM ingestions WHERE tenant_id = 'acme' ORDER BY finished_at DESC LIMIT 1",
    ) == [("refused",)]


def test_a_deleted_deals_file_does_not_wipe_published_deals(landing_root, published, instance):
    (landing_root / "globex" / "deals.csv").unlink()
    assert not run_tenant("globex", landing_root, published, instance).success
    assert query(published, "SELECT count(*) FROM importable_deals WHERE tenant_id = 'globex'") == [
        (20,)
    ]
    assert query(published, "SELECT reason FROM rejected_rows WHERE tenant_id = 'globex'") == [
        ("file_missing",)
    ]


def test_a_sharp_drop_in_deals_is_refused_until_approved(landing_root, published, instance):
    deals = landing_root / "globex" / "deals.csv"
    deals.write_text("".join(deals.read_text().splitlines(keepends=True)[:6]))  # 20 -> 5 deals
    refused = run_tenant("globex", landing_root, published, instance)
    guard = check_results(refused)["publish_guard"]
    assert not refused.success and not guard.passed
    assert "from 20 to 5" in guard.description
    # The run's failure leads with the reason, in one sentence (not "1 blocking asset check
    # failed" with a stack trace).
    (failure,) = [e for e in refused.all_events if e.is_step_failure]
    error = failure.step_failure_data.error.message
    assert "blocking asset check" not in error
    assert failure.step_failure_data.user_failure_data.description.startswith(
        "Publish of tenant globex refused by the publish guard, the published rows stay: "
        "the valid deal count would fall from 20 to 5"
    )
    assert error.count(". ") == 1 and "jf approve globex." in error
    assert query(published, "SELECT count(*) FROM importable_deals WHERE tenant_id = 'globex'") == [
        (20,)
    ]

    # A newer drop than the refused one (20 -> 4) is not approved blindly: refused again.
    refused_version = query(
        published, "SELECT landing_version FROM ingestions WHERE outcome = 'refused'"
    )[0][0]
    deals.write_text("".join(deals.read_text().splitlines(keepends=True)[:5]))
    approve = approval_run_config("ana", None)  # the tenant's latest refused drop
    stale = run_tenant("globex", landing_root, published, instance, run_config=approve)
    assert not stale.success and not check_results(stale)["publish_guard"].passed
    reason, approved_version = query(
        published,
        "SELECT reason, approved_version FROM ingestions ORDER BY finished_at DESC LIMIT 1",
    )[0]
    assert f"the approval was for the drop {refused_version}" in reason
    assert "changed since" in reason and approved_version == refused_version

    approved = run_tenant("globex", landing_root, published, instance, run_config=approve)
    assert approved.success and check_results(approved)["publish_guard"].passed
    assert query(published, "SELECT count(*) FROM importable_deals WHERE tenant_id = 'globex'") == [
        (4,)
    ]
    row = query(
        published,
        "SELECT approved, approved_by, approved_version = landing_version FROM ingestions "
        "ORDER BY finished_at DESC LIMIT 1",
    )
    assert row == [(True, "ana", True)]


def test_a_drop_to_zero_deals_is_refused(landing_root, published, instance):
    deals = landing_root / "globex" / "deals.csv"
    deals.write_text(deals.read_text().splitlines(keepends=True)[0])  # header only
    assert not run_tenant("globex", landing_root, published, instance).success
    assert query(published, "SELECT count(*) FROM importable_deals WHERE tenant_id = 'globex'") == [
        (20,)
    ]


def test_a_new_tenant_may_start_with_zero_deals(landing_root, warehouse_path, instance):
    (landing_root / "fresh").mkdir()
    (landing_root / "fresh" / "deals.csv").write_text(
        "Name,target_close_date,owner_email,value,deal_unique_id,account_unique_id\n"
    )
    assert run_tenant("fresh", landing_root, warehouse_path, instance).success


def test_materializations_carry_source_metadata_and_row_counts(
    landing_root, warehouse_path, instance
):
    result = run_tenant("acme", landing_root, warehouse_path, instance)
    by_key = materializations(result)
    raw = by_key["raw_deals"]
    assert raw["source_key"].value.endswith("acme/deals.csv")
    assert len(raw["source_version"].value) == 64  # SHA-256 of the bytes
    assert raw["source_size_bytes"].value == (landing_root / "acme" / "deals.csv").stat().st_size
    assert raw["dagster/row_count"].value == 30
    assert by_key["importable_deals"]["dagster/row_count"].value == 30
    assert by_key["clean_deals"]["errors"].value == 0
    assert "present" in by_key["raw_contacts"]
    # Column tables carry the contract's descriptions (DuckDB's COMMENT ON says the same).
    clean = {c.name: c for c in by_key["clean_accounts"]["dagster/column_schema"].value.columns}
    assert clean["account_unique_id"].description == "The account's id in the customer's CRM."
    published = defs.resolve_assets_def("importable_deals").specs_by_key[
        AssetKey("importable_deals")
    ]
    columns = published.metadata["dagster/column_schema"].columns
    assert all(c.description for c in columns) and columns[-1].name == "ingestion_id"


def test_absent_optional_files_yield_empty_frames_said_in_metadata(
    landing_root, warehouse_path, instance
):
    result = run_tenant("globex", landing_root, warehouse_path, instance)
    metadata = materializations(result)
    assert metadata["raw_contacts"]["present"].value is False
    assert metadata["raw_contacts"]["dagster/row_count"].value == 0
    assert metadata["raw_accounts"]["present"].value is False


def test_asset_checks_name_the_offending_ids(landing_root, warehouse_path, instance):
    result = run_tenant("initech", landing_root, warehouse_path, instance)
    checks = {
        (
            e.event_specific_data.asset_key.to_user_string(),
            e.event_specific_data.check_name,
        ): e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert checks[("clean_deals", "unique_ids")].metadata["offending_ids"].value == ["IN-003"]
    # Each result says what it checked, and a failure how often with the first ids.
    assert (
        checks[("clean_deals", "unique_ids")].description == "1 ids appear more than once: IN-003"
    )
    assert checks[("clean_deals", "required_values")].description.endswith(": IN-101")
    passed = checks[("clean_accounts", "required_values")]
    assert passed.passed and passed.description == passed.metadata["checked"].value
    assert passed.description.startswith("The file has every required column")
    assert checks[("clean_deals", "required_values")].metadata["offending_ids"].value == ["IN-101"]
    assert checks[("importable_contacts", "contacts_reference_accounts")].metadata[
        "offending_ids"
    ].value == ["P9"]
    assert checks[("clean_accounts", "unique_ids")].passed
    assert checks[("importable_deals", "publish_guard")].passed


def _latest_check_status(instance, asset: str, check: str, tenant: str):
    """The check's latest evaluation for one tenant partition, as the UI reads it."""
    from dagster import AssetCheckKey, AssetKey

    key = AssetCheckKey(AssetKey(asset), check)
    records = instance.event_log_storage.get_asset_check_execution_history(key, limit=20)
    for record in records:  # newest first
        evaluation = record.event.dagster_event.event_specific_data
        if evaluation.partition == tenant:
            return evaluation.passed
    return None


def test_each_tenants_checks_pass_or_fail_on_their_own(landing_root, warehouse_path, instance):
    """Checks are partitioned: initech's failing checks stay failed after acme passes them
    (unpartitioned, the last tenant's run made every check read "Passed")."""
    assert run_tenant("initech", landing_root, warehouse_path, instance).success
    acme = run_tenant("acme", landing_root, warehouse_path, instance)
    assert acme.success
    evaluations = [
        e.event_specific_data
        for e in acme.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert len(evaluations) == 10 and {e.partition for e in evaluations} == {"acme"}
    for asset, check, initech_passed in (
        ("clean_deals", "required_values", False),
        ("clean_deals", "unique_ids", False),
        ("importable_contacts", "contacts_reference_accounts", False),
        ("importable_deals", "publish_guard", True),
    ):
        assert _latest_check_status(instance, asset, check, "initech") is initech_passed
        assert _latest_check_status(instance, asset, check, "acme") is True


def test_required_values_fails_for_a_file_missing_a_required_column(
    landing_root, warehouse_path, instance
):
    deals = landing_root / "acme" / "deals.csv"
    lines = deals.read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("owner_email")
    deals.write_text(
        "\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != drop) for line in lines)
        + "\n"
    )
    result = run_tenant("acme", landing_root, warehouse_path, instance)
    required = next(
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "required_values"
        and e.event_specific_data.asset_key.to_user_string() == "clean_deals"
    )
    assert not required.passed
    assert required.metadata["offending_ids"].value == ["missing column(s) owner_email"]
