"""The faster hand-overs give the same results as the slow ones they replaced.

- Clean tables between steps: Arrow IPC objects (`jf_pipeline/storage.py`) instead of
  Dagster's pickles; a publish that loads them from storage publishes what a publish that
  got them in memory does; tables pickled by earlier versions still load.
- Frames into DuckDB: through the Arrow C stream interface instead of pyarrow's
  `to_arrow()`; query results back the same way instead of DuckDB's `.pl()`.

All at sizes where the cleaning's fast paths switch on (thousands of mostly distinct rows).
"""

from __future__ import annotations

import pickle
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import DagsterInstance, materialize, mem_io_manager

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from generate import write_drop  # noqa: E402

from jf_pipeline import warehouse as wh  # noqa: E402
from jf_pipeline.assets import CleanFile  # noqa: E402
from jf_pipeline.contract import FILES, TABLES  # noqa: E402
from jf_pipeline.core.cleaning import clean_table  # noqa: E402
from jf_pipeline.core.landing import LandingFile  # noqa: E402
from jf_pipeline.core.reading import read_table  # noqa: E402
from jf_pipeline.definitions import all_assets, build_resources  # noqa: E402
from jf_pipeline.keys import PUBLISHED_KEYS, clean_key, raw_key  # noqa: E402
from jf_pipeline.resources import LocalLandingStore, Warehouse  # noqa: E402
from jf_pipeline.storage import (  # noqa: E402
    SUFFIX,
    CleanTableIOManager,
    StorageFormatError,
    dumps,
    loads,
)

ROWS = 3_000
PUBLISHED_TABLES = [k.to_user_string() for k in PUBLISHED_KEYS]


@pytest.fixture(scope="module")
def drop(tmp_path_factory) -> Path:
    """A generated drop of 3,000 deals (300 accounts, 3,000 contacts), mostly distinct
    values, about 2 % bad rows (benchmarks/generate.py)."""
    root = tmp_path_factory.mktemp("drop") / "landing"
    write_drop(ROWS, root / "bench")
    return root


def _clean(drop: Path, dataset: str) -> CleanFile:
    spec = FILES[dataset]
    data = (drop / "bench" / spec.file_name).read_bytes()
    source = LandingFile(
        "bench",
        spec.file_name,
        str(drop / "bench" / spec.file_name),
        "sha256-of-the-bytes",
        len(data),
        datetime(2026, 3, 2, 14, 7, 55, 123456, tzinfo=UTC),
        ignored=("Deals.csv", "deals.csv "),
    )
    return CleanFile(clean_table(read_table(data, spec), spec), source)


def _same(a: CleanFile, b: CleanFile) -> None:
    assert a.table.rows.schema == b.table.rows.schema
    assert a.table.rows.equals(b.table.rows)
    assert a.table.problems.schema == b.table.problems.schema
    assert a.table.problems.equals(b.table.problems)
    for field in ("rejected", "source", "header_line", "owner_source"):
        assert getattr(a.table, field) == getattr(b.table, field), field
    assert a.source == b.source


@pytest.mark.parametrize("dataset", ["deals", "accounts", "contacts"])
def test_a_stored_clean_table_loads_back_exactly(drop, dataset):
    """Every field of a clean table survives storage: typed rows (dates, decimals, NULLs,
    accents), problems, flags and the landing file with its time and look-alike names."""
    clean = _clean(drop, dataset)
    assert clean.table.rows.height > 250
    assert dataset != "deals" or clean.table.problems.height > 20
    _same(loads(dumps(clean)), clean)


def test_a_stored_clean_table_keeps_every_kind_of_field():
    """A rejected, empty table with an owner source, no landing file: also exact."""
    spec = FILES["deals"]
    table = clean_table(read_table(b"not,a,deals,file\n1,2,3,4\n", spec), spec)
    clean = CleanFile(table, None)
    _same(loads(dumps(clean)), clean)


