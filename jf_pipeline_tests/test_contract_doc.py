"""docs/contract.md and jf_pipeline/contract.py state the same contract.

The document is what users read; the code is what runs. These tests protect against the
two drifting apart: a column added, renamed or made optional in one place only."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from jf_pipeline.contract import FILES, HISTORY_TABLES, TABLES, WAREHOUSE_TABLES

PROJECT = Path(__file__).resolve().parents[1]
DOC = (PROJECT / "docs" / "contract.md").read_text(encoding="utf-8")


def _names(text: str) -> list[str]:
    return re.findall(r"`([A-Za-z_]+)`", text)


def _bullet(title: str) -> str:
    """The text of the bullet that starts with **title**, up to the next bullet."""
    match = re.search(rf"^- \*\*{re.escape(title)}\*\*(.*?)(?=^- |^#|^$|\Z)", DOC, re.M | re.S)
    assert match, f"docs/contract.md has no bullet for {title}"
    return " ".join(match.group(1).split())


@pytest.mark.parametrize("dataset", sorted(FILES))
def test_file_columns_in_the_doc_match_the_code(dataset: str) -> None:
    spec = FILES[dataset]
    text = _bullet(spec.file_name)
    required_text, _, optional_text = text.partition("Optional:")
    assert _names(required_text) == spec.required
    assert _names(optional_text) == [c.name for c in spec.columns if not c.required]


DOCUMENTED_TABLES = {**WAREHOUSE_TABLES, **HISTORY_TABLES}


@pytest.mark.parametrize("table", sorted(DOCUMENTED_TABLES))
def test_warehouse_columns_in_the_doc_match_the_code(table: str) -> None:
    keys, columns = DOCUMENTED_TABLES[table].key, DOCUMENTED_TABLES[table].columns
    text = _bullet(table)
    key_text = re.match(r", key \(([^)]*)\)", text)
    if keys:
        assert key_text and _names(key_text.group(1)) == list(keys)
        text = text[key_text.end() :]
    listed = _names(text.split(".", 1)[0] if table != "rejected_rows" else text.split(". ", 1)[0])
    assert listed == [name for name, _ in columns]
    for name, duck_type in columns:
        if duck_type in ("DATE", "DECIMAL(18,2)"):
            assert f"`{name}` {duck_type}" in text, (
                f"{table}.{name} should be documented as {duck_type}"
            )


def test_nothing_tracked_points_outside_the_repository() -> None:
    """Every file the project runs, tests or links lives in the clone (issue #12)."""
    out = subprocess.run(
        ["git", "grep", "-n", "-I", r"\.\./shared"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    if out.returncode == 128:  # not a git checkout (an sdist): nothing to check
        pytest.fail(f"git grep failed: {out.stderr.strip()}")
    assert out.stdout == "", out.stdout


def test_readme_links_resolve_inside_the_repository() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    assert links, "the README links nothing: the pattern is broken"
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        target = (PROJECT / link).resolve()
        assert target.is_relative_to(PROJECT), f"README links outside the repository: {link}"
        assert target.exists(), f"README links a missing file: {link}"


def test_a_new_column_is_one_edit_that_reaches_reading_ddl_comments_and_metadata():
    """Adding a column to a file's spec (here to a copy of deals.csv's) is the only edit:
    the reader and cleaner take it, the published table's DDL has it with its type, DuckDB
    comments it, and Dagster's table schema shows it with its description."""
    import dataclasses

    import duckdb

    from jf_pipeline.assets import table_schema
    from jf_pipeline.contract import DEALS, IMPORTABLE_DEALS, Column, Kind, file_table
    from jf_pipeline.core.cleaning import clean_table
    from jf_pipeline.core.reading import read_table
    from jf_pipeline.warehouse import document, ensure_schema

    extra = Column("close_probability", Kind.MONEY, aliases=("Probability (%)",), doc="Odds.")
    spec = dataclasses.replace(DEALS, columns=(*DEALS.columns, extra))
    table = file_table(
        IMPORTABLE_DEALS.name, spec, IMPORTABLE_DEALS.doc, tuple(IMPORTABLE_DEALS.data_names)
    )

    # after the other file columns (which keep their order), before the publish's ingestion_id
    assert table.names[-2:] == ["close_probability", "ingestion_id"]
    assert table.names[:-2] + ["ingestion_id"] == IMPORTABLE_DEALS.names

    header = "Name,target_close_date,owner_email,value,deal_unique_id,account_unique_id"
    data = f'{header},Probability (%)\nX,2026-01-02,a@b.example,5,D1,A1,"12,5"\n'.encode()
    rows = clean_table(read_table(data, spec), spec).rows
    assert rows["close_probability"].cast(float).to_list() == [12.5]

    con = duckdb.connect()
    tables = {**TABLES, table.name: table}  # the contract with the copy in place
    ensure_schema(con, tables)
    document(con, tables)
    assert con.execute(
        "SELECT data_type, comment FROM duckdb_columns() "
        "WHERE table_name = 'importable_deals' AND column_name = 'close_probability'"
    ).fetchall() == [("DECIMAL(18,2)", "Odds.")]

    schema = {c.name: c for c in table_schema(table).columns}
    assert schema["close_probability"].type == "DECIMAL(18,2)"
    assert schema["close_probability"].description == "Odds."


def test_a_publish_rewrites_only_the_comments_that_differ_from_the_contract():
    """Every publish documents the warehouse; comments that already match are left alone
    (rewriting them all cost half a second a run), but a comment that differs (an older
    version's text, an analyst's edit) is brought back to the contract's, and so is a
    column added since."""
    import duckdb

    from jf_pipeline.contract import ACCOUNTS_TABLE, IMPORTABLE_DEALS
    from jf_pipeline.warehouse import document, ensure_schema

    con = duckdb.connect()
    ensure_schema(con)
    document(con)
    con.execute("COMMENT ON COLUMN importable_deals.value IS 'edited by hand'")
    con.execute("COMMENT ON TABLE accounts IS NULL")
    statements = []

    class Recording:  # records what document() executes
        def __init__(self, inner):
            self.inner = inner

        def execute(self, sql, *args):
            statements.append(sql)
            return self.inner.execute(sql, *args)

    document(Recording(con))
    comments = [s for s in statements if s.startswith("COMMENT ON") and "VIEW" not in s]
    assert sorted(comments) == [
        'COMMENT ON COLUMN "importable_deals"."value" IS \''
        + IMPORTABLE_DEALS.fields[IMPORTABLE_DEALS.names.index("value")].doc
        + "'",
        f"COMMENT ON TABLE \"accounts\" IS '{ACCOUNTS_TABLE.doc}'",
    ]
    value_doc = con.execute(
        "SELECT comment FROM duckdb_columns() WHERE table_name = 'importable_deals' "
        "AND column_name = 'value'"
    ).fetchone()[0]
    assert value_doc == IMPORTABLE_DEALS.fields[IMPORTABLE_DEALS.names.index("value")].doc
