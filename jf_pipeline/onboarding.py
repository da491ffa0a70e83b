"""`jf tenant ...` and `jf check`: onboarding a customer, on either landing kind.

On an S3 landing zone each tenant gets an IAM user of its own whose only rights are
s3:PutObject/s3:GetObject on `<prefix>/<id>/*` and s3:ListBucket restricted to that prefix
(`tenant_policy`), so the isolation between customers is enforced by S3 itself. Pausing
deactivates its keys (and the sensor skips it), removing deletes them and the user.

Every change is idempotent (asking for what already is changes nothing and says so) and is
recorded in the audit log (`jf_pipeline/tenants.py`). Errors are `OnboardingError`s with a
message for the account manager, raised before anything changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from jf_pipeline import tenants as store
from jf_pipeline.contract import FILES, is_valid_tenant_id
from jf_pipeline.core.tenant_settings import (
    ACTIVE,
    PAUSED,
    REMOVED,
    Change,
    SettingsError,
    TenantSettings,
    apply_change,
    bump,
    differences,
)
from jf_pipeline.resources import LandingStore, S3LandingStore

IAM_PATH = "/jointflows/"
UPLOAD_FILES = ("deals.csv", "accounts.csv", "contacts.csv")
"""The files a customer uploads (users.csv is optional: owners given by id or name)."""


class OnboardingError(ValueError):
    """A request that cannot be carried out; nothing was changed."""


def check_id(tenant: str) -> None:
    if not is_valid_tenant_id(tenant):
        raise OnboardingError(
            f"invalid tenant id {tenant!r}: lower-case letters, digits, '-' and '_', starting "
            "with a letter or digit, at most 63 characters"
        )


def iam_user_name(tenant: str) -> str:
    """An IAM user name (at most 64 characters) for the tenant; long ids get a hash."""
    name = f"jf-{tenant}"
    if len(name) <= 64:
        return name
    return f"jf-{tenant[:50]}-{hashlib.sha256(tenant.encode()).hexdigest()[:10]}"


def tenant_prefix(landing: S3LandingStore, tenant: str) -> str:
    return f"{landing._base}{tenant}/"


def tenant_policy(bucket: str, prefix: str) -> dict:
    """The tenant's only rights: its own objects, and listing its own prefix.

    `prefix` is `<landing prefix>/<tenant>/`. The `s3:prefix` condition keeps a listing to
    the tenant's prefix: without it, ListBucket would show every tenant's file names."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnFiles",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": f"arn:aws:s3:::{bucket}/{prefix}*",
            },
            {
                "Sid": "ListOwnFolder",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
            },
        ],
    }


POLICY_NAME = "jointflows-landing"
PAUSED_POLICY_NAME = "jointflows-paused"
PAUSED_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "Paused", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}],
}
"""Attached while a tenant is paused, on top of its keys being inactive: an explicit deny
wins over every allow, so a paused tenant is refused even by a key reactivated by mistake."""


def iam_client(landing: S3LandingStore):
    import boto3  # deferred: a local landing zone never needs it

    return boto3.session.Session().client(
        "iam", endpoint_url=landing.s3.endpoint_url, region_name=landing.s3.region_name
    )


@dataclass
class Result:
    """What a command did: the lines to print, the JSON to print, its exit code."""

    lines: list[str]
    data: dict
    code: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


def _existing(landing: LandingStore, tenant: str) -> TenantSettings:
    """The tenant's settings; OnboardingError for a tenant that does not exist (no settings
    stored and no landing folder) or was removed."""
    check_id(tenant)
    try:
        own = store.stored(landing, tenant)
    except SettingsError as exc:
        raise OnboardingError(str(exc)) from None
    if own is None:
        if not landing.tenant_exists(tenant):
            raise OnboardingError(
                f"unknown tenant {tenant!r}: no settings and no landing folder in "
                f"{landing.describe()} (add it first: jf tenant add {tenant})"
            )
        return TenantSettings(tenant)
    if own.status == REMOVED:
        raise OnboardingError(f"tenant {tenant!r} was removed (jf tenant add {tenant} again)")
    return own


