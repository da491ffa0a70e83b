"""The code location loads as the UI and daemon load it, with the lineage, partitions,
pool, sensor and resources the README describes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from dagster import AssetKey, DefaultSensorStatus

from jf_pipeline.assets import WAREHOUSE_POOL
from jf_pipeline.core.problems import REASONS
from jf_pipeline.definitions import defs
from jf_pipeline.partitions import tenants
from jf_pipeline.resources import LocalLandingStore, S3LandingStore
from jf_pipeline_tests.conftest import PROJECT

RAW = ["raw_deals", "raw_accounts", "raw_contacts", "raw_users"]
CLEAN = ["clean_deals", "clean_accounts", "clean_contacts", "clean_users"]
PUBLISHED = ["importable_deals", "accounts", "importable_contacts", "rejected_rows"]


def test_definitions_load_with_every_asset():
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == set(RAW + CLEAN + PUBLISHED)


def test_lineage_runs_raw_to_clean_to_published():
    graph = defs.resolve_asset_graph()
    for raw, clean in zip(RAW, CLEAN, strict=True):
        assert graph.get(AssetKey(clean)).parent_keys == {AssetKey(raw)}
    assert graph.get(AssetKey("importable_deals")).parent_keys == {
        AssetKey("clean_deals"),
        AssetKey("clean_accounts"),
        AssetKey("clean_users"),  # owners given as user ids or names (issue 14)
    }
    assert AssetKey("clean_contacts") in graph.get(AssetKey("rejected_rows")).parent_keys


def test_every_asset_shares_the_tenants_partitions_and_has_docs():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def == tenants, key
        assert node.description and len(node.description) > 40, key
        assert node.group_name in {"landing", "cleaning", "warehouse"}, key


def test_publishing_runs_in_the_writer_pool():
    """Two publishes at a time on one host: the writers' lock serialises their writes
    (test_reliability's concurrent writers); the pool bounds how many wait for it."""
    publish = defs.resolve_assets_def(AssetKey("importable_deals"))
    assert publish.op.pool == WAREHOUSE_POOL
    config = (PROJECT / "dagster_home" / "dagster.yaml").read_text()
    assert re.search(r"pools:\s*\n(\s+#.*\n)*\s+default_limit: 2", config)


def test_landing_sensor_is_on_by_default_and_targets_the_ingest_job():
    sensor = defs.resolve_sensor_def("landing_sensor")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert sensor.job_name == "ingest_tenant"
    assert sensor.minimum_interval_seconds <= 30


def test_landing_store_is_chosen_by_jf_landing(monkeypatch):
    from jf_pipeline.resources import landing_store_from_uri

    monkeypatch.delenv("JF_LANDING", raising=False)
    assert isinstance(landing_store_from_uri(), LocalLandingStore)
    monkeypatch.setenv("JF_LANDING", "s3://bucket/some/prefix")
    store = landing_store_from_uri()
    assert isinstance(store, S3LandingStore) and (store.bucket, store.prefix) == (
        "bucket",
        "some/prefix",
    )


def test_intermediate_storage_is_chosen_by_jf_storage(monkeypatch):
    """A folder on one machine; S3 when runs are separate containers or pods; the same
    IO manager (Arrow IPC objects, storage.py) either way."""
    from jf_pipeline.resources import storage_from_uri
    from jf_pipeline.storage import CleanTableIOManager

    monkeypatch.delenv("JF_STORAGE", raising=False)
    local = storage_from_uri()
    assert isinstance(local, CleanTableIOManager) and local.base == "data/storage"
    assert local.describe("clean_deals/acme.jfclean") == "data/storage/clean_deals/acme.jfclean"
    monkeypatch.setenv("JF_STORAGE", "s3://work-bucket/jf/storage/")
    remote = storage_from_uri()
    assert isinstance(remote, CleanTableIOManager)
    assert remote.describe("clean_deals/acme.jfclean") == (
        "s3://work-bucket/jf/storage/clean_deals/acme.jfclean"
    )
    with pytest.raises(ValueError, match="names no bucket"):
        storage_from_uri("s3:///prefix")


def test_an_s3_landing_zone_and_s3_storage_share_one_s3_client(monkeypatch):
    """A run worker reads the landing zone and stores the clean tables with one S3 client
    (making a boto3 client costs 0.15 s of CPU, every run): the code location gives the
    storage the landing store's S3 resource; a local landing zone leaves it its own."""
    from jf_pipeline.definitions import build_resources

    monkeypatch.setenv("JF_LANDING", "s3://landing-bucket/drops")
    monkeypatch.setenv("JF_STORAGE", "s3://work-bucket/storage")
    shared = build_resources()
    assert shared["io_manager"].s3 is shared["landing"].s3
    assert shared["io_manager"].describe("k") == "s3://work-bucket/storage/k"
    monkeypatch.setenv("JF_LANDING", "data/landing")
    separate = build_resources()
    assert separate["io_manager"].s3 is not None and not hasattr(separate["landing"], "s3")


def test_every_variable_read_is_in_the_settings_table():
    """settings.SETTINGS is the one list of variables (the deployment tests rely on it): no
    module reads the environment around it."""
    from jf_pipeline import settings

    sources = {p: p.read_text() for p in (PROJECT / "jf_pipeline").rglob("*.py")}
    readers = [p.name for p, text in sources.items() if re.search(r"os\.(environ|getenv)", text)]
    assert readers == ["settings.py"]
    named = set()
    for text in sources.values():
        named |= set(re.findall(r"settings\.(?:get|SETTINGS)\W+([A-Z_]+)", text))
    assert named <= set(settings.SETTINGS) and "JF_LANDING" in named


def test_workspace_loads_through_the_dagster_cli():
    result = subprocess.run(
        [
            str(PROJECT / ".venv" / "bin" / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_lists_every_reason_code():
    readme = (PROJECT / "README.md").read_text()
    for reason, (severity, _) in REASONS.items():
        assert f"| `{reason}` | {severity} |" in readme, reason


HEAVY_MODULES = (
    "dagster_aws", "boto3", "botocore",  # S3: only when a client is made
    "dagster_k8s", "kubernetes",  # the run launcher lives in the daemon's instance
    "dagster_postgres", "psycopg2",  # the instance's storage, not the code location's
    "pyarrow", "numpy", "pandas",  # polars and DuckDB meet through Arrow's C interface
)  # fmt: skip


def test_the_code_location_and_its_runs_import_only_what_they_need(landing_root, tmp_path):
    """Every process pays for its imports (run workers, the code server, `jf`): with a
    local landing zone and storage, neither importing the code location nor running a
    tenant through `jf ingest` loads the S3, Kubernetes or PostgreSQL packages, pyarrow,
    numpy or pandas (together 1-3 s per process here). With both on S3, building the
    resources still loads no S3 library (the first client does), and never dagster_aws
    (our IO manager and S3 resource use boto3 directly); nor does turning on S3 events
    (`JF_EVENTS`: the SQS client is made by the first tick). Measured:
    benchmarks/startup.py."""
    code = (
        "import os, sys, jf_pipeline.cli, jf_pipeline.definitions as d\n"
        f"heavy = {HEAVY_MODULES!r}\n"
        "loaded = sorted(m for m in heavy if m in sys.modules)\n"
        "rc = jf_pipeline.cli.main(['ingest', '--landing', sys.argv[1], '--warehouse', "
        "sys.argv[2], '--tenant', 'initech', '--json'])\n"
        "ran = sorted(m for m in heavy if m in sys.modules)\n"
        "os.environ.update(JF_LANDING='s3://bucket/landing', JF_STORAGE='s3://bucket/st', "
        "JF_EVENTS='sqs://landing-events')\n"
        "d.build_resources()\n"
        "print(loaded, ran, rc, sorted(m for m in heavy if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JF_", "AWS_"))}
    out = subprocess.run(
        [sys.executable, "-c", code, str(landing_root), str(tmp_path / "w.duckdb")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "[] [] 0 []", out.stdout + out.stderr


def test_sensor_timing_is_read_when_the_definitions_are_wired_not_at_import():
    """Nothing reads the environment at import time except the definitions' wiring (issue
    16): with nonsense in JF_SENSOR_INTERVAL and JF_SETTLE_SECONDS, the sensors, resources
    and assets modules import; the definitions then take the values set before they are
    built: the sensors' interval and the landing sensor's `sensor_policy` resource."""
    code = (
        "import os\n"
        "os.environ.update(JF_SENSOR_INTERVAL='nonsense', JF_SETTLE_SECONDS='nonsense')\n"
        "import jf_pipeline.sensors, jf_pipeline.resources, jf_pipeline.assets\n"
        "os.environ.update(JF_SENSOR_INTERVAL='7', JF_SETTLE_SECONDS='3.5')\n"
        "from jf_pipeline.definitions import defs, resources\n"
        "intervals = sorted(s.minimum_interval_seconds for s in defs.sensors)\n"
        "print(intervals, resources['sensor_policy'].settle_seconds,\n"
        "      'settle for 3.5 s' in defs.resources['sensor_policy'].description)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JF_", "AWS_"))}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[7, 7] 3.5 True", out.stdout + out.stderr


def test_the_analysts_jf_commands_start_without_dagster(sample_warehouse):
    """`jf status`, `jf rejects` and `jf sql` are what analysts and account managers run
    all day: they must not import Dagster or the code location (about 0.5 s more per
    command on a quiet machine; measured by benchmarks/startup.py). A module-level import in
    cli.py of anything that imports dagster (the approval job's config did) breaks this."""
    code = (
        "import sys, jf_pipeline.cli as cli\n"
        "for args in (['status'], ['rejects', 'initech'], ['sql', 'select 1']):\n"
        "    cli.main([*args, '--warehouse', sys.argv[1]])\n"
        "print(sorted(m for m in ('dagster', 'jf_pipeline.definitions', 'boto3') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, sample_warehouse.warehouse],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-2000:] + out.stderr


def test_jf_ingest_check_and_tenant_run_without_dagster(landing_root, tmp_path):
    """`jf ingest` calls the steps directly (jf_pipeline/steps.py), and `jf check` and
    `jf tenant` use the same plain resources: none of them imports Dagster, the code
    location or the assets (half a second and more per process; issue 17's small-tenant
    target is `jf ingest` within 1.6x of `import dagster` alone)."""
    code = (
        "import sys, jf_pipeline.cli as cli\n"
        "landing, warehouse = sys.argv[1], sys.argv[2]\n"
        "codes = [cli.main(['ingest', '--landing', landing, '--warehouse', warehouse]),\n"
        "         cli.main(['check', 'acme', '--landing', landing, '--warehouse', warehouse]),\n"
        "         cli.main(['tenant', 'list', '--landing', landing])]\n"
        "print(codes, sorted(m for m in ('dagster', 'jf_pipeline.definitions', "
        "'jf_pipeline.assets', 'boto3') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(landing_root), str(tmp_path / "w.duckdb")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[0, 0, 0] []", out.stdout[-2000:] + out.stderr
    assert "acme      published  30" in out.stdout
