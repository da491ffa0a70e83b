"""How a run's `clean_*` tables reach the publish step (`JF_STORAGE`): a folder or S3.

Each clean table is stored as one object, `<base>/<asset>/<tenant>.jfclean`:

    b"JFCLEAN1" | header length (4 bytes, little-endian) | header (JSON) | frames

The frames are Arrow IPC streams (LZ4-compressed), the header holds the table's other
fields (`CleanTable`'s flags, the `LandingFile` it was read from) and the frames' sizes.
Against Dagster's pickling IO managers, at 1M deals: a fifth of the bytes (polars pickles
as uncompressed IPC), faster to write and to read, one S3 request per table and load
(S3PickleIOManager makes three to store one: exists, delete, put), no log line per store
and load in the run's event log, no import of dagster_aws, and no pickle: the stored
bytes do not name our classes, so a refactoring never makes them unreadable.

The publish step usually loads what the same process stored a moment earlier (the
in-process executor runs read_and_clean then publish_tenant): that load returns the
object just stored, without reading it back. The store is still written, for later runs
that re-clean only the changed file and load the other files' tables.

Tables stored by earlier versions (pickles at `<base>/<asset>/<tenant>`) are still read,
so upgrading never forces every tenant to be cleaned again.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import struct
from datetime import datetime
from pathlib import Path

import polars as pl
from dagster import (
    DagsterInvariantViolationError,
    InputContext,
    IOManager,
    OutputContext,
)

from jf_pipeline.contract import is_valid_tenant_id
from jf_pipeline.core.cleaning import CleanTable
from jf_pipeline.core.landing import LandingFile
from jf_pipeline.resources import S3
from jf_pipeline.steps import CleanFile

MAGIC = b"JFCLEAN1"
SUFFIX = ".jfclean"
COMPRESSION = "lz4"
"""LZ4: the fastest to write and read back of polars' IPC and Parquet codecs measured
(benchmarks/RESULTS.md), at a fifth of the uncompressed size."""


class StorageFormatError(ValueError):
    """A stored object that is not a clean table of ours."""


# --- the format ------------------------------------------------------------------------


def _encode_value(value, frames: list[bytes]):
    """A JSON value for one field; frames are appended to `frames` and referenced by index."""
    if isinstance(value, pl.DataFrame):
        buffer = io.BytesIO()
        value.write_ipc_stream(buffer, compression=COMPRESSION)
        frames.append(buffer.getvalue())
        return {"frame": len(frames) - 1}
    if isinstance(value, LandingFile):
        return {"landing_file": _encode_fields(value, frames)}
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, tuple):
        return {"tuple": [_encode_value(v, frames) for v in value]}
    if isinstance(value, list):
        return {"list": [_encode_value(v, frames) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _encode_value(v, frames) for k, v in value.items()}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(f"cannot store a {type(value).__name__} in a clean table")


def _encode_fields(obj, frames: list[bytes]) -> dict:
    return {f.name: _encode_value(getattr(obj, f.name), frames) for f in dataclasses.fields(obj)}


def _decode_value(encoded: dict, frames: list[bytes]):
    (kind, value), *_ = encoded.items()
    if kind == "frame":
        return pl.read_ipc_stream(io.BytesIO(frames[value]))
    if kind == "landing_file":
        return _decode_fields(LandingFile, value, frames)
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "tuple":
        return tuple(_decode_value(v, frames) for v in value)
    if kind == "list":
        return [_decode_value(v, frames) for v in value]
    if kind == "dict":
        return {k: _decode_value(v, frames) for k, v in value.items()}
    if kind == "value":
        return value
    raise StorageFormatError(f"unknown field encoding {kind!r}")


def _decode_fields(cls, encoded: dict, frames: list[bytes]):
    """An instance of the dataclass `cls`; fields it no longer has are dropped, fields it
    gained since the object was stored keep their defaults."""
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: _decode_value(v, frames) for k, v in encoded.items() if k in known})


def dumps(clean: CleanFile) -> bytes:
    """A clean table (with the landing file it came from) as one object."""
    frames: list[bytes] = []
    header = {
        "format": 1,
        "table": _encode_fields(clean.table, frames),
        "source": _encode_value(clean.source, frames),
    }
    header["frame_sizes"] = [len(f) for f in frames]
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([MAGIC, struct.pack("<I", len(encoded)), encoded, *frames])


def loads(data: bytes) -> CleanFile:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise StorageFormatError("not a stored clean table (bad magic)")
    (length,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header = json.loads(data[start : start + length])
    except ValueError as exc:
        raise StorageFormatError(f"stored clean table has a bad header: {exc}") from None
    frames, offset = [], start + length
    view = memoryview(data)
    for size in header["frame_sizes"]:
        frames.append(view[offset : offset + size])
        offset += size
    if offset != len(data):
        raise StorageFormatError(
            f"stored clean table is {len(data)} bytes; its header describes {offset}"
        )
    table = _decode_fields(CleanTable, header["table"], frames)
    return CleanFile(table, _decode_value(header["source"], frames))


# --- the IO manager --------------------------------------------------------------------

_JUST_STORED: dict[tuple[str, str], CleanFile] = {}
"""(run id, storage key) -> the clean table this process stored in that run."""


class CleanTableIOManager(IOManager):
    """Stores each tenant's clean tables under `base`: a folder, or `s3://bucket/prefix`.

    A plain IO manager object, like the other resources (resources.py): `s3` is the S3
    resource of an S3 base, and the code location gives it the landing store's when both are
    on S3, so a run worker makes one S3 client, not two (0.15 s of CPU per run here)."""

    def __init__(self, base: str, s3: S3 | None = None):
        self.base = base
        self.s3 = s3 or S3()

    def __repr__(self) -> str:
        return f"CleanTableIOManager(base={self.base!r})"

    # keys --------------------------------------------------------------------------------

    def _key(self, context: InputContext | OutputContext, suffix: str = SUFFIX) -> str:
        tenant = context.asset_partition_key
        if not is_valid_tenant_id(tenant):  # a partition added by hand: never a path
            raise ValueError(f"invalid tenant id {tenant!r}")
        parts = context.asset_key.path
        if any(p in ("", ".", "..") or "/" in p for p in parts):
            raise ValueError(f"asset key {parts!r} is not a storage path")
        return "/".join([*parts, tenant + suffix])

    # the two stores -------------------------------------------------------------------

    def _s3_location(self) -> tuple[str, str] | None:
        if not self.base.startswith("s3://"):
            return None
        bucket, _, prefix = self.base.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"{self.base!r} names no bucket: expected s3://bucket/prefix")
        prefix = prefix.strip("/")
        return bucket, f"{prefix}/" if prefix else ""

    def describe(self, key: str) -> str:
        location = self._s3_location()
        if location:
            return f"s3://{location[0]}/{location[1]}{key}"
        return str(Path(self.base) / key)

    def put(self, key: str, data: bytes) -> None:
        location = self._s3_location()
        if location:
            bucket, prefix = location
            self.s3.get_client().put_object(Bucket=bucket, Key=prefix + key, Body=data)
            return
        path = Path(self.base) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.unlink(missing_ok=True)
        try:
            with open(temporary, "wb") as f:
                f.write(data)
            os.replace(temporary, path)  # a reader sees the old table or the new one
        finally:
            temporary.unlink(missing_ok=True)

    def get(self, key: str) -> bytes | None:
        location = self._s3_location()
        if location:
            bucket, prefix = location
            client = self.s3.get_client()
            try:
                response = client.get_object(Bucket=bucket, Key=prefix + key)
            except client.exceptions.NoSuchKey:
                return None
            with response["Body"] as body:
                return body.read()
        try:
            return (Path(self.base) / key).read_bytes()
        except FileNotFoundError:
            return None

    # Dagster's interface ----------------------------------------------------------------

    def handle_output(self, context: OutputContext, obj) -> None:
        if not isinstance(obj, CleanFile):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a CleanFile")
        key = self._key(context)
        data = dumps(obj)
        self.put(key, data)
        for stale in [k for k in _JUST_STORED if k[0] != context.run_id]:
            del _JUST_STORED[stale]  # a long-lived process (the code server) keeps no old run
        _JUST_STORED[(context.run_id, key)] = obj
        context.add_output_metadata({"path": self.describe(key), "stored_bytes": len(data)})

    def load_input(self, context: InputContext) -> CleanFile:
        key = self._key(context)
        try:
            run_id = context.step_context.run_id  # this run's, not the upstream output's
        except DagsterInvariantViolationError:  # a context built outside a run
            run_id = None
        just_stored = _JUST_STORED.pop((run_id, key), None)
        if just_stored is not None:
            return just_stored
        data = self.get(key)
        if data is not None:
            return loads(data)
        legacy = self.get(self._key(context, suffix=""))
        if legacy is not None:  # a pickle stored by an earlier version
            import pickle

            return CleanFile.of(pickle.loads(legacy))  # noqa: S301 - our own storage
        raise FileNotFoundError(
            f"no stored {context.asset_key.to_user_string()} for tenant "
            f"{context.asset_partition_key} at {self.describe(key)}: run the tenant with "
            "every asset selected (a new sensor request does)"
        )
