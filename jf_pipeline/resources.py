"""Typed resources: the landing store (a folder or S3, one interface) and the warehouse.

Which landing store is used is configuration (`JF_LANDING`), decided once in
`landing_store_from_uri`, never by `if` statements in assets or sensors.

They are plain typed models (pydantic), not Dagster classes: `jf ingest`, `jf tenant` and
`jf check` use them without importing Dagster (half a second of every such process, issue
17). The code location hands them to Dagster as resources (`definitions.build_resources`),
and the assets and sensors ask for them as `ResourceParam[...]`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from jf_pipeline import settings, warehouse
from jf_pipeline.contract import FILE_NAMES, is_valid_tenant_id
from jf_pipeline.core import reading
from jf_pipeline.core.guard import DEFAULT_MAX_DROP_SHARE
from jf_pipeline.core.landing import (
    TENANT_FOLDER,
    LandingFile,
    absent_file,
    content_version,
    look_alike,
)
from jf_pipeline.core.report import DATED_REPORT, ERROR_FILES, REPORT_CSV, REPORT_SUMMARY
from jf_pipeline.core.tenant_settings import OPERATOR_AREA

DEFAULT_LANDING = settings.SETTINGS["JF_LANDING"].default
DEFAULT_WAREHOUSE = settings.SETTINGS["JF_WAREHOUSE"].default


class Resource(BaseModel):
    """A resource's settings: typed, validated when made, immutable afterwards (as Dagster's
    own ConfigurableResource is)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class LandingObject:
    data: bytes | None
    """The bytes read; None when the file was refused or is absent (see `file.present`)."""
    file: LandingFile
    problem: tuple[str, str] | None = None
    """(reason code, message) when the file was not read as a whole: `file_not_regular`,
    `file_too_large` or `file_changing`; the run rejects the file and keeps the tenant's
    published rows."""


def _check_names(tenant: str, name: str, allowed=FILE_NAMES) -> None:
    # Defence in depth: callers only pass surveyed names, but a path is never built from
    # anything else.
    if not is_valid_tenant_id(tenant):
        raise ValueError(f"invalid tenant id {tenant!r}")
    if name not in allowed and not (allowed is REPORT_NAMES and DATED_REPORT.fullmatch(name)):
        raise ValueError(f"{name!r} is not a landing file name")


REPORT_NAMES = (REPORT_CSV, REPORT_SUMMARY, *ERROR_FILES)


def _too_large(name: str, size: int, limit: int) -> tuple[str, str] | None:
    if size <= limit:
        return None
    return (
        "file_too_large",
        f"{name} is too large: the file is {size / 2**20:,.0f} MB; the limit is "
        f"{limit / 2**20:,.0f} MB (JF_MAX_FILE_MB); it was not read",
    )


class LandingStore(Resource):
    """Where customers drop their files: `<root>/<tenant_id>/{deals,accounts,contacts}.csv`."""

    write_reports: bool = Field(
        default=True,
        description="Write the import report next to the tenant's files after each run",
    )
    max_file_mb: int = Field(
        default=reading.DEFAULT_MAX_FILE_BYTES // 2**20,
        description="Larger landing files are rejected as a whole, unread (JF_MAX_FILE_MB)",
    )

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * 2**20

    def write(self, tenant: str, name: str, data: bytes) -> str:
        """Write one of our report files into the tenant's folder; returns its key."""
        raise NotImplementedError

    def delete_report(self, tenant: str, name: str) -> None:
        """Delete one of our dated report copies (`DATED_REPORT` names) or error files
        (`ERROR_FILES`), nothing else."""
        raise NotImplementedError

    def dated_reports(self, tenant: str) -> list[str]:
        """The names of our dated report copies in the tenant's folder."""
        raise NotImplementedError

    def list_files(self) -> list[LandingFile]:
        """Every file one level below a tenant folder, valid names or not. Only contract
        files get a content version; other files are never read."""
        raise NotImplementedError

    def read(self, tenant: str, name: str) -> LandingObject | None:
        """The file's bytes and the version of exactly those bytes; None if it is absent
        and no look-alike name (`Deals.csv`) is in the folder."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    # --- the operator area (`_jointflows/`): tenant settings and the audit log ----------
    # Paths inside it are ours (`tenants/<id>.json`, `audit/<stamp>.json`), checked by
    # `_operator_path`; customers cannot write there (on S3 their policy allows only their
    # own prefix).

    def read_operator(self, path: str) -> bytes | None:
        """One operator file's bytes; None when it does not exist."""
        raise NotImplementedError

    def write_operator(self, path: str, data: bytes, *, create_only: bool = False) -> None:
        """Write one operator file whole (readers never see half of it). `create_only`: the
        file must not exist yet (audit entries are never overwritten)."""
        raise NotImplementedError

    def list_operator(self, folder: str) -> dict[str, str]:
        """name -> version (ETag or size:mtime) of the files in an operator folder."""
        raise NotImplementedError

    def create_tenant(self, tenant: str) -> bool:
        """Create the tenant's folder (an S3 folder marker); False if it already existed."""
        raise NotImplementedError

    def tenant_exists(self, tenant: str) -> bool:
        raise NotImplementedError


