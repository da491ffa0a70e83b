"""CRM exports as they really come (issue 14): Salesforce API files, HubSpot, Pipedrive,
Dynamics 365, Zoho, SQL dumps' `\\N`, owners given as user ids or names resolved through
users.csv, and a file missing a column still reported in full (one round trip).

The drops in `native_exports/` are run through the assets into a real DuckDB file; the
expected deals below are read off those files by hand."""

from __future__ import annotations

import random
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from jf_pipeline.contract import ACCOUNTS, CONTACTS, DEALS, FILE_NAMES, USERS
from jf_pipeline.core.cleaning import clean_table
from jf_pipeline.core.landing import changed_files
from jf_pipeline.core.publication import publication
from jf_pipeline.core.reading import map_header, read_table
from jf_pipeline.core.rules import resolve_owners
from jf_pipeline.core.values import MISSING_PLACEHOLDERS
from jf_pipeline_tests.conftest import query, run_tenant

NATIVE = Path(__file__).resolve().parent / "native_exports"
DROPS = sorted(p.name for p in NATIVE.iterdir() if p.is_dir())
D = Decimal

# deal id -> (name, close date, owner e-mail, value, stage, account id, account name,
#             account url, account industry, description)
EXPECTED = {
    "salesforce-dataloader": {
        "0065g00000AbCdEAAV": ("Northwind - Platform renewal", date(2026, 3, 31), "ana.alvarez@northwind-sales.example", D("125000.00"), "Negotiation/Review", "0015g00000XyZaBAAV", "Northwind Traders", "https://northwind.example", "Retail", None),
        "0065g00000AbCdFAAV": ("Contoso   expansion", date(2026, 4, 15), "ben.brown@northwind-sales.example", D("48000.50"), "Proposal/Price Quote", "0015g00000XyZaCAAV", "Contoso Ltd", "https://www.contoso.example", "Technology", "Second phase, 3 sites"),
        "0065g00000AbCdGAAV": ("Northwind - Training", date(2026, 5, 2), "ana.alvarez@northwind-sales.example", D("9900.00"), "Closed Won", "0015g00000XyZaBAAV", "Northwind Traders", "https://northwind.example", "Retail", None),
    },
    "salesforce-data-export": {
        "0065g00000Q7aAAAAZ": ("Fabrikam line 2", date(2026, 6, 30), "dev.patel@tailwind-sales.example", D("250000.00"), "Prospecting", "0015g00000R1aAAAAZ", "Fabrikam Inc", "https://www.fabrikam.example", "Manufacturing", None),
        "0065g00000Q7aBAAAZ": ("Fabrikam service contract", date(2026, 7, 15), "eva.evans@tailwind-sales.example", D("36000.00"), "Qualification", "0015g00000R1aAAAAZ", "Fabrikam Inc", "https://www.fabrikam.example", "Manufacturing", "Three-year service"),
        "0065g00000Q7aCAAAZ": ("Tailspin fleet", date(2026, 2, 27), "femi.okafor@tailwind-sales.example", D("18500.75"), "Closed Won", "0015g00000R1aBAAAZ", "Tailspin Toys", "https://tailspin.example", "Retail", None),
    },
    "hubspot": {
        "9481234501": ("Litware - annual plan", date(2026, 3, 31), "kai.jansen@litware-partner.example", D("24000.00"), "Contract sent", "18800001", "Litware Inc", "https://litware.example", "Computer Software", None),
        "9481234502": ("Proseware onboarding", date(2026, 4, 30), "lena.hansen@litware-partner.example", D("7500.00"), "Appointment scheduled", "18800002", "Proseware Inc", "https://proseware.example", "Publishing", None),
        "9481234503": ("Litware add-on seats", date(2026, 2, 14), "kai.jansen@litware-partner.example", D("3600.00"), "Closed won", "18800001", "Litware Inc", "https://litware.example", "Computer Software", None),
    },
    "pipedrive": {
        "101": ("Adventure Works deal", date(2026, 5, 20), "ana@aw-reseller.example", D("15000.00"), "Proposal Made", "7", "Adventure Works", "https://adventure-works.example", "Outdoor", None),
        "102": ("Wide World Importers deal", date(2026, 6, 1), "ben@aw-reseller.example", D("82300.50"), "Negotiations Started", "8", "Wide World Importers", None, "Logistics", None),
        "103": ("Adventure Works extension", date(2026, 2, 10), "ben@aw-reseller.example", D("4300.00"), "Qualified", "7", "Adventure Works", "https://adventure-works.example", "Outdoor", None),
    },
    "dynamics365": {
        "6f9619ff-8b86-d011-b42d-00c04fc964ff": ("Litware ERP rollout", date(2026, 9, 30), "greta.fischer@contoso-sales.example", D("120000.00"), "3-Propose", "a1b2c3d4-0000-4000-8000-000000000001", "Litware Inc", "http://www.litware.example", None, "ERP for 4 plants"),
        "7f9619ff-8b86-d011-b42d-00c04fc964ff": ("Litware support", date(2026, 3, 15), "jonas.jansen@contoso-sales.example", D("9800.50"), "1-Qualify", "a1b2c3d4-0000-4000-8000-000000000001", "Litware Inc", "http://www.litware.example", None, None),
        "8f9619ff-8b86-d011-b42d-00c04fc964ff": ("Fourth Coffee pilot", date(2026, 4, 1), "greta.fischer@contoso-sales.example", D("4500.00"), "2-Develop", "a1b2c3d4-0000-4000-8000-000000000002", "Fourth Coffee", "https://www.fourthcoffee.example", None, None),
    },
    "zoho": {
        "zcrm_4876876000000301001": ("Müller Maschinenbau - Wartung", date(2026, 4, 30), "ines.garcia@eu-sales.example", D("18000.00"), "Negotiation/Review", "zcrm_4876876000000290001", "Müller Maschinenbau GmbH", "https://www.mueller-maschinen.example", "Manufacturing", None),
        "zcrm_4876876000000301002": ("SGE audit", date(2026, 5, 15), "dev.patel@eu-sales.example", D("7250.00"), "Qualification", "zcrm_4876876000000290002", "Société Générale d'Études", "https://sge-etudes.example", "Consulting", "Audit de conformité"),
    },
    "vtiger-mysql-excel": {
        "4101": ("Müller Wartungsvertrag", date(2026, 3, 31), "jonas.jansen@vtiger-kunde.example", D("1234.56"), "Negotiation or Review", "3101", "Müller Maschinenbau GmbH", "https://www.mueller-maschinen.example", "Maschinenbau", None),
        "4102": ("Société Générale – Audit", date(2026, 4, 15), "jonas.jansen@vtiger-kunde.example", D("12500.00"), "Prospecting", "3102", "Société Générale d'Études", None, "Beratung", "Prüfung für 2026"),
        "4105": ("Fabrikam Schulung", date(2026, 7, 13), "greta.fischer@vtiger-kunde.example", D("4800.00"), "Value Proposition", "3103", "Fabrikam Inc", "https://fabrikam.example", None, None),
    },
}  # fmt: skip

