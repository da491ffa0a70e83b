"""The one declarative table of what customers' files contain and what we publish.

The reader, the cleaners, the warehouse DDL, the docs and the tests all read from here:
adding a column is one line in a `FileSpec`. Names follow docs/contract.md
(a test keeps the two in step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """How a column's strings are cleaned and which warehouse type they land as."""

    TEXT = "text"
    ID = "id"
    DATE = "date"
    MONEY = "money"
    EMAIL = "email"
    URL = "url"


DUCKDB_TYPES = {
    Kind.TEXT: "VARCHAR",
    Kind.ID: "VARCHAR",
    Kind.DATE: "DATE",
    Kind.MONEY: "DECIMAL(18,2)",
    Kind.EMAIL: "VARCHAR",
    Kind.URL: "VARCHAR",
}


@dataclass(frozen=True)
class Column:
    """One column of a landing file.

    `required`: the file is rejected without it. `value_required`: a row with a missing
    or invalid value is an error (defaults to `required`). `aliases`: other CRMs' export
    labels meaning exactly the same thing, matched ignoring case, spaces and punctuation.
    `output`: the warehouse column name, when it differs from the file's.
    `fallback_aliases`: labels of a column that may hold the field *by reference* (an owner's
    user id or name instead of the e-mail), ranked below `aliases` in this order; the values
    decide how they are read (see `core.rules.resolve_owners`).
    """

    name: str
    kind: Kind = Kind.TEXT
    required: bool = False
    value_required: bool | None = None
    aliases: tuple[str, ...] = ()
    output: str | None = None
    doc: str = ""
    """What the published column means (COMMENT ON, the Dagster UI); COLUMN_DOCS otherwise."""
    fallback_aliases: tuple[str, ...] = ()

    @property
    def out(self) -> str:
        return self.output or self.name

    @property
    def must_have_value(self) -> bool:
        return self.required if self.value_required is None else self.value_required


@dataclass(frozen=True)
class FileSpec:
    """One of the files a tenant drops, and the column that identifies its rows."""

    dataset: str
    key: str
    columns: tuple[Column, ...]

    @property
    def file_name(self) -> str:
        return f"{self.dataset}.csv"

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


T, ID, DATE, MONEY, EMAIL, URL = Kind.TEXT, Kind.ID, Kind.DATE, Kind.MONEY, Kind.EMAIL, Kind.URL