OPERATOR_PATH = re.compile(
    r"^(tenants/[a-z0-9][a-z0-9_-]{0,62}\.json|audit/[0-9A-Za-z_.-]{1,120}\.json)$"
)


def _operator_path(path: str) -> str:
    if not OPERATOR_PATH.fullmatch(path):
        raise ValueError(f"{path!r} is not an operator file")
    return path


# Reading a local file while it is rewritten in place must not publish a cut file.
STABLE_QUIET_SECONDS = 0.25
"""A file changed (ctime) less than this long ago is waited for before it is read."""
STABLE_TIMEOUT_SECONDS = 60.0
"""A file still changing after this long is rejected (`file_changing`) for this run."""
_HASH_CHUNK = 1 << 20
_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def _refused(st: os.stat_result) -> str | None:
    """Why a contract file's entry is never read, or None for a plain file of its own: not
    a regular file, or a hard link (the same file under another name, possibly in another
    folder: reading it could publish another tenant's data)."""
    if not stat.S_ISREG(st.st_mode):
        return _kind(st.st_mode)
    if st.st_nlink > 1:
        return f"a hard link (the same file has {st.st_nlink} names)"
    return None


def _not_regular(name: str, what: str) -> tuple[str, str]:
    return (
        "file_not_regular",
        f"{name} is {what}, not a regular file of its own, so it was not read (links are "
        f"never followed); put the exported file itself in the folder as {name}",
    )


