"""Deal, account and contact history (issue #20): one version per real change, written in
the publish's transaction; the change views and the summaries read from it."""

from __future__ import annotations

import contextlib
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from jf_pipeline import warehouse as wh
from jf_pipeline.cli import main
from jf_pipeline.contract import IMPORTABLE_DEALS
from jf_pipeline.core.report import REPORT_SUMMARY
from jf_pipeline_tests.conftest import PROJECT, materializations, query, run_tenant

HEADER = "Name,target_close_date,owner_email,value,deal_unique_id,account_unique_id,deal_stage,account_name"
DEALS = {
    "D1": "Alpha,2026-03-01,ann@acme.example,100,D1,A1,Proposal,Acme",
    "D2": "Beta,2026-04-01,ann@acme.example,200,D2,A1,Proposal,Acme",
    "D3": "Gamma,2026-05-01,bob@acme.example,300,D3,A2,Discovery,Acme East",
    "D4": "Delta,2026-06-01,bob@acme.example,400,D4,A2,Discovery,Acme East",
}
D2_MOVED = "Beta,2026-04-01,ann@acme.example,250,D2,A1,Negotiation,Acme"


def _drop(landing: Path, *lines: str) -> None:
    folder = landing / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "deals.csv").write_text("\n".join([HEADER, *lines]) + "\n")


def _status(warehouse: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["status", "--warehouse", warehouse, "--json"]) == 0
    (row,) = json.loads(out.getvalue())
    return row