# The rows each drop must report as errors: (file, row, reason).
EXPECTED_ERRORS = {
    "salesforce-data-export": {("deals.csv", 4, "unknown_owner")},
    "vtiger-mysql-excel": {
        ("deals.csv", 3, "missing_value"),
        ("deals.csv", 4, "missing_value"),
    },
}
MISSING_ID = "opp-ref"


def _missing_id_drop(folder: Path) -> None:
    """deals.csv whose id column has a label we do not know, plus bad amounts, dates and
    owners in the columns that were found."""
    rows = ["Opp Ref,Deal Name,Close Date,Owner Email,Amount,Account ID,Account Name"]
    for i in range(1, 13):
        amount = "lots" if i == 4 else f"{1000 * i}"
        close = "2026-02-30" if i == 7 else f"2026-03-{i:02d}"
        owner = "not-an-address" if i == 9 else "ann@x.example"
        rows.append(f"0061x00000{i:08d},Deal {i},{close},{owner},{amount},A{i},Acme {i}")
    folder.mkdir(parents=True)
    (folder / "deals.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Every native drop (and the drop missing its id column) published into one warehouse."""
    from dagster import DagsterInstance

    root = tmp_path_factory.mktemp("native")
    landing = root / "landing"
    shutil.copytree(NATIVE, landing, ignore=shutil.ignore_patterns("*.md"))
    _missing_id_drop(landing / MISSING_ID)
    warehouse = str(root / "warehouse.duckdb")
    with DagsterInstance.ephemeral() as instance:
        results = {t: run_tenant(t, landing, warehouse, instance) for t in [*DROPS, MISSING_ID]}
    return warehouse, results


@pytest.mark.integration
@pytest.mark.parametrize("drop", DROPS)
def test_native_export_publishes_every_deal_with_the_right_values(published, drop):
    """Each CRM's export, untouched, publishes exactly the deals it should, values intact
    (ids, API-name and relationship headers, owners resolved through users.csv)."""
    warehouse, results = published
    assert results[drop].success, drop
    rows = query(
        warehouse,
        "SELECT deal_unique_id, name, target_close_date, owner_email, value, deal_stage, "
        "account_unique_id, account_name, account_url, account_industry, description "
        "FROM importable_deals WHERE tenant_id = ?",
        [drop],
    )
    assert {r[0]: r[1:] for r in rows} == EXPECTED[drop]
    errors = query(
        warehouse,
        "SELECT file, row_number, reason FROM rejected_rows "
        "WHERE tenant_id = ? AND severity = 'error'",
        [drop],
    )
    assert set(errors) == EXPECTED_ERRORS.get(drop, set())


@pytest.mark.integration
def test_a_dump_with_backslash_n_nulls_leaves_no_literal_backslash_n_in_the_warehouse(published):
    """`\\N` from a MySQL dump saved by European Excel is a missing value everywhere: no
    table, published or reported, holds the text `\\N`."""
    warehouse, _ = published
    tenant = "vtiger-mysql-excel"
    columns = query(
        warehouse,
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND data_type = 'VARCHAR' AND table_name IN "
        "('importable_deals', 'accounts', 'importable_contacts', 'rejected_rows')",
    )
    assert len(columns) > 20
    found = []
    for table, column in columns:
        hits = query(
            warehouse,
            # Table and column names from our own catalogue (the contract), never the drop's.
            f'SELECT count(*) FROM "{table}" WHERE tenant_id = ? AND contains("{column}", ?)',  # noqa: S608
            [tenant, "\\N"],
        )[0][0]
        if hits:
            found.append((table, column, hits))
    assert found == []
    contacts = query(
        warehouse,
        "SELECT contact_unique_id, role, phone_number, reports_to_id FROM importable_contacts "
        "WHERE tenant_id = ? ORDER BY 1",
        [tenant],
    )
    assert contacts == [
        ("5101", "Einkaufsleiter", None, None),
        ("5102", None, "+33 1 55 55 01 02", "5101"),
    ]


@pytest.mark.integration
def test_a_file_missing_its_id_column_reports_every_other_problem_at_once(published):
    """One round trip: deals.csv without deal_unique_id is refused, and the same report lists
    the bad amount, date and e-mail of the columns that were found and names the likely id
    column by its name and values."""
    warehouse, results = published
    assert not results[MISSING_ID].success  # the guard refuses a file rejected as a whole
    problems = query(
        warehouse,
        'SELECT row_number, reason, "column", message FROM rejected_rows '
        "WHERE tenant_id = ? AND severity = 'error' ORDER BY row_number NULLS FIRST",
        [MISSING_ID],
    )
    assert [(p[0], p[1], p[2]) for p in problems] == [
        (None, "missing_columns", None),
        (4, "invalid_number", "value"),
        (7, "invalid_date", "target_close_date"),
        (9, "invalid_email", "owner_email"),
    ]
    message = problems[0][3]
    assert "missing required column(s) deal_unique_id" in message
    assert "'Opp Ref' holds 12 unique values like '0061x00000…': is it deal_unique_id?" in message
    assert query(
        warehouse, "SELECT count(*) FROM importable_deals WHERE tenant_id = ?", [MISSING_ID]
    ) == [(0,)]
    outcome = query(warehouse, "SELECT outcome FROM ingestions WHERE tenant_id = ?", [MISSING_ID])
    assert outcome == [("refused",)]


# --- the core at size --------------------------------------------------------------------


@pytest.mark.parametrize("spec", [DEALS, ACCOUNTS, CONTACTS], ids=lambda s: s.dataset)
@pytest.mark.parametrize("header", ["Id", "ID", "id", " Id "])
def test_a_bare_salesforce_id_header_is_each_files_own_id(spec, header):
    """Salesforce names every object's id column `Id` (Data Loader: `ID`)."""
    mapping, ignored, conflicts = map_header([header, "Name", "CreatedDate"], spec)
    assert mapping[0] == spec.key and not conflicts and "CreatedDate" in ignored


def test_an_email_owner_column_beats_an_owner_id_or_name_column():
    """`Owner Email` (an alias) wins over `OwnerId`/`Deal Owner` (fallbacks), which rank
    among themselves in the contract's order instead of conflicting."""
    headers = ["Deal Owner", "OwnerId", "Owner Email"]
    mapping, ignored, conflicts = map_header(headers, DEALS)
    assert mapping == {2: "owner_email"} and not conflicts
    assert ignored == ["Deal Owner", "OwnerId"]
    mapping, _, conflicts = map_header(["Deal Owner", "OWNER.NAME", "OwnerId"], DEALS)
    assert mapping == {2: "owner_email"} and not conflicts


def _deals_csv(rows: list[list[str]]) -> bytes:
    header = "Name,target_close_date,owner_email,value,deal_unique_id,account_unique_id,description,account_name"
    return (header + "\n" + "\n".join(",".join(r) for r in rows) + "\n").encode()


def _clean(data: bytes, spec=DEALS):
    return clean_table(read_table(data, spec), spec)


@pytest.mark.parametrize("placeholder", ["\\N", "\\n", "(null)", "<NULL>", "[NULL]", "#NULL!"])
def test_database_null_spellings_are_missing_in_every_column_at_size(placeholder):
    """2,000 mostly distinct rows (the parsers' row path): a dump's NULL in any column,
    required or optional, behaves exactly like a blank cell, never as text or a bad value."""
    rng = random.Random(placeholder)
    rows, blanks = [], []
    for i in range(2_000):
        row = [
            f"Deal {i}",
            f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
            f"o{i}@x.example",
            f"{rng.randrange(10**6)}.{i % 100:02d}",
            f"D{i}",
            f"A{i % 50}",
            f"note {i}",
            f"Acme {i % 50}",
        ]
        if i % 7 == 0:
            row[rng.choice([1, 2, 3, 5, 6, 7])] = placeholder
        rows.append(row)
        blanks.append([("" if c == placeholder else c) for c in row])
    with_nulls, with_blanks = _clean(_deals_csv(rows)), _clean(_deals_csv(blanks))
    assert with_nulls.rows.equals(with_blanks.rows)
    assert with_nulls.problems.equals(with_blanks.problems)
    reasons = set(with_nulls.problems["reason"])
    assert "missing_value" in reasons
    assert reasons <= {"missing_value"}
    assert not with_nulls.rows["description"].str.contains(placeholder, literal=True).any()


def test_every_placeholder_is_documented_in_the_contract():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "contract.md").read_text()
    for placeholder in MISSING_PLACEHOLDERS:
        assert placeholder.lower() in doc.lower(), placeholder