def _signature(st: os.stat_result) -> tuple[int, ...]:
    """Changes whenever the file's bytes may have: a write moves ctime even when the
    writer sets mtime back, and a rename over the name changes the inode."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read_all(fd: int, size: int) -> bytes:
    """Up to `size + 1` bytes (one more shows that the file grew), in one allocation for
    the usual single read."""
    data = os.read(fd, size + 1)
    if len(data) == size + 1 or not data:
        return data
    chunks = [data]
    got = len(data)
    while got <= size:
        chunk = os.read(fd, size + 1 - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


_HASHES: dict[str, tuple[tuple[int, ...], str]] = {}
"""path -> (stat signature, SHA-256): the sensor re-hashes a contract file only when its
size, times or inode changed. Module-level, so it lives as long as the code server."""
_HASHES_MAX = 200_000


class LocalLandingStore(LandingStore):
    """A landing zone in a local folder. Versions are SHA-256 content hashes.

    Customers' folders are untrusted: symbolic links are never followed (a tenant folder
    or contract file that is a link is refused), only regular files are opened (a pipe
    named contacts.csv would block a reader forever), sizes are checked before reading,
    and a file rewritten in place is read again until one whole version was read.
    """

    root: str = Field(default=DEFAULT_LANDING, description="Folder holding one folder per tenant")

    def list_files(self) -> list[LandingFile]:
        root = Path(self.root)
        if not root.is_dir():
            return []
        files = []
        for tenant_entry in sorted(os.scandir(root), key=lambda e: e.name):
            tenant = tenant_entry.name
            if tenant == OPERATOR_AREA:
                continue  # settings and audit log: never a tenant
            if tenant_entry.is_symlink():
                files.append(
                    LandingFile(
                        tenant=tenant,
                        name=TENANT_FOLDER,
                        key=tenant_entry.path,
                        version="",
                        size=0,
                        present=False,
                        refused="the tenant folder is a symbolic link; links are never followed",
                    )
                )
                continue
            if not tenant_entry.is_dir(follow_symlinks=False):
                continue
            for entry in sorted(os.scandir(tenant_entry.path), key=lambda e: e.name):
                if (described := self._list_entry(tenant, entry)) is not None:
                    files.append(described)
        return files

    def _list_entry(self, tenant: str, entry: os.DirEntry) -> LandingFile | None:
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed since the folder was listed
            return None
        modified = datetime.fromtimestamp(st.st_mtime, tz=UTC)
        common = dict(tenant=tenant, name=entry.name, key=entry.path, modified=modified)
        if entry.name not in FILE_NAMES:  # never opened, never hashed
            return LandingFile(**common, version="", size=st.st_size)
        if what := _refused(st):
            return LandingFile(**common, version=f"not-a-file:{what}", size=0, refused=what)
        if _too_large(
            entry.name, st.st_size, self.max_file_bytes
        ):  # rejected unread by the run: not hashed
            version = f"too-large:{st.st_size}:{st.st_mtime_ns}"
            return LandingFile(**common, version=version, size=st.st_size)
        return LandingFile(**common, version=self._cached_hash(entry.path, st), size=st.st_size)

    @staticmethod
    def _cached_hash(path: str, st: os.stat_result) -> str:
        signature = _signature(st)
        cached = _HASHES.get(path)
        if cached is not None and cached[0] == signature:
            return cached[1]
        digest = hashlib.sha256()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:  # replaced by a link or removed since the listing
            return f"unreadable:{exc.errno}"
        try:
            opened = os.fstat(fd)
            if not stat.S_ISREG(opened.st_mode):
                return f"not-a-file:{_kind(opened.st_mode)}"
            while chunk := os.read(fd, _HASH_CHUNK):
                digest.update(chunk)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        version = digest.hexdigest()
        if _signature(opened) == signature == _signature(after):
            if len(_HASHES) >= _HASHES_MAX:
                _HASHES.clear()
            _HASHES[path] = (signature, version)
        return version

    def _tenant_dir(self, tenant: str) -> int | str | None:
        """An open descriptor of the tenant's folder, None if absent, or why it is refused."""
        try:
            root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            try:
                st = os.stat(tenant, dir_fd=root_fd, follow_symlinks=False)
            except FileNotFoundError:
                return None
            if not stat.S_ISDIR(st.st_mode):
                return f"the tenant folder is {_kind(st.st_mode)}; links are never followed"
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(tenant, flags, dir_fd=root_fd)
        finally:
            os.close(root_fd)

    def read(self, tenant: str, name: str) -> LandingObject | None:
        _check_names(tenant, name)
        path = str(Path(self.root) / tenant / name)
        dir_fd = self._tenant_dir(tenant)
        if dir_fd is None:
            return None
        if isinstance(dir_fd, str):
            refused = LandingFile(tenant, name, path, version="", size=0, refused=dir_fd)
            return LandingObject(None, refused, ("file_not_regular", f"{name}: {dir_fd}"))
        try:
            return self._read_in(dir_fd, tenant, name, path)
        finally:
            os.close(dir_fd)

    def _read_in(self, dir_fd: int, tenant: str, name: str, path: str) -> LandingObject | None:
        ignored = tuple(sorted(n for n in os.listdir(dir_fd) if look_alike(n) == name))
        deadline = time.monotonic() + STABLE_TIMEOUT_SECONDS
        pause = 0.05
        changing = (
            "file_changing",
            f"{name} kept changing for {STABLE_TIMEOUT_SECONDS:g} s while it was read (an "
            "upload still in progress?), so it was not imported; it is read again once it "
            "stops changing",
        )
        while True:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                if not ignored:
                    return None
                return LandingObject(None, absent_file(tenant, name, path, ignored))

            def described(version: str, size: int, st=st, **extra) -> LandingFile:
                modified = datetime.fromtimestamp(st.st_mtime, tz=UTC)
                return LandingFile(
                    tenant, name, path, version, size, modified, ignored=ignored, **extra
                )

            if what := _refused(st):  # never opened: opening a device can act
                refused = described(f"not-a-file:{what}", 0, refused=what)
                return LandingObject(None, refused, _not_regular(name, what))
            quiet_in = STABLE_QUIET_SECONDS - (time.time() - st.st_ctime_ns / 1e9)
            if 0 < quiet_in <= STABLE_QUIET_SECONDS:  # just written: maybe still being written
                if time.monotonic() + quiet_in >= deadline:
                    return LandingObject(None, described("changing", st.st_size), changing)
                time.sleep(quiet_in)
                continue
            try:
                fd = os.open(
                    name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
                )
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENXIO):  # swapped for a link or a
                    continue  # socket since the stat: look again, it is refused then
                raise
            try:
                before = os.fstat(fd)
                if _refused(before):  # swapped since the stat: look again, refused then
                    continue
                if problem := _too_large(
                    name, before.st_size, self.max_file_bytes
                ):  # rejected unread
                    version = f"too-large:{before.st_size}:{before.st_mtime_ns}"
                    return LandingObject(None, described(version, before.st_size), problem)
                data = _read_all(fd, before.st_size)
                after = os.fstat(fd)
            finally:
                os.close(fd)
            # Unchanged from the quiet check through the end of the read: one whole version.
            unchanged = _signature(st) == _signature(before) == _signature(after)
            whole = unchanged and len(data) == after.st_size
            if whole:
                return LandingObject(data, described(content_version(data), len(data)))
            if time.monotonic() > deadline:
                return LandingObject(None, described("changing", len(data)), changing)
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def write(self, tenant: str, name: str, data: bytes) -> str:
        """Write a report without following links: a link planted at the temporary or the
        final name is replaced, never written through."""
        _check_names(tenant, name, REPORT_NAMES)
        path = Path(self.root) / tenant / name
        dir_fd = self._tenant_dir(tenant)
        if dir_fd is None or isinstance(dir_fd, str):
            raise OSError(f"cannot write {name} for {tenant}: {dir_fd or 'no tenant folder'}")
        temporary = f".{name}.tmp"
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary, dir_fd=dir_fd)  # a planted link goes, not its target
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(temporary, flags, 0o644, dir_fd=dir_fd)
            try:
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
                # rename replaces a link at the final name, not its target; the admin never
                # sees half a report
                os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary, dir_fd=dir_fd)
                raise
        finally:
            os.close(dir_fd)
        return str(path)

    def delete_report(self, tenant: str, name: str) -> None:
        _check_names(tenant, name, REPORT_NAMES)
        if not DATED_REPORT.fullmatch(name) and name not in ERROR_FILES:
            raise ValueError(f"{name!r} is not a dated report or an error file")
        dir_fd = self._tenant_dir(tenant)
        if dir_fd is None or isinstance(dir_fd, str):
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)  # a link is removed itself, never its target
        finally:
            os.close(dir_fd)

    def dated_reports(self, tenant: str) -> list[str]:
        _check_names(tenant, REPORT_CSV, REPORT_NAMES)
        dir_fd = self._tenant_dir(tenant)
        if dir_fd is None or isinstance(dir_fd, str):
            return []
        try:
            return sorted(n for n in os.listdir(dir_fd) if DATED_REPORT.fullmatch(n))
        finally:
            os.close(dir_fd)

    def describe(self) -> str:
        return str(Path(self.root).resolve())

    def _operator_file(self, path: str) -> Path:
        return Path(self.root) / OPERATOR_AREA / _operator_path(path)

    def read_operator(self, path: str) -> bytes | None:
        target = self._operator_file(path)
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            return _read_all(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    def write_operator(self, path: str, data: bytes, *, create_only: bool = False) -> None:
        target = self._operator_file(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if create_only:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(target, flags, 0o640)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            return
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)

    def list_operator(self, folder: str) -> dict[str, str]:
        base = Path(self.root) / OPERATOR_AREA / folder
        if folder not in ("tenants", "audit") or not base.is_dir():
            return {}
        found = {}
        for entry in os.scandir(base):
            if entry.name.endswith(".json") and entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                found[entry.name] = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
        return found

    def create_tenant(self, tenant: str) -> bool:
        _check_names(tenant, REPORT_CSV, REPORT_NAMES)
        Path(self.root).mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(Path(self.root) / tenant, 0o755)
        except FileExistsError:
            return False
        return True

    def tenant_exists(self, tenant: str) -> bool:
        _check_names(tenant, REPORT_CSV, REPORT_NAMES)
        return (Path(self.root) / tenant).is_dir()


class S3(Resource):
    """An S3 client from boto3's own credential chain (AWS_* variables, profiles, roles).

    Ours rather than dagster_aws's S3Resource: importing dagster_aws costs every process
    (run workers, the code server, `jf`) 2-4 s, for a landing zone or storage that is often
    a local folder. boto3 is imported only when a client is made. Retries: botocore's
    standard mode, as S3Resource sets it."""

    endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint")
    region_name: str | None = Field(default=None, description="AWS region")
    max_attempts: int = Field(default=5, description="botocore attempts per call")

    _client: object = PrivateAttr(default=None)

    def get_client(self):
        """This resource's client, made on first use. A new boto3 session parses the S3
        service model again, 0.1-0.9 s of CPU here, and a run asks for a client for each
        file it reads and each report it writes, and stores each clean table. Clients are
        thread-safe (a run reads its files in threads); credentials refresh by themselves.
        One per resource object, not per process, so a new resource (another run, a test
        with other credentials) resolves credentials again."""
        with _CLIENT_LOCK:
            if self._client is None:
                import boto3  # deferred: see the class docstring
                from botocore.config import Config

                retries = {"max_attempts": self.max_attempts, "mode": "standard"}
                self._client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region_name,
                    config=Config(retries=retries),
                )
            return self._client


