"""Ordinary exports and single bad bytes that used to crash a run or garble a whole file.

- A quoted cell over Python csv's 131,072-character field limit is a `cell_too_long` row.
- One byte that is not UTF-8 in a UTF-8 file: that row is an `invalid_encoding` error, the
  rest keeps its accents; real Windows-1252 files still read as Windows-1252.
- A NUL byte anywhere (not only in the first 64 KB) makes its row an `invalid_encoding`
  error; it is never published.

Core tests read and clean in-process; the pipeline tests run a tenant in-process (as
`jf ingest` does) and assert on what DuckDB and the customer's import report hold.
"""

from __future__ import annotations

import csv
import io
import random

import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from jf_pipeline.contract import DEALS
from jf_pipeline.core.cleaning import clean_table
from jf_pipeline.core.reading import MAX_CELL_CHARS, read_table
from jf_pipeline_tests.conftest import query, run_tenant

HEADER = (
    "Name,target_close_date,owner_email,value,deal_unique_id,account_unique_id,"
    "account_name,account_url,description\n"
)
NAMES = ["Müller & Söhne", "Søren Ås", "Jérôme Café", "Zoë Brontë", "Ångström AB", "Łódź Sp."]


def deal_rows(n: int = 2_000) -> list[str]:
    return [
        f"Deal {i},2026-12-31,a@b.example,{i}.50,D{i},A{i},{NAMES[i % 6]} {i},acme.example,fine\n"
        for i in range(1, n + 1)
    ]


def read_and_clean(data: bytes):
    table = read_table(data, DEALS)
    return table, clean_table(table, DEALS)


def problems(table) -> list[tuple]:
    return table.problems.select("row_number", "reason", "column").rows()


# --- item 2b: cells over the csv module's field limit --------------------------------------

BIG = MAX_CELL_CHARS + 40_000  # 140,000 characters: over csv's default 131,072 too