def test_three_drops_give_exactly_the_versions_changes_and_summaries(
    tmp_path, warehouse_path, instance
):
    """Add four deals; move one (stage and value) and drop another; re-add it; export the
    same again; send a drop the guard refuses. History, deal_changes, the import summary,
    `jf status` and the importable_deals materialization say exactly what happened, and
    the identical and the refused drops add nothing."""
    landing = tmp_path / "landing"
    runs = []

    def ingest(*lines: str) -> dict:
        _drop(landing, *lines)
        result = run_tenant("acme", landing, warehouse_path, instance)
        runs.append(result.run_id)
        return materializations(result)

    first = ingest(*DEALS.values())
    second = ingest(DEALS["D1"], D2_MOVED, DEALS["D3"])
    summary_after_second = (landing / "acme" / REPORT_SUMMARY).read_text()
    analysts_after_second = {
        question: query(warehouse_path, sql) for question, sql in readme_queries().items()
    }
    status_after_second = _status(warehouse_path)
    third = ingest(DEALS["D1"], D2_MOVED, DEALS["D3"], DEALS["D4"])
    fourth = ingest(DEALS["D1"], D2_MOVED, DEALS["D3"], DEALS["D4"])  # the same again
    ingest(DEALS["D1"])  # loses 3 of 4 deals: refused by the publish guard
    r1, r2, r3, r4, r5 = runs
    outcomes = dict(query(warehouse_path, "SELECT run_id, outcome FROM ingestions"))
    assert [outcomes[r] for r in runs] == ["published"] * 4 + ["refused"]

    history = query(
        warehouse_path,
        "SELECT deal_unique_id, deal_stage, CAST(value AS INTEGER), valid_from_ingestion_id, "
        "valid_to_ingestion_id, valid_to IS NULL FROM deal_history ORDER BY deal_unique_id, valid_from",
    )
    assert history == [
        ("D1", "Proposal", 100, r1, None, True),
        ("D2", "Proposal", 200, r1, r2, False),
        ("D2", "Negotiation", 250, r2, None, True),
        ("D3", "Discovery", 300, r1, None, True),
        ("D4", "Discovery", 400, r1, r2, False),
        ("D4", "Discovery", 400, r3, None, True),
    ]
    # valid_from/valid_to are the ingestions' finished_at: history joins ingestions on time too.
    assert query(
        warehouse_path,
        "SELECT count(*) FROM deal_history h JOIN ingestions i ON i.run_id = h.valid_from_ingestion_id "
        "AND i.finished_at = h.valid_from",
    ) == [(6,)]

    changes = query(
        warehouse_path,
        "SELECT ingestion_id, deal_unique_id, change, changed_fields FROM deal_changes "
        "ORDER BY changed_at, deal_unique_id",
    )
    assert changes == [
        (r1, "D1", "new", None),
        (r1, "D2", "new", None),
        (r1, "D3", "new", None),
        (r1, "D4", "new", None),
        (
            r2,
            "D2",
            "changed",
            [
                {"field": "value", "old": "200.00", "new": "250.00"},
                {"field": "deal_stage", "old": "Proposal", "new": "Negotiation"},
            ],
        ),
        (r2, "D4", "gone", None),
        (r3, "D4", "new", None),
    ]
    assert r4 not in {c[0] for c in changes} and r5 not in {c[0] for c in changes}

    # The README's analyst queries, run after the second drop (D2 moved, D4 gone).
    moved = [
        {"field": "value", "old": "200.00", "new": "250.00"},
        {"field": "deal_stage", "old": "Proposal", "new": "Negotiation"},
    ]
    answers = list(analysts_after_second.values())
    assert len(answers) == 5
    this_week, stage_moves, churn, lost, as_of_first = answers
    assert [(row[1], row[2], row[3]) for row in this_week] == [
        ("D1", "new", None),
        ("D2", "new", None),
        ("D3", "new", None),
        ("D4", "new", None),
        ("D2", "changed", moved),
        ("D4", "gone", None),
    ]
    assert [(row[0], row[2], row[3]) for row in stage_moves] == [("D2", "Proposal", "Negotiation")]
    assert [(row[0], *row[2:]) for row in churn] == [(r1, 4, 0, 0), (r2, 0, 1, 1)]
    assert [row[:2] for row in lost] == [("D4", "Delta")]
    assert [(d, s, int(v)) for d, s, v in as_of_first] == [
        ("D1", "Proposal", 100),
        ("D2", "Proposal", 200),
        ("D3", "Discovery", 300),
        ("D4", "Discovery", 400),
    ]

    assert "Deals since the last import: 0 new, 1 changed, 1 gone" in summary_after_second
    assert summary_after_second.index("Deals imported: 3") < summary_after_second.index(
        "Deals since the last import"
    )
    assert {k: status_after_second[k] for k in ("deals_new", "deals_changed", "deals_gone")} == {
        "deals_new": 0,
        "deals_changed": 1,
        "deals_gone": 1,
    }
    # After the identical drop and the refusal, status speaks of the last publish (r4).
    assert _status(warehouse_path)["deals_changed"] == 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["status", "--warehouse", warehouse_path])
    assert "0 new, 0 changed, 0 gone" in out.getvalue()

    counts = {
        run: {k: m["importable_deals"][k].value for k in ("new", "changed", "gone")}
        for run, m in zip((r1, r2, r3, r4), (first, second, third, fourth), strict=True)
    }
    assert counts == {
        r1: {"new": 4, "changed": 0, "gone": 0},
        r2: {"new": 0, "changed": 1, "gone": 1},
        r3: {"new": 1, "changed": 0, "gone": 0},
        r4: {"new": 0, "changed": 0, "gone": 0},
    }
    # The accounts (inline in deals.csv) have a history of their own: A1 and A2, once each.
    assert query(
        warehouse_path,
        "SELECT account_unique_id, count(*) FROM account_history GROUP BY ALL ORDER BY 1",
    ) == [("A1", 1), ("A2", 1)]
    # History and the published tables agree: the open versions are the published rows.
    assert_consistent(warehouse_path)


def readme_queries() -> dict[str, str]:
    """The README's History section's analyst queries: comment -> SQL."""
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## History\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
    queries, question = {}, None
    for line in block.splitlines():
        if line.startswith("-- "):
            question = line[3:]
            queries[question] = ""
        else:
            queries[question] += line + "\n"
    return queries