_CLIENT_LOCK = threading.Lock()


def _landing_file(tenant: str, name: str, obj: dict) -> LandingFile:
    """A listed S3 object as a landing file (its ETag is the version)."""
    return LandingFile(
        tenant=tenant,
        name=name,
        key=obj["Key"],
        version=obj["ETag"].strip('"'),
        size=obj["Size"],
        modified=obj.get("LastModified"),
    )


class S3LandingStore(LandingStore):
    """A landing zone under `s3://bucket/prefix`. Versions are the objects' ETags."""

    bucket: str
    prefix: str = ""
    s3: S3 = Field(default_factory=S3)

    @property
    def _base(self) -> str:
        return f"{self.prefix.strip('/')}/" if self.prefix.strip("/") else ""

    def _objects(self, client, prefix: str) -> Iterator[tuple[str, str, dict]]:
        """(tenant, name, listing entry) of every object one level below a tenant prefix."""
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for obj in page.get("Contents", []):
                parts = obj["Key"][len(self._base) :].split("/")
                if len(parts) == 2 and parts[1]:
                    yield parts[0], parts[1], obj

    def list_files(self) -> list[LandingFile]:
        client = self.s3.get_client()
        return [
            _landing_file(tenant, name, obj)
            for tenant, name, obj in self._objects(client, self._base)
        ]

    def list_tenant(self, tenant: str) -> list[LandingFile]:
        """`list_files` for one tenant's folder (the event-driven sensor's re-listing)."""
        if not is_valid_tenant_id(tenant):
            raise ValueError(f"invalid tenant id {tenant!r}")
        client = self.s3.get_client()
        return [
            _landing_file(found, name, obj)
            for found, name, obj in self._objects(client, f"{self._base}{tenant}/")
            if found == tenant
        ]

    def read(self, tenant: str, name: str) -> LandingObject | None:
        _check_names(tenant, name)
        client = self.s3.get_client()
        key = f"{self._base}{tenant}/{name}"
        ignored = tuple(
            sorted(
                n
                for _, n, _ in self._objects(client, f"{self._base}{tenant}/")
                if look_alike(n) == name
            )
        )
        try:
            response = client.get_object(Bucket=self.bucket, Key=key)
        except client.exceptions.NoSuchKey:
            if not ignored:
                return None
            return LandingObject(None, absent_file(tenant, name, key, ignored))
        body = response["Body"]
        size = response["ContentLength"]

        def described(data_size: int) -> LandingFile:
            return LandingFile(
                tenant=tenant,
                name=name,
                key=key,
                version=response["ETag"].strip('"'),
                size=data_size,
                modified=response.get("LastModified"),
                ignored=ignored,
            )

        if problem := _too_large(
            name, size, self.max_file_bytes
        ):  # decided from the headers, body unread
            body.close()
            return LandingObject(None, described(size), problem)
        with contextlib.closing(body):
            data = body.read()  # one buffer of the announced length; botocore checks it
        return LandingObject(data, described(len(data)))

    def write(self, tenant: str, name: str, data: bytes) -> str:
        _check_names(tenant, name, REPORT_NAMES)
        key = f"{self._base}{tenant}/{name}"
        self.s3.get_client().put_object(Bucket=self.bucket, Key=key, Body=data)
        return key

    def delete_report(self, tenant: str, name: str) -> None:
        _check_names(tenant, name, REPORT_NAMES)
        if not DATED_REPORT.fullmatch(name) and name not in ERROR_FILES:
            raise ValueError(f"{name!r} is not a dated report or an error file")
        self.s3.get_client().delete_object(Bucket=self.bucket, Key=f"{self._base}{tenant}/{name}")

    def dated_reports(self, tenant: str) -> list[str]:
        _check_names(tenant, REPORT_CSV, REPORT_NAMES)
        client = self.s3.get_client()
        prefix = f"{self._base}{tenant}/jointflows_import_"
        return sorted(
            name for _, name, _ in self._objects(client, prefix) if DATED_REPORT.fullmatch(name)
        )

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self._base}"

    def operator_key(self, path: str) -> str:
        return f"{self._base}{OPERATOR_AREA}/{_operator_path(path)}"

    def read_operator(self, path: str) -> bytes | None:
        client = self.s3.get_client()
        try:
            response = client.get_object(Bucket=self.bucket, Key=self.operator_key(path))
        except client.exceptions.NoSuchKey:
            return None
        with contextlib.closing(response["Body"]) as body:
            return body.read()

    def write_operator(self, path: str, data: bytes, *, create_only: bool = False) -> None:
        # create_only: audit entries have unique names (time and a random part); S3's
        # put of one object is atomic, so readers never see half of it.
        self.s3.get_client().put_object(Bucket=self.bucket, Key=self.operator_key(path), Body=data)

    def list_operator(self, folder: str) -> dict[str, str]:
        if folder not in ("tenants", "audit"):
            return {}
        prefix = f"{self._base}{OPERATOR_AREA}/{folder}/"
        found = {}
        for page in (
            self.s3.get_client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        ):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if name.endswith(".json") and "/" not in name:
                    found[name] = obj["ETag"].strip('"')
        return found

    def create_tenant(self, tenant: str) -> bool:
        _check_names(tenant, REPORT_CSV, REPORT_NAMES)
        if self.tenant_exists(tenant):
            return False
        # A folder marker: S3 has no folders, but consoles and `aws s3 ls` show one.
        self.s3.get_client().put_object(Bucket=self.bucket, Key=f"{self._base}{tenant}/", Body=b"")
        return True

    def tenant_exists(self, tenant: str) -> bool:
        _check_names(tenant, REPORT_CSV, REPORT_NAMES)
        listed = self.s3.get_client().list_objects_v2(
            Bucket=self.bucket, Prefix=f"{self._base}{tenant}/", MaxKeys=1
        )
        return bool(listed.get("KeyCount") or listed.get("Contents"))