# fmt: off
# One line a column: name as in the contract, kind, required, aliases: other CRMs' export
# labels with exactly the same meaning, in their documented export shapes:
# - Salesforce API names (Data Export, Data Loader, Workbench; any letter case): `Id` is the
#   file's own id; relationship columns such as `Owner.Email`, `Account.Name`;
# - Salesforce report labels (`Opportunity ID`, `Close Date`, `Opportunity Owner: Email`);
# - HubSpot property labels (`Record ID`, `Deal Name`, `Associated Company IDs (Primary)`);
# - Pipedrive's entity-prefixed labels (`Deal - Title`, `Organization - Name`);
# - Dynamics 365 / Dataverse: Export to Excel labels (`(Do Not Modify) Opportunity`, `Topic`)
#   and logical names (`opportunityid`, `_customerid_value`, `emailaddress1`);
# - Zoho CRM export labels (`Record Id`, `Closing Date`, lookup ids as `Account Name.id`).
# Headers match ignoring case, spaces and punctuation, so `ACCOUNTID`, `AccountId` and
# `Account ID` are one label. An owner's id or name is never an alias of owner_email: those
# columns are `fallback_aliases`, read by their values and resolved through users.csv.
DEALS = FileSpec(
    dataset="deals",
    key="deal_unique_id",
    columns=(
        Column("Name", T, True, aliases=("Deal Name", "Opportunity Name", "Deal - Title", "Topic", "Deal_Name", "Potential Name"), output="name"),
        Column("target_close_date", DATE, True, aliases=("Close Date", "CloseDate", "Expected Close Date", "Deal - Expected close date", "Est. Close Date", "Estimated Close Date", "estimatedclosedate", "Closing Date", "Closing_Date")),
        Column("owner_email", EMAIL, True, aliases=("Owner Email", "Owner.Email", "Deal Owner Email", "Opportunity Owner Email", "Opportunity Owner: Email", "Deal - Owner email", "DealOwner_Email", "Owner_Email"),
               fallback_aliases=("OwnerId", "Owner.Id", "Opportunity Owner ID", "Deal Owner ID", "Deal Owner.id", "DealOwner_Id", "Owner_Id", "_ownerid_value", "HubSpot Owner ID", "Deal - Owner ID",
                                 "Owner.Name", "Owner Name", "Deal Owner", "Opportunity Owner", "Deal - Owner", "Owner", "DealOwner_Name", "Assigned To")),
        Column("value", MONEY, True, aliases=("Amount", "Deal Value", "Deal Amount", "Opportunity Amount", "Deal - Value", "Est. Revenue", "Estimated Revenue", "estimatedvalue")),
        Column("deal_unique_id", ID, True, aliases=("Id", "Record ID", "Deal ID", "Opportunity ID", "Deal - ID", "(Do Not Modify) Opportunity", "opportunityid", "Potential ID")),
        Column("account_unique_id", ID, True, aliases=("Account ID", "Account.Id", "Company ID", "Associated Company ID", "Associated Company IDs (Primary)", "Associated Company IDs", "Organization ID", "Deal - Organization ID", "Organization - ID", "_customerid_value", "_parentaccountid_value", "Account Name.id", "AccountName_Id", "Account_Name_Id")),
        Column("deal_stage", T, aliases=("Deal Stage", "Stage", "StageName", "Deal - Stage", "Sales Stage", "stepname")),
        Column("pipeline_id", T, aliases=("Pipeline", "Pipeline ID", "Deal - Pipeline")),
        Column("project_type", T, aliases=("Project Type",)),
        Column("description", T, aliases=("Deal Description", "Opportunity Description", "Description")),
        Column("account_name", T, aliases=("Account Name", "Account.Name", "Company Name", "Associated Company", "Deal - Organization", "Organization - Name", "Potential Customer", "AccountName_Name")),
        Column("account_url", URL, aliases=("Account Website", "Account.Website", "Company Website", "Website", "Company Domain Name", "Organization - Website")),
        Column("account_industry", T, aliases=("Account Industry", "Account.Industry", "Industry", "Company Industry", "Organization - Industry")),
    ),
)

ACCOUNTS = FileSpec(
    dataset="accounts",
    key="unique_id",
    columns=(
        # Deals can supply an account's name and URL inline, so a blank one here is a
        # warning, not a rejected row.
        Column("name", T, True, value_required=False, aliases=("Account Name", "Company Name", "Organization - Name", "Organization Name")),
        Column("unique_id", ID, True, aliases=("Id", "Account ID", "Company ID", "Record ID", "Organization - ID", "Organization ID", "(Do Not Modify) Account"), output="account_unique_id"),
        Column("url", URL, True, value_required=False, aliases=("Website", "Website URL", "Company Domain Name", "Domain", "Organization - Website")),
        Column("industry", T, aliases=("Industry", "Organization - Industry")),
    ),
)

CONTACTS = FileSpec(
    dataset="contacts",
    key="contact_unique_id",
    columns=(
        Column("first_name", T, True, aliases=("First Name", "FirstName", "Person - First name")),
        Column("last_name", T, True, aliases=("Last Name", "LastName", "Person - Last name")),
        Column("email_address", EMAIL, True, aliases=("Email", "E-mail", "Email Address", "Person - Email", "Person - Email - Work", "emailaddress1")),
        Column("account_unique_id", ID, True, aliases=("Account ID", "AccountId", "Account.Id", "Company ID", "Associated Company ID", "Associated Company IDs (Primary)", "Associated Company IDs", "Organization ID", "Person - Organization ID", "_parentcustomerid_value", "Account Name.id", "AccountName_Id", "Account_Name_Id")),
        Column("contact_unique_id", ID, True, aliases=("Id", "Contact ID", "Record ID", "Person - ID", "Person ID", "(Do Not Modify) Contact", "contactid")),
        Column("role", T, aliases=("Title", "Job Title", "Person - Job title")),
        Column("phone_number", T, aliases=("Phone", "Phone Number", "Business Phone", "Person - Phone", "Person - Phone - Work", "telephone1")),
        Column("linkedin_url", URL, aliases=("LinkedIn", "LinkedIn URL", "LinkedIn Profile")),
        Column("reports_to_id", ID, aliases=("Reports To ID", "ReportsToId", "Manager ID", "Reporting To.id", "_parentcontactid_value", "reportsto")),
    ),
)