def assert_consistent(path: str) -> None:
    """Every history's open versions are exactly the published rows, tenant by tenant."""
    for source, history in wh.HISTORIES.items():
        names = ", ".join(wh.ident(c) for c in wh.tracked_columns(history))
        differ = query(
            path,
            f"SELECT count(*) FROM ((SELECT tenant_id, {names} FROM {source} "  # noqa: S608
            f"EXCEPT ALL SELECT tenant_id, {names} FROM {history.name} WHERE valid_to IS NULL) "
            f"UNION ALL (SELECT tenant_id, {names} FROM {history.name} WHERE valid_to IS NULL "
            f"EXCEPT ALL SELECT tenant_id, {names} FROM {source}))",
        )
        assert differ == [(0,)], history.name
        # Stored once: each published row has exactly one current-version entry, with the
        # hash of its values, and no entry outlives its row (else the view would lose or
        # invent versions).
        _, current = wh.HISTORY_STORES[history.name]
        key = wh.ident(history.key[1])
        values = ", ".join(f"p.{wh.ident(c)}" for c in wh.tracked_columns(history))
        assert query(
            path,
            f"SELECT count(*) FILTER (WHERE c.tenant_id IS NULL OR p.tenant_id IS NULL "  # noqa: S608
            f"OR c.row_hash IS DISTINCT FROM hash({values})), count(*) "
            f"FROM {source} p FULL JOIN {current.name} c "
            f"ON c.tenant_id = p.tenant_id AND c.{key} = p.{key}",
        ) == query(path, f"SELECT 0, count(*) FROM {source}"), history.name  # noqa: S608


def _deals(*ids: str, stage: str = "Proposal") -> pl.DataFrame:
    columns = IMPORTABLE_DEALS.data_names
    frame = pl.DataFrame(
        {c: [f"{c}-{i}" for i in ids] for c in columns}, schema={c: pl.String for c in columns}
    )
    return frame.with_columns(
        pl.Series("deal_unique_id", list(ids)),
        pl.lit(stage).alias("deal_stage"),
        pl.lit(None, pl.Date).alias("target_close_date"),
        pl.lit(1, pl.Decimal(18, 2)).alias("value"),
    )


def _publish(path: str, run: str, frame: pl.DataFrame, tenant="acme", **ingestion) -> dict:
    with wh.writer(path) as w:
        return w.replace_tenant(
            tenant,
            {"importable_deals": frame},
            {"run_id": run, "finished_at": datetime.now(UTC), "outcome": "published", **ingestion},
        )


def test_an_error_inside_the_publish_transaction_leaves_history_and_tables_as_they_were(
    warehouse_path,
):
    """The history is written in the publish's transaction: an error after the versions
    were written (here the ingestions row, the last statement, fails) takes them back with
    the published rows, and the next publish starts from a consistent state."""
    _publish(warehouse_path, "r1", _deals("D1", "D2"))
    before = query(warehouse_path, "SELECT * FROM deal_history ORDER BY ALL")
    with pytest.raises(Exception, match="(?i)conversion|timestamp"):
        _publish(warehouse_path, "r2", _deals("D1", stage="Won"), started_at="not a time")
    for path in (warehouse_path, str(wh.build_path(warehouse_path))):
        assert query(path, "SELECT * FROM deal_history ORDER BY ALL") == before
        assert query(
            path, "SELECT deal_unique_id, deal_stage FROM importable_deals ORDER BY 1"
        ) == [
            ("D1", "Proposal"),
            ("D2", "Proposal"),
        ]
        assert_consistent(path)
    assert _publish(warehouse_path, "r3", _deals("D1", stage="Won")) == {
        "importable_deals": {"new": 0, "changed": 1, "gone": 1}
    }
    assert_consistent(warehouse_path)


def test_a_hash_that_differs_for_the_same_values_refreshes_it_instead_of_adding_a_version(
    warehouse_path,
):
    """row_hash only finds candidates: a DuckDB whose hash() gives other numbers (simulated
    by overwriting the stored hashes) must not turn every row into a new version."""
    _publish(warehouse_path, "r1", _deals("D1", "D2"))
    with wh.writer(warehouse_path) as w:
        w.con.execute("UPDATE deal_history_current SET row_hash = 42")
    assert _publish(warehouse_path, "r2", _deals("D1", "D2")) == {
        "importable_deals": {"new": 0, "changed": 0, "gone": 0}
    }
    rows = query(warehouse_path, "SELECT valid_from_ingestion_id, row_hash FROM deal_history")
    assert len(rows) == 2 and {r[0] for r in rows} == {"r1"} and 42 not in {r[1] for r in rows}
    assert _publish(warehouse_path, "r3", _deals("D1", "D2")) == {
        "importable_deals": {"new": 0, "changed": 0, "gone": 0}
    }