def test_a_damaged_stored_table_is_refused_clearly(drop):
    """A cut or foreign object is an error naming what is wrong, never a wrong table."""
    data = dumps(_clean(drop, "accounts"))
    with pytest.raises(StorageFormatError, match="header describes"):
        loads(data[:-10])
    with pytest.raises(StorageFormatError, match="bad magic"):
        loads(pickle.dumps({"not": "ours"}))


def _run(landing: Path, warehouse: str, io_manager, instance, selection=None):
    return materialize(
        all_assets,
        partition_key="bench",
        instance=instance,
        resources=build_resources(
            LocalLandingStore(root=str(landing), write_reports=False),
            Warehouse(path=warehouse),
            io_manager,
        ),
        selection=selection,
    )


def _published(warehouse: str) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(warehouse, read_only=True)
    try:
        return {
            t: wh.to_polars(
                con.sql(
                    f"SELECT * EXCLUDE (ingestion_id) FROM {t}"  # noqa: S608 - our names
                    if "ingestion_id" in TABLES[t].data_names
                    else f"SELECT * FROM {t}"  # noqa: S608
                )
            ).sort(pl.all())
            for t in PUBLISHED_TABLES
        }
    finally:
        con.close()


def test_a_publish_from_stored_tables_equals_one_from_memory(drop, tmp_path):
    """Run 1 cleans every file into the Arrow store; run 2 re-cleans only deals.csv and
    loads accounts and contacts from the store (another run: not the in-process hand-over).
    Both publish exactly what an all-in-memory run publishes; the store holds one object
    per tenant and file, and no pickle."""
    store = tmp_path / "storage"
    io_manager = CleanTableIOManager(base=str(store))
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("tenants", ["bench"])
        assert _run(drop, str(tmp_path / "memory.duckdb"), mem_io_manager, instance).success
        assert _run(drop, str(tmp_path / "stored.duckdb"), io_manager, instance).success
        only_deals = [raw_key("deals"), clean_key("deals"), *PUBLISHED_KEYS]
        second = _run(drop, str(tmp_path / "stored.duckdb"), io_manager, instance, only_deals)
        assert second.success
    stored = sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file())
    assert stored == sorted(f"clean_{d}/bench{SUFFIX}" for d in FILES)
    memory, from_store = _published(str(tmp_path / "memory.duckdb")), None
    from_store = _published(str(tmp_path / "stored.duckdb"))
    for table in PUBLISHED_TABLES:
        assert memory[table].height > 0, table
        assert from_store[table].equals(memory[table]), table


def test_tables_pickled_by_an_earlier_version_still_load(drop, tmp_path):
    """A deployment upgraded from Dagster's pickling IO manager keeps its stored tables:
    a run that re-cleans only deals.csv loads the others from the old pickles."""
    from jf_pipeline.steps import read_raw

    store, landing = tmp_path / "storage", LocalLandingStore(root=str(drop))
    for dataset, spec in FILES.items():
        raw = read_raw(landing, "bench", spec)  # users.csv: absent, an empty table
        path = store / f"clean_{dataset}" / "bench"  # FilesystemIOManager's layout
        path.parent.mkdir(parents=True)
        path.write_bytes(pickle.dumps(CleanFile(clean_table(raw.table, spec), raw.source)))
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("tenants", ["bench"])
        only_deals = [raw_key("deals"), clean_key("deals"), *PUBLISHED_KEYS]
        io_manager = CleanTableIOManager(base=str(store))
        assert _run(drop, str(tmp_path / "w.duckdb"), io_manager, instance, only_deals).success
    counts = {t: f.height for t, f in _published(str(tmp_path / "w.duckdb")).items()}
    assert counts["accounts"] > 250 and counts["importable_contacts"] > 2_500


def test_a_tenant_id_that_is_not_one_never_becomes_a_path(tmp_path):
    """A partition added by hand in the UI (`../x`) cannot address files outside the store."""
    from dagster import build_output_context

    io_manager = CleanTableIOManager(base=str(tmp_path))
    context = build_output_context(asset_key=clean_key("deals"), partition_key="../x")
    with pytest.raises(ValueError, match="invalid tenant id"):
        io_manager.handle_output(context, CleanFile(None, None))
    assert list(tmp_path.iterdir()) == []


