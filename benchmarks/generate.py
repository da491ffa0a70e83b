"""Deterministic, realistic, messy tenant drops of N deals for the benchmarks.

    .venv/bin/python benchmarks/generate.py N OUT_DIR

accounts ≈ N/10, contacts ≈ N. Dates mix ISO, US numeric and named months; money mixes
`$1,234.56`, plain `1234.5` and `USD 99`; 30 % of deals carry inline account data; about
2 % of rows are bad (impossible or placeholder dates, blank owners, non-numbers, unknown
accounts). The same N and seed always give the same bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl

MONTHS = np.array(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
)
STAGES = np.array(["Discovery", "Proposal", "Negotiation", "Closed Won", "Closed Lost"])
INDUSTRIES = np.array(["Software", "Retail", "Manufacturing", "Logistics", "Consulting"])


def _dates(rng: np.random.Generator, n: int) -> np.ndarray:
    days = rng.integers(0, 730, n)
    base = np.datetime64("2026-01-01") + days.astype("timedelta64[D]")
    iso = np.datetime_as_string(base, unit="D")
    y, m, d = (
        iso.astype("U4"),
        np.char.add("", [s[5:7] for s in iso]),
        np.char.add("", [s[8:10] for s in iso]),
    )
    style = rng.integers(0, 10, n)
    us = np.char.add(np.char.add(np.char.add(np.char.add(m, "/"), d), "/"), y)
    named = np.char.add(
        np.char.add(np.char.add(np.char.add(MONTHS[m.astype(int) - 1], " "), d), ", "), y
    )
    return np.where(style < 6, iso, np.where(style < 9, us, named))


def _money(rng: np.random.Generator, n: int) -> np.ndarray:
    cents = rng.integers(100_00, 5_000_000_00, n)
    whole, frac = cents // 100, cents % 100
    plain = np.char.add(np.char.add(whole.astype(str), "."), np.char.zfill(frac.astype(str), 2))
    grouped = np.array(
        [f"${w:,}.{f:02d}" for w, f in zip(whole.tolist(), frac.tolist(), strict=True)]
    )
    coded = np.char.add("USD ", whole.astype(str))
    style = rng.integers(0, 3, n)
    return np.where(style == 0, plain, np.where(style == 1, grouped, coded))


def make_drop(n: int, seed: int = 7) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    n_accounts = max(n // 10, 1)
    account_ids = np.char.add("ACC-", np.arange(n_accounts).astype(str))
    accounts = pl.DataFrame(
        {
            "name": np.char.add("Company ", np.arange(n_accounts).astype(str)),
            "unique_id": account_ids,
            "url": np.char.add(
                np.char.add("www.company", np.arange(n_accounts).astype(str)), ".example"
            ),
            "industry": INDUSTRIES[rng.integers(0, len(INDUSTRIES), n_accounts)],
        }
    )
    deal_account = rng.integers(0, n_accounts, n)
    inline = rng.random(n) < 0.3
    bad = rng.random(n)
    dates = _dates(rng, n)
    dates = np.where(bad < 0.005, "TBD", np.where(bad < 0.008, "2026-02-30", dates))
    owners = np.char.add(
        np.char.add("owner", (np.arange(n) % 50).astype(str)), "@jointflows.example"
    )
    owners = np.where((bad >= 0.008) & (bad < 0.012), "", owners)
    values = np.where((bad >= 0.012) & (bad < 0.016), "call me", _money(rng, n))
    account_col = np.where((bad >= 0.016) & (bad < 0.02), "ACC-UNKNOWN", account_ids[deal_account])
    deals = pl.DataFrame(
        {
            "Name": np.char.add("Deal ", np.arange(n).astype(str)),
            "target_close_date": dates,
            "owner_email": owners,
            "value": values,
            "deal_unique_id": np.char.add("D-", np.arange(n).astype(str)),
            "account_unique_id": account_col,
            "deal_stage": STAGES[rng.integers(0, len(STAGES), n)],
            "pipeline_id": np.where(rng.random(n) < 0.5, "default", "enterprise"),
            "description": np.char.add("Rollout for account ", account_col),
            "account_name": np.where(
                inline, np.char.add("Inline Co ", deal_account.astype(str)), ""
            ),
            "account_url": np.where(inline & (rng.random(n) < 0.5), "inline.example", ""),
        }
    )
    contact_account = account_ids[rng.integers(0, n_accounts, n)]
    reports = rng.integers(0, n, n)
    contacts = pl.DataFrame(
        {
            "first_name": np.char.add("First", (np.arange(n) % 977).astype(str)),
            "last_name": np.char.add("Last", (np.arange(n) % 1009).astype(str)),
            "email_address": np.char.add(
                np.char.add("person", np.arange(n).astype(str)), "@customer.example"
            ),
            "account_unique_id": np.where(rng.random(n) < 0.01, "ACC-GONE", contact_account),
            "contact_unique_id": np.char.add("C-", np.arange(n).astype(str)),
            "role": np.where(rng.random(n) < 0.5, "Champion", "Buyer"),
            "reports_to_id": np.where(
                rng.random(n) < 0.3, np.char.add("C-", reports.astype(str)), ""
            ),
        }
    )
    return {
        "deals.csv": deals.write_csv().encode(),
        "accounts.csv": accounts.write_csv().encode(),
        "contacts.csv": contacts.write_csv().encode(),
    }


def write_drop(n: int, folder: Path, seed: int = 7) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in make_drop(n, seed).items():
        (folder / name).write_bytes(data)


if __name__ == "__main__":
    write_drop(int(sys.argv[1]), Path(sys.argv[2]))
