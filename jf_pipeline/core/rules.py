"""The contract's cross-file rules: account precedence, importability, contact references.

Inputs are `CleanTable.rows` frames; outputs are the published frames (without
`tenant_id`) and the problems the rules found.
"""

from __future__ import annotations

import math

import polars as pl

from jf_pipeline.contract import ACCOUNT_FIELDS, WAREHOUSE_TABLES
from jf_pipeline.core.problems import concat_problems, row_problems


def table_columns(table: str) -> list[str]:
    """The contract columns of a warehouse table, without `tenant_id`."""
    return WAREHOUSE_TABLES[table].data_names


def importable_deals(
    deals: pl.DataFrame, accounts: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Fill each deal's account fields from accounts.csv where the deal row leaves them blank.

    A deal without an account name after that is an error; without a URL, a warning.
    """
    from_accounts = accounts.select(
        "account_unique_id",
        *[pl.col(src).alias(f"_acc_{dst}") for src, dst in ACCOUNT_FIELDS.items()],
    )
    joined = deals.join(
        from_accounts, on="account_unique_id", how="left", maintain_order="left"
    ).with_columns(pl.coalesce(dst, f"_acc_{dst}").alias(dst) for dst in ACCOUNT_FIELDS.values())
    no_name = joined.filter(pl.col("account_name").is_null())
    no_url = joined.filter(pl.col("account_name").is_not_null() & pl.col("account_url").is_null())
    problems = concat_problems(
        [
            row_problems(
                no_name,
                file="deals.csv",
                reason="no_account_name",
                column="account_name",
                value=pl.col("account_unique_id"),
                record_id="deal_unique_id",
                message=pl.format(
                    "deal {} has no account_name and account {} is not named in accounts.csv",
                    pl.col("deal_unique_id"),
                    pl.col("account_unique_id"),
                ),
            ),
            row_problems(
                no_url,
                file="deals.csv",
                reason="no_account_url",
                column="account_url",
                value=pl.col("account_unique_id"),
                record_id="deal_unique_id",
                message=pl.format(
                    "deal {}: account {} has no URL in deals.csv or accounts.csv (no brand icon)",
                    pl.col("deal_unique_id"),
                    pl.col("account_unique_id"),
                ),
            ),
        ]
    )
    published = joined.filter(pl.col("account_name").is_not_null()).select(
        table_columns("importable_deals")
    )
    return published, problems


def merged_accounts(deals: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    """accounts.csv merged with the account data inline in the published deals.

    Per field, a deal row's value beats accounts.csv; among deals of one account the
    last row with a value wins, as for duplicates.
    """
    inline = deals.group_by("account_unique_id", maintain_order=True).agg(
        pl.col(dst).drop_nulls().last().alias(f"_deal_{src}") for src, dst in ACCOUNT_FIELDS.items()
    )
    merged = accounts.select("account_unique_id", *ACCOUNT_FIELDS).join(
        inline, on="account_unique_id", how="full", coalesce=True, maintain_order="left_right"
    )
    return merged.select(
        "account_unique_id",
        *[pl.coalesce(f"_deal_{src}", src).alias(src) for src in ACCOUNT_FIELDS],
    ).select(table_columns("accounts"))


def reports_to_cycles(ids: pl.Series, reports_to: pl.Series) -> pl.Series:
    """The ids that lie on a reports_to loop (pointer doubling: log2(n) joins, no Python loop)."""
    step = pl.DataFrame({"id": ids, "to": reports_to}).filter(pl.col("to").is_in(ids.implode()))
    for _ in range(math.ceil(math.log2(max(step.height, 1) + 1)) + 1):
        step = step.join(step.rename({"id": "to", "to": "to2"}), on="to", how="inner").select(
            "id", pl.col("to2").alias("to")
        )
    return step["to"].unique()


def checked_contacts(
    contacts: pl.DataFrame, known_accounts: pl.Series
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Contacts are always kept; unknown accounts, unknown managers and loops are warnings."""
    ids = contacts["contact_unique_id"]
    cycles = reports_to_cycles(ids, contacts["reports_to_id"])
    checks = contacts.with_columns(
        _unknown_account=~pl.col("account_unique_id").is_in(known_accounts.implode()),
        _unknown_manager=pl.col("reports_to_id").is_not_null()
        & ~pl.col("reports_to_id").is_in(ids.implode()),
        _cycle=pl.col("contact_unique_id").is_in(cycles.implode()),
    )
    problems = concat_problems(
        [
            row_problems(
                checks.filter("_unknown_account"),
                file="contacts.csv",
                reason="unknown_account",
                column="account_unique_id",
                value=pl.col("account_unique_id"),
                record_id="contact_unique_id",
                message=pl.format(
                    "contact {}: account {} is in neither accounts.csv nor deals.csv",
                    pl.col("contact_unique_id"),
                    pl.col("account_unique_id"),
                ),
            ),
            row_problems(
                checks.filter("_unknown_manager"),
                file="contacts.csv",
                reason="unknown_reports_to",
                column="reports_to_id",
                value=pl.col("reports_to_id"),
                record_id="contact_unique_id",
                message=pl.format(
                    "contact {} reports to {}, which is not a contact in contacts.csv",
                    pl.col("contact_unique_id"),
                    pl.col("reports_to_id"),
                ),
            ),
            row_problems(
                checks.filter("_cycle"),
                file="contacts.csv",
                reason="reports_to_cycle",
                column="reports_to_id",
                value=pl.col("reports_to_id"),
                record_id="contact_unique_id",
                message=pl.format(
                    "contact {}: following reports_to_id from here comes back to it",
                    pl.col("contact_unique_id"),
                ),
            ),
        ]
    )
    return contacts.select(table_columns("importable_contacts")), problems