def _jf(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_history_prune_deletes_only_ended_versions_older_than_asked(warehouse_path):
    """`jf history prune` deletes versions that ended more than N days ago, of the tenant
    named (or all), never a current version; --dry-run only counts; bad arguments and
    unknown tenants are refused with a clear message."""
    for tenant in ("acme", "globex"):
        _publish(warehouse_path, f"{tenant}-1", _deals("D1", "D2", "D3"), tenant=tenant)
        _publish(warehouse_path, f"{tenant}-2", _deals("D1", "D2", stage="Won"), tenant=tenant)
    with wh.writer(warehouse_path) as w:  # acme's D1 and D2 versions ended 40 days ago
        w.con.execute(
            "UPDATE deal_history_ended SET valid_to = valid_to - INTERVAL 40 DAY "
            "WHERE tenant_id = 'acme' AND deal_unique_id IN ('D1', 'D2')"
        )

    def versions() -> list[tuple]:
        return query(
            warehouse_path,
            "SELECT tenant_id, deal_unique_id, valid_from_ingestion_id FROM deal_history "
            "ORDER BY ALL",
        )

    before = versions()
    assert len(before) == 10  # per tenant: D1, D2, D3, then D1 and D2 changed (D3 gone)
    code, out, _ = _jf(
        "history", "prune", "--older-than", "30", "--dry-run", "--warehouse", warehouse_path
    )
    assert (
        code == 0 and out.startswith("would delete 2 history version(s)") and versions() == before
    )

    code, out, _ = _jf(
        "history",
        "prune",
        "--older-than",
        "30",
        "--tenant",
        "acme",
        "--warehouse",
        warehouse_path,
        "--json",
    )
    assert code == 0
    assert json.loads(out) == {
        "older_than_days": 30,
        "tenant": "acme",
        "dry_run": False,
        "versions": {"deal_history": 2, "account_history": 0, "contact_history": 0},
    }
    assert versions() == [
        v for v in before if not (v[0] == "acme" and v[2] == "acme-1" and v[1] != "D3")
    ]
    assert_consistent(warehouse_path)
    # acme's D3 ended just now; globex's versions too: 0 days prunes every ended version.
    code, out, _ = _jf("history", "prune", "--older-than", "0", "--warehouse", warehouse_path)
    assert code == 0 and "deleted 4 history version(s)" in out and "every tenant" in out
    assert versions() == [
        ("acme", "D1", "acme-2"),
        ("acme", "D2", "acme-2"),
        ("globex", "D1", "globex-2"),
        ("globex", "D2", "globex-2"),
    ]
    assert_consistent(warehouse_path)

    assert _jf("history", "prune", "--older-than", "-1", "--warehouse", warehouse_path)[0] == 2
    assert _jf("history", "prune", "--older-than", "soon", "--warehouse", warehouse_path)[0] == 2
    code, _, err = _jf("history", "prune", "--older-than", "10" * 9, "--warehouse", warehouse_path)
    assert code == 2 and "more than 36525 days" in err
    code, out, _ = _jf("history", "prune", "--older-than", "36525", "--warehouse", warehouse_path)
    assert code == 0 and out.startswith("deleted 0 history version(s)")
    code, _, err = _jf(
        "history", "prune", "--older-than", "1", "--tenant", "acm", "--warehouse", warehouse_path
    )
    assert code == 1 and "unknown tenant 'acm'" in err and "did you mean 'acme'" in err
    code, _, err = _jf(
        "history", "prune", "--older-than", "1", "--tenant", "../x", "--warehouse", warehouse_path
    )
    assert code == 2 and "not a valid tenant id" in err
    code, _, err = _jf(
        "history", "prune", "--older-than", "1", "--warehouse", warehouse_path + ".none"
    )
    assert code == 1 and "no warehouse" in err


def test_a_warehouse_made_before_history_starts_it_from_the_published_rows(warehouse_path):
    """Upgrading: a warehouse without history tables gets them seeded with the published
    rows as current versions (dated by the tenant's last publish), so the next publish
    reports only what really changed, not every deal as new."""
    _publish(warehouse_path, "r1", _deals("D1", "D2"))
    with wh.writer(warehouse_path) as w:
        for name, stores in wh.HISTORY_STORES.items():
            w.con.execute(f"DROP VIEW IF EXISTS {wh.CHANGE_VIEWS[name]}")
            w.con.execute(f"DROP VIEW {name}")
            for store in stores:
                w.con.execute(f"DROP TABLE {store.name}")
    with wh.writer(warehouse_path):
        pass  # opening the warehouse to write creates and seeds the history
    assert query(
        warehouse_path,
        "SELECT deal_unique_id, valid_from_ingestion_id, valid_to FROM deal_history ORDER BY 1",
    ) == [("D1", "r1", None), ("D2", "r1", None)]
    assert_consistent(warehouse_path)
    assert _publish(warehouse_path, "r2", _deals("D1", "D2", "D3")) == {
        "importable_deals": {"new": 1, "changed": 0, "gone": 0}
    }


def _to_one_table_layout(warehouse_path: str, without: str | None = None) -> None:
    """The layout before the stores (one table per history), as the previous version left
    it; `without`: a deal column the contract added later, absent from that layout."""
    with wh.writer(warehouse_path) as w:
        for name, stores in wh.HISTORY_STORES.items():
            w.con.execute(f"CREATE TABLE {name}_old AS SELECT * FROM {name}")  # noqa: S608 - our names
            w.con.execute(f"DROP VIEW {name}")
            w.con.execute(f"ALTER TABLE {name}_old RENAME TO {name}")
            for store in stores:
                w.con.execute(f"DROP TABLE {store.name}")
        if without:
            w.con.execute(f"ALTER TABLE deal_history DROP COLUMN {without}")


def test_a_history_kept_in_one_table_moves_into_its_stores_unchanged(warehouse_path):
    """Upgrading from the layout before the stores (one table per history, every version
    with every column): the first writer moves the ended versions and the current ones'
    starts into the stores and drops the old table, in one transaction. The history reads
    exactly as before, and the next publish ends and starts versions from it."""
    _publish(warehouse_path, "r1", _deals("D1", "D2", "D3"))
    _publish(warehouse_path, "r2", _deals("D1", "D2", stage="Won"))
    history_sql = "SELECT * FROM deal_history ORDER BY deal_unique_id, valid_from"
    before = query(warehouse_path, history_sql)
    _to_one_table_layout(warehouse_path)
    layout = "SELECT table_type FROM information_schema.tables WHERE table_name = 'deal_history'"
    assert query(str(wh.build_path(warehouse_path)), layout) == [("BASE TABLE",)]
    with wh.writer(warehouse_path):
        pass  # opening the warehouse to write upgrades it
    assert query(warehouse_path, layout) == [("VIEW",)]
    assert query(warehouse_path, history_sql) == before
    assert query(warehouse_path, "SELECT count(*) FROM deal_history_ended") == [(3,)]
    assert_consistent(warehouse_path)
    assert _publish(warehouse_path, "r3", _deals("D1", "D2", "D4", stage="Won")) == {
        "importable_deals": {"new": 1, "changed": 0, "gone": 0}
    }
    assert len(query(warehouse_path, history_sql)) == len(before) + 1
    assert_consistent(warehouse_path)


def test_a_writer_killed_after_the_upgrade_commits_leaves_every_history_readable(
    warehouse_path, monkeypatch
):
    """Protects the upgrade's one transaction: the history views are made with the stores,
    not afterwards with the comments (`document`), so a writer that dies between the two
    leaves deal_history, its change view and `jf status`'s counts as they were."""
    _publish(warehouse_path, "r1", _deals("D1", "D2", "D3"))
    _publish(warehouse_path, "r2", _deals("D1", "D2", stage="Won"))
    history_sql = "SELECT * FROM deal_history ORDER BY deal_unique_id, valid_from"
    changes_sql = "SELECT * FROM deal_changes ORDER BY ALL"
    before = query(warehouse_path, history_sql), query(warehouse_path, changes_sql)
    _to_one_table_layout(warehouse_path)

    class Killed(BaseException):
        pass

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(wh, "document", killed)
    with pytest.raises(Killed), wh.writer(warehouse_path):
        pass
    build = str(wh.build_path(warehouse_path))
    assert query(build, history_sql) == before[0]
    assert query(build, changes_sql) == before[1]
    views = "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'"
    assert set(wh.HISTORY_STORES) <= {name for (name,) in query(build, views)}
    monkeypatch.undo()
    with wh.writer(warehouse_path):
        pass  # the next writer adds what document() would have
    assert (query(warehouse_path, history_sql), query(warehouse_path, changes_sql)) == before
    assert_consistent(warehouse_path)


def test_a_one_table_history_without_a_later_contract_column_still_upgrades(warehouse_path):
    """Protects upgrading a warehouse that skipped versions: its one-table history lacks a
    column the contract added since (ensure_schema never alters it). The versions move with
    NULL there, every other value as it was, and publishing goes on."""
    _publish(warehouse_path, "r1", _deals("D1", "D2", "D3"))
    _publish(warehouse_path, "r2", _deals("D1", "D2", stage="Won"))
    history_sql = (
        "SELECT deal_unique_id, deal_stage, valid_from, valid_to, valid_from_ingestion_id, "
        "project_type FROM deal_history ORDER BY deal_unique_id, valid_from"
    )
    before = query(warehouse_path, history_sql)
    assert any(row[3] is not None and row[5] is not None for row in before)  # ended, typed
    _to_one_table_layout(warehouse_path, without="project_type")
    with wh.writer(warehouse_path):
        pass  # opening the warehouse to write upgrades it
    after = query(warehouse_path, history_sql)
    assert [r[:5] for r in after] == [r[:5] for r in before]
    # Ended versions lost the column with the old table; current ones read the published row.
    assert [r[5] for r in after] == [None if r[3] is not None else r[5] for r in before]
    assert _publish(warehouse_path, "r3", _deals("D1", "D2", "D4", stage="Won")) == {
        "importable_deals": {"new": 1, "changed": 0, "gone": 0}
    }
    assert_consistent(warehouse_path)


def test_history_tables_columns_and_change_views_carry_the_contracts_comments(warehouse_path):
    """Analysts read what each history column means from the warehouse itself."""
    _publish(warehouse_path, "r1", _deals("D1"))
    history = wh.HISTORY_TABLES["deal_history"]
    comments = dict(
        query(
            warehouse_path,
            "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'deal_history'",
        )
    )
    assert comments == {f.name: f.doc for f in history.fields}
    assert comments["valid_to_ingestion_id"].startswith(
        "ingestions.run_id of the publish that ended"
    )
    views = dict(query(warehouse_path, "SELECT view_name, comment FROM duckdb_views()"))
    for view in ("deal_changes", "account_changes", "contact_changes"):
        assert views[view] == wh.VIEWS[view][0] and views[view].startswith("Per ingestion")


def test_a_table_kept_by_a_rejected_file_keeps_its_history(warehouse_path):
    """A partial publish (deals.csv rejected as a whole: importable_deals kept) ends no deal
    version: the kept rows stay the current ones, and nothing is reported as gone."""
    _publish(warehouse_path, "r1", _deals("D1", "D2"))
    before = query(warehouse_path, "SELECT * FROM deal_history ORDER BY ALL")
    with wh.writer(warehouse_path) as w:
        changes = w.replace_tenant(
            "acme",
            {"importable_deals": None, "rejected_rows": None},
            {"run_id": "r2", "finished_at": datetime.now(UTC), "outcome": "partial"},
        )
    assert changes == {}
    assert query(warehouse_path, "SELECT * FROM deal_history ORDER BY ALL") == before
    assert query(warehouse_path, "SELECT count(*) FROM deal_changes WHERE ingestion_id = 'r2'") == [
        (0,)
    ]
    assert_consistent(warehouse_path)


def test_purging_a_tenant_removes_its_history_and_only_its(warehouse_path):
    """`jf tenant remove --purge` deletes the tenant from every table in contract.TABLES:
    its versions go with its rows, another tenant's history stays whole."""
    for tenant in ("acme", "globex"):
        _publish(warehouse_path, f"{tenant}-1", _deals("D1", "D2"), tenant=tenant)
        _publish(warehouse_path, f"{tenant}-2", _deals("D1", stage="Won"), tenant=tenant)
    deleted = wh.purge_tenant(warehouse_path, "acme")
    assert deleted["deal_history"] == 3
    assert query(warehouse_path, "SELECT DISTINCT tenant_id FROM deal_history") == [("globex",)]
    assert query(warehouse_path, "SELECT count(*) FROM deal_changes WHERE tenant_id = 'acme'") == [
        (0,)
    ]
    assert_consistent(warehouse_path)


def test_first_versions_written_directly_equal_the_general_paths(tmp_path, monkeypatch):
    """A tenant's first publish writes its first versions straight from the published rows
    (FIRST_VERSIONS_DIRECT); the general path (diff table, join) must give the very same
    rows and counts, at a size where the fast paths of the cleaning switch on (3,000 mostly
    distinct deals and contacts), and the next publish must go on from either the same."""
    import dataclasses
    import sys

    from jf_pipeline import steps
    from jf_pipeline.contract import FILES, HISTORIES
    from jf_pipeline.core.plan import RunInfo, plan_publish
    from jf_pipeline.core.tenant_settings import TenantSettings
    from jf_pipeline.resources import LocalLandingStore, Warehouse

    sys.path.insert(0, str(PROJECT / "benchmarks"))
    from generate import write_drop

    write_drop(3_000, tmp_path / "landing" / "bench")
    store = LocalLandingStore(root=str(tmp_path / "landing"), write_reports=False)
    read = steps.read_and_clean(store, "bench", list(FILES.values()), TenantSettings("bench"))
    clean = {spec: c.table for spec, (_, c) in zip(FILES, read, strict=True)}
    sources = {spec: c.source for spec, (_, c) in zip(FILES, read, strict=True)}
    when = datetime(2026, 12, 1, tzinfo=UTC)

    def publish(path: str, run: str) -> dict:
        with wh.writer(path) as w:
            plan = plan_publish(
                "bench",
                clean,
                sources,
                w.published_state("bench"),
                steps.publish_policy(Warehouse(path=path), None),
                RunInfo(run, when, when),
            )
            return w.replace_tenant("bench", plan.tables, plan.ingestion)

    def histories(path: str) -> dict[str, list]:
        names = [t.name for t in HISTORIES.values()]
        sql = "SELECT * FROM {}"
        return {h: sorted(query(path, sql.format(wh.ident(h))), key=str) for h in names}

    direct, general = str(tmp_path / "direct.duckdb"), str(tmp_path / "general.duckdb")
    first = publish(direct, "r1")
    monkeypatch.setattr(wh, "FIRST_VERSIONS_DIRECT", False)
    assert publish(general, "r1") == first
    assert first["importable_deals"]["new"] > 2_900 and first["importable_contacts"]["new"] > 2_900
    assert histories(direct) == histories(general)
    # The next drop: 1 % of the deals change; both warehouses take the general path.
    deals = clean["deals"]
    changed = deals.rows.with_columns(
        pl.when(pl.int_range(pl.len()) % 100 == 0)
        .then(pl.lit("Moved"))
        .otherwise(pl.col("deal_stage"))
        .alias("deal_stage")
    )
    clean["deals"] = dataclasses.replace(deals, rows=changed)
    assert publish(direct, "r2") == publish(general, "r2")
    assert histories(direct) == histories(general)