USERS = FileSpec(
    dataset="users",
    key="user_id",
    columns=(
        # The CRM's user export (Salesforce `User`: Id, Name, FirstName, LastName, Email):
        # turns deal owners given as user ids or names into e-mails. Never published.
        Column("email", EMAIL, True, aliases=("Email", "E-mail", "Email Address", "User Email", "internalemailaddress", "Person - Email")),
        Column("user_id", ID, aliases=("Id", "User ID", "Owner ID", "Record ID", "systemuserid")),
        Column("name", T, aliases=("Full Name", "User", "Display Name", "fullname", "Owner Name")),
        Column("first_name", T, aliases=("First Name", "FirstName", "firstname")),
        Column("last_name", T, aliases=("Last Name", "LastName", "lastname")),
    ),
)
# fmt: on

FILES: dict[str, FileSpec] = {spec.dataset: spec for spec in (DEALS, ACCOUNTS, CONTACTS, USERS)}
FILE_NAMES: dict[str, FileSpec] = {spec.file_name: spec for spec in FILES.values()}

OWNER = "owner_email"
"""The deals column that may hold owners by reference (user ids or names)."""
OWNER_REF = "owner_ref"
"""The clean deals frame's extra column: the owner as written, when it is not an e-mail."""

ACCOUNT_FIELDS = {"name": "account_name", "url": "account_url", "industry": "account_industry"}
"""accounts.csv column -> the deal column it fills when the deal row leaves it blank."""

# --- what we write: every table, declared once --------------------------------------------
# DDL, `COMMENT ON`, Dagster's table schemas, the problem frames' schema, the import
# report's columns and the CLI read these declarations; nothing else lists columns.


@dataclass(frozen=True)
class Field:
    """One warehouse column: its name, DuckDB type and what it means (for COMMENT ON and
    the Dagster UI)."""

    name: str
    type: str
    doc: str


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    fields: tuple[Field, ...]
    key: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def columns(self) -> list[tuple[str, str]]:
        """[(column, DuckDB type)] in the table's order."""
        return [(f.name, f.type) for f in self.fields]

    @property
    def data_names(self) -> list[str]:
        """The columns a frame of one tenant's rows carries (all but tenant_id)."""
        return [f.name for f in self.fields if f.name != "tenant_id"]

    @property
    def row_names(self) -> list[str]:
        """The columns the core computes for a tenant's rows: all but tenant_id and the
        `ingestion_id` the publish stamps on every row."""
        return [f.name for f in self.fields if f.name not in ("tenant_id", INGESTION_ID.name)]


TENANT = Field("tenant_id", "VARCHAR", "The customer's landing folder name.")
INGESTION_ID = Field(
    "ingestion_id",
    "VARCHAR",
    "The ingestion that wrote this row: ingestions.run_id of its publish (like dlt's "
    "_dlt_load_id); join ingestions on run_id for when, from which file versions and who "
    "approved.",
)

# What each published column means, for `COMMENT ON` and the Dagster UI: by warehouse
# column name, with (table, column) overrides where one name means different things.
COLUMN_DOCS = {
    "deal_unique_id": "The deal's id in the customer's CRM.",
    "name": "Account name: a deal row's inline name, else accounts.csv's.",
    "target_close_date": "Expected close date, as the calendar date written in the export.",
    "owner_email": "E-mail of the deal owner, trimmed and lower-cased.",
    "value": "Deal value without currency, DECIMAL(18,2).",
    "deal_stage": "Stage as exported by the CRM.",
    "pipeline_id": "Pipeline as exported by the CRM.",
    "project_type": "Project type for the Jointflows project.",
    "description": "Free-text description.",
    "account_unique_id": "The account's id in the customer's CRM.",
    "account_name": "Account name: the deal row's, else accounts.csv's.",
    "account_url": "Account website with scheme and lower-case host: the deal row's, else accounts.csv's.",
    "account_industry": "Account industry: the deal row's, else accounts.csv's.",
    "url": "Account website: a deal row's inline URL, else accounts.csv's.",
    "industry": "Account industry: a deal row's, else accounts.csv's.",
    "contact_unique_id": "The contact's id in the customer's CRM.",
    "first_name": "Contact first name.",
    "last_name": "Contact last name.",
    "email_address": "Contact e-mail, trimmed and lower-cased.",
    "role": "Contact role or job title.",
    "phone_number": "Contact phone number as exported.",
    "linkedin_url": "Contact LinkedIn profile URL.",
    "reports_to_id": "contact_unique_id of the contact's manager.",
}
_COLUMN_DOC_OVERRIDES = {("importable_deals", "name"): "Deal name."}