def test_salesforce_all_zero_id_is_a_missing_reference():
    """`000000000000000AAA` (and its 15-character form) is an empty reference: a required id
    is then missing, an optional one (reports_to_id) is blank with no warning."""
    deals = _clean(
        _deals_csv(
            [
                ["A", "2026-01-01", "a@x.example", "1", "D1", "000000000000000AAA", "", "Acme"],
                ["B", "2026-01-01", "a@x.example", "1", "D2", "000000000000000", "", "Acme"],
                ["C", "2026-01-01", "a@x.example", "1", "D3", "0015g00000XyZaBAAV", "", "Acme"],
            ]
        )
    )
    assert deals.rows["deal_unique_id"].to_list() == ["D3"]
    assert deals.problems.filter(pl.col("reason") == "missing_value")["row_number"].to_list() == [
        1,
        2,
    ]
    contacts = _clean(
        b"Id,AccountId,FirstName,LastName,Email,ReportsToId\n"
        b"C1,A1,Ann,Lee,ann@x.example,000000000000000AAA\n",
        CONTACTS,
    )
    assert contacts.rows["reports_to_id"].to_list() == [None]
    assert contacts.problems.filter(pl.col("row_number").is_not_null()).height == 0


def test_free_text_is_trimmed_and_keeps_inner_spaces():
    deals = _clean(
        _deals_csv(
            [
                [
                    "  Panama  Resort & Spa\u00a0",
                    "2026-01-01",
                    " a@x.example ",
                    "1",
                    " D1 ",
                    "A1",
                    "\tnote ",
                    "  Acme  Inc ",
                ]
            ]
        )
    )
    row = deals.rows.row(0, named=True)
    assert (row["name"], row["deal_unique_id"], row["description"], row["account_name"]) == (
        "Panama  Resort & Spa",
        "D1",
        "note",
        "Acme  Inc",
    )


