"""What one tenant's clean files publish: the four contract tables and their counts.

A table whose source file was rejected as a whole is `None`: the tenant's previously
published rows for it stay. `rejected_rows` is always replaced, so the admin sees why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from jf_pipeline.core.cleaning import CleanTable
from jf_pipeline.core.problems import (
    ERROR,
    concat_problems,
    count_by_severity,
    with_line_numbers,
)
from jf_pipeline.core.rules import (
    checked_contacts,
    importable_deals,
    merged_accounts,
    resolve_owners,
)


@dataclass
class Publication:
    importable_deals: pl.DataFrame | None
    accounts: pl.DataFrame | None
    importable_contacts: pl.DataFrame | None
    rejected_rows: pl.DataFrame
    deals_filtered: int = 0
    """Deals left out because the tenant does not import their stage."""

    def tables(self) -> dict[str, pl.DataFrame | None]:
        return {
            "importable_deals": self.importable_deals,
            "accounts": self.accounts,
            "importable_contacts": self.importable_contacts,
            "rejected_rows": self.rejected_rows,
        }

    @property
    def outcome(self) -> str:
        """`published` when every table was replaced, `partial` when a rejected file kept some."""
        return "published" if all(t is not None for t in self.tables().values()) else "partial"

    def counts(self) -> dict[str, int | None]:
        severity = count_by_severity(self.rejected_rows)
        deal_errors = self.rejected_rows.filter(
            (pl.col("file") == "deals.csv")
            & (pl.col("severity") == ERROR)
            & pl.col("row_number").is_not_null()
        )["row_number"].n_unique()
        return {
            "deals_published": None
            if self.importable_deals is None
            else self.importable_deals.height,
            "deals_rejected": deal_errors,
            "deals_filtered": self.deals_filtered,
            "accounts_published": None if self.accounts is None else self.accounts.height,
            "contacts_published": None
            if self.importable_contacts is None
            else self.importable_contacts.height,
            "errors": severity[ERROR],
            "warnings": severity["warning"],
        }


def publication(
    deals: CleanTable,
    accounts: CleanTable,
    contacts: CleanTable,
    published_account_ids: Callable[[], pl.Series],
    users: CleanTable | None = None,
    default_owner: str | None = None,
) -> Publication:
    """Apply the cross-file rules. `published_account_ids` is asked only when a rejected
    deals or accounts file means the accounts already in the warehouse stay the reference.
    `users` (users.csv, optional) turns owners given as user ids or names into e-mails;
    `default_owner` is the tenant's default owner e-mail for the owners it cannot resolve
    (None: those deals are errors)."""
    problems = [deals.problems, accounts.problems, contacts.problems]
    if users is not None:
        problems.append(users.problems)
    deal_rows = account_rows = None
    if not (deals.rejected or accounts.rejected):
        user_rows = (
            users.rows
            if users is not None
            else pl.DataFrame(
                schema={
                    "email": pl.String,
                    "user_id": pl.String,
                    "name": pl.String,
                    "first_name": pl.String,
                    "last_name": pl.String,
                }
            )
        )
        owned, owner_problems = resolve_owners(
            deals.rows, user_rows, deals.owner_source, default_owner
        )
        problems.append(owner_problems)
        deal_rows, join_problems = importable_deals(owned, accounts.rows)
        account_rows = merged_accounts(deal_rows, accounts.rows)
        problems.append(join_problems)
        known = account_rows["account_unique_id"]
    else:
        known = published_account_ids()

    contact_rows = None
    if not contacts.rejected:
        contact_rows, contact_problems = checked_contacts(contacts.rows, known)
        problems.append(contact_problems)

    header_lines = {
        f"{dataset}.csv": table.header_line
        for dataset, table in (
            ("deals", deals),
            ("accounts", accounts),
            ("contacts", contacts),
            ("users", users),
        )
        if table is not None
    }
    rejected = with_line_numbers(
        concat_problems(problems).sort(
            ["file", "row_number", "column"], nulls_last=False, maintain_order=True
        ),
        header_lines,
    )
    return Publication(deal_rows, account_rows, contact_rows, rejected, deals.filtered)
