"""Tenant settings and the audit log in the landing zone's operator area (`_jointflows/`).

    <landing root>/_jointflows/tenants/<id>.json        one tenant's settings (JSON)
    <landing root>/_jointflows/audit/<time>-<id>-<random>.json   one entry per change

Beside the tenant folders, in the same folder or bucket, so settings move with the landing
zone and need no other store; a tenant id can never start with `_`, so no tenant can be
named `_jointflows`, and on S3 a tenant's key may write only its own prefix. The audit log
is append-only: each entry is a new object (S3 has no append), never rewritten.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime

from jf_pipeline.contract import is_valid_tenant_id
from jf_pipeline.core.tenant_settings import (
    AUDIT_FOLDER,
    SETTINGS_FOLDER,
    SettingsError,
    TenantSettings,
    parse_settings,
)
from jf_pipeline.resources import LandingStore


def settings_path(tenant: str) -> str:
    if not is_valid_tenant_id(tenant):
        raise SettingsError(f"invalid tenant id {tenant!r}")
    return f"{SETTINGS_FOLDER}/{tenant}.json"


def load(landing: LandingStore, tenant: str) -> TenantSettings:
    """The tenant's settings; the defaults (version 0) when none were ever set."""
    data = landing.read_operator(settings_path(tenant))
    return TenantSettings(tenant) if data is None else parse_settings(tenant, data)


def stored(landing: LandingStore, tenant: str) -> TenantSettings | None:
    """The tenant's stored settings, None when none were ever stored."""
    data = landing.read_operator(settings_path(tenant))
    return None if data is None else parse_settings(tenant, data)


_CACHE: dict[tuple[str, str], tuple[str, TenantSettings | str]] = {}
_CACHE_LOCK = threading.Lock()


def load_all(landing: LandingStore) -> tuple[dict[str, TenantSettings], dict[str, str]]:
    """Every stored tenant's settings, and tenant -> why its settings could not be read.

    For the sensor's every tick: one listing, and a file read again only when its version
    (ETag, or size and modification time) changed."""
    where = landing.describe()
    found: dict[str, TenantSettings] = {}
    broken: dict[str, str] = {}
    for name, version in sorted(landing.list_operator(SETTINGS_FOLDER).items()):
        tenant = name.removesuffix(".json")
        if not is_valid_tenant_id(tenant):
            continue
        with _CACHE_LOCK:
            cached = _CACHE.get((where, tenant))
        if cached is None or cached[0] != version:
            try:
                value: TenantSettings | str = load(landing, tenant)
            except SettingsError as exc:
                value = str(exc)
            with _CACHE_LOCK:
                _CACHE[(where, tenant)] = (version, value)
        else:
            value = cached[1]
        if isinstance(value, str):
            broken[tenant] = value
        else:
            found[tenant] = value
    return found, broken


def save(landing: LandingStore, settings: TenantSettings) -> None:
    landing.write_operator(settings_path(settings.tenant), settings.to_json().encode())


def audit(
    landing: LandingStore,
    tenant: str,
    action: str,
    by: str,
    details: dict | None = None,
    when: datetime | None = None,
) -> dict:
    """Append one entry (who, when, what) to the audit log; returns it."""
    when = when or datetime.now(UTC)
    entry = {
        "at": when.isoformat(timespec="microseconds"),
        "by": by,
        "tenant": tenant,
        "action": action,
        "details": details or {},
    }
    stamp = when.strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{AUDIT_FOLDER}/{stamp}-{tenant}-{uuid.uuid4().hex[:8]}.json"
    landing.write_operator(
        name, json.dumps(entry, sort_keys=True, default=str).encode(), create_only=True
    )
    return entry


def audit_log(landing: LandingStore, tenant: str | None = None) -> list[dict]:
    """The audit entries (of one tenant, or all), oldest first."""
    entries = []
    for name in sorted(landing.list_operator(AUDIT_FOLDER)):
        parts = name.removesuffix(".json").split("-")
        if tenant is not None and "-".join(parts[1:-1]) != tenant:
            continue
        data = landing.read_operator(f"{AUDIT_FOLDER}/{name}")
        if data is not None:
            entries.append(json.loads(data))
    return entries