def column_doc(table: str, column: str) -> str:
    doc = _COLUMN_DOC_OVERRIDES.get((table, column)) or COLUMN_DOCS.get(column)
    return doc or f"{column} (see docs/contract.md)."


def file_table(name: str, spec: FileSpec, doc: str, order: tuple[str, ...]) -> Table:
    """A published table made of one file's columns (warehouse names, types from their
    kind), keyed by tenant and the file's id, then `ingestion_id`. `order` is the
    contract's column order; a file column it does not name is appended after the others,
    so a new column needs no edit here."""
    by_name = {c.out: c for c in spec.columns}
    names = [n for n in order if n in by_name] + [n for n in by_name if n not in order]
    fields = [TENANT] + [
        Field(n, DUCKDB_TYPES[by_name[n].kind], by_name[n].doc or column_doc(name, n))
        for n in names
    ]
    fields.append(INGESTION_ID)
    return Table(name, doc, tuple(fields), key=("tenant_id", spec.column(spec.key).out))


IMPORTABLE_DEALS = file_table(
    "importable_deals",
    DEALS,
    "Deals Jointflows users can turn into projects: every valid deal, account fields after "
    "precedence (deal row first, then accounts.csv).",
    ("deal_unique_id", "name", "target_close_date", "owner_email", "value", "deal_stage",
     "pipeline_id", "project_type", "description", "account_unique_id", "account_name",
     "account_url", "account_industry"),
)  # fmt: skip
IMPORTABLE_CONTACTS = file_table(
    "importable_contacts",
    CONTACTS,
    "Contacts for the digital sales room; kept even when their account or manager is "
    "unknown (see rejected_rows).",
    ("contact_unique_id", "account_unique_id", "first_name", "last_name", "email_address",
     "role", "phone_number", "linkedin_url", "reports_to_id"),
)  # fmt: skip
ACCOUNTS_TABLE = file_table(
    "accounts",
    ACCOUNTS,
    "accounts.csv merged with the account data inline in deals.csv; deal data wins field by field.",
    ("account_unique_id", "name", "url", "industry"),
)
REJECTED_ROWS = Table(
    "rejected_rows",
    "One row per problem in the tenant's latest drop: rows left out (error) and values "
    "changed or doubted (warning).",
    (
        TENANT,
        Field("file", "VARCHAR", "The landing file the problem is in (deals.csv, ...)."),
        Field(
            "row_number",
            "BIGINT",
            "Data row in the file (1 = first row under the header); NULL for a whole-file problem.",
        ),
        Field(
            "line_number",
            "BIGINT",
            "The row's line in the customer's spreadsheet: the header's line + row_number "
            "(lines above the header and blank lines count; a quoted cell spanning lines is "
            "one line, as in Excel); NULL for a whole-file problem.",
        ),
        Field("record_id", "VARCHAR", "The row's unique id, when it has one."),
        Field(
            "severity",
            "VARCHAR",
            "error = the row was not imported; warning = imported, or a file-level note.",
        ),
        Field("reason", "VARCHAR", "Stable reason code (see the README)."),
        Field("column", "VARCHAR", "The column the problem is in, if any."),
        Field("value", "VARCHAR", "The cell as delivered (or the id the problem is about)."),
        Field("message", "VARCHAR", "What happened, in plain English, for the customer's admin."),
        INGESTION_ID,
    ),
)

