"""Typed resources: the landing store (a folder or S3, one interface) and the warehouse.

Which landing store is used is configuration (`JF_LANDING`), decided once in
`landing_store_from_uri`, never by `if` statements in assets or sensors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dagster import ConfigurableResource, FilesystemIOManager
from dagster_aws.s3 import S3PickleIOManager, S3Resource
from pydantic import Field

from jf_pipeline import settings, warehouse
from jf_pipeline.contract import FILE_NAMES, is_valid_tenant_id
from jf_pipeline.core.guard import DEFAULT_MAX_DROP_SHARE
from jf_pipeline.core.landing import LandingFile, content_version
from jf_pipeline.core.report import REPORT_CSV, REPORT_SUMMARY

DEFAULT_LANDING = settings.SETTINGS["JF_LANDING"].default
DEFAULT_WAREHOUSE = settings.SETTINGS["JF_WAREHOUSE"].default


@dataclass(frozen=True)
class LandingObject:
    data: bytes
    file: LandingFile


def _check_names(tenant: str, name: str, allowed=FILE_NAMES) -> None:
    # Defence in depth: callers only pass surveyed names, but a path is never built from
    # anything else.
    if not is_valid_tenant_id(tenant):
        raise ValueError(f"invalid tenant id {tenant!r}")
    if name not in allowed:
        raise ValueError(f"{name!r} is not a landing file name")


REPORT_NAMES = (REPORT_CSV, REPORT_SUMMARY)


class LandingStore(ConfigurableResource):
    """Where customers drop their files: `<root>/<tenant_id>/{deals,accounts,contacts}.csv`."""

    write_reports: bool = Field(
        default=True,
        description="Write the import report next to the tenant's files after each run",
    )

    def write(self, tenant: str, name: str, data: bytes) -> str:
        """Write one of our report files into the tenant's folder; returns its key."""
        raise NotImplementedError

    def list_files(self) -> list[LandingFile]:
        """Every file one level below a tenant folder, valid names or not."""
        raise NotImplementedError

    def read(self, tenant: str, name: str) -> LandingObject | None:
        """The file's bytes and the version of exactly those bytes; None if it is absent."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class LocalLandingStore(LandingStore):
    """A landing zone in a local folder. Versions are SHA-256 content hashes."""

    root: str = Field(default=DEFAULT_LANDING, description="Folder holding one folder per tenant")

    def list_files(self) -> list[LandingFile]:
        root = Path(self.root)
        if not root.is_dir():
            return []
        files = []
        for tenant_dir in sorted(root.iterdir()):
            if not tenant_dir.is_dir():
                continue
            for path in sorted(tenant_dir.iterdir()):
                if path.is_file():
                    files.append(self._describe_file(tenant_dir.name, path, path.read_bytes()))
        return files

    def read(self, tenant: str, name: str) -> LandingObject | None:
        _check_names(tenant, name)
        path = Path(self.root) / tenant / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return LandingObject(data, self._describe_file(tenant, path, data))

    @staticmethod
    def _describe_file(tenant: str, path: Path, data: bytes) -> LandingFile:
        stat = path.stat()
        return LandingFile(
            tenant=tenant,
            name=path.name,
            key=str(path),
            version=content_version(data),
            size=len(data),
            modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
        )

    def write(self, tenant: str, name: str, data: bytes) -> str:
        _check_names(tenant, name, REPORT_NAMES)
        path = Path(self.root) / tenant / name
        temporary = path.with_name(f".{name}.tmp")
        temporary.write_bytes(data)
        temporary.replace(path)  # the admin never sees half a report
        return str(path)

    def describe(self) -> str:
        return str(Path(self.root).resolve())


class S3LandingStore(LandingStore):
    """A landing zone under `s3://bucket/prefix`. Versions are the objects' ETags."""

    bucket: str
    prefix: str = ""
    s3: S3Resource = Field(default_factory=S3Resource)

    @property
    def _base(self) -> str:
        return f"{self.prefix.strip('/')}/" if self.prefix.strip("/") else ""

    def list_files(self) -> list[LandingFile]:
        client = self.s3.get_client()
        files = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._base
        ):
            for obj in page.get("Contents", []):
                parts = obj["Key"][len(self._base) :].split("/")
                if len(parts) != 2 or not parts[1]:
                    continue
                files.append(
                    LandingFile(
                        tenant=parts[0],
                        name=parts[1],
                        key=obj["Key"],
                        version=obj["ETag"].strip('"'),
                        size=obj["Size"],
                        modified=obj.get("LastModified"),
                    )
                )
        return files

    def read(self, tenant: str, name: str) -> LandingObject | None:
        _check_names(tenant, name)
        client = self.s3.get_client()
        key = f"{self._base}{tenant}/{name}"
        try:
            response = client.get_object(Bucket=self.bucket, Key=key)
        except client.exceptions.NoSuchKey:
            return None
        data = response["Body"].read()
        return LandingObject(
            data,
            LandingFile(
                tenant=tenant,
                name=name,
                key=key,
                version=response["ETag"].strip('"'),
                size=len(data),
                modified=response.get("LastModified"),
            ),
        )

    def write(self, tenant: str, name: str, data: bytes) -> str:
        _check_names(tenant, name, REPORT_NAMES)
        key = f"{self._base}{tenant}/{name}"
        self.s3.get_client().put_object(Bucket=self.bucket, Key=key, Body=data)
        return key

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self._base}"


