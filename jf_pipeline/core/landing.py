"""What is in a landing zone, independent of where it lives (folder or S3).

A listing is a flat list of `LandingFile`s; `survey` sorts it into valid tenants, invalid
folder names and ignored files, and `file_versions` condenses a tenant's contract files into
one fingerprint that changes whenever any of them is added, overwritten or removed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from jf_pipeline.contract import FILE_NAMES, is_valid_tenant_id


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


@dataclass
class Survey:
    tenants: dict[str, dict[str, LandingFile]] = field(default_factory=dict)
    """valid tenant id -> contract file name -> file (tenants with no contract file included)."""
    invalid_tenants: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    """Keys of files that are not contract files (reports we write back among them)."""


def survey(files: list[LandingFile]) -> Survey:
    result = Survey()
    invalid: set[str] = set()
    for f in files:
        if not is_valid_tenant_id(f.tenant):
            invalid.add(f.tenant)
            continue
        tenant_files = result.tenants.setdefault(f.tenant, {})
        if f.name in FILE_NAMES:
            tenant_files[f.name] = f
        else:
            result.ignored.append(f.key)
    result.invalid_tenants = sorted(invalid)
    return result


def content_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_versions(files: dict[str, LandingFile]) -> str:
    """A compact fingerprint of one tenant's drop: 8 hex chars per contract file, `-` if absent.

    Short enough to keep one per tenant in a sensor cursor for thousands of tenants, and
    per file, so a change can be traced to the files that changed.
    """
    return ".".join(
        hashlib.sha256(files[name].version.encode()).hexdigest()[:8] if name in files else "-"
        for name in sorted(FILE_NAMES)
    )


def changed_files(before: str | None, after: str) -> list[str]:
    """Contract file names whose fingerprint differs (all of them for a first drop)."""
    names = sorted(FILE_NAMES)
    if before is None or len(before.split(".")) != len(names):
        return names  # a first drop, or a fingerprint from before a contract file was added
    return [n for n, a, b in zip(names, before.split("."), after.split("."), strict=True) if a != b]


@dataclass(frozen=True)
class TenantCursor:
    """What the sensor remembers of one tenant between ticks."""

    requested: str | None = None
    """Fingerprint of the drop a run was last requested for."""
    pending: str | None = None
    """A changed fingerprint waiting for the files to settle."""
    pending_since: float | None = None

    def to_json(self) -> str | list | None:
        # Most tenants have nothing pending: store just the fingerprint.
        if self.pending is None:
            return self.requested
        return [self.requested, self.pending, round(self.pending_since or 0.0, 3)]

    @classmethod
    def from_json(cls, value: str | list | None) -> TenantCursor:
        if isinstance(value, list):
            return cls(*value)
        return cls(requested=value)


def plan_tenant(
    state: TenantCursor, files: dict[str, LandingFile], now: float, settle_seconds: float
) -> tuple[TenantCursor, list[str] | None]:
    """Decide whether a tenant's drop is ready: (new state, changed file names or None).

    A changed drop is requested once it has stayed the same for `settle_seconds` (seen
    unchanged across ticks, or already that old by its files' modification times), so
    three files uploaded one after another make one run, not three.
    """
    current = file_versions(files)
    if current == state.requested:
        return TenantCursor(requested=current), None
    since = state.pending_since if state.pending == current else now
    newest = max((f.modified.timestamp() for f in files.values() if f.modified), default=None)
    seen_quiet = now - since >= settle_seconds
    already_old = newest is not None and now - newest >= settle_seconds
    if seen_quiet or already_old:
        return TenantCursor(requested=current), changed_files(state.requested, current)
    return TenantCursor(requested=state.requested, pending=current, pending_since=since), None
