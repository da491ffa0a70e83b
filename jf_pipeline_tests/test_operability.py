"""What people see: comments and views in DuckDB, `jf status`, `jf rejects`, `jf sql`, and
the import report the customer's admin finds next to their files."""

from __future__ import annotations

import json

import polars as pl
import pytest

from jf_pipeline.cli import main
from jf_pipeline.contract import WAREHOUSE_TABLES
from jf_pipeline.core.report import REPORT_CSV, REPORT_SUMMARY, neutralise_formulas
from jf_pipeline_tests.conftest import SAMPLE_TENANTS, query, run_tenant

pytestmark = pytest.mark.integration


@pytest.fixture
def ingested(sample_warehouse) -> str:
    """The sample tenants after `jf ingest`, shared read-only (conftest.sample_warehouse)."""
    return sample_warehouse.warehouse


@pytest.fixture
def sample_landing(sample_warehouse):
    """The landing zone `ingested` was ingested from, with the reports written back."""
    return sample_warehouse.landing


def test_every_published_table_and_column_has_a_comment(ingested):
    missing = query(
        ingested,
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND table_name IN (SELECT unnest(?)) AND (comment IS NULL OR comment = '')",
        [list(WAREHOUSE_TABLES) + ["ingestions"]],
    )
    assert missing == []
    tables = dict(
        query(
            ingested, "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'main'"
        )
    )
    assert all(tables[t] for t in WAREHOUSE_TABLES)


def test_every_published_row_names_the_ingestion_that_wrote_it(ingested):
    """Like dlt's `_dlt_load_id`: each row of the four published tables carries the run id
    of the `ingestions` row its publish logged (same tenant, a publish that replaced rows),
    so an analyst can tell when, from which files and by whose approval a row arrived."""
    for table in WAREHOUSE_TABLES:
        orphans = query(
            ingested,
            f"SELECT count(*) FILTER (WHERE i.run_id IS NULL), count(*), "  # noqa: S608
            f"count(DISTINCT t.ingestion_id) - count(DISTINCT t.tenant_id) FROM {table} t "
            "LEFT JOIN ingestions i "
            "ON i.run_id = t.ingestion_id AND i.tenant_id = t.tenant_id "
            "AND i.outcome IN ('published', 'partial')",
        )
        assert orphans[0][0] == 0 and orphans[0][1] > 0, table
        assert orphans[0][2] == 0, table  # one ingestion per tenant wrote its rows
    comment = query(
        ingested,
        "SELECT comment FROM duckdb_columns() WHERE table_name = 'accounts' "
        "AND column_name = 'ingestion_id'",
    )
    assert "ingestions.run_id" in comment[0][0]


def test_deals_by_stage_view_totals_match_the_table(ingested):
    total = query(
        ingested, "SELECT deals, total_value FROM deals_by_stage WHERE tenant_id = '(all)'"
    )
    assert total == query(ingested, "SELECT count(*), sum(value) FROM importable_deals")
    acme = query(
        ingested,
        "SELECT sum(deals) FROM deals_by_stage WHERE tenant_id = 'acme' AND pipeline_id <> '(all)' AND deal_stage <> '(all)'",
    )
    assert acme == [(30,)]


