"""What is in a landing zone, independent of where it lives (folder or S3).

A listing is a flat list of `LandingFile`s; `survey` sorts it into valid tenants, invalid
folder names and ignored files, and `file_versions` condenses a tenant's contract files into
one fingerprint that changes whenever any of them is added, overwritten or removed.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

import polars as pl

from jf_pipeline.contract import FILE_NAMES, is_valid_tenant_id
from jf_pipeline.core.problems import concat_problems, file_problem
from jf_pipeline.core.tenant_settings import OPERATOR_AREA, fingerprint, split_fingerprint


@dataclass(frozen=True)
class LandingFile:
    tenant: str
    name: str
    key: str
    """The full object key or file path, for people to find the file."""
    version: str
    """S3 ETag, or the SHA-256 of a local file's bytes: equal versions mean equal content."""
    size: int
    modified: datetime | None = None
    ignored: tuple[str, ...] = ()
    """Names in the same folder that look like this contract file but are not it
    (`Deals.csv`, `deals.csv `): never read, reported to the customer."""
    present: bool = True
    """False for a contract name that is absent while such look-alike names are there."""
    refused: str | None = None
    """Why this entry is never read: a symbolic link, a pipe, a device, a folder (the
    store found it so when listing; reading checks again on its own)."""


@dataclass
class Survey:
    tenants: dict[str, dict[str, LandingFile]] = field(default_factory=dict)
    """valid tenant id -> contract file name -> file (tenants with no contract file included)."""
    invalid_tenants: list[str] = field(default_factory=list)
    refused_tenants: dict[str, str] = field(default_factory=dict)
    """Tenant folders that are never read (a symbolic link, not a folder) -> why."""


TENANT_FOLDER = ""
"""`LandingFile.name` of an entry that stands for the tenant folder itself (a refused one)."""


def look_alike(name: str) -> str | None:
    """The contract file name that `name` imitates without being it, else None.

    `Deals.csv`, `DEALS.CSV`, `deals.csv ` and ` deals.csv` are not read: the contract
    names are exact, and with two candidates (`deals.csv` and `Deals.csv`) a guess could
    pick the wrong export. They are reported to the customer instead.
    """
    if name in FILE_NAMES:
        return None
    folded = unicodedata.normalize("NFKC", name).strip().casefold()
    return folded if folded in FILE_NAMES else None


def survey(files: list[LandingFile]) -> Survey:
    result = Survey()
    invalid: set[str] = set()
    look_alikes: dict[tuple[str, str], list[LandingFile]] = {}
    for f in files:
        if f.tenant == OPERATOR_AREA:
            continue  # settings and the audit log, not a tenant
        if not is_valid_tenant_id(f.tenant):
            invalid.add(f.tenant)
            continue
        if f.name == TENANT_FOLDER and f.refused:
            result.refused_tenants[f.tenant] = f.refused
            continue
        tenant_files = result.tenants.setdefault(f.tenant, {})
        if f.name in FILE_NAMES:
            tenant_files[f.name] = f
        elif (imitated := look_alike(f.name)) is not None:  # other files: ignored
            look_alikes.setdefault((f.tenant, imitated), []).append(f)
    for (tenant, name), alikes in look_alikes.items():
        if tenant in result.refused_tenants:
            continue
        names = tuple(sorted(a.name for a in alikes))
        tenant_files = result.tenants[tenant]
        if name in tenant_files:
            tenant_files[name] = replace(tenant_files[name], ignored=names)
        else:  # absent, but the customer meant to send it: a run tells them
            tenant_files[name] = absent_file(tenant, name, alikes[0].key, names)
    for tenant in result.refused_tenants:
        result.tenants.pop(tenant, None)
    result.invalid_tenants = sorted(invalid)
    return result


def absent_file(tenant: str, name: str, key: str, ignored: tuple[str, ...]) -> LandingFile:
    """A contract file that is absent while look-alike names are in its folder."""
    return LandingFile(
        tenant=tenant, name=name, key=key, version="", size=0, ignored=ignored, present=False
    )