def _sf_id(prefix: str, n: int) -> str:
    return f"{prefix}{n:012d}AAZ"  # 18 characters; the first 15 are the id


def test_owner_ids_and_names_resolve_through_users_csv_at_size():
    """1,500 deals whose owner column holds user ids (some in Salesforce's 15-character
    form) or names, 300 users: each deal gets the owner's e-mail a plain dictionary lookup
    gives; a name two users share and an unknown id are `unknown_owner` errors."""
    rng = random.Random(14)
    users = [(_sf_id("005", i), f"User {i}", f"user{i}@crm.example") for i in range(300)]
    users.append((_sf_id("005", 900), "User 7", "other7@crm.example"))  # a shared name
    by_id = {u[0]: u[2] for u in users}
    by_name: dict[str, set[str]] = {}
    for _, name, email in users:
        by_name.setdefault(name.lower(), set()).add(email)
    rows, expected = [], {}
    for i in range(1_500):
        user = users[rng.randrange(300)]
        form = i % 4
        owner = {0: user[0], 1: user[0][:15], 2: user[1].upper(), 3: user[1]}[form]
        if i % 97 == 0:
            owner = _sf_id("005", 5000 + i)  # nobody
        rows.append([f"Deal {i}", "2026-05-01", owner, "10", f"D{i}", "A1", "", "Acme"])
        if owner in by_id or owner[:15] in {k[:15] for k in by_id}:
            expected[f"D{i}"] = by_id.get(owner) or next(
                e for k, e in by_id.items() if k[:15] == owner
            )
        elif len(by_name.get(owner.lower(), ())) == 1:
            expected[f"D{i}"] = next(iter(by_name[owner.lower()]))
    users_csv = "Id,Name,Email\n" + "".join(f"{u},{n},{e}\n" for u, n, e in users)
    deals = _clean(_deals_csv(rows))
    assert deals.owner_source is not None and "holds user ids" in deals.owner_source
    resolved, problems = resolve_owners(
        deals.rows, _clean(users_csv.encode(), USERS).rows, deals.owner_source
    )
    got = dict(zip(resolved["deal_unique_id"], resolved["owner_email"], strict=True))
    assert got == expected
    assert len(expected) < 1_500  # the shared name and the unknown ids are left out
    assert set(problems["reason"]) == {"unknown_owner"}
    assert problems.height == 1_500 - len(expected)