def landing_store_from_uri(uri: str | None = None) -> LandingStore:
    """`s3://bucket/prefix` -> S3 (AWS_* variables, AWS_ENDPOINT_URL included); else a folder."""
    uri = uri or settings.get("JF_LANDING")
    if uri.startswith("s3://"):
        bucket, prefix = _split_s3_uri(uri)
        return S3LandingStore(
            bucket=bucket,
            prefix=prefix,
            s3=s3_from_env(),
            write_reports=_reports_on(),
            max_file_mb=int(settings.get("JF_MAX_FILE_MB")),
        )
    return LocalLandingStore(
        root=uri, write_reports=_reports_on(), max_file_mb=int(settings.get("JF_MAX_FILE_MB"))
    )


def s3_from_env() -> S3:
    """S3 from the AWS_* variables (credentials through boto3's own chain)."""
    return S3(
        endpoint_url=settings.get("AWS_ENDPOINT_URL") or None,
        region_name=settings.get("AWS_REGION") or settings.get("AWS_DEFAULT_REGION") or None,
    )


def _split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket: expected s3://bucket/prefix")
    return bucket, prefix.strip("/")


def storage_from_uri(uri: str | None = None, s3: S3 | None = None):
    """Where assets hand results to each other (`JF_STORAGE`): a local folder for one
    machine; `s3://bucket/prefix` when runs execute in separate containers or pods, so a
    run that re-cleans only the changed file still finds the other files' clean tables.
    Arrow IPC objects, one per tenant and file (`jf_pipeline/storage.py`)."""
    from jf_pipeline.storage import CleanTableIOManager  # storage imports the assets

    uri = uri or settings.get("JF_STORAGE")
    if uri.startswith("s3://"):
        _split_s3_uri(uri)  # a clear error for a URI without a bucket, now
        return CleanTableIOManager(base=uri, s3=s3 or s3_from_env())
    return CleanTableIOManager(base=uri)