def test_jf_status_lists_every_tenant_with_counts(ingested, capsys):
    assert main(["status", "--warehouse", ingested, "--json"]) == 0
    rows = {r["tenant_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == SAMPLE_TENANTS
    assert (rows["initech"]["deals"], rows["initech"]["errors"], rows["initech"]["outcome"]) == (
        15,
        4,
        "published",
    )
    assert 0 <= rows["acme"]["published_age_s"] < 600
    assert main(["status", "--warehouse", ingested]) == 0
    assert "umbrella" in capsys.readouterr().out


def test_jf_rejects_explains_each_rejected_row(ingested, capsys):
    assert main(["rejects", "initech", "--warehouse", ingested]) == 0
    out = capsys.readouterr().out
    assert out.startswith("initech: 4 error(s), 7 warning(s)")
    for expected in (
        "row 16 (line 17): target_close_date 'TBD'",
        "row 17 (line 18): owner_email is required but blank",
        "row 18 (line 19): value 'ca. zehn'",
        "row 20 (line 21): deal IN-103 has no account_name",
    ):
        assert expected in out
    assert main(["rejects", "initech", "--warehouse", ingested, "--json"]) == 0
    problems = json.loads(capsys.readouterr().out)
    assert len(problems) == 11 and {p["severity"] for p in problems} == {"error", "warning"}


def test_jf_sql_is_read_only(ingested, capsys):
    assert (
        main(
            ["sql", "SELECT count(*) AS n FROM importable_deals", "--warehouse", ingested, "--json"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == [{"n": 77}]
    assert main(["sql", "DELETE FROM importable_deals", "--warehouse", ingested]) == 1
    assert "read-only" in capsys.readouterr().err
    assert query(ingested, "SELECT count(*) FROM importable_deals") == [(77,)]


def test_jf_sql_prints_intervals_decimals_lists_and_nulls(ingested, capsys):
    """Any DuckDB type is printed (text and JSON) without the Arrow-to-polars conversion that
    panicked on INTERVAL columns (`age > interval 1 day` matched no row and crashed)."""
    for where, tenants in (("age > interval 1 day", []), ("age < interval 1 day", SAMPLE_TENANTS)):
        sql = f"SELECT tenant_id, age FROM tenant_freshness WHERE {where} ORDER BY tenant_id"  # noqa: S608
        assert main(["sql", sql, "--warehouse", ingested]) == 0, where
        out = capsys.readouterr().out
        assert [t for t in SAMPLE_TENANTS if f"| {t} " in out] == tenants
        assert f"({len(tenants)} row" in out
        assert main(["sql", sql, "--warehouse", ingested, "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [r["tenant_id"] for r in rows] == tenants
        assert all(r["age"].startswith("00:") for r in rows)  # DuckDB's own interval text
    typed = (
        "SELECT 1.50::DECIMAL(10, 2) AS amount, [1, 2] AS ids, NULL AS nothing, "
        "'infinity'::TIMESTAMP AS never, {'k': INTERVAL 3 DAY} AS nested, 7 AS amount"
    )
    assert main(["sql", typed, "--warehouse", ingested]) == 0
    out = capsys.readouterr().out
    assert " 1.50 |" in out and "[1, 2]" in out and "NULL" in out and "infinity" in out
    assert "{'k': 3 days}" in out
    assert main(["sql", typed, "--warehouse", ingested, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "amount": "1.50",
            "ids": [1, 2],
            "nothing": None,
            "never": "infinity",
            "nested": {"k": "3 days"},
            "amount_2": 7,
        }
    ]


def test_jf_sql_cuts_wide_cells_in_text_but_not_in_json(ingested, capsys):
    sql = "SELECT repeat('x', 500) AS wide, 'short' AS narrow"
    assert main(["sql", sql, "--warehouse", ingested]) == 0
    out = capsys.readouterr().out
    assert "x" * 59 + "…" in out and "x" * 61 not in out and "short" in out
    assert max(len(line) for line in out.splitlines()) < 100
    assert main(["sql", sql, "--warehouse", ingested, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["wide"] == "x" * 500


def test_jf_sql_query_error_is_one_line_and_exit_1(ingested, capsys):
    for sql in ("selec 1", "SELECT * FROM no_such_table", "SELECT 1 +", "SELECT 'a'::INTEGER"):
        assert main(["sql", sql, "--warehouse", ingested]) == 1, sql
        captured = capsys.readouterr()
        assert captured.out == "", sql
        assert len(captured.err.splitlines()) == 1, captured.err
        assert captured.err.startswith("query failed: ")
        # DuckDB's message lines joined, not shown as escaped newlines ("\x0a\x0aLINE 1").
        assert "\\x0a" not in captured.err and "Error: " in captured.err


def test_jf_rejects_of_an_unknown_tenant_is_an_error(ingested, capsys):
    """`jf rejects Initech` (no such tenant) used to say "no rejected rows" and exit 0."""
    for tenant, hint in (("Initech", "did you mean 'initech'?"), ("x'; drop table t; --", "")):
        for extra in ([], ["--json"]):
            assert main(["rejects", tenant, "--warehouse", ingested, *extra]) == 1
            captured = capsys.readouterr()
            assert captured.out == ""
            assert len(captured.err.splitlines()) == 1
            assert captured.err.startswith("unknown tenant ") and hint in captured.err
    assert main(["rejects", "acme", "--warehouse", ingested]) == 0
    assert "acme: no rejected rows" in capsys.readouterr().out


def test_a_refused_drop_is_stated_first_with_live_counts_and_its_own(
    landing_root, warehouse_path, capsys
):
    """A refusal reaches the engineer and the customer: `jf status` shows the counts that are
    live (not NULL) and the refused drop's counts with the reason; `jf rejects` and the
    customer summary lead with the refusal and why (the problems alone do not explain it)."""
    ingested = warehouse_path
    assert main(["ingest", "--landing", str(landing_root), "--warehouse", ingested]) == 0
    deals = landing_root / "acme" / "deals.csv"
    deals.write_text("".join(deals.read_text().splitlines(keepends=True)[:9]))  # 30 -> 8
    assert main(["ingest", "--landing", str(landing_root), "--warehouse", ingested]) == 1
    capsys.readouterr()
    why = "the valid deal count would fall from 30 to 8 (more than 50%)"

    assert main(["status", "--warehouse", ingested, "--json"]) == 0
    acme = {r["tenant_id"]: r for r in json.loads(capsys.readouterr().out)}["acme"]
    assert acme["outcome"] == "refused" and acme["reason"] == why
    assert (acme["deals"], acme["accounts"], acme["contacts"]) == (30, 8, 40)  # live
    assert (acme["refused_deals"], acme["refused_contacts"]) == (8, 40)
    assert main(["status", "--warehouse", ingested]) == 0
    out = capsys.readouterr().out
    assert "deals 8, accounts" in " ".join(out.split()) and "would fall from 30 to 8" in " ".join(
        out.split()
    )

    assert main(["rejects", "acme", "--warehouse", ingested]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("acme: REFUSED: the latest drop was not published")
    assert lines[1] == f"  reason: {why}"
    assert "jf approve acme" in lines[2]

    summary = (landing_root / "acme" / REPORT_SUMMARY).read_text().splitlines()
    assert summary[0].startswith("Jointflows import for acme: NOT IMPORTED")
    assert summary[1] == f"Why: {why}."
    assert "Deals in this upload: 8 (not imported)" in summary
    assert query(ingested, "SELECT count(*) FROM importable_deals WHERE tenant_id = 'acme'") == [
        (30,)
    ]


def test_commands_without_a_warehouse_say_so(tmp_path, capsys):
    assert main(["status", "--warehouse", str(tmp_path / "none.duckdb")]) == 1
    assert "no warehouse" in capsys.readouterr().err


def test_the_import_report_lands_next_to_the_customers_files(ingested, sample_landing):
    report = pl.read_csv(sample_landing / "initech" / REPORT_CSV, infer_schema=False)
    assert report.height == 11
    assert set(report.columns) >= {
        "file",
        "row_number",
        "record_id",
        "column",
        "value",
        "reason",
        "message",
    }
    summary = (sample_landing / "initech" / REPORT_SUMMARY).read_text()
    assert "Deals imported: 15" in summary and "Rows not imported (errors): 4" in summary
    # The rows to fix, with the customer's own columns and cells (Data Loader's error file).
    errors = pl.read_csv(
        sample_landing / "initech" / "jointflows_errors_deals.csv", infer_schema=False
    )
    assert errors.columns[0] == "NAME" and errors.columns[-1] == "ERROR"
    assert errors["Deal_Unique_ID"].to_list() == ["IN-100", "IN-101", "IN-102", "IN-103"]
    assert errors["Target_Close_Date"][0] == "TBD" and errors["Value"][0] == "1.000,00 €"
    assert errors["ERROR"][0].startswith("line 17: target_close_date 'TBD'")
    assert not (sample_landing / "initech" / "jointflows_errors_contacts.csv").exists()
    # The sensor does not own the reports: writing them back never triggers a run.
    from jf_pipeline.core.landing import survey
    from jf_pipeline.resources import LocalLandingStore

    found = survey(LocalLandingStore(root=str(sample_landing)).list_files())
    assert set(found.tenants["initech"]) == {"deals.csv", "accounts.csv", "contacts.csv"}


def test_report_cells_are_neutralised_against_formula_injection(
    landing_root, warehouse_path, instance
):
    deals = landing_root / "acme" / "deals.csv"
    lines = deals.read_text().splitlines(keepends=True)
    fields = lines[1].split(",")
    fields[1] = "=SUM(1+1)"  # target_close_date of the first deal
    deals.write_text("".join([lines[0], ",".join(fields), *lines[2:]]))
    assert run_tenant("acme", landing_root, warehouse_path, instance).success
    report = pl.read_csv(landing_root / "acme" / REPORT_CSV, infer_schema=False)
    assert report.filter(pl.col("reason") == "invalid_date")["value"].to_list() == ["'=SUM(1+1)"]
    # DuckDB keeps the value verbatim.
    assert query(
        warehouse_path, "SELECT value FROM rejected_rows WHERE reason = 'invalid_date'"
    ) == [("=SUM(1+1)",)]


def test_reports_can_be_switched_off(landing_root, warehouse_path, instance):
    from jf_pipeline.resources import LocalLandingStore

    store = LocalLandingStore(root=str(landing_root), write_reports=False)
    assert run_tenant("globex", store, warehouse_path, instance).success
    assert not (landing_root / "globex" / REPORT_CSV).exists()


def test_neutralise_formulas_leaves_safe_cells_alone():
    frame = pl.DataFrame({"a": ["=1+1", "+1", "-2", "@x", "ok", None, "a=b"], "n": list(range(7))})
    assert neutralise_formulas(frame)["a"].to_list() == [
        "'=1+1",
        "'+1",
        "'-2",
        "'@x",
        "ok",
        None,
        "a=b",
    ]


def test_ingestions_record_each_files_key_version_size_and_times(ingested, sample_landing):
    row = query(
        ingested,
        "SELECT deals_key, deals_size, length(deals_version), accounts_key, contacts_size, "
        "started_at <= finished_at FROM ingestions WHERE tenant_id = 'globex'",
    )[0]
    deals = sample_landing / "globex" / "deals.csv"
    assert row == (str(deals), deals.stat().st_size, 64, None, None, True)


OLD_STAMPS = [f"2026010{d}T000000Z" for d in range(1, 7)]  # six older runs' reports


def test_the_last_five_reports_are_kept_dated_and_older_ones_deleted(
    landing_root, warehouse_path, instance, tmp_path
):
    """The admin keeps the last few reports (dated copies) besides the latest under the
    fixed names; only our own dated names are ever deleted, a link is removed, not followed."""
    folder = landing_root / "initech"
    for stamp in OLD_STAMPS:
        (folder / f"jointflows_import_report_{stamp}.csv").write_text("old\n")
        (folder / f"jointflows_import_summary_{stamp}.txt").write_text("old\n")
    (folder / "jointflows_import_report_mine.csv").write_text("the admin's own copy\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    (folder / "jointflows_import_report_20250101T000000Z.csv").symlink_to(outside)
    assert run_tenant("initech", landing_root, warehouse_path, instance).success
    dated = sorted(p.name for p in folder.glob("jointflows_import_*_2*"))
    stamps = sorted({name.split("_")[-1].split(".")[0] for name in dated})
    assert len(stamps) == 5 and stamps[:4] == OLD_STAMPS[-4:]
    assert len(dated) == 10  # each kept run: its report and its summary
    newest = folder / f"jointflows_import_summary_{stamps[-1]}.txt"
    assert newest.read_bytes() == (folder / REPORT_SUMMARY).read_bytes()
    assert b"Deals imported: 15" in newest.read_bytes()
    assert (folder / "jointflows_import_report_mine.csv").read_text() == "the admin's own copy\n"
    assert outside.read_text() == "not ours"


def test_error_files_replace_planted_links_and_stale_files_without_following_them(
    landing_of, warehouse_path, instance, tmp_path
):
    """A link planted at an error file's name is replaced by the file, never written
    through; an error file with no rows left to fix (a stale one, or a link) is removed
    without touching what it points to; nothing but our own names is deleted."""
    landing_root = landing_of("initech")
    folder = landing_root / "initech"
    targets = {name: tmp_path / f"{name}.target" for name in ("deals", "contacts")}
    for name, target in targets.items():
        target.write_text("not ours")
        (folder / f"jointflows_errors_{name}.csv").symlink_to(target)
    (folder / "jointflows_errors_notes.csv").write_text("the admin's own file")
    assert run_tenant("initech", landing_root, warehouse_path, instance).success
    deals = folder / "jointflows_errors_deals.csv"
    assert not deals.is_symlink() and "IN-100" in deals.read_text(encoding="utf-8-sig")
    assert not (folder / "jointflows_errors_contacts.csv").is_symlink()
    assert not (folder / "jointflows_errors_contacts.csv").exists()  # no contact to fix
    assert all(t.read_text() == "not ours" for t in targets.values())
    assert (folder / "jointflows_errors_notes.csv").read_text() == "the admin's own file"