def _commit(
    landing: LandingStore,
    before: TenantSettings,
    after: TenantSettings,
    action: str,
    by: str,
    extra: dict | None = None,
) -> TenantSettings | None:
    """Store `after` (a new version) and audit it when it differs; None when nothing changed."""
    changes = differences(before, after)
    if not changes and not extra:
        return None
    saved = bump(after, _now(), by)
    store.save(landing, saved)
    details = {"settings_version": saved.settings_version, "changes": changes, **(extra or {})}
    store.audit(landing, after.tenant, action, by, details)
    return saved


# --- add, rotate, pause, resume, remove --------------------------------------------------


def add(landing: LandingStore, tenant: str, by: str) -> Result:
    check_id(tenant)
    try:
        own = store.stored(landing, tenant)
    except SettingsError as exc:
        raise OnboardingError(str(exc)) from None
    if own is not None and own.status != REMOVED:
        return Result(
            [
                f"tenant {tenant} already exists (status {own.status}, settings version "
                f"{own.settings_version}); nothing changed",
                f"  new credentials: jf tenant rotate-keys {tenant}; settings: jf tenant show "
                f"{tenant}",
            ],
            {"tenant": tenant, "changed": False, "status": own.status},
        )
    before = own or TenantSettings(tenant)
    created = landing.create_tenant(tenant)
    after = replace(before, status=ACTIVE)
    pack: dict = {"tenant": tenant, "changed": True, "folder_created": created}
    if isinstance(landing, S3LandingStore):
        user, key = _create_identity(landing, tenant)
        after = replace(after, iam_user=user, access_keys=(key["AccessKeyId"],))
        pack.update(_welcome(landing, tenant, key))
    else:
        pack.update({"folder": f"{landing.describe()}/{tenant}", "credentials": None})
    saved = _commit(landing, before, after, "add", by, {"folder_created": created})
    pack["settings_version"] = saved.settings_version if saved else before.settings_version
    return Result(_welcome_lines(landing, pack), pack)