def landing_store_from_uri(uri: str | None = None) -> LandingStore:
    """`s3://bucket/prefix` -> S3 (AWS_* variables, AWS_ENDPOINT_URL included); else a folder."""
    uri = uri or settings.get("JF_LANDING")
    if uri.startswith("s3://"):
        bucket, prefix = _split_s3_uri(uri)
        return S3LandingStore(
            bucket=bucket, prefix=prefix, s3=s3_from_env(), write_reports=_reports_on()
        )
    return LocalLandingStore(root=uri, write_reports=_reports_on())


def s3_from_env() -> S3Resource:
    """S3 from the AWS_* variables (credentials through boto3's own chain)."""
    return S3Resource(
        endpoint_url=settings.get("AWS_ENDPOINT_URL") or None,
        region_name=settings.get("AWS_REGION") or settings.get("AWS_DEFAULT_REGION") or None,
    )


def _split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket: expected s3://bucket/prefix")
    return bucket, prefix.strip("/")


def storage_from_uri(uri: str | None = None):
    """Where assets hand results to each other (`JF_STORAGE`): a local folder for one
    machine; `s3://bucket/prefix` when runs execute in separate containers or pods, so a
    run that re-cleans only the changed file still finds the other files' clean tables."""
    uri = uri or settings.get("JF_STORAGE")
    if uri.startswith("s3://"):
        bucket, prefix = _split_s3_uri(uri)
        return S3PickleIOManager(s3_resource=s3_from_env(), s3_bucket=bucket, s3_prefix=prefix)
    return FilesystemIOManager(base_dir=uri)


def _reports_on() -> bool:
    return settings.get("JF_IMPORT_REPORT").lower() not in ("0", "off", "false", "no")


class Warehouse(ConfigurableResource):
    """The DuckDB warehouse analysts query (`path`), written through a private build file."""

    path: str = Field(default=DEFAULT_WAREHOUSE, description="DuckDB file analysts open")
    lock_timeout_seconds: float = Field(
        default=120.0, description="How long a writer waits for another writer"
    )
    guard_max_drop_share: float = Field(
        default=DEFAULT_MAX_DROP_SHARE,
        description="Refuse a publish when valid deals fall by more than this share",
    )

    @contextmanager
    def writer(self) -> Iterator[warehouse.Writer]:
        with warehouse.writer(self.path, self.lock_timeout_seconds) as w:
            yield w


def warehouse_from_path(path: str | None = None) -> Warehouse:
    return Warehouse(
        path=path or settings.get("JF_WAREHOUSE"),
        guard_max_drop_share=float(settings.get("JF_GUARD_MAX_DROP")),
    )
