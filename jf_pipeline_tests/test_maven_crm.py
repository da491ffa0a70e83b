"""A real-shaped CRM export (Maven Analytics' 8,800 opportunities, jf_pipeline_tests/corpora/maven-crm)
converted to the contract's format and run through the assets: the rejected rows must be
exactly the dataset's real gaps, computed here independently from the source file."""

from __future__ import annotations

import csv

import pytest

from jf_pipeline_tests.conftest import CORPORA, query, run_tenant

pytestmark = pytest.mark.integration

MAVEN = CORPORA / "maven-crm"


def _rows(name: str) -> list[dict[str, str]]:
    with open(MAVEN / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def convert(folder) -> list[dict[str, str]]:
    """Our conversion: opportunities -> deals.csv (account name as account id, agent -> e-mail),
    accounts -> accounts.csv (Maven has no websites, so url stays blank)."""
    pipeline = _rows("sales_pipeline.csv")
    folder.mkdir(parents=True)
    with open(folder / "deals.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "Name",
                "target_close_date",
                "owner_email",
                "value",
                "deal_unique_id",
                "account_unique_id",
                "deal_stage",
                "project_type",
            ]
        )
        for r in pipeline:
            agent = r["sales_agent"].lower().replace(" ", ".")
            writer.writerow(
                [
                    f"{r['product']} for {r['account'] or 'unknown account'}",
                    r["close_date"],
                    f"{agent}@maven.example",
                    r["close_value"],
                    r["opportunity_id"],
                    r["account"],
                    r["deal_stage"],
                    r["product"],
                ]
            )
    with open(folder / "accounts.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "unique_id", "url", "industry"])
        for a in _rows("accounts.csv"):
            writer.writerow([a["account"], a["account"], "", a["sector"]])
    return pipeline


def test_maven_crm_rejections_are_exactly_the_real_gaps(tmp_path, warehouse_path, instance):
    pipeline = convert(tmp_path / "landing" / "maven")
    assert run_tenant("maven", tmp_path / "landing", warehouse_path, instance).success

    no_account = {r["opportunity_id"] for r in pipeline if not r["account"]}
    open_deals = {r["opportunity_id"] for r in pipeline if not r["close_date"]}
    expected_errors = (
        {(d, "account_unique_id", "missing_value") for d in no_account}
        | {(d, "target_close_date", "missing_value") for d in open_deals}
        | {
            (r["opportunity_id"], "value", "missing_value")
            for r in pipeline
            if not r["close_value"]
        }
    )
    errors = set(
        query(
            warehouse_path,
            'SELECT record_id, "column", reason FROM rejected_rows '
            "WHERE tenant_id = 'maven' AND file = 'deals.csv' AND severity = 'error'",
        )
    )
    assert errors == expected_errors

    published = {
        r[0]
        for r in query(
            warehouse_path, "SELECT deal_unique_id FROM importable_deals WHERE tenant_id = 'maven'"
        )
    }
    assert published == {r["opportunity_id"] for r in pipeline} - no_account - open_deals
    assert len(published) == 8800 - len(no_account | open_deals)
    # Every account is named in accounts.csv, so no published deal lacks an account name;
    # none has a URL, which is a warning per deal (no brand icon).
    assert query(
        warehouse_path,
        "SELECT count(*) FROM importable_deals WHERE tenant_id = 'maven' AND account_name IS NULL",
    ) == [(0,)]
    assert query(
        warehouse_path,
        "SELECT count(*) FROM rejected_rows WHERE tenant_id = 'maven' AND reason = 'no_account_url'",
    ) == [(len(published),)]
    won_total = sum(
        float(r["close_value"]) for r in pipeline if r["deal_stage"] == "Won" and r["account"]
    )
    assert query(
        warehouse_path,
        "SELECT sum(value) FROM importable_deals WHERE tenant_id = 'maven' AND deal_stage = 'Won'",
    )[0][0] == pytest.approx(won_total)
