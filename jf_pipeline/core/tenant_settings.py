"""A tenant's own settings, as an account manager sets them: pure model and validation.

Stored as JSON in the landing zone's operator area (`<landing root>/_jointflows/`, which no
tenant id can name: ids never start with `_`) by `jf_pipeline/tenants.py`; applied by the
run through plain parameters (`read_table(mapping=...)`, `clean_table(day_order=...,
stages=...)`, `PublishPolicy`). Every change makes a new `settings_version`, recorded in
the run's metadata and in `ingestions`; the settings that change what is published are
part of the tenant's fingerprint (`TenantSettings.token`), so the landing sensor requests
a run when they change.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

import polars as pl

from jf_pipeline.contract import FILES, is_valid_tenant_id
from jf_pipeline.core.values import parse_emails

OPERATOR_AREA = "_jointflows"
"""The landing zone's folder (prefix) for the operators: tenant settings and the audit log.
Never a tenant (ids start with a letter or digit), never listed as one."""
SETTINGS_FOLDER = "tenants"
AUDIT_FOLDER = "audit"
DAY_ORDERS = ("auto", "dmy", "mdy")
ACTIVE, PAUSED, REMOVED = "active", "paused", "removed"
STATUSES = (ACTIVE, PAUSED, REMOVED)
FORMAT = 1


DATA_FIELDS = (
    "column_mapping",
    "day_order",
    "stages",
    "default_owner",
    "guard_max_drop",
    "import_report",
)
"""The settings that change what a run publishes or writes (part of the fingerprint)."""


class SettingsError(ValueError):
    """A setting that cannot be applied; the message says which and why (nothing changed)."""


@dataclass(frozen=True)
class TenantSettings:
    tenant: str
    settings_version: int = 0
    """0: never set (a tenant that predates onboarding runs with the defaults)."""
    status: str = ACTIVE
    column_mapping: dict[str, dict[str, str]] = field(default_factory=dict)
    """file (deals, accounts, contacts, users) -> {the customer's header: contract column}.
    Wins over the contract's names and aliases."""
    day_order: str = "auto"
    stages: tuple[str, ...] = ()
    """Deal stages to import (matched ignoring case and edge spaces); empty: every stage."""
    default_owner: str | None = None
    guard_max_drop: float | None = None
    """The publish guard's allowed drop for this tenant; None: the deployment's."""
    import_report: bool | None = None
    """Write the import report into the tenant's folder; None: the deployment's."""
    iam_user: str | None = None
    """The tenant's IAM user on an S3 landing zone (None on a local one)."""
    access_keys: tuple[str, ...] = ()
    """Access key ids issued to the tenant (never the secrets), newest last."""
    updated_at: str | None = None
    updated_by: str | None = None

    @property
    def paused(self) -> bool:
        return self.status == PAUSED

    @property
    def token(self) -> str | None:
        """The settings' part of the tenant's fingerprint: 8 hex chars of the settings that
        change what a run publishes (None while they are the defaults). A change of them is
        a change of the drop; pausing, resuming and new keys are not (a resumed tenant's
        run re-reads only the files that changed meanwhile)."""
        data = {k: self.public()[k] for k in DATA_FIELDS}
        if data == {k: TenantSettings(self.tenant).public()[k] for k in DATA_FIELDS}:
            return None
        text = json.dumps(data, sort_keys=True)
        return "s" + hashlib.sha256(text.encode()).hexdigest()[:8]

    def mapping_for(self, dataset: str) -> dict[str, str]:
        return dict(self.column_mapping.get(dataset, {}))

    def to_json(self) -> str:
        data = {"format": FORMAT, **asdict(self)}
        data["stages"] = list(self.stages)
        data["access_keys"] = list(self.access_keys)
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    def public(self) -> dict:
        """What `jf tenant show --json` prints (everything: no secret is ever stored)."""
        return json.loads(self.to_json())


def parse_settings(tenant: str, text: str | bytes) -> TenantSettings:
    """Stored JSON -> settings, checked as strictly as a change (a hand-edited file with a
    bad value is an error, never silently ignored)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"settings of {tenant!r} are not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("tenant") != tenant:
        raise SettingsError(f"settings file of {tenant!r} names another tenant")
    known = {f for f in TenantSettings.__dataclass_fields__}
    values = {k: v for k, v in data.items() if k in known}
    values["stages"] = tuple(values.get("stages") or ())
    values["access_keys"] = tuple(values.get("access_keys") or ())
    settings = TenantSettings(**values)
    validate(settings)
    return settings


def contract_column(dataset: str, column: str) -> str:
    """The contract's name for `column` of file `dataset` (its own name or its published
    name, e.g. deals `name` -> `Name`); SettingsError for a column the contract lacks."""
    spec = FILES.get(dataset)
    if spec is None:
        raise SettingsError(
            f"unknown file {dataset!r}: mappings are per file, one of {', '.join(FILES)}"
        )
    for c in spec.columns:
        if column in (c.name, c.out):
            return c.name
    raise SettingsError(
        f"{spec.file_name} has no column {column!r} in the contract; its columns are "
        f"{', '.join(spec.names)}"
    )


def _valid_email(value: str) -> str | None:
    parsed = parse_emails(pl.Series([value], dtype=pl.String))
    return parsed.values[0] if parsed.problem[0] is None else None


def validate(settings: TenantSettings) -> None:
    if not is_valid_tenant_id(settings.tenant):
        raise SettingsError(f"invalid tenant id {settings.tenant!r}")
    if settings.status not in STATUSES:
        raise SettingsError(f"status must be one of {', '.join(STATUSES)}")
    if settings.day_order not in DAY_ORDERS:
        raise SettingsError(
            f"day order {settings.day_order!r}: must be one of {', '.join(DAY_ORDERS)}"
        )
    for dataset, mapping in settings.column_mapping.items():
        targets: dict[str, str] = {}
        for header, column in mapping.items():
            if not header.strip():
                raise SettingsError(f"{dataset}.csv: a mapping needs a non-blank header")
            name = contract_column(dataset, column)
            if name in targets:
                raise SettingsError(
                    f"{dataset}.csv: {targets[name]!r} and {header!r} are both mapped to {name}"
                )
            targets[name] = header
    if any(not s.strip() for s in settings.stages):
        raise SettingsError("a deal stage to import cannot be blank")
    if settings.default_owner is not None and _valid_email(settings.default_owner) is None:
        raise SettingsError(f"default owner {settings.default_owner!r} is not an e-mail address")
    share = settings.guard_max_drop
    if share is not None and not (isinstance(share, int | float) and 0 <= share <= 1):
        raise SettingsError("the guard's allowed drop is a share between 0 and 1 (e.g. 0.5)")


@dataclass(frozen=True)
class Change:
    """What `jf tenant set` asks for; None/empty fields are left as they are."""

    map_columns: tuple[tuple[str, str, str], ...] = ()
    """(file, the customer's header, contract column)."""
    unmap_columns: tuple[tuple[str, str], ...] = ()
    day_order: str | None = None
    stages: tuple[str, ...] | None = None
    """A new stage list; () imports every stage again."""
    default_owner: str | None = None
    """An e-mail, or "" to clear it."""
    guard_max_drop: float | None = None
    """A share, or NaN to go back to the deployment's."""
    import_report: bool | None = None


def apply_change(current: TenantSettings, change: Change) -> TenantSettings:
    """The settings after `change`, validated (SettingsError: nothing changes). The version
    is not bumped here: `bump` does, only when something actually changed."""
    mapping = {d: dict(m) for d, m in current.column_mapping.items()}
    for dataset, header in change.unmap_columns:
        if dataset not in FILES:
            raise SettingsError(f"unknown file {dataset!r}: one of {', '.join(FILES)}")
        if header not in mapping.get(dataset, {}):
            raise SettingsError(f"{dataset}.csv has no mapping for header {header!r}")
        del mapping[dataset][header]
    for dataset, header, column in change.map_columns:
        mapping.setdefault(dataset, {})
        mapping[dataset] = {h: c for h, c in mapping[dataset].items() if h != header}
        mapping[dataset][header] = contract_column(dataset, column)
    mapping = {d: m for d, m in sorted(mapping.items()) if m}
    values: dict = {"column_mapping": mapping}
    if change.day_order is not None:
        values["day_order"] = change.day_order
    if change.stages is not None:
        values["stages"] = tuple(dict.fromkeys(s.strip() for s in change.stages))
    if change.default_owner is not None:
        owner = change.default_owner.strip()
        values["default_owner"] = (_valid_email(owner) or owner) if owner else None
    if change.guard_max_drop is not None:
        share = change.guard_max_drop
        values["guard_max_drop"] = None if math.isnan(share) else share
    if change.import_report is not None:
        values["import_report"] = change.import_report
    updated = replace(current, **values)
    validate(updated)
    return updated


SETTING_FIELDS = ("status", *DATA_FIELDS, "iam_user", "access_keys")
"""The fields whose change is a change (makes a new settings version and is audited)."""


def differences(before: TenantSettings, after: TenantSettings) -> dict[str, list]:
    """field -> [before, after] for every setting that differs (empty: nothing to do)."""
    old, new = before.public(), after.public()
    return {k: [old[k], new[k]] for k in SETTING_FIELDS if old[k] != new[k]}


def bump(after: TenantSettings, when: datetime, by: str) -> TenantSettings:
    return replace(
        after,
        settings_version=after.settings_version + 1,
        updated_at=when.isoformat(timespec="seconds"),
        updated_by=by,
    )


def fingerprint(files_fingerprint: str, settings_token: str | None) -> str:
    """A tenant's fingerprint: its files' (`file_versions`), then its settings version."""
    return f"{files_fingerprint}/{settings_token}" if settings_token else files_fingerprint


def split_fingerprint(value: str) -> tuple[str, str | None]:
    """(files part, settings part or None) of a fingerprint."""
    files, _, token = value.partition("/")
    return files, token or None


def matches_stage(stages: tuple[str, ...]) -> pl.Expr:
    """deal_stage is one of `stages`, ignoring case and edge spaces."""
    wanted = [s.strip().lower() for s in stages]
    return pl.col("deal_stage").str.strip_chars().str.to_lowercase().is_in(wanted).fill_null(False)