def _reports_on() -> bool:
    return settings.get("JF_IMPORT_REPORT").lower() not in ("0", "off", "false", "no")


class SensorPolicy(Resource):
    """How the landing sensor decides that a drop is ready and when to ask again."""

    settle_seconds: float = float(settings.SETTINGS["JF_SETTLE_SECONDS"].default)
    """A tenant's files must be unchanged this long before a run is requested."""
    rerequest_backoff_seconds: float = 60.0
    """A drop whose run failed before publishing is requested again after this, then
    twice and four times as long."""
    events: str = ""
    """`JF_EVENTS`: the SQS queue of the landing bucket's notifications; empty: list the
    landing zone every tick."""
    reconcile_seconds: float = float(settings.SETTINGS["JF_RECONCILE_SECONDS"].default)
    """With events: seconds between full listings (one also runs at start-up)."""
    events_wait_seconds: float = 1.0
    """With events: how long a tick long-polls an empty queue."""


def sensor_policy_from_env() -> SensorPolicy:
    return SensorPolicy(
        settle_seconds=float(settings.get("JF_SETTLE_SECONDS")),
        events=settings.get("JF_EVENTS"),
        reconcile_seconds=float(settings.get("JF_RECONCILE_SECONDS")),
    )


class Warehouse(Resource):
    """The DuckDB warehouse analysts query (`path`), written through a private build file."""

    path: str = Field(default=DEFAULT_WAREHOUSE, description="DuckDB file analysts open")
    lock_timeout_seconds: float = Field(
        default=120.0,
        description="How long a writer waits for another writer (JF_WRITER_WAIT_SECONDS)",
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
        lock_timeout_seconds=float(settings.get("JF_WRITER_WAIT_SECONDS")),
    )