def content_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_token(file: LandingFile | None) -> str:
    """8 hex chars for one contract file (its version and any look-alike names), `-` if absent.

    The sensor's cursor, the run's check of what it read and the `landing_version`
    recorded for a publish all use this, so they agree on what "the same drop" means.
    """
    if file is None:
        return "-"
    text = file.version + ("|" + "/".join(file.ignored) if file.ignored else "")
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def file_versions(files: dict[str, LandingFile]) -> str:
    """A compact fingerprint of one tenant's drop: 8 hex chars per contract file, `-` if absent.

    Short enough to keep one per tenant in a sensor cursor for thousands of tenants, and
    per file, so a change can be traced to the files that changed.
    """
    return ".".join(file_token(files.get(name)) for name in sorted(FILE_NAMES))


def requested_token(fingerprint: str, name: str) -> str | None:
    """The token of contract file `name` in a fingerprint (`jf/files` tag), None if unparsable."""
    parts = split_fingerprint(fingerprint)[0].split(".")
    names = sorted(FILE_NAMES)
    if len(parts) != len(names) or name not in names:
        return None
    return parts[names.index(name)]


def _shown(name: str) -> str:
    """A customer's file name, quoted, with control characters and edge spaces visible."""
    return repr(name)


def ignored_file_problems(file_name: str, ignored: Iterable[str]) -> pl.DataFrame:
    """`ignored_file` warnings for names that imitate `file_name` (see `look_alike`)."""
    return concat_problems(
        [
            file_problem(
                file_name,
                "ignored_file",
                f"{_shown(name)} was ignored: the file must be named exactly {file_name} "
                "(lower case, no spaces); rename it to have it imported",
                value=name,
            )
            for name in ignored
        ]
    )


def changed_files(before: str | None, after: str) -> list[str]:
    """Contract file names whose fingerprint differs (all of them for a first drop, and
    for a change of the tenant's settings: a mapping or day order changes every file)."""
    names = sorted(FILE_NAMES)
    if before is None or split_fingerprint(before)[1] != split_fingerprint(after)[1]:
        return names
    before, after = split_fingerprint(before)[0], split_fingerprint(after)[0]
    if len(before.split(".")) != len(names):
        return names  # a fingerprint from before a contract file was added
    return [n for n, a, b in zip(names, before.split("."), after.split("."), strict=True) if a != b]


@dataclass(frozen=True)
class TenantCursor:
    """What the sensor remembers of one tenant between ticks."""

    requested: str | None = None
    """Fingerprint of the drop a run was last requested for."""
    pending: str | None = None
    """A changed fingerprint waiting for the files to settle."""
    pending_since: float | None = None
    requests: int = 0
    """How many runs were requested for the tenant's drops: part of each run key, so a drop
    that comes back to an earlier version (A, B, A, B) always gets a new run, while a tick
    evaluated again from the same cursor makes the same key (no duplicate run)."""

    def to_json(self) -> str | list | None:
        # Most tenants have nothing pending: store `fingerprint~requests` as one string.
        if self.pending is None:
            if self.requested is None or not self.requests:
                return self.requested
            return f"{self.requested}~{self.requests}"
        return [self.requested, self.pending, round(self.pending_since or 0.0, 3), self.requests]

    @classmethod
    def from_json(cls, value: str | list | None) -> TenantCursor:
        if isinstance(value, list):
            return cls(*value)
        if isinstance(value, str) and "~" in value:
            requested, _, count = value.rpartition("~")
            return cls(requested=requested, requests=int(count))
        return cls(requested=value)


def plan_tenant(
    state: TenantCursor,
    files: dict[str, LandingFile],
    now: float,
    settle_seconds: float,
    settings_token: str | None = None,
) -> tuple[TenantCursor, list[str] | None]:
    """Decide whether a tenant's drop is ready: (new state, changed file names or None).

    A changed drop is requested once it has stayed the same for `settle_seconds` (seen
    unchanged across ticks, or already that old by its files' modification times), so
    three files uploaded one after another make one run, not three. `settings_token` (the
    tenant's settings that change what is published, `TenantSettings.token`) is part of
    the fingerprint: a change of them is a change of the drop.
    """
    current = fingerprint(file_versions(files), settings_token)
    if current == state.requested:
        return TenantCursor(requested=current, requests=state.requests), None
    since = state.pending_since if state.pending == current else now
    newest = max((f.modified.timestamp() for f in files.values() if f.modified), default=None)
    seen_quiet = now - since >= settle_seconds
    already_old = newest is not None and now - newest >= settle_seconds
    if seen_quiet or already_old:
        requested = TenantCursor(requested=current, requests=state.requests + 1)
        return requested, changed_files(state.requested, current)
    pending = TenantCursor(state.requested, current, since, state.requests)
    return pending, None
