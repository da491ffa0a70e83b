"""`jf tenant ...` and `jf check` on a local landing zone, in-process (issue #13): add,
set, show, list, pause/resume, remove --purge; idempotent and audited; bad input is a clear
error that changes nothing; `jf check` says what a run would publish and publishes nothing.
(S3 credentials and their enforcement: test_onboarding_s3.py.)"""

from __future__ import annotations

import json

import pytest

from jf_pipeline import tenants
from jf_pipeline.cli import main
from jf_pipeline.contract import TABLES
from jf_pipeline.resources import LocalLandingStore
from jf_pipeline_tests.conftest import SAMPLE_LANDING, copy_samples, query


@pytest.fixture
def jf(capsys, landing_of, warehouse_path):
    """`jf(...)` -> (exit code, stdout, stderr), on a landing zone holding acme."""
    root = landing_of("acme")

    def run(*args: str) -> tuple[int, str, str]:
        extra = ["--landing", str(root)]
        code = main([*args, *extra])
        out, err = capsys.readouterr()
        return code, out, err

    run.root = root
    run.store = LocalLandingStore(root=str(root))
    run.warehouse = warehouse_path
    return run


def _snapshot(root) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    } | {str(p.relative_to(root)) + "/": b"" for p in root.rglob("*") if p.is_dir()}


def test_add_creates_the_folder_once_and_says_credentials_do_not_apply(jf):
    code, out, _ = jf("tenant", "add", "newco")
    assert code == 0 and "credentials do not apply" in out
    assert (jf.root / "newco").is_dir()
    assert tenants.load(jf.store, "newco").settings_version == 1
    before = _snapshot(jf.root)
    code, out, _ = jf("tenant", "add", "newco")
    assert code == 0 and "already exists" in out and "nothing changed" in out
    assert _snapshot(jf.root) == before  # no new audit entry, no new version
    assert [e["action"] for e in tenants.audit_log(jf.store, "newco")] == ["add"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tenant", "add", "Bad_Id"), "invalid tenant id 'Bad_Id'"),
        (("tenant", "add", "_jointflows"), "invalid tenant id '_jointflows'"),
        (("tenant", "set", "nope", "--day-order", "dmy"), "unknown tenant 'nope'"),
        (("tenant", "set", "acme", "--map", "deals:Id=deal_id"), "has no column 'deal_id'"),
        (("tenant", "set", "acme", "--map", "deals=Id"), "expected FILE:HEADER=COLUMN"),
        (("tenant", "set", "acme", "--default-owner", "nobody"), "not an e-mail"),
        (("tenant", "set", "acme", "--guard-max-drop", "lots"), "a share such as 0.5"),
        (("tenant", "pause", "nope"), "unknown tenant 'nope'"),
        (("tenant", "rotate-keys", "acme"), "landing zone is a local folder"),
        (("check", "nope"), "unknown tenant 'nope'"),
        (("check", "/no/such/folder"), "no such file or folder"),
    ],
)
def test_bad_input_is_a_clear_error_that_changes_nothing(jf, args, message):
    before = _snapshot(jf.root)
    code, out, err = jf(*args)
    assert code == 1 and message in err and out == ""
    assert _snapshot(jf.root) == before


def test_a_stage_filter_on_deals_without_a_stage_column_is_refused(jf):
    deals = jf.root / "acme" / "deals.csv"
    lines = deals.read_text().splitlines()
    deals.write_text("\n".join(",".join(line.split(",")[:6]) for line in lines) + "\n")
    before = _snapshot(jf.root)
    code, _, err = jf("tenant", "set", "acme", "--stages", "Proposal")
    assert code == 1 and "has no deal stage column" in err and "nothing changed" in err
    assert _snapshot(jf.root) == before


def test_set_is_idempotent_audited_and_shown(jf):
    code, out, _ = jf(
        "tenant", "set", "acme", "--map", "deals:Deal Ref=deal_unique_id", "--day-order", "dmy"
    )
    assert code == 0 and "settings version 1" in out
    code, out, _ = jf("tenant", "set", "acme", "--day-order", "dmy")
    assert code == 0 and "nothing changed" in out
    code, out, _ = jf("tenant", "show", "acme", "--json")
    shown = json.loads(out)
    assert shown["settings_version"] == 1 and shown["day_order"] == "dmy"
    assert shown["column_mapping"] == {"deals": {"Deal Ref": "deal_unique_id"}}
    assert [e["action"] for e in shown["audit"]] == ["set"]
    assert shown["audit"][0]["details"]["changes"]["day_order"] == ["auto", "dmy"]
    code, out, _ = jf("tenant", "list", "--json")
    rows = {r["tenant"]: r for r in json.loads(out)["tenants"]}
    assert rows["acme"]["settings_version"] == 1 and rows["acme"]["status"] == "active"