@pytest.mark.parametrize(
    "cell",
    [
        pytest.param('"' + "x" * BIG + '"', id="quoted"),
        pytest.param('"' + "line, with comma\n" * (BIG // 17 + 1) + '"', id="quoted-multiline"),
        pytest.param(' "' + "y" * BIG + '"', id="space-before-quote"),
        pytest.param("z" * BIG, id="unquoted"),
    ],
)
def test_a_cell_over_csvs_field_limit_is_a_cell_too_long_row(cell):
    """Python's csv module raised `field larger than field limit (131072)` for a quoted
    note over 128 KB and the whole run failed; now only that row is left out."""
    rows = deal_rows()
    rows[5] = rows[5].replace(",fine\n", f",{cell}\n")
    table, cleaned = read_and_clean((HEADER + "".join(rows)).encode())
    assert not table.rejected
    assert problems(table) == [(6, "cell_too_long", "description")]
    assert cleaned.rows.height == 1_999 and 6 not in cleaned.rows["row_number"].to_list()


def test_a_quote_never_closed_that_swallows_over_128_kb_is_reported_as_such():
    """The unclosed quote's row (which swallowed the rest of the file, > 131,072 chars) is
    the `malformed_row` that says so, not a crash or a silent miscount."""
    rows = deal_rows(3_000)
    rows[100] = rows[100].replace(",fine\n", ',"never closed\n')
    assert len("".join(rows[100:])) > 131_072
    table, cleaned = read_and_clean((HEADER + "".join(rows)).encode())
    malformed = table.problems.filter(pl.col("reason") == "malformed_row")
    assert malformed["row_number"].to_list() == [101]
    assert "never closed" in malformed["message"][0]
    assert cleaned.rows["row_number"].to_list() == list(range(1, 101))


def test_a_note_over_128_kb_publishes_the_rest_and_reports_the_row(
    landing_root, warehouse_path, instance
):
    """End to end: the run succeeds, 1,999 deals are published, the customer's import
    report names the row (the run used to fail with no report at all)."""
    rows = deal_rows()
    rows[5] = rows[5].replace(",fine\n", ',"' + "note\n" * (BIG // 5) + '"\n')
    (landing_root / "notes").mkdir()
    (landing_root / "notes" / "deals.csv").write_bytes((HEADER + "".join(rows)).encode())
    assert run_tenant("notes", landing_root, warehouse_path, instance).success
    published = query(
        warehouse_path, "SELECT count(*) FROM importable_deals WHERE tenant_id = 'notes'"
    )
    assert published == [(1_999,)]
    rejected = query(
        warehouse_path,
        "SELECT row_number, reason FROM rejected_rows WHERE tenant_id = 'notes'"
        " AND severity = 'error'",
    )
    assert rejected == [(6, "cell_too_long")]
    report = (landing_root / "notes" / "jointflows_import_report.csv").read_text("utf-8")
    assert any(
        r["reason"] == "cell_too_long" and r["row_number"] == "6"
        for r in csv.DictReader(io.StringIO(report))
    )


# --- item 6: one bad byte must not switch a UTF-8 file to Windows-1252 ---------------------


def _with_byte(data: bytes, marker: bytes, byte: bytes) -> bytes:
    at = data.index(marker) + len(marker)
    return data[:at] + byte + data[at:]


def test_one_bad_byte_in_a_utf8_file_reports_its_row_and_keeps_every_accent():
    """2,000 UTF-8 rows with accented names and one 0xFF: read as UTF-8 (it was read as
    Windows-1252, every name mojibake); row 700 is an `invalid_encoding` error."""
    text = HEADER + "".join(deal_rows())
    data = _with_byte(text.encode("utf-8"), b"D700,A700,", b"\xff")
    table, cleaned = read_and_clean(data)
    assert table.encoding == "utf-8"
    assert problems(table) == [(700, "invalid_encoding", "account_name")]
    problem = table.problems.row(0, named=True)
    assert problem["value"] == f"\ufffd{NAMES[700 % 6]} 700" and "700" in problem["message"]
    expected = [f"{NAMES[i % 6]} {i}" for i in range(1, 2_001) if i != 700]
    assert cleaned.rows["account_name"].to_list() == expected


def test_a_real_windows_1252_file_still_reads_as_windows_1252():
    """The other side of the heuristic: 2,000 rows whose accents are all cp1252 bytes."""
    text = HEADER + "".join(deal_rows())
    table, cleaned = read_and_clean(text.replace("Łódź", "Lodz").encode("cp1252"))
    assert table.encoding == "windows-1252"
    assert table.problems.height == 0
    expected = [f"{NAMES[i % 6]} {i}".replace("Łódź", "Lodz") for i in range(1, 2_001)]
    assert cleaned.rows["account_name"].to_list() == expected


def test_a_windows_1252_file_with_one_accent_is_not_taken_for_utf8():
    text = HEADER + "".join(r.replace(NAMES[0], "Mueller") for r in deal_rows())
    text = text.replace("Zoë", "Zoe").replace("Jérôme Café", "Jerome").replace("Søren Ås", "So")
    text = (
        text.replace("Ångström", "A").replace("Łódź", "L") + "X,2026-01-01,a@b.example,1,DX,A,é,,\n"
    )
    table, cleaned = read_and_clean(text.encode("cp1252"))
    assert table.encoding == "windows-1252" and table.problems.height == 0
    assert cleaned.rows["account_name"][-1] == "é"


def test_the_utf8_decision_counts_a_character_split_across_its_chunks():
    """The share of valid UTF-8 is counted in 1 MB chunks: an `é` whose two bytes straddle a
    chunk edge is one valid character (one `é` vs one bad byte: UTF-8, not cp1252)."""
    from jf_pipeline.core import reading

    edge = reading._DECIDE_CHUNK
    data = b"a" * (edge - 1) + "é".encode() + b"b\xffc"
    decoded = reading.decode(data)
    assert (decoded.encoding, decoded.replaced) == ("utf-8", 1)
    assert decoded.text[edge - 1 :] == "éb\ufffdc"


def test_a_bad_byte_after_a_utf8_bom_reports_its_row_instead_of_refusing_the_file():
    text = HEADER + "".join(deal_rows(50))
    data = b"\xef\xbb\xbf" + _with_byte(text.encode("utf-8"), b"D7,A7,", b"\xc3")
    table, cleaned = read_and_clean(data)
    assert not table.rejected and table.encoding == "utf-8-sig"
    assert problems(table) == [(7, "invalid_encoding", "account_name")]
    assert cleaned.rows.height == 49


def test_a_bad_byte_in_a_column_outside_the_contract_loses_nothing():
    text = HEADER.replace("description", "Notes") + "".join(deal_rows(1_500))
    data = _with_byte(text.encode("utf-8"), b"acme.example,fi", b"\xff")
    table, cleaned = read_and_clean(data)
    assert table.encoding == "utf-8" and cleaned.rows.height == 1_500
    assert "invalid_encoding" not in table.problems["reason"].to_list()


@settings(
    max_examples=25,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    stray=st.lists(
        st.sampled_from([b"\xff", b"\xfe", b"\xc3", b"\x80", b"\x00", b"\xe2\x82"]),
        min_size=1,
        max_size=4,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_stray_bytes_anywhere_leave_only_their_rows_out(stray, seed):
    """Any few stray bytes (invalid UTF-8 or NUL) in the body of a 2,000-row UTF-8 file:
    every untouched row is published exactly as written, each touched row is an
    `invalid_encoding` error, and the file stays UTF-8."""
    r = random.Random(seed)
    rows = deal_rows()
    encoded = [row.encode("utf-8") for row in rows]
    hit: set[int] = set()
    for byte in stray:
        i = r.randrange(len(encoded))
        line = encoded[i]
        at = r.randrange(len(line) - 1)  # never after the line end
        encoded[i] = line[:at] + byte + line[at:]
        hit.add(i + 1)
    table, cleaned = read_and_clean(HEADER.encode() + b"".join(encoded))
    assert table.encoding == "utf-8"
    errors = table.problems.filter(pl.col("severity") == "error")
    assert set(errors["reason"]) == {"invalid_encoding"}
    assert sorted(errors["row_number"]) == sorted(hit)
    kept = [i for i in range(1, 2_001) if i not in hit]
    assert cleaned.rows["row_number"].to_list() == kept
    assert cleaned.rows["account_name"].to_list() == [f"{NAMES[i % 6]} {i}" for i in kept]


# --- item 9: a NUL byte wherever it is -----------------------------------------------------


@pytest.mark.parametrize("offset", [300, 100_000, -200], ids=["head", "after-64kb", "tail"])
def test_a_nul_byte_anywhere_is_reported_on_its_row_and_never_published(
    offset, landing_root, warehouse_path, instance
):
    """A NUL after the first 64 KB was published; one in the head refused the whole file.
    Now the same wherever it is: its row is an `invalid_encoding` error, the rest published,
    no NUL in DuckDB."""
    data = (HEADER + "".join(deal_rows())).encode()
    at = offset % len(data)
    while data[at : at + 1] in (b",", b"\n"):  # inside a cell, not at its edge
        at += 1
    data = data[:at] + b"\x00" + data[at:]
    row = data[:at].count(b"\n")  # the header is line 1, so this is the data row number
    (landing_root / "nul").mkdir()
    (landing_root / "nul" / "deals.csv").write_bytes(data)
    assert run_tenant("nul", landing_root, warehouse_path, instance).success
    rejected = query(
        warehouse_path,
        "SELECT row_number, reason FROM rejected_rows WHERE tenant_id = 'nul'"
        " AND severity = 'error'",
    )
    assert rejected == [(row, "invalid_encoding")]
    published = query(
        warehouse_path,
        "SELECT count(*), count(*) FILTER (WHERE strpos(concat_ws('|', deal_unique_id, name, "
        "owner_email, account_unique_id, account_name, description), chr(0)) > 0) "
        "FROM importable_deals WHERE tenant_id = 'nul'",
    )
    assert published == [(1_999, 0)]


def test_a_file_of_mostly_nuls_is_still_refused_as_binary():
    data = (HEADER + "".join(deal_rows(100))).encode("utf-16-le")  # no byte-order mark
    table = read_table(data, DEALS)
    assert table.rejected and table.problems["reason"].to_list() == ["file_unreadable"]
    assert "UTF-16 without a byte-order mark" in table.problems["message"][0]
