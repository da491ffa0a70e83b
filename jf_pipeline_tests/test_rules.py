"""The contract's rules (§2) on small frames: cleaning a file, account precedence,
importability, duplicates, and the contact checks. Pure polars, no Dagster."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl

from jf_pipeline.contract import ACCOUNTS, CONTACTS, DEALS
from jf_pipeline.core.cleaning import clean_table
from jf_pipeline.core.publication import publication
from jf_pipeline.core.reading import read_table
from jf_pipeline.core.rules import reports_to_cycles

DEALS_HEADER = "Name,target_close_date,owner_email,value,deal_unique_id,account_unique_id,account_name,account_url,account_industry"


def clean(spec, text: str):
    return clean_table(read_table(text.encode(), spec), spec)


def deals(*rows: str):
    return clean(DEALS, "\n".join([DEALS_HEADER, *rows]) + "\n")


def accounts(*rows: str):
    return clean(ACCOUNTS, "\n".join(["name,unique_id,url,industry", *rows]) + "\n")


def contacts(*rows: str):
    header = "first_name,last_name,email_address,account_unique_id,contact_unique_id,reports_to_id"
    return clean(CONTACTS, "\n".join([header, *rows]) + "\n")


NO_CONTACTS = contacts()


def published(d, a=None, c=None):
    return publication(d, a or accounts(), c or NO_CONTACTS, lambda: pl.Series([], dtype=pl.String))


def reasons(problems: pl.DataFrame) -> list[tuple]:
    return sorted(problems.select("row_number", "reason").rows(), key=lambda r: (r[0] or 0, r[1]))


def test_large_files_parse_columns_in_parallel_with_the_same_result(monkeypatch):
    """From PARALLEL_MIN_ROWS rows the columns' parsers run in threads; the clean rows and
    problems must equal those of parsing one column after another."""
    from jf_pipeline.core import cleaning

    rows = [
        f"Deal {i},2026-0{i % 9 + 1}-1{i % 9},Owner{i % 7}@X.example,"
        f'"{"$" if i % 3 else ""}{i * 3.5:,.2f}",D-{i},A-{i % 50},Acme {i % 50},'
        f"{'acme.example' if i % 11 else 'not a url'},Tech"
        for i in range(cleaning.PARALLEL_MIN_ROWS + 10)
    ]
    text = "\n".join([DEALS_HEADER, *rows]).replace(",Owner5@", ",not-an-email")
    parallel = clean(DEALS, text)
    monkeypatch.setattr(cleaning, "PARALLEL_MIN_ROWS", 10**9)
    sequential = clean(DEALS, text)
    assert parallel.rows.equals(sequential.rows)
    assert parallel.problems.equals(sequential.problems)
    assert parallel.rows.height > 40_000 and parallel.problems.height > 1_000


def test_clean_deals_are_typed():
    table = deals('Kickoff,12/31/2026,A@B.example,"$1,500.50",D1,A1,Acme,acme.example,Retail')
    row = table.rows.row(0, named=True)
    assert row["target_close_date"] == date(2026, 12, 31)
    assert row["value"] == Decimal("1500.50")
    assert row["owner_email"] == "a@b.example"
    assert row["account_url"] == "https://acme.example"
    assert table.rows.schema["value"] == pl.Decimal(18, 2)


def test_each_invalid_required_field_is_an_error_and_drops_the_row():
    table = deals(
        "Good,2026-01-01,a@b.example,1,D1,A1,Acme,,",
        ",2026-01-01,a@b.example,1,D2,A1,Acme,,",
        "Bad date,2026-02-30,a@b.example,1,D3,A1,Acme,,",
        "Bad mail,2026-01-01,not-an-email,1,D4,A1,Acme,,",
        "Bad value,2026-01-01,a@b.example,lots,D5,A1,Acme,,",
        "No id,2026-01-01,a@b.example,1,,A1,Acme,,",
    )
    assert table.rows["deal_unique_id"].to_list() == ["D1"]
    assert reasons(table.problems) == [
        (2, "missing_value"),
        (3, "invalid_date"),
        (4, "invalid_email"),
        (5, "invalid_number"),
        (6, "missing_value"),
    ]
    assert set(table.problems["severity"]) == {"error"}
    bad_date = table.problems.filter(pl.col("reason") == "invalid_date").row(0, named=True)
    assert (bad_date["record_id"], bad_date["column"], bad_date["value"]) == (
        "D3",
        "target_close_date",
        "2026-02-30",
    )


def test_duplicate_ids_last_occurrence_wins_earlier_ones_are_warnings():
    table = deals(
        "First,2026-01-01,a@b.example,1,D1,A1,Acme,,",
        "Other,2026-01-01,a@b.example,2,D2,A1,Acme,,",
        "Second,2026-01-01,a@b.example,3,D1,A1,Acme,,",
    )
    assert table.rows.select("deal_unique_id", "name").rows() == [("D2", "Other"), ("D1", "Second")]
    dup = table.problems.row(0, named=True)
    assert (dup["row_number"], dup["reason"], dup["severity"]) == (1, "duplicate_id", "warning")


def test_deal_row_account_data_takes_precedence_field_by_field():
    result = published(
        deals(
            "Inline name,2026-01-01,a@b.example,1,D1,A1,Deal Name Co,,",
            "From file,2026-01-01,a@b.example,1,D2,A1,,deal.example,",
        ),
        accounts("File Name Co,A1,file.example,Software"),
    )
    rows = {r["deal_unique_id"]: r for r in result.importable_deals.iter_rows(named=True)}
    assert (
        rows["D1"]["account_name"],
        rows["D1"]["account_url"],
        rows["D1"]["account_industry"],
    ) == ("Deal Name Co", "https://file.example", "Software")
    assert (rows["D2"]["account_name"], rows["D2"]["account_url"]) == (
        "File Name Co",
        "https://deal.example",
    )


def test_deal_without_account_name_is_an_error_without_url_a_warning():
    result = published(
        deals(
            "No name,2026-01-01,a@b.example,1,D1,UNKNOWN,,,",
            "No url,2026-01-01,a@b.example,1,D2,A2,Named,,",
        ),
    )
    assert result.importable_deals["deal_unique_id"].to_list() == ["D2"]
    found = {r["reason"]: r for r in result.rejected_rows.iter_rows(named=True)}
    assert (
        found["no_account_name"]["severity"] == "error"
        and found["no_account_name"]["record_id"] == "D1"
    )
    assert (
        found["no_account_url"]["severity"] == "warning"
        and found["no_account_url"]["record_id"] == "D2"
    )


def test_accounts_table_merges_file_and_inline_data_with_deal_precedence():
    result = published(
        deals(
            "X,2026-01-01,a@b.example,1,D1,A1,Inline Co,,",
            "Y,2026-01-01,a@b.example,1,D2,A3,Only Inline,x.example,Ops",
        ),
        accounts("File Co,A1,file.example,Software", "Unused Co,A2,,"),
    )
    merged = {r["account_unique_id"]: r for r in result.accounts.iter_rows(named=True)}
    assert merged["A1"] == {
        "account_unique_id": "A1",
        "name": "Inline Co",
        "url": "https://file.example",
        "industry": "Software",
    }
    assert merged["A2"]["name"] == "Unused Co"
    assert merged["A3"] == {
        "account_unique_id": "A3",
        "name": "Only Inline",
        "url": "https://x.example",
        "industry": "Ops",
    }


def test_contacts_with_unknown_account_or_manager_are_kept_with_warnings():
    result = published(
        deals("X,2026-01-01,a@b.example,1,D1,A1,Acme,acme.example,"),
        c=contacts("Ann,Lee,ann@acme.example,A1,C1,", "Bo,Ek,bo@x.example,A9,C2,C7"),
    )
    assert result.importable_contacts["contact_unique_id"].to_list() == ["C1", "C2"]
    assert reasons(result.rejected_rows) == [(2, "unknown_account"), (2, "unknown_reports_to")]
    assert set(result.rejected_rows["severity"]) == {"warning"}


def test_reporting_loops_are_found_and_reported():
    ids = pl.Series(["a", "b", "c", "d", "e", "s"])
    to = pl.Series(["b", "c", "a", "a", None, "s"])  # a->b->c->a, d->a (not on the loop), s->s
    assert sorted(reports_to_cycles(ids, to).to_list()) == ["a", "b", "c", "s"]
    result = published(
        deals("X,2026-01-01,a@b.example,1,D1,A1,Acme,acme.example,"),
        c=contacts(
            "A,A,a@a.example,A1,C1,C2", "B,B,b@a.example,A1,C2,C1", "C,C,c@a.example,A1,C3,C1"
        ),
    )
    assert reasons(result.rejected_rows) == [(1, "reports_to_cycle"), (2, "reports_to_cycle")]


def test_a_rejected_deals_file_keeps_published_tables_but_replaces_rejected_rows():
    rejected = clean(DEALS, "Name,owner_email\nX,a@b.example\n")
    result = published(
        rejected, accounts("Acme,A1,acme.example,"), contacts("Ann,Lee,ann@acme.example,A1,C1,")
    )
    assert result.importable_deals is None and result.accounts is None
    assert result.importable_contacts is not None
    assert result.outcome == "partial"
    row = result.rejected_rows.filter(pl.col("reason") == "missing_columns").row(0, named=True)
    assert row["row_number"] is None and row["severity"] == "error" and row["file"] == "deals.csv"


def test_every_dropped_row_is_reported():
    d = deals(
        "Ok,2026-01-01,a@b.example,1,D1,A1,Acme,acme.example,",
        "Bad,TBD,a@b.example,1,D2,A1,Acme,,",
        "Orphan,2026-01-01,a@b.example,1,D3,A404,,,",
        "Ok2,2026-01-01,a@b.example,1,D1,A1,Acme,acme.example,",
    )
    result = published(d)
    published_rows = set(result.importable_deals["deal_unique_id"])
    reported = set(result.rejected_rows["row_number"].drop_nulls())
    assert published_rows == {"D1"}
    # Rows 1 (duplicate), 2 (bad date) and 3 (no account) are all explained.
    assert {1, 2, 3} <= reported