INGESTED_FILES = ("deals", "accounts", "contacts", "users")
"""The files whose key, version and size every ingestion records."""
_PER_FILE = (
    ("version", "VARCHAR", "ETag or SHA-256 of the {file} that was read (NULL if absent)."),
    ("key", "VARCHAR", "Where the {file} that was read lives (S3 key or path)."),
    ("size", "BIGINT", "Bytes of the {file} that was read."),
)
INGESTIONS = Table(
    "ingestions",
    "One row per publish attempt of a tenant: what was read, what happened, what was "
    "published.",
    (
        TENANT,
        Field("run_id", "VARCHAR", "Dagster run id (or the jf ingest run's id)."),
        Field("started_at", "TIMESTAMPTZ", "When the run started."),
        Field("finished_at", "TIMESTAMPTZ", "When the publish attempt finished."),
        Field(
            "outcome",
            "VARCHAR",
            "published, partial (an approved publish with a rejected file), refused (by the "
            "publish guard) or failed (the run failed before it could publish: the tenant's "
            "rows were kept).",
        ),
        Field(
            "landing_version",
            "VARCHAR",
            "Fingerprint of the files that were read (as the landing sensor's cursor keeps it).",
        ),
        *(
            Field(f"{d}_{what}", type_, doc.format(file=f"{d}.csv"))
            for what, type_, doc in _PER_FILE
            for d in INGESTED_FILES
        ),
        Field("deals_published", "BIGINT", "Rows published to importable_deals (NULL when not replaced)."),
        Field("deals_rejected", "BIGINT", "deals.csv rows with an error."),
        Field("deals_filtered", "BIGINT", "deals.csv rows left out because the tenant does not import their stage (its settings); not errors."),
        Field("accounts_published", "BIGINT", "Rows published to accounts (NULL when not replaced)."),
        Field("contacts_published", "BIGINT", "Rows published to importable_contacts (NULL when not replaced)."),
        *(
            Field(
                f"{d}_in_drop",
                "BIGINT",
                f"Valid {d} in the drop: what was published, or what a refused drop would have "
                f"published (NULL when they could not be built: a file rejected as a whole).",
            )
            for d in ("deals", "accounts", "contacts")
        ),
        Field("errors", "BIGINT", "Problems with severity error."),
        Field("warnings", "BIGINT", "Problems with severity warning."),
        Field("reason", "VARCHAR", "Why the publish was refused (the guard's reasons) or the run failed (its error)."),
        Field("approved", "BOOLEAN", "True when the publish guard would have refused and an engineer approved it."),
        Field("approved_by", "VARCHAR", "Who approved (approve_tenant's approved_by, else its run; jf approve and jf ingest --approve: the user)."),
        Field("approved_at", "TIMESTAMPTZ", "When the approved publish was made."),
        Field("settings_version", "BIGINT", "The tenant's settings version the run applied (jf tenant set; NULL: never set)."),
        Field("approved_version", "VARCHAR", "The landing_version an approval named (the refused drop's): the approval applies only when it equals landing_version, so a newer drop is never approved blindly."),
    ),
)  # fmt: skip

PUBLISHED_TABLES: dict[str, Table] = {
    t.name: t for t in (IMPORTABLE_DEALS, ACCOUNTS_TABLE, IMPORTABLE_CONTACTS, REJECTED_ROWS)
}
"""The contract's tables: one row set per tenant, replaced by each publish."""

# --- history: one row per version of a published row (issue #20) --------------------------
HISTORY_UNTRACKED = ("tenant_id", "ingestion_id")
"""Columns of a published table that are not the row's content: a version changes only when
another column does (the publish that wrote a row is bookkeeping, not a change)."""
HISTORY_FIELDS = (
    Field(
        "valid_from",
        "TIMESTAMPTZ",
        "When this version was published: the finished_at of the ingestion that started it.",
    ),
    Field(
        "valid_to",
        "TIMESTAMPTZ",
        "When the version ended (the row changed, or was missing from a drop): the finished_at "
        "of the ingestion that ended it; NULL while it is the published version.",
    ),
    Field(
        "valid_from_ingestion_id",
        "VARCHAR",
        "ingestions.run_id of the publish that started this version.",
    ),
    Field(
        "valid_to_ingestion_id",
        "VARCHAR",
        "ingestions.run_id of the publish that ended this version; NULL while it is current.",
    ),
    Field(
        "row_hash",
        "UBIGINT",
        "DuckDB hash() of the version's tracked columns, to find changed rows fast (when most "
        "rows' hashes differ, as another DuckDB's hash() would, the values are compared).",
    ),
)
HISTORY_COLUMNS = tuple(f.name for f in HISTORY_FIELDS)