def test_owner_names_without_users_csv_are_owner_not_an_email_saying_how_to_fix():
    deals = _clean(
        b"Name,Close Date,Deal owner,Amount,Record ID,Company ID,Company Name\n"
        b"A,2026-01-01,Ann Lee,1,D1,C1,Acme\nB,2026-01-01,Bo Chen,1,D2,C1,Acme\n"
    )
    none = clean_table(read_table(b"email\n", USERS), USERS)
    empty_accounts = clean_table(read_table(b"name,unique_id,url\n", ACCOUNTS), ACCOUNTS)
    no_contacts = clean_table(read_table(b",".join(n.encode() for n in CONTACTS.names) + b"\n", CONTACTS), CONTACTS)  # fmt: skip
    result = publication(deals, empty_accounts, no_contacts, lambda: pl.Series([], dtype=pl.String), users=none)  # fmt: skip
    assert result.importable_deals.height == 0
    owner = result.rejected_rows.filter(pl.col("reason") == "owner_not_an_email")
    assert owner["row_number"].to_list() == [1, 2]
    assert owner["value"].to_list() == ["Ann Lee", "Bo Chen"]
    message = owner["message"][0]
    assert "column 'Deal owner' holds names, not e-mails (e.g. 'Ann Lee')" in message
    assert "upload users.csv" in message
    # The tenant's default owner (onboarding settings, a plain parameter here) fills in.
    resolved, problems = resolve_owners(deals.rows, none.rows, deals.owner_source, "ops@t.example")
    assert resolved["owner_email"].to_list() == ["ops@t.example", "ops@t.example"]
    assert problems["reason"].to_list() == ["owner_defaulted", "owner_defaulted"]
    assert set(problems["severity"]) == {"warning"}


