"""The pure core decides a publish on its own: `plan_publish` without Dagster or a warehouse,
and a core that imports neither Dagster nor the settings module (issue #16)."""

from __future__ import annotations

import ast
import csv
import io
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from jf_pipeline.contract import ACCOUNTS, CONTACTS, DEALS, FileSpec
from jf_pipeline.core.cleaning import CleanTable, clean_table
from jf_pipeline.core.landing import LandingFile
from jf_pipeline.core.plan import PublishedState, PublishPolicy, RunInfo, plan_publish
from jf_pipeline.core.reading import read_table
from jf_pipeline_tests.conftest import PROJECT, SAMPLE_LANDING

CORE = PROJECT / "jf_pipeline" / "core"
RUN = RunInfo("run-1", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, 0, 5, tzinfo=UTC))


def _clean(spec: FileSpec, data: bytes) -> CleanTable:
    return clean_table(read_table(data, spec), spec)


def _acme(deals: bytes | None = None) -> tuple[dict[str, CleanTable], dict]:
    folder = SAMPLE_LANDING / "acme"
    tables = {
        "deals": _clean(DEALS, deals if deals is not None else (folder / "deals.csv").read_bytes()),
        "accounts": _clean(ACCOUNTS, (folder / "accounts.csv").read_bytes()),
        "contacts": _clean(CONTACTS, (folder / "contacts.csv").read_bytes()),
    }
    sources = {
        d: LandingFile(
            tenant="acme", name=f"{d}.csv", key=f"acme/{d}.csv", version=f"v-{d}", size=1
        )
        for d in tables
    }
    return tables, sources


def _state(deals: int = 0, accounts: int = 0, contacts: int = 0) -> PublishedState:
    def no_lookup() -> pl.Series:
        raise AssertionError("published account ids are only needed after a rejected file")

    return PublishedState(
        baseline={"deals": deals, "accounts": accounts, "contacts": contacts},
        account_ids=no_lookup,
    )


def test_a_good_drop_plans_every_table_and_a_published_ingestion_row():
    tables, sources = _acme()
    plan = plan_publish("acme", tables, sources, _state(), PublishPolicy(), RUN)
    assert plan.outcome == "published" and plan.guard.passed
    assert {name: frame.height for name, frame in plan.tables.items()} == {
        "importable_deals": 30,
        "accounts": 8,
        "importable_contacts": 40,
        "rejected_rows": plan.rejected_rows.height,
    }
    row = plan.ingestion
    assert row["outcome"] == "published" and row["run_id"] == "run-1"
    assert row["deals_published"] == 30 and row["contacts_published"] == 40
    assert row["deals_version"] == "v-deals" and row["contacts_key"] == "acme/contacts.csv"
    assert row["reason"] is None and row["approved"] is False and row["approved_by"] is None
    csv, summary = plan.report
    assert csv.startswith(b"\xef\xbb\xbffile,row_number") and b"Deals imported: 30" in summary
    # every row to write carries the id of the ingestion logged with it (dlt's _dlt_load_id)
    for name, frame in plan.tables.items():
        assert frame["ingestion_id"].to_list() == ["run-1"] * frame.height, name


def test_a_fall_below_the_baseline_is_refused_and_only_rejected_rows_are_written():
    tables, sources = _acme()
    plan = plan_publish("acme", tables, sources, _state(deals=100), PublishPolicy(), RUN)
    assert plan.outcome == "refused" and not plan.guard.passed
    assert list(plan.tables) == ["rejected_rows"]
    assert plan.ingestion["deals_published"] is None  # nothing replaced
    # ... but the drop's own counts are kept, for `jf status` and the customer summary.
    assert (plan.ingestion["deals_in_drop"], plan.ingestion["contacts_in_drop"]) == (30, 40)
    assert (
        plan.ingestion["reason"] == "the valid deal count would fall from 100 to 30 (more than 50%)"
    )
    assert b"held back for review" in plan.report[1]
    assert b"Why: the valid deal count would fall from 100 to 30" in plan.report[1]


def test_an_approved_fall_is_published_and_records_who_approved():
    tables, sources = _acme()
    refused = plan_publish("acme", tables, sources, _state(deals=100), PublishPolicy(), RUN)
    version = refused.ingestion["landing_version"]
    policy = PublishPolicy(approved=True, approved_by="ana")
    state = replace(_state(deals=100), refused_version=version)
    plan = plan_publish("acme", tables, sources, state, policy, RUN)
    assert plan.outcome == "published" and plan.guard.approved and plan.approval_note is None
    assert (
        plan.ingestion["approved_by"] == "ana" and plan.ingestion["approved_at"] == RUN.finished_at
    )
    assert plan.ingestion["approved_version"] == version == plan.ingestion["landing_version"]
    assert plan.tables["importable_deals"].height == 30


