"""What is in a landing zone, independent of where it lives (folder or S3).

A listing is a flat list of `LandingFile`s; `survey` sorts it into valid tenants, invalid
folder names and ignored files, and `landing_version` condenses a tenant's contract files
into one version string that changes whenever any of them is added, overwritten or removed.
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


def landing_version(versions: dict[str, str | None]) -> str:
    """One short version for a tenant's drop: file name -> version, absent files included."""
    text = "\n".join(f"{name}={versions.get(name) or '-'}" for name in sorted(FILE_NAMES))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def content_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