def test_a_mostly_email_owner_column_is_still_checked_as_emails():
    deals = _clean(
        b"Name,Close Date,Deal owner,Amount,Record ID,Company ID,Company Name\n"
        b"A,2026-01-01,ann@x.example,1,D1,C1,Acme\nB,2026-01-01,bo@x.example,1,D2,C1,Acme\n"
        b"C,2026-01-01,Carl,1,D3,C1,Acme\n"
    )
    assert deals.owner_source is None
    assert deals.problems.filter(pl.col("reason") == "invalid_email")["row_number"].to_list() == [3]


def test_candidates_for_a_missing_column_are_judged_by_their_values_at_size():
    """1,500 rows: an unmatched column of unique ids is proposed for the missing id, a
    column of dates for the missing close date, and a free-text column for neither."""
    lines = ["Deal Name,Ref,When,Owner Email,Amount,Account ID,Notes"]
    for i in range(1_500):
        lines.append(f"Deal {i},X{i:07d},2026-{1 + i % 12:02d}-{1 + i % 28:02d},a@x.example,{i},A1,note {i % 3}")  # fmt: skip
    read = read_table(("\n".join(lines) + "\n").encode(), DEALS)
    assert read.rejected and read.missing_columns == ["target_close_date", "deal_unique_id"]
    message = read.problems.filter(pl.col("reason") == "missing_columns")["message"][0]
    dates = len({(i % 12, i % 28) for i in range(1_500)})
    assert (
        f"'When' holds {dates} unique values like '2026-01-01': is it target_close_date?" in message
    )
    assert "'Ref' holds 1,500 unique values like 'X0000000': is it deal_unique_id?" in message
    assert "'Notes'" not in message.split("found:")[1].split(";", 1)[1]
    cleaned = clean_table(read, DEALS)
    assert cleaned.rejected and cleaned.rows.height == 0


def test_a_cursor_from_before_users_csv_counts_every_file_as_changed():
    """Fingerprints written when the contract had three files: the first tick after the
    upgrade treats the drop as new instead of failing."""
    now = ".".join(["aaaaaaaa"] * len(FILE_NAMES))
    assert changed_files("aaaaaaaa.bbbbbbbb.cccccccc", now) == sorted(FILE_NAMES)


def test_a_file_with_no_contract_column_and_a_bad_byte_is_rejected_not_raised():
    """Found by fuzzing: a rejected file is now still read, so a stray byte with no contract
    column to judge must not break the reading."""
    table = read_table(b"\x80\xc2\x80", DEALS)
    assert table.rejected
    assert "missing_columns" in table.problems["reason"].to_list()
    assert clean_table(table, DEALS).rows.height == 0