def test_an_approval_covers_only_the_drop_it_names():
    """A newer drop than the refused one, or nothing refused at all: the approval does not
    apply, the guard refuses as usual and the reason says why the approval did not count."""
    tables, sources = _acme()
    for state, policy, why in (
        (
            replace(_state(deals=100), refused_version="older-drop"),
            PublishPolicy(approved=True, approved_by="ana"),
            "the approval was for the drop older-drop but the files read are ",
        ),
        (
            _state(deals=100),
            PublishPolicy(approved=True, approved_by="ana", approved_version="other"),
            "the approval was for the drop other",
        ),
        (
            _state(deals=100),
            PublishPolicy(approved=True, approved_by="ana"),
            "no refused drop to approve",
        ),
    ):
        plan = plan_publish("acme", tables, sources, state, policy, RUN)
        assert plan.outcome == "refused" and not plan.guard.approved, why
        assert why in plan.approval_note and why in plan.ingestion["reason"]
        assert plan.ingestion["reason"].startswith("the valid deal count would fall from 100")
        assert plan.ingestion["approved"] is False and plan.ingestion["approved_by"] is None
        assert list(plan.tables) == ["rejected_rows"]


def test_a_rejected_deals_file_keeps_deals_and_asks_for_the_published_account_ids():
    tables, sources = _acme(deals=b"Name,value\nX,1\n")  # missing required columns
    asked = []

    def published_ids() -> pl.Series:
        asked.append(True)
        return pl.Series("account_unique_id", ["ACC-001"], dtype=pl.String)

    state = PublishedState({"deals": 30, "accounts": 8, "contacts": 40}, published_ids)
    plan = plan_publish("acme", tables, sources, state, PublishPolicy(), RUN)
    assert asked == [True]
    assert plan.outcome == "refused"
    assert "deals.csv was rejected as a whole" in plan.ingestion["reason"]


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_modules_import_neither_dagster_nor_settings(path: Path):
    """The core is pure: limits and thresholds arrive as parameters."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
    bad = {
        m for m in imported if m.split(".")[0] == "dagster" or m.startswith("jf_pipeline.settings")
    }
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_importing_the_whole_core_loads_neither_dagster_nor_settings():
    """Indirect imports count too (a core module importing a shell module)."""
    modules = [
        f"jf_pipeline.core.{p.stem}" for p in sorted(CORE.glob("*.py")) if p.stem != "__init__"
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'dagster' or m == 'jf_pipeline.settings')\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _spreadsheet_lines(text: str, id_column: int) -> dict[str, int]:
    """deal id -> the line a spreadsheet shows it on, by Python's csv module on its own:
    every record is a line (blank ones too), a quoted cell spanning lines is one."""
    lines = {}
    for line, record in enumerate(csv.reader(io.StringIO(text)), 1):
        if len(record) > id_column:
            lines[record[id_column].strip()] = line
    return lines


@pytest.mark.parametrize("spaced_quotes", [False, True], ids=["polars-reader", "csv-module"])
def test_line_numbers_match_the_spreadsheet_with_a_title_blank_lines_and_multiline_cells(
    spaced_quotes,
):
    """rejected_rows.line_number is the line the customer sees in Excel (header line + data
    row), past a report title, blank lines and quoted cells spanning lines, at 1,200 mostly
    distinct rows, on both readers (`, "` makes the csv-module path read the file)."""
    header = (
        "Name,target_close_date,owner_email,value,deal_unique_id,account_unique_id,account_name"
    )
    out = ["Opportunity report (exported 2026-11-02)", "", header]
    bad = set()
    for i in range(1, 1_201):
        date = f"2027-{1 + i % 12:02d}-{1 + i % 28:02d}"
        if i % 97 == 0:
            date, _ = "not a date", bad.add(f"D-{i:05d}")
        name = f'"Deal {i}\nsecond line"' if i % 50 == 0 else f"Deal {i}"
        account = f' "Account {i % 40}, Inc"' if spaced_quotes else f"Account {i % 40}"
        out.append(f"{name},{date},o{i}@x.example,{i}.50,D-{i:05d},A-{i % 40},{account}")
        if i % 113 == 0:
            out.append("")  # a blank line: a blank spreadsheet row
    text = "\n".join(out) + "\n"
    tables, sources = _acme(deals=text.encode())
    plan = plan_publish("acme", tables, sources, _state(), PublishPolicy(), RUN)
    problems = plan.rejected_rows.filter(
        (pl.col("file") == "deals.csv") & (pl.col("reason") == "invalid_date")
    )
    assert set(problems["record_id"]) == bad and len(bad) == 12
    expected = _spreadsheet_lines(text.replace(', "', ',"'), 4)
    got = dict(problems.select("record_id", "line_number").iter_rows())
    assert got == {deal: expected[deal] for deal in bad}
    # Data row n is on the header's line (3: title and a blank line above it) + n.
    assert (problems["line_number"] - problems["row_number"]).unique().to_list() == [3]
    whole_file = plan.rejected_rows.filter(pl.col("row_number").is_null())
    assert whole_file["line_number"].null_count() == whole_file.height > 0  # preamble note
    csv_report = plan.report[0].decode("utf-8-sig").splitlines()
    assert csv_report[0].startswith("file,row_number,line_number,")


def test_the_summary_names_the_uploads_date_and_each_files_version():
    """The admin can tell which upload a summary is about: its date and file versions are at
    the top, under the verdict (and the refusal's reason)."""
    tables, sources = _acme()
    sources = {
        d: replace(
            f,
            version=f"{d}-0123456789abcdef",
            size=1234,
            modified=datetime(2026, 10, 31, 23, m, tzinfo=UTC),
        )
        for m, (d, f) in enumerate(sources.items())
    }
    for state, verdict in ((_state(), "imported"), (_state(deals=100), "NOT IMPORTED")):
        plan = plan_publish("acme", tables, sources, state, PublishPolicy(), RUN)
        lines = plan.report[1].decode().splitlines()
        assert verdict in lines[0]
        at = lines.index("Upload of 2026-10-31 23:02 UTC (processed 2026-11-01 00:05 UTC):")
        assert at == (1 if verdict == "imported" else 2)
        assert lines[at + 1 : at + 4] == [
            "  accounts.csv: version accounts-012, 1,234 bytes, modified 2026-10-31 23:01 UTC",
            "  contacts.csv: version contacts-012, 1,234 bytes, modified 2026-10-31 23:02 UTC",
            "  deals.csv: version deals-012345, 1,234 bytes, modified 2026-10-31 23:00 UTC",
        ]


def test_error_files_carry_the_customers_rows_and_an_error_column():
    """Salesforce Data Loader's convention: each file with rows left out gets an error file
    holding those rows with the customer's own headers and cells plus an ERROR column (line
    and every error), so they can be fixed and uploaded again; formulas are neutralised,
    files without such rows get none, and the summary names the file to fix."""
    deals = (SAMPLE_LANDING / "acme" / "deals.csv").read_text().splitlines(keepends=True)
    # a CRM's own label, and a header that is a formula (still read as the Name column)
    header = deals[0].replace("target_close_date", "Close Date").replace("Name", "=Name", 1)
    bad_date = deals[1].replace("2027-04-04", '=HYPERLINK("http://x")')
    no_account = deals[2].replace("ACC-003", "ACC-404")  # unknown account, no inline name
    tables, sources = _acme(deals="".join([header, bad_date, no_account, *deals[3:]]).encode())
    plan = plan_publish("acme", tables, sources, _state(), PublishPolicy(), RUN)
    assert set(plan.error_files) == {"jointflows_errors_deals.csv"}
    text = plan.error_files["jointflows_errors_deals.csv"].decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["'=Name", *header.strip().split(",")[1:], "ERROR"]
    assert len(rows) == 3
    by_id = {
        row[rows[0].index("deal_unique_id")]: dict(zip(rows[0], row, strict=True))
        for row in rows[1:]
    }
    assert by_id["D-0001"]["Close Date"] == '\'=HYPERLINK("http://x")'  # as delivered, inert
    assert by_id["D-0001"]["'=Name"] == "Contoso rollout 1"
    assert by_id["D-0001"]["ERROR"].startswith("line 2: target_close_date")
    assert by_id["D-0002"]["account_unique_id"] == "ACC-404"
    assert by_id["D-0002"]["ERROR"].startswith("line 3: deal D-0002 has no account_name")
    summary = plan.report[1].decode()
    assert "upload again: jointflows_errors_deals.csv" in summary
    assert summary.splitlines()[1].startswith("Upload of ")  # the drop's date, then versions
    assert "deals.csv: version v-deals" in summary
