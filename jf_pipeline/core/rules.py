"""The contract's cross-file rules: account precedence, importability, contact references.

Inputs are `CleanTable.rows` frames; outputs are the published frames (without
`tenant_id`) and the problems the rules found.
"""

from __future__ import annotations

import math

import polars as pl

from jf_pipeline.contract import ACCOUNT_FIELDS, OWNER, OWNER_REF, WAREHOUSE_TABLES
from jf_pipeline.core.problems import concat_problems, row_problems
from jf_pipeline.core.values import parse_emails


def table_columns(table: str) -> list[str]:
    """The contract columns of a warehouse table, without `tenant_id` and `ingestion_id`."""
    return WAREHOUSE_TABLES[table].row_names


_SALESFORCE_ID = r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$"


def _id15(expr: pl.Expr) -> pl.Expr:
    """Salesforce ids come in 15 (reports) and 18 characters (API): the first 15 decide."""
    return pl.when(expr.str.contains(_SALESFORCE_ID)).then(expr.str.slice(0, 15))


def _owner_lookup(users: pl.DataFrame) -> pl.DataFrame:
    """users.csv as (how, key, email, matches): a user id (exact, and its 15-character
    Salesforce form), a name (`name`, or first and last name) in lower case. A name shared
    by users with different e-mails is kept with `matches` > 1: it resolves nobody."""
    users = users.filter(pl.col("email").is_not_null())
    full = pl.concat_str(
        [pl.col("first_name"), pl.col("last_name")], separator=" ", ignore_nulls=True
    ).str.strip_chars()
    keys = [
        ("id", pl.col("user_id")),
        ("id15", _id15(pl.col("user_id"))),
        ("name", pl.col("name").str.to_lowercase()),
        ("name", pl.when(full != "").then(full.str.to_lowercase())),
    ]
    parts = [
        users.select(how=pl.lit(how), key=key, email=pl.col("email")).filter(
            pl.col("key").is_not_null()
        )
        for how, key in keys
    ]
    return (
        pl.concat(parts)
        .unique(["how", "key", "email"], maintain_order=True)
        .group_by("how", "key", maintain_order=True)
        .agg(pl.col("email").first(), matches=pl.len())
    )


def resolve_owners(
    deals: pl.DataFrame,
    users: pl.DataFrame,
    owner_source: str | None,
    default_owner: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Deals whose owner column held user ids or names (`owner_source` says which column
    held what) get the owner's e-mail from users.csv: by user id, else by name; an owner
    already written as an e-mail is kept. Unresolved owners take `default_owner` (the
    tenant's default owner e-mail, when one is set) with an `owner_defaulted` warning, else
    the deal is an error: `unknown_owner` when users.csv does not list the owner,
    `owner_not_an_email` when there is no users.csv to look in."""
    if owner_source is None or OWNER_REF not in deals.columns:
        return deals, concat_problems([])
    lookup = _owner_lookup(users)
    ref = pl.col(OWNER_REF)
    as_email = parse_emails(deals[OWNER_REF]).values
    found = deals.with_columns(_direct=as_email, _ref15=_id15(ref), _name=ref.str.to_lowercase())
    for how, on in (("id", OWNER_REF), ("id15", "_ref15"), ("name", "_name")):
        part = lookup.filter(pl.col("how") == how).select(
            pl.col("key").alias(on),
            pl.col("email").alias(f"_by_{how}"),
            pl.col("matches").alias(f"_by_{how}_n"),
        )
        found = found.join(part, on=on, how="left", maintain_order="left")
    unique_name = pl.when(pl.col("_by_name_n") == 1).then(pl.col("_by_name"))
    found = found.with_columns(
        pl.coalesce("_direct", "_by_id", "_by_id15", unique_name).alias("_resolved")
    ).with_columns(
        pl.coalesce(pl.col(OWNER), "_resolved").alias(OWNER),
    )
    unresolved = found.filter(pl.col(OWNER).is_null() & ref.is_not_null())
    problems = []
    if unresolved.height and default_owner:
        problems.append(
            row_problems(
                unresolved,
                file="deals.csv",
                reason="owner_defaulted",
                column=OWNER,
                value=ref,
                record_id="deal_unique_id",
                message=pl.format(
                    "deal {}: owner {} could not be turned into an e-mail ({}); the tenant's "
                    "default owner {} was used",
                    pl.col("deal_unique_id"),
                    ref,
                    pl.lit(owner_source),
                    pl.lit(default_owner),
                ),
            )
        )
        found = found.with_columns(pl.col(OWNER).fill_null(pl.lit(default_owner)))
    elif unresolved.height and users.height:
        problems.append(
            row_problems(
                unresolved,
                file="deals.csv",
                reason="unknown_owner",
                column=OWNER,
                value=ref,
                record_id="deal_unique_id",
                message=pl.format(
                    "deal {}: owner {} is not in users.csv{} ({}); add that user, with their "
                    "e-mail, to users.csv and upload again",
                    pl.col("deal_unique_id"),
                    ref,
                    pl.when(pl.col("_by_name_n") > 1)
                    .then(pl.lit(" as one user: several users have that name"))
                    .otherwise(pl.lit(" by id, name or e-mail")),
                    pl.lit(owner_source),
                ),
            )
        )
    elif unresolved.height:
        problems.append(
            row_problems(
                unresolved,
                file="deals.csv",
                reason="owner_not_an_email",
                column=OWNER,
                value=ref,
                record_id="deal_unique_id",
                message=pl.format(
                    "deal {}: deals.csv {}; upload users.csv (your CRM's user export with id, "
                    "name and e-mail columns) next to deals.csv to turn owners into e-mails, "
                    "or export the owner's e-mail (e.g. Owner.Email, Deal owner email)",
                    pl.col("deal_unique_id"),
                    pl.lit(owner_source),
                ),
            )
        )
    resolved = found.filter(pl.col(OWNER).is_not_null()).select(deals.columns)
    return resolved, concat_problems(problems)


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
