"""Shared fixtures: copies of the sample landing zone, warehouse files, Dagster instances
an S3 server (moto over HTTP, reached by the same boto3 code as production) and a
PostgreSQL server for Dagster's production storage."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import hypothesis
import pytest
from dagster import DagsterInstance, instance_for_test, materialize, mem_io_manager

from jf_pipeline.definitions import all_assets, build_resources
from jf_pipeline.resources import LandingStore, LocalLandingStore, Warehouse
from jf_pipeline_tests.servers import PostgresServer, free_port, postgres_cluster

# Properties, not timings: no example may fail for being slow on a loaded machine (CI and
# this shared machine run the suite on every core).
hypothesis.settings.register_profile("jf", deadline=None)
hypothesis.settings.load_profile("jf")

PROJECT = Path(__file__).resolve().parents[1]
SAMPLE_LANDING = PROJECT / "data" / "landing"


def is_run_output(name: str) -> bool:
    """A file a run writes into a tenant folder (import reports, summaries, error files and
    their temporary files): `make dev` in this checkout leaves them in data/landing
    (git-ignored). They are never part of the sample drops the tests copy."""
    return name.lstrip(".").startswith("jointflows_")


def sample_files(folder: Path) -> list[Path]:
    """The sample drop's own files in a sample tenant folder, without run outputs."""
    return sorted(p for p in folder.iterdir() if not is_run_output(p.name))


def copy_samples(source: Path, target: Path) -> None:
    """shutil.copytree of the sample landing zone or a tenant folder, without run outputs."""
    shutil.copytree(source, target, ignore=lambda _, names: [n for n in names if is_run_output(n)])


CORPORA = Path(__file__).resolve().parent / "corpora"
SAMPLE_TENANTS = ["acme", "globex", "initech", "umbrella"]


@pytest.fixture
def landing_root(tmp_path: Path) -> Path:
    """A private copy of data/landing that a test may change."""
    root = tmp_path / "landing"
    copy_samples(SAMPLE_LANDING, root)
    return root


@pytest.fixture
def landing_of(tmp_path: Path):
    """`landing_of("acme", "globex")`: a private landing zone holding copies of only those
    sample tenants (each tenant ingested is a run; most tests need one or two)."""

    def make(*tenants: str) -> Path:
        root = tmp_path / "landing"
        root.mkdir(exist_ok=True)
        for tenant in tenants:
            copy_samples(SAMPLE_LANDING / tenant, root / tenant)
        return root

    return make


@pytest.fixture
def warehouse_path(tmp_path: Path) -> str:
    return str(tmp_path / "warehouse.duckdb")


@dataclass(frozen=True)
class SampleWarehouse:
    landing: Path
    warehouse: str


@pytest.fixture(scope="session")
def sample_warehouse(tmp_path_factory) -> SampleWarehouse:
    """The sample tenants ingested once per test process (`jf ingest` in-process), for the
    many tests that only read the result: a copy of data/landing and its warehouse. The
    files are made read-only, so a test that tried to change them would fail loudly; tests
    that change a drop or the warehouse build their own (`landing_root`, `warehouse_path`)."""
    import contextlib
    import io

    from jf_pipeline.cli import main

    base = tmp_path_factory.mktemp("sample")
    landing = base / "landing"
    copy_samples(SAMPLE_LANDING, landing)
    warehouse = str(base / "warehouse.duckdb")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["ingest", "--landing", str(landing), "--warehouse", warehouse]) == 0
    for path in [*base.glob("*.duckdb"), *landing.rglob("*")]:
        if path.is_file():
            path.chmod(0o444)
    return SampleWarehouse(landing, warehouse)


@pytest.fixture(scope="session")
def _published_templates(tmp_path_factory) -> dict[tuple[str, ...], Path]:
    """tenants -> a folder holding a warehouse where those sample tenants were published
    (built on first use, once per test process)."""
    return {}


@pytest.fixture
def publish_samples(_published_templates, tmp_path_factory, warehouse_path):
    """`publish_samples("acme")` puts into `warehouse_path` the warehouse the sample tenants
    named would leave when published from data/landing, built once per test process and
    copied (the build file and the analysts' snapshot), so the many tests that start from
    "acme is published" pay for one run, not one each."""

    def publish(*names: str) -> str:
        key = tuple(sorted(names))
        if key not in _published_templates:
            folder = tmp_path_factory.mktemp("published")
            copy_samples(SAMPLE_LANDING, folder / "landing")
            with DagsterInstance.ephemeral() as inst:
                for name in key:
                    result = run_tenant(
                        name, folder / "landing", str(folder / "warehouse.duckdb"), inst
                    )
                    assert result.success, name
            _published_templates[key] = folder
        target = Path(warehouse_path)
        for source in _published_templates[key].glob("warehouse*.duckdb"):
            shutil.copyfile(
                source, target.with_name(source.name.replace("warehouse", target.stem, 1))
            )
        return warehouse_path

    return publish


@pytest.fixture
def instance():
    """An in-memory Dagster instance: fast, for in-process materializations."""
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def persistent_instance():
    """A real SQLite-backed instance in a temporary DAGSTER_HOME, as the daemon uses
    (sensor contexts need its instance ref)."""
    with instance_for_test() as inst:
        yield inst


def run_tenant(
    tenant: str,
    landing: LandingStore | Path,
    warehouse_path: str,
    instance: DagsterInstance,
    tags: dict[str, str] | None = None,
    run_config: dict | None = None,
):
    """Materialize every asset of one tenant in-process, as `jf ingest` does (`run_config`:
    e.g. jf_pipeline.approval.approval_run_config, an approval)."""
    if isinstance(landing, Path):
        landing = LocalLandingStore(root=str(landing))
    instance.add_dynamic_partitions("tenants", [tenant])
    return materialize(
        all_assets,
        partition_key=tenant,
        instance=instance,
        resources=build_resources(landing, Warehouse(path=warehouse_path), mem_io_manager),
        raise_on_error=False,
        tags=tags,
        run_config=run_config,
    )


def check_results(result) -> dict[str, object]:
    """check name -> evaluation, for the asset checks a run evaluated."""
    return {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def materializations(result) -> dict[str, dict]:
    """asset key -> metadata of each materialization in a run result."""
    found = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        found[materialization.asset_key.to_user_string()] = materialization.metadata
    return found


def query(warehouse_path: str, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(warehouse_path, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on a free loopback port for the whole session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    """AWS_* variables pointing boto3 at the moto server, as production points it at AWS."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_endpoint


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server of our own for the session (see servers.postgres_cluster)."""
    with postgres_cluster() as server:
        yield server