def test_check_says_what_a_run_would_publish_and_publishes_nothing(jf, tmp_path):
    """A sample export with Salesforce's headers, checked with acme's settings before
    go-live: refused without the mapping, published with it; the warehouse is never
    written."""
    sample = tmp_path / "sample"
    copy_samples(SAMPLE_LANDING / "acme", sample)
    deals = sample / "deals.csv"
    deals.write_text(deals.read_text().replace("deal_unique_id", "Opp Ref", 1))
    code, out, _ = jf("check", str(sample), "--tenant", "acme", "--warehouse", jf.warehouse)
    assert (
        code == 1
        and "WOULD BE REFUSED" in out
        and "missing required column(s) deal_unique_id" in out
    )
    jf("tenant", "set", "acme", "--map", "deals:Opp Ref=deal_unique_id", "--stages", "Proposal")
    code, out, _ = jf(
        "check", str(sample / "deals.csv"), str(sample / "accounts.csv"), str(sample / "contacts.csv"),
        "--tenant", "acme", "--warehouse", jf.warehouse, "--json",
    )  # fmt: skip
    result = json.loads(out)
    assert code == 0 and result["outcome"] == "published"
    assert (result["deals_published"], result["deals_filtered"]) == (13, 17)
    assert any(p["reason"] == "deals_filtered" for p in result["problems"])
    assert "Deals imported: 13" in result["summary"]
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_pause_holds_jf_ingest_back_and_remove_purge_deletes_every_table(jf, publish_samples):
    publish_samples("acme")
    assert jf("tenant", "pause", "acme")[1].startswith("tenant acme paused")
    assert "already paused" in jf("tenant", "pause", "acme")[1]
    code, out, err = jf("ingest", "--warehouse", jf.warehouse, "--tenant", "acme")
    assert code == 1 and "acme: not ingested: tenant paused" in err
    code, out, err = jf("ingest", "--warehouse", jf.warehouse, "--all")
    assert "acme: not ingested: tenant paused" in err and "nothing to ingest" in out
    jf("tenant", "resume", "acme")
    counts = {t: query(jf.warehouse, f'SELECT count(*) FROM "{t}"')[0][0] for t in TABLES}  # noqa: S608
    assert counts["importable_deals"] == 30 and counts["ingestions"] == 1
    code, out, _ = jf("tenant", "remove", "acme", "--purge", "--yes", "--warehouse", jf.warehouse)
    assert code == 0 and "purged" in out
    for table in TABLES:
        assert query(jf.warehouse, f'SELECT count(*) FROM "{table}"') == [(0,)], table  # noqa: S608
    assert tenants.load(jf.store, "acme").status == "removed"
    actions = [e["action"] for e in tenants.audit_log(jf.store, "acme")]
    assert actions == ["pause", "resume", "remove"]
    removal = tenants.audit_log(jf.store, "acme")[-1]["details"]
    assert removal["purge"] and removal["rows_deleted"]["importable_deals"] == 30
    code, _, err = jf("ingest", "--warehouse", jf.warehouse, "--tenant", "acme")
    assert code == 1 and "tenant removed" in err


def test_a_purge_without_confirmation_changes_nothing(jf, monkeypatch, publish_samples):
    publish_samples("acme")
    monkeypatch.setattr("builtins.input", lambda prompt: "globex")
    code, _, err = jf("tenant", "remove", "acme", "--purge", "--warehouse", jf.warehouse)
    assert code == 1 and "not confirmed" in err
    assert query(jf.warehouse, "SELECT count(*) FROM importable_deals") == [(30,)]
    assert tenants.stored(jf.store, "acme") is None


def test_a_purge_without_a_warehouse_creates_none(jf, tmp_path):
    code, out, _ = jf("tenant", "remove", "acme", "--purge", "--yes", "--warehouse", jf.warehouse)
    assert code == 0 and "nothing to purge: no warehouse" in out
    assert not list(tmp_path.glob("*.duckdb"))
    assert tenants.load(jf.store, "acme").status == "removed"