def _create_identity(landing: S3LandingStore, tenant: str) -> tuple[str, dict]:
    iam = iam_client(landing)
    user = iam_user_name(tenant)
    try:
        iam.create_user(
            UserName=user,
            Path=IAM_PATH,
            Tags=[
                {"Key": "jointflows:tenant", "Value": tenant},
                {"Key": "jointflows:landing", "Value": landing.describe()},
            ],
        )
    except iam.exceptions.EntityAlreadyExistsException:
        pass  # left by an earlier add that failed later: taken over, its policy replaced
    policy = tenant_policy(landing.bucket, tenant_prefix(landing, tenant))
    iam.put_user_policy(UserName=user, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return user, key


def _welcome(landing: S3LandingStore, tenant: str, key: dict) -> dict:
    prefix = tenant_prefix(landing, tenant)
    return {
        "bucket": landing.bucket,
        "prefix": prefix,
        "region": landing.s3.region_name,
        "files": list(UPLOAD_FILES),
        "optional_files": ["users.csv"],
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
        "example": f"aws s3 cp deals.csv s3://{landing.bucket}/{prefix}deals.csv",
    }


def _welcome_lines(landing: LandingStore, pack: dict) -> list[str]:
    tenant = pack["tenant"]
    if "bucket" not in pack:
        return [
            f"tenant {tenant} added: folder {pack['folder']}"
            + ("" if pack["folder_created"] else " (it already existed)"),
            "this landing zone is a local folder: S3 credentials do not apply; customers' "
            f"files are copied into that folder as {', '.join(UPLOAD_FILES)}",
        ]
    return [
        f"tenant {tenant} added (settings version {pack['settings_version']}).",
        "",
        "WELCOME PACK: send this to the customer's admin over a secure channel. The secret",
        "is shown now and never again (lost: jf tenant rotate-keys " + tenant + ").",
        "",
        f"  bucket             {pack['bucket']}",
        f"  folder (prefix)    {pack['prefix']}",
        f"  region             {pack['region'] or '(the AWS default)'}",
        f"  files              {', '.join(pack['files'])} (optional: users.csv)",
        f"  access key id      {pack['access_key_id']}",
        f"  secret access key  {pack['secret_access_key']}",
        "",
        "  upload, e.g.:",
        f"    {pack['example']}",
        "  (this key may upload and read files in this folder only)",
    ]


def _keys(landing: S3LandingStore, own: TenantSettings) -> tuple[object, list[dict]]:
    iam = iam_client(landing)
    keys = iam.list_access_keys(UserName=own.iam_user)["AccessKeyMetadata"]
    return iam, keys


def _no_credentials(landing: LandingStore, own: TenantSettings) -> bool:
    return not isinstance(landing, S3LandingStore) or own.iam_user is None


def rotate_keys(landing: LandingStore, tenant: str, by: str) -> Result:
    own = _existing(landing, tenant)
    if _no_credentials(landing, own):
        raise OnboardingError(
            f"tenant {tenant} has no S3 credentials to rotate"
            + (
                ": the landing zone is a local folder"
                if not isinstance(landing, S3LandingStore)
                else f" (it was not added with jf tenant add on {landing.describe()})"
            )
        )
    iam, keys = _keys(landing, own)
    for old in keys:  # IAM allows two keys a user: the previous, inactive one goes first
        if old["Status"] == "Inactive":
            iam.delete_access_key(UserName=own.iam_user, AccessKeyId=old["AccessKeyId"])
    new = iam.create_access_key(UserName=own.iam_user)["AccessKey"]
    if own.paused:
        iam.update_access_key(
            UserName=own.iam_user, AccessKeyId=new["AccessKeyId"], Status="Inactive"
        )
    old_active = [k["AccessKeyId"] for k in keys if k["Status"] == "Active"]
    for key_id in old_active:  # deactivated only after the new one exists
        iam.update_access_key(UserName=own.iam_user, AccessKeyId=key_id, Status="Inactive")
    remaining = [k for k in _keys(landing, own)[1] if k["AccessKeyId"] != new["AccessKeyId"]]
    ordered = [k["AccessKeyId"] for k in sorted(remaining, key=lambda k: k["CreateDate"])]
    after = replace(own, access_keys=(*ordered, new["AccessKeyId"]))  # newest last
    saved = _commit(
        landing,
        own,
        after,
        "rotate-keys",
        by,
        {"deactivated": old_active, "new": new["AccessKeyId"]},
    )
    pack = {"tenant": tenant, "changed": True, **_welcome(landing, tenant, new)}
    pack["deactivated"] = old_active
    pack["settings_version"] = saved.settings_version if saved else own.settings_version
    lines = _welcome_lines(landing, pack)
    lines[0] = f"tenant {tenant}: new access key; deactivated {', '.join(old_active) or 'none'}"
    if own.paused:
        lines.append("  the tenant is paused: the new key is inactive until jf tenant resume")
    return Result(lines, pack)


def set_paused(landing: LandingStore, tenant: str, paused: bool, by: str) -> Result:
    own = _existing(landing, tenant)
    status = PAUSED if paused else ACTIVE
    verb = "pause" if paused else "resume"
    if own.status == status:
        return Result(
            [f"tenant {tenant} is already {status}; nothing changed"],
            {"tenant": tenant, "changed": False, "status": status},
        )
    keys_changed = []
    if not _no_credentials(landing, own):
        iam, keys = _keys(landing, own)
        if paused:
            iam.put_user_policy(
                UserName=own.iam_user,
                PolicyName=PAUSED_POLICY_NAME,
                PolicyDocument=json.dumps(PAUSED_POLICY),
            )
        else:
            try:
                iam.delete_user_policy(UserName=own.iam_user, PolicyName=PAUSED_POLICY_NAME)
            except iam.exceptions.NoSuchEntityException:
                pass
        wanted = "Inactive" if paused else "Active"
        current = own.access_keys[-1:] if not paused else [k["AccessKeyId"] for k in keys]
        for key in keys:
            if key["AccessKeyId"] in current and key["Status"] != wanted:
                iam.update_access_key(
                    UserName=own.iam_user, AccessKeyId=key["AccessKeyId"], Status=wanted
                )
                keys_changed.append(key["AccessKeyId"])
    saved = _commit(landing, own, replace(own, status=status), verb, by, {"keys": keys_changed})
    what = (
        "its uploads are not ingested and its keys are inactive"
        if paused
        else "its current files are ingested on the sensor's next tick"
    )
    return Result(
        [f"tenant {tenant} {status} (settings version {saved.settings_version}): {what}"],
        {"tenant": tenant, "changed": True, "status": status, "keys": keys_changed},
    )


def remove(
    landing: LandingStore,
    tenant: str,
    by: str,
    purge: bool,
    warehouse_path: str,
    dagster_instance=None,
) -> Result:
    """Revoke the tenant's access (keys and IAM user deleted) and stop ingesting it; with
    `purge`, also delete its rows from every table and its Dagster partition."""
    from jf_pipeline import warehouse as wh

    check_id(tenant)
    own = store.stored(landing, tenant)
    if own is None and not landing.tenant_exists(tenant):
        raise OnboardingError(f"unknown tenant {tenant!r}: nothing to remove")
    own = own or TenantSettings(tenant)
    lines = []
    revoked = []
    if not _no_credentials(landing, own):
        iam = iam_client(landing)
        try:
            for key in iam.list_access_keys(UserName=own.iam_user)["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=own.iam_user, AccessKeyId=key["AccessKeyId"])
                revoked.append(key["AccessKeyId"])
            for name in iam.list_user_policies(UserName=own.iam_user)["PolicyNames"]:
                iam.delete_user_policy(UserName=own.iam_user, PolicyName=name)
            iam.delete_user(UserName=own.iam_user)
        except iam.exceptions.NoSuchEntityException:
            pass  # removed before
        lines.append(f"revoked: IAM user {own.iam_user} and its keys deleted")
    after = replace(own, status=REMOVED, iam_user=None, access_keys=())
    extra: dict = {"revoked_keys": revoked, "purge": purge}
    if purge and not (Path(warehouse_path).exists() or wh.build_path(warehouse_path).exists()):
        lines.append(f"nothing to purge: no warehouse at {warehouse_path}")
    elif purge:
        deleted = wh.purge_tenant(warehouse_path, tenant)
        extra["rows_deleted"] = deleted
        lines.append(
            "purged: "
            + ", ".join(f"{table} {n}" for table, n in deleted.items())
            + f" row(s) deleted from {warehouse_path}"
        )
        if dagster_instance is not None and dagster_instance.has_dynamic_partition(
            "tenants", tenant
        ):
            dagster_instance.delete_dynamic_partition("tenants", tenant)
            extra["partition_deleted"] = True
            lines.append(f"purged: Dagster partition {tenant} deleted")
    if own.status == REMOVED and not purge:
        return Result(
            [f"tenant {tenant} is already removed; nothing changed"],
            {"tenant": tenant, "changed": False},
        )
    _commit(landing, own, after, "remove", by, extra)
    lines.insert(0, f"tenant {tenant} removed: its uploads are no longer ingested")
    if not purge:
        lines.append(f"its published rows stay (delete them: jf tenant remove {tenant} --purge)")
    lines.append("the landing folder and its files are kept; the audit log keeps this removal")
    return Result(lines, {"tenant": tenant, "changed": True, **extra})


# --- set, show, list ---------------------------------------------------------------------


def parse_map(value: str) -> tuple[str, str, str]:
    """`deals:Id=deal_unique_id` -> (file, header, column)."""
    dataset, sep, rest = value.partition(":")
    header, eq, column = rest.rpartition("=")
    if not sep or not eq or not header.strip() or not column.strip():
        raise OnboardingError(
            f"--map {value!r}: expected FILE:HEADER=COLUMN, e.g. deals:Id=deal_unique_id"
        )
    return dataset.strip().removesuffix(".csv"), header.strip(), column.strip()


def parse_unmap(value: str) -> tuple[str, str]:
    dataset, sep, header = value.partition(":")
    if not sep or not header.strip():
        raise OnboardingError(f"--unmap {value!r}: expected FILE:HEADER, e.g. deals:Id")
    return dataset.strip().removesuffix(".csv"), header.strip()


def set_settings(landing: LandingStore, tenant: str, change: Change, by: str) -> Result:
    own = _existing(landing, tenant)
    try:
        after = apply_change(own, change)
    except SettingsError as exc:
        raise OnboardingError(f"{tenant}: {exc}; nothing changed") from None
    if after.stages and change.stages is not None:
        _check_stage_column(landing, after)
    saved = _commit(landing, own, after, "set", by)
    if saved is None:
        return Result(
            [f"tenant {tenant}: settings already so; nothing changed"],
            {"tenant": tenant, "changed": False, "settings_version": own.settings_version},
        )
    changes = differences(own, after)
    lines = [f"tenant {tenant}: settings version {saved.settings_version}"]
    lines += [f"  {k}: {json.dumps(a)} -> {json.dumps(b)}" for k, (a, b) in changes.items()]
    lines.append("  the landing sensor re-ingests the tenant's current files with them")
    return Result(lines, {"tenant": tenant, "changed": True, "changes": changes, **saved.public()})


def _check_stage_column(landing: LandingStore, own: TenantSettings) -> None:
    """A stage filter needs a stage column: refused when the tenant's current deals.csv
    has none (with no deals.csv yet, a run will say so)."""
    from jf_pipeline.core.reading import read_table

    obj = landing.read(own.tenant, "deals.csv")
    if obj is None or obj.data is None:
        return
    read = read_table(obj.data, FILES["deals"], mapping=own.mapping_for("deals"))
    if "deal_stage" not in read.header_mapping.values():
        raise OnboardingError(
            f"{own.tenant}: its deals.csv has no deal stage column (found: "
            f"{', '.join(read.header_mapping) or 'no contract column'}), so a stage filter "
            "would reject every drop; map the stage column first (--map deals:HEADER="
            "deal_stage) or ask for an export with the stage; nothing changed"
        )


def show(landing: LandingStore, tenant: str, history: int = 10) -> Result:
    check_id(tenant)
    own = store.stored(landing, tenant)
    if own is None:
        own = _existing(landing, tenant)  # defaults for a folder never set up, else unknown
    log = store.audit_log(landing, tenant)
    data = {**own.public(), "folder_exists": landing.tenant_exists(tenant), "audit": log}
    lines = [f"tenant {tenant}"]
    for key, value in own.public().items():
        if key not in ("format", "tenant"):
            lines.append(f"  {key:<17} {json.dumps(value)}")
    lines.append(f"  {'folder':<17} {'present' if data['folder_exists'] else 'absent'}")
    if log:
        lines.append(f"audit (last {min(history, len(log))} of {len(log)}):")
        for entry in log[-history:]:
            changes = entry.get("details", {}).get("changes") or {}
            lines.append(
                f"  {entry['at'][:19]}  {entry['by']:<12} {entry['action']:<11} "
                + ", ".join(f"{k}={json.dumps(b)}" for k, (_, b) in changes.items())
            )
    return Result(lines, data)


def list_tenants(landing: LandingStore) -> Result:
    from jf_pipeline.core.landing import survey

    stored, broken = store.load_all(landing)
    folders = set(survey(landing.list_files()).tenants)
    rows = []
    for tenant in sorted(set(stored) | folders | set(broken)):
        own = stored.get(tenant)
        rows.append(
            {
                "tenant": tenant,
                "status": own.status if own else ("unreadable" if tenant in broken else ACTIVE),
                "settings_version": own.settings_version if own else 0,
                "credentials": bool(own and own.iam_user),
                "files": tenant in folders,
            }
        )
    width = max([len(r["tenant"]) for r in rows] + [6])
    lines = [f"{'tenant':<{width}}  status    settings  credentials  files"]
    for r in rows:
        lines.append(
            f"{r['tenant']:<{width}}  {r['status']:<8}  {r['settings_version']:>8}  "
            f"{'yes' if r['credentials'] else 'no':<11}  {'yes' if r['files'] else 'no'}"
        )
    return Result(lines, {"tenants": rows})


# --- jf check ------------------------------------------------------------------------------


def check(
    landing: LandingStore,
    targets: list[str],
    tenant: str | None,
    warehouse_path: str,
    problems_shown: int = 20,
) -> Result:
    """What a run would publish and report for a drop, publishing nothing: a folder or
    files on disk (with `tenant`'s settings, if given), or a tenant's current files."""
    import shutil
    import tempfile

    from jf_pipeline import steps
    from jf_pipeline import warehouse as wh
    from jf_pipeline.contract import FILE_NAMES
    from jf_pipeline.core.plan import RunInfo, plan_publish
    from jf_pipeline.resources import LocalLandingStore, Warehouse

    paths = [Path(t) for t in targets]
    on_disk = all(p.exists() for p in paths)
    if not on_disk:
        if len(targets) != 1 or not is_valid_tenant_id(targets[0]):
            missing = next(str(p) for p in paths if not p.exists())
            raise OnboardingError(f"{missing!r}: no such file or folder, and not a tenant id")
        tenant = tenant or targets[0]
    if tenant is not None:
        check_id(tenant)
    own = _existing(landing, tenant) if tenant else TenantSettings("check")
    folder = None
    source: LandingStore = landing
    name = tenant or "check"
    try:
        if on_disk:
            folder = Path(tempfile.mkdtemp(prefix="jf-check-"))
            (folder / name).mkdir()
            files = [f for p in paths for f in (sorted(p.iterdir()) if p.is_dir() else [p])]
            for f in files:
                if f.name in FILE_NAMES and f.is_file():
                    shutil.copyfile(f, folder / name / f.name)
            if not any((folder / name).iterdir()):
                raise OnboardingError(
                    f"no contract file ({', '.join(sorted(FILE_NAMES))}) in {', '.join(targets)}"
                )
            source = LocalLandingStore(root=str(folder), max_file_mb=landing.max_file_mb)
        # What a run reads and cleans, with the same function (jf_pipeline/steps.py).
        read = steps.read_and_clean(source, name, list(FILES.values()), own)
        clean = {spec: c.table for spec, (_, c) in zip(FILES, read, strict=True)}
        sources = {spec: c.source for spec, (_, c) in zip(FILES, read, strict=True)}
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    now = _now()
    state = wh.published_state_read_only(warehouse_path, tenant) if tenant else None
    if state is None:
        state = wh.PublishedState(baseline={}, account_ids=lambda: _no_ids())
    # Not an approval: the guard judges the drop as an ordinary run's would.
    policy = steps.publish_policy(Warehouse(path=warehouse_path), own, approved_by="jf check")
    plan = plan_publish(name, clean, sources, state, policy, RunInfo("jf-check", now, now))
    verdict = {
        "published": "WOULD PUBLISH",
        "partial": "WOULD PUBLISH PART (a file is rejected whole; its published rows would stay)",
        "refused": "WOULD BE REFUSED by the publish guard",
    }[plan.outcome]
    counts = {
        k: plan.ingestion.get(k)
        for k in (
            "deals_published",
            "deals_rejected",
            "deals_filtered",
            "accounts_published",
            "contacts_published",
            "errors",
            "warnings",
        )
    }
    lines = [
        f"jf check {' '.join(targets)}"
        + (f" with the settings of {tenant} (version {own.settings_version})" if tenant else ""),
        f"{verdict}; nothing was published",
    ]
    if plan.guard.reason:
        lines.append(f"  guard: {plan.guard.reason}")
    lines.append("  " + ", ".join(f"{k} {'-' if v is None else v}" for k, v in counts.items()))
    lines += ["", "the import report the customer would get:", ""]
    lines += plan.report[1].decode().splitlines()
    problems = plan.rejected_rows
    if problems.height:
        lines += [
            "",
            f"problems (first {min(problems_shown, problems.height)} of {problems.height}):",
        ]
        for p in problems.head(problems_shown).iter_rows(named=True):
            at = "file" if p["row_number"] is None else f"row {p['row_number']}"
            lines.append(f"  {p['file']} {at} {p['severity']} {p['reason']}: {p['message']}")
    data = {
        "outcome": plan.outcome,
        "would_publish": plan.outcome != "refused",
        "guard_reason": plan.guard.reason,
        "settings_version": own.settings_version,
        **counts,
        "problems": problems.to_dicts(),
        "summary": plan.report[1].decode(),
    }
    return Result(lines, data, 0 if plan.outcome == "published" else 1)


def _no_ids():
    import polars as pl

    return pl.Series([], dtype=pl.String)