def history_table(name: str, source: Table, what: str) -> Table:
    """The type-2 history of a published table: its columns (but the bookkeeping ones in
    HISTORY_UNTRACKED), one row per version, with when and by which ingestion each version
    started and ended. Written in the transaction of the publish that replaces `source`."""
    tracked = [f for f in source.fields if f.name not in HISTORY_UNTRACKED]
    return Table(
        name,
        f"Every version of every {what} ever published, one row each: a version starts when "
        f"a publish brings a new or changed {what} and ends (valid_to) when a later publish "
        f"changes it or the drop no longer has it. An identical re-export adds nothing; "
        f"a refused drop writes nothing. The current version has valid_to NULL.",
        (TENANT, *tracked, *HISTORY_FIELDS),
        key=(*source.key, "valid_from"),
    )


DEAL_HISTORY = history_table("deal_history", IMPORTABLE_DEALS, "deal")
ACCOUNT_HISTORY = history_table("account_history", ACCOUNTS_TABLE, "account")
CONTACT_HISTORY = history_table("contact_history", IMPORTABLE_CONTACTS, "contact")
HISTORIES: dict[str, Table] = {
    IMPORTABLE_DEALS.name: DEAL_HISTORY,
    ACCOUNTS_TABLE.name: ACCOUNT_HISTORY,
    IMPORTABLE_CONTACTS.name: CONTACT_HISTORY,
}
"""Published table -> its history table."""
HISTORY_TABLES: dict[str, Table] = {t.name: t for t in HISTORIES.values()}
HISTORY_SOURCES: dict[str, str] = {t.name: source for source, t in HISTORIES.items()}
"""History table -> the published table it keeps the versions of."""
CHANGE_VIEWS = {
    "deal_history": "deal_changes",
    "account_history": "account_changes",
    "contact_history": "contact_changes",
}
"""History table -> the view of what each ingestion changed in it (new, changed, gone)."""


def tracked_columns(history: Table) -> list[str]:
    """The columns whose values make a version (all but tenant and bookkeeping)."""
    return [n for n in history.names if n != "tenant_id" and n not in HISTORY_COLUMNS]


def history_stores(history: Table) -> tuple[Table, Table]:
    """The two tables `history` (a view) is stored in, so that each published row is
    stored once: `<history>_ended` holds the versions that ended, every column;
    `<history>_current` holds, per published row, only when and by which ingestion its
    current version started and its hash; the current version's values are the published
    row's. The view is the union of the ended versions and the published rows joined with
    their `_current` entries (a first publish of 1M deals writes 5 narrow columns instead of
    a second copy of every row)."""
    by_name = {f.name: f for f in history.fields}
    key = history.key[:-1]  # (tenant_id, <row id>): valid_from is the version's part
    ended = Table(
        f"{history.name}_ended",
        f"The versions in {history.name} that ended (valid_to set), every column: "
        f"{history.name} is a view of this table and of the current versions.",
        history.fields,
        key=history.key,
    )
    current = Table(
        f"{history.name}_current",
        f"One row per published row of {HISTORY_SOURCES[history.name]}: when, by which "
        f"ingestion its current version in {history.name} started, and its hash; the "
        "version's values are the published row's.",
        tuple(by_name[n] for n in (*key, "valid_from", "valid_from_ingestion_id", "row_hash")),
        key=key,
    )
    return ended, current


HISTORY_STORES: dict[str, tuple[Table, Table]] = {
    name: history_stores(history) for name, history in HISTORY_TABLES.items()
}
"""History view -> (ended versions, current versions' bookkeeping): the tables it is read from."""

TABLES: dict[str, Table] = {
    **PUBLISHED_TABLES,
    INGESTIONS.name: INGESTIONS,
    **{t.name: t for stores in HISTORY_STORES.values() for t in stores},
}
"""Every table jf-pipeline writes (the histories are views of their stores)."""
WAREHOUSE_TABLES = PUBLISHED_TABLES  # the name the rest of the code has used


TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def is_valid_tenant_id(name: str) -> bool:
    """Only names of this shape become partitions, paths or SQL parameters (contract §1)."""
    return TENANT_ID.fullmatch(name) is not None


def raw_name(dataset: str) -> str:
    """`raw_deals`: the asset of a landing file as delivered (metadata only)."""
    return f"raw_{dataset}"


def clean_name(dataset: str) -> str:
    """`clean_deals`: the asset of one file's typed, validated rows."""
    return f"clean_{dataset}"