def test_the_s3_store_round_trips_in_one_request_each(drop, s3_env):
    """On S3 a clean table is one PUT and one GET (against three requests to store with
    Dagster's S3PickleIOManager), and loads back exactly."""
    import boto3

    from jf_pipeline.resources import storage_from_uri

    boto3.client("s3").create_bucket(Bucket="jf-storage-test")
    io_manager = storage_from_uri("s3://jf-storage-test/some/prefix")
    clean = _clean(drop, "contacts")
    calls = []
    client = io_manager.s3.get_client()
    client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    io_manager.put("clean_contacts/bench.jfclean", dumps(clean))
    _same(loads(io_manager.get("clean_contacts/bench.jfclean")), clean)
    assert io_manager.get("clean_contacts/absent.jfclean") is None
    assert calls == ["PutObject", "GetObject", "GetObject"]
    keys = boto3.client("s3").list_objects_v2(Bucket="jf-storage-test")["Contents"]
    assert [k["Key"] for k in keys] == ["some/prefix/clean_contacts/bench.jfclean"]


def test_frames_reach_duckdb_as_they_did_through_pyarrow(drop, tmp_path):
    """The Arrow C stream hand-over inserts exactly what pyarrow's `to_arrow()` did, for
    every published table's frame (strings, dates, decimals, NULLs, thousands of rows)."""
    from jf_pipeline.core.plan import PublishedState, PublishPolicy, RunInfo, plan_publish

    files = {d: _clean(drop, d) for d in ("deals", "accounts", "contacts")}
    plan = plan_publish(
        "bench",
        {d: f.table for d, f in files.items()},
        sources={d: f.source for d, f in files.items()},
        state=PublishedState(baseline={}, account_ids=lambda: pl.Series([], dtype=pl.String)),
        policy=PublishPolicy(max_drop_share=0.5, approved=False, approved_by=""),
        run=RunInfo("run-1", None, datetime.now(UTC)),
    )
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    wh.ensure_schema(con)
    checked = 0
    for table, frame in plan.tables.items():
        if frame is None or frame.height == 0:
            continue
        columns = TABLES[table].data_names
        names = ", ".join(wh.ident(c) for c in columns)
        for how, rows in (
            ("stream", wh.ArrowStream(frame.select(columns))),
            ("pyarrow", frame.select(columns).to_arrow(compat_level=pl.CompatLevel.newest())),
        ):
            con.register("incoming", rows)
            con.execute(
                f"INSERT INTO {wh.ident(table)} (tenant_id, {names}) "  # noqa: S608
                f"SELECT ?, {names} FROM incoming",
                [how],
            )
            con.unregister("incoming")
        differing = con.execute(
            f"SELECT count(*) FROM ((SELECT {names} FROM {wh.ident(table)} WHERE tenant_id = "  # noqa: S608
            f"'stream' EXCEPT ALL SELECT {names} FROM {wh.ident(table)} WHERE tenant_id = "
            f"'pyarrow') UNION ALL (SELECT {names} FROM {wh.ident(table)} WHERE tenant_id = "
            f"'pyarrow' EXCEPT ALL SELECT {names} FROM {wh.ident(table)} WHERE tenant_id = "
            "'stream'))"
        ).fetchall()[0][0]
        assert differing == 0, table
        count = con.execute(
            f"SELECT count(*) FROM {wh.ident(table)} WHERE tenant_id = 'stream'"  # noqa: S608
        ).fetchall()[0][0]
        assert count == frame.height > 0, table
        # ... and read back through the C stream as DuckDB's pyarrow-based .pl() reads it
        sql = f"SELECT * FROM {wh.ident(table)} ORDER BY ALL"  # noqa: S608
        assert wh.to_polars(con.sql(sql)).equals(con.sql(sql).pl()), table
        checked += 1
    con.close()
    assert checked == 4
