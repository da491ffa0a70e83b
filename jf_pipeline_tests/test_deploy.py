"""The production deployment in deploy/: the instance on PostgreSQL end to end, and the
deployment files checked against what exists in the repo (no dangling names).

- The end-to-end test runs the services of deploy/docker-compose.yaml as processes: the
  code server (`dagster code-server start`, as in the image) and the real daemon with the
  unmodified deploy/dagster.yaml, pointed at a real PostgreSQL server and moto's S3. Files
  uploaded to S3 become published rows; the run history is in PostgreSQL; intermediate
  results are in S3 (`JF_STORAGE=s3://...`), so a run that re-cleans one file finds the
  others' clean tables from an earlier run, as separate Kubernetes pods must.
- The Compose Specification's JSON schema validates the compose file (no Docker needed); Dagster's own config schemas
  and the Kubernetes client's models validate what the Helm values and manifests become.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import sys
import time
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
import yaml
from dagster import AssetKey, DagsterRunStatus
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config_schema
from dagster_k8s import K8sRunLauncher
from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict
from kubernetes import client as k8s

from jf_pipeline import events, settings
from jf_pipeline.assets import WAREHOUSE_POOL
from jf_pipeline.cli import main
from jf_pipeline.landing_state import namespace_of, tenant_key
from jf_pipeline.resources import landing_store_from_uri
from jf_pipeline.sensors import TENANT_TAG
from jf_pipeline_tests import compose
from jf_pipeline_tests.conftest import PROJECT, SAMPLE_LANDING, free_port
from jf_pipeline_tests.servers import query_warehouse, service

DEPLOY = PROJECT / "deploy"
BIN = Path(sys.executable).parent
IMAGE = "jf-pipeline"
# Variables read by Dagster itself (DAGSTER_HOME) or by boto3's credential chain; every
# other variable a deployment file sets must be one of ours (settings.SETTINGS) or one the
# instance file reads.
THIRD_PARTY_ENV = {"DAGSTER_HOME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def _yaml(path: Path):
    return yaml.safe_load(path.read_text())


def _env_refs(node) -> set[str]:
    """The variables a Dagster config file reads through `{env: NAME}`."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node))
    return set()


INSTANCE = _yaml(DEPLOY / "dagster.yaml")
INSTANCE_ENV = _env_refs(INSTANCE)
KNOWN_ENV = set(settings.SETTINGS) | INSTANCE_ENV | THIRD_PARTY_ENV


# --- the production instance, end to end --------------------------------------------------


def _wait_for(what: str, check: Callable[[], bool], processes, logs, deadline=120) -> None:
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        for p in processes:
            assert p.poll() is None, f"a service exited\n{_tail(logs)}"
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}\n{_tail(logs)}")


def _tail(logs: list[Path]) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs)


@pytest.mark.integration
@pytest.mark.daemon
def test_production_instance_on_postgres_publishes_s3_uploads(
    tmp_path, s3_env, postgres_server, capsys
):
    """deploy/dagster.yaml as shipped, on a real PostgreSQL: the sensor's real ticks in the
    real daemon see uploads to S3 (as S3 event notifications through SQS, issue 18: the
    next full listing is an hour away), queued runs publish them, an overwrite re-runs only
    the changed file's assets, and runs, sensor state and asset history live in PostgreSQL.
    Onboarding (#13) on the way: the tenant is added with `jf tenant add` and uploads with
    its own key; an upload while it is paused publishes nothing until `jf tenant resume`;
    a mapping set with `jf tenant set` re-runs it without an upload and changes its rows.
    The sensor deletes every event message it consumed."""
    database = postgres_server.create_database()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    code_port = free_port()
    workspace = _yaml(DEPLOY / "workspace.yaml")
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=code_port)
    (home / "workspace.yaml").write_text(yaml.safe_dump(workspace))

    bucket = f"jf-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    # Uploads reach the sensor as S3 event notifications through SQS (issue 18): the first
    # tick lists (start-up), the overwrite is seen through its event alone (the next
    # listing is an hour away), and the sensor deletes every message it consumed.
    queue = events.setup(bucket, "landing", f"q-{bucket}", s3_env, "us-east-1")
    warehouse = str(tmp_path / "warehouse" / "warehouse.duckdb")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        **postgres_server.instance_env(database),
        "JF_LANDING": f"s3://{bucket}/landing",
        "JF_STORAGE": f"s3://{bucket}/storage",
        "JF_WAREHOUSE": warehouse,
        "JF_SENSOR_INTERVAL": "2",
        "JF_SETTLE_SECONDS": "1",
        "JF_EVENTS": queue["events"],
        "JF_RECONCILE_SECONDS": "3600",
    }
    assert INSTANCE_ENV <= set(env)
    landing = ["--landing", env["JF_LANDING"]]
    assert main(["tenant", "add", "acme", *landing, "--json"]) == 0
    pack = json.loads(capsys.readouterr().out)
    s3 = boto3.client(  # the tenant's own key from here on (IAM enforced: test_onboarding_s3)
        "s3",
        aws_access_key_id=pack["access_key_id"],
        aws_secret_access_key=pack["secret_access_key"],
    )
    for name in ("deals.csv", "accounts.csv", "contacts.csv"):
        s3.put_object(
            Bucket=bucket,
            Key=f"landing/acme/{name}",
            Body=(SAMPLE_LANDING / "acme" / name).read_bytes(),
        )

    logs = [tmp_path / "code.log", tmp_path / "daemon.log"]
    code_cmd = _compose()["services"]["code"]["command"]
    code_cmd = [*code_cmd[: code_cmd.index("-h")], "-h", "127.0.0.1", "-p", str(code_port)]
    code_cmd += ["-m", "jf_pipeline.definitions"]
    with (
        service([str(BIN / code_cmd[0]), *code_cmd[1:]], env, logs[0]) as code,
        service(
            [str(BIN / "dagster-daemon"), "run", "-w", str(home / "workspace.yaml")],
            env,
            logs[1],
        ) as daemon,
    ):
        count = "SELECT count(*) FROM importable_deals WHERE tenant_id = 'acme'"
        _wait_for(
            "acme's deals",
            lambda: query_warehouse(warehouse, count) == [(30,)],
            [code, daemon],
            logs,
        )

        deals = (SAMPLE_LANDING / "acme" / "deals.csv").read_text()
        old_line = next(line for line in deals.splitlines() if ",D-0002," in line)
        new_line = old_line.replace(f",{old_line.split(',')[3]},", ",515151.51,", 1)
        assert main(["tenant", "pause", "acme", *landing]) == 0
        s3.put_object(
            Bucket=bucket, Key="landing/acme/deals.csv", Body=deals.replace(old_line, new_line)
        )
        value = (
            "SELECT CAST(value AS VARCHAR) FROM importable_deals "
            "WHERE tenant_id = 'acme' AND deal_unique_id = 'D-0002'"
        )
        time.sleep(4)  # two ticks (JF_SENSOR_INTERVAL=2, JF_SETTLE_SECONDS=1): an active
        # tenant's upload is requested within 3 s; a paused one's may not be
        assert query_warehouse(warehouse, value) == [("44500.00",)]
        assert len(_run_statuses(postgres_server, database)) == 1  # no run while paused
        assert main(["tenant", "resume", "acme", *landing]) == 0
        _wait_for(
            "the overwritten value",
            lambda: query_warehouse(warehouse, value) == [("515151.51",)],
            [code, daemon],
            logs,
        )
        _wait_for(
            "the resumed run to end",
            lambda: _run_statuses(postgres_server, database) == ["SUCCESS", "SUCCESS"],
            [code, daemon],
            logs,
        )
        # A mapping, no upload: the sensor re-runs the tenant and its rows change.
        mapping = ["--map", "deals:description=project_type"]
        assert main(["tenant", "set", "acme", *mapping, *landing]) == 0
        project = (
            "SELECT project_type, description, settings_version FROM importable_deals, "
            "(SELECT max(settings_version) AS settings_version FROM ingestions) "
            "WHERE tenant_id = 'acme' AND deal_unique_id = 'D-0001'"
        )
        _wait_for(
            "the mapped column",
            lambda: query_warehouse(warehouse, project) == [("Deal 1 for Contoso Ltd", None, 4)],
            [code, daemon],
            logs,
        )
        _wait_for(
            "the sensor to delete the event messages it consumed",
            lambda: _queued(queue["queue_url"]) == 0,
            [code, daemon],
            logs,
        )
        # The snapshot is swapped before the run's last events: let all runs end first.
        _wait_for(
            "all runs to end",
            lambda: _run_statuses(postgres_server, database) == ["SUCCESS"] * 3,
            [code, daemon],
            logs,
        )

    # The run history is in PostgreSQL, read by Dagster through the same instance file...
    os.environ.update({k: env[k] for k in INSTANCE_ENV})
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        runs = instance.get_runs()
        assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS] * 3, _tail(logs)
        assert {r.tags[TENANT_TAG] for r in runs} == {"acme"}
        mapped, second, first = runs  # newest first
        assert AssetKey("clean_accounts") in first.asset_selection
        assert AssetKey("clean_accounts") not in second.asset_selection  # read from S3
        assert AssetKey("clean_accounts") in mapped.asset_selection  # settings: every file
        assert instance.get_latest_materialization_event(AssetKey("importable_deals"))
        # The sensor's per-tenant state is a row of the instance's key-value table.
        space = namespace_of(landing_store_from_uri(env["JF_LANDING"]).describe())
        assert instance.run_storage.get_cursor_values({tenant_key(space, "acme")})
    # ... and directly in its tables; DAGSTER_HOME holds no SQLite storage.
    assert _run_statuses(postgres_server, database) == ["SUCCESS"] * 3
    assert not list(home.rglob("*.db"))
    stored = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="storage/")["Contents"]
    assert {"clean_deals", "clean_accounts", "clean_contacts"} <= {
        o["Key"].split("/")[1] for o in stored
    }


def _queued(queue_url: str) -> int:
    """Messages in the queue, visible or received and not yet deleted."""
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def _run_statuses(server, database: str) -> list[str]:
    con = server.connect(database)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT status FROM runs ORDER BY id")
            return [status for (status,) in cur.fetchall()]
    finally:
        con.close()


# --- docker compose -----------------------------------------------------------------------


def _compose(path: Path = DEPLOY / "docker-compose.yaml") -> dict:
    """The compose file as `docker compose config` resolves it (anchors, defaults, paths),
    validated against the Compose Specification's schema; no Docker, no root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JF_", "AWS_"))}
    return compose.load(path, env)


def test_compose_schema_accepts_the_compose_file_and_rejects_a_broken_one(tmp_path):
    """deploy/docker-compose.yaml passes the Compose Specification's JSON schema; the same
    check fails, naming the key, on a service with a misspelled key."""
    assert set(_compose()["services"]) == {"postgres", "code", "webserver", "daemon"}
    broken = tmp_path / "docker-compose.yaml"
    text = (DEPLOY / "docker-compose.yaml").read_text()
    broken.write_text(text.replace("    depends_on:", "    depend_on:", 1))
    with pytest.raises(compose.ComposeError, match="depend_on"):
        compose.load(broken, {})
    required = tmp_path / "required.yaml"
    required.write_text(
        text.replace("${DAGSTER_PG_PASSWORD:-dagster}", "${DAGSTER_PG_PASSWORD:?set it}")
    )
    with pytest.raises(compose.ComposeError, match="DAGSTER_PG_PASSWORD"):
        compose.load(required, {})


def _module_of(command: list[str]) -> str:
    return command[command.index("-m") + 1]


def _assert_code_location(module: str) -> None:
    from dagster import Definitions

    assert isinstance(importlib.import_module(module).defs, Definitions)


def test_compose_services_refer_to_what_exists():
    """Images, build files, commands, workspace, variables and volumes in the compose file
    all resolve to something in the repo or in the file itself."""
    compose = _compose()
    services = compose["services"]
    built = {n: s for n, s in services.items() if "build" in s}
    assert list(built) == ["code"]
    build = built["code"]["build"]
    assert (Path(build["context"]) / build["dockerfile"]) == DEPLOY / "Dockerfile"
    image = built["code"]["image"]
    assert image.split(":")[0] == IMAGE
    ours = {n: s for n, s in services.items() if s["image"] == image}
    assert set(ours) == {"code", "webserver", "daemon"}

    dockerfile = _dockerfile()
    workspace_in_image = dockerfile["copied"]["deploy/workspace.yaml"]
    for name, spec in ours.items():
        env = spec.get("environment", {})
        assert set(env) <= KNOWN_ENV, f"{name}: unknown variables {set(env) - KNOWN_ENV}"
        # Every process that opens the instance gets what deploy/dagster.yaml reads.
        assert INSTANCE_ENV <= set(env), f"{name} lacks {INSTANCE_ENV - set(env)}"
        command = spec["command"]
        if "-w" in command:
            assert command[command.index("-w") + 1] == workspace_in_image
        for dep in spec.get("depends_on", {}):
            assert dep in services
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            assert source in compose.get("volumes", {}) or Path(source).is_dir(), volume
    assert env["DAGSTER_PG_HOST"] in services  # the postgres service

    code = services["code"]
    _assert_code_location(_module_of(code["command"]))
    assert code["command"] == dockerfile["cmd"]
    grpc = _yaml(DEPLOY / "workspace.yaml")["load_from"][0]["grpc_server"]
    assert grpc["host"] in services
    assert str(grpc["port"]) == code["command"][code["command"].index("-p") + 1]
    mounts = [v.split(":")[1] for v in code["volumes"]]
    assert any(code["environment"]["JF_WAREHOUSE"].startswith(m + "/") for m in mounts)
    assert any(code["environment"]["JF_LANDING"].startswith(m) for m in mounts)
    postgres = services["postgres"]["environment"]
    assert postgres["POSTGRES_USER"] == code["environment"]["DAGSTER_PG_USERNAME"]
    assert postgres["POSTGRES_DB"] == code["environment"]["DAGSTER_PG_DB"]
    assert postgres["POSTGRES_PASSWORD"] == code["environment"]["DAGSTER_PG_PASSWORD"]


# --- the image ------------------------------------------------------------------------------


def _dockerfile() -> dict:
    """COPY sources -> destinations, the uv version, base image and CMD of deploy/Dockerfile."""
    text = (DEPLOY / "Dockerfile").read_text()
    copied: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("COPY "):
            *sources, dest = line.split()[1:]
            for source in sources:
                source = source.rstrip("/")
                copied[source] = dest + Path(source).name if dest.endswith("/") else dest
    cmd = yaml.safe_load(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    return {
        "copied": copied,
        "uv": re.search(r"^ARG UV_VERSION=(\S+)$", text, re.M).group(1),
        "python": re.search(r"^FROM python:(\d+\.\d+)", text, re.M).group(1),
        "cmd": cmd,
        "text": text,
    }


def test_dockerfile_builds_from_the_lock_with_files_that_exist():
    """The image installs exactly uv.lock (frozen) with the Makefile's uv, on a Python the
    project supports, copies only files that exist (and that .dockerignore lets through),
    and starts the code location that the Helm values and compose file name."""
    dockerfile = _dockerfile()
    assert "uv sync --frozen --no-dev" in dockerfile["text"]
    makefile = (PROJECT / "Makefile").read_text()
    assert f"UV_VERSION := {dockerfile['uv']}\n" in makefile
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11" and dockerfile["python"] >= "3.11"
    ignore = (PROJECT / ".dockerignore").read_text().splitlines()
    for source in dockerfile["copied"]:
        assert (PROJECT / source).exists(), source
        assert f"!{source}" in ignore or f"!{source}/" in ignore, source
    assert dockerfile["copied"]["deploy/dagster.yaml"] == "/opt/dagster/dagster_home/dagster.yaml"
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in dockerfile["text"]
    _assert_code_location(_module_of(dockerfile["cmd"]))


# --- Helm values and Kubernetes objects -----------------------------------------------------


HELM = _yaml(DEPLOY / "helm" / "values.yaml")
MANIFESTS = list(yaml.safe_load_all((DEPLOY / "k8s" / "jf-pipeline.yaml").read_text()))


def _manifest(kind: str, name: str) -> dict:
    found = [m for m in MANIFESTS if m["kind"] == kind and m["metadata"]["name"] == name]
    assert found, f"deploy/k8s/jf-pipeline.yaml has no {kind} {name!r}"
    return found[0]


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _render_instance(values: dict) -> dict:
    """The dagster.yaml the chart writes from these values, for the settings we set (as the
    chart's configmap-instance template maps them)."""
    daemon = values["dagsterDaemon"]
    concurrency = values["concurrency"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    return {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "scheme": values["postgresql"]["postgresqlScheme"],
                    "username": values["postgresql"]["postgresqlUsername"],
                    "password": {"env": "DAGSTER_PG_PASSWORD"},
                    "hostname": values["postgresql"]["postgresqlHost"],
                    "db_name": values["postgresql"]["postgresqlDatabase"],
                    "port": values["postgresql"]["service"]["port"],
                }
            }
        },
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {
                _snake(k): v
                for k, v in daemon["runCoordinator"]["config"]["queuedRunCoordinator"].items()
            },
        },
        "run_launcher": {
            "module": "dagster_k8s",
            "class": "K8sRunLauncher",
            "config": {
                "dagster_home": "/opt/dagster/dagster_home",
                "instance_config_map": "jf-dagster-instance",
                "postgres_password_secret": values["global"]["postgresqlSecretName"],
                "image_pull_policy": launcher["imagePullPolicy"],
                "fail_pod_on_run_failure": launcher["failPodOnRunFailure"],
                "run_k8s_config": {
                    _snake(k): v for k, v in launcher.get("runK8sConfig", {}).items()
                },
            },
        },
        "concurrency": {
            "runs": {
                "max_concurrent_runs": concurrency["runs"]["maxConcurrentRuns"],
                "tag_concurrency_limits": concurrency["runs"]["tagConcurrencyLimits"],
            },
            "pools": {_snake(k): v for k, v in concurrency["pools"].items()},
        },
        "run_monitoring": {_snake(k): v for k, v in daemon["runMonitoring"].items()},
        "run_retries": {_snake(k): v for k, v in daemon["runRetries"].items()},
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }


def test_helm_values_render_a_valid_instance_matching_deploy_dagster_yaml():
    """What the chart makes of our values passes Dagster's own instance and K8sRunLauncher
    config schemas, and queues, limits, pools, monitoring and retries equal those of
    deploy/dagster.yaml: Kubernetes and compose behave alike, except the publish pool's
    limit: 1 on Kubernetes (the DuckDB file is on a network volume: the pool alone
    serialises writers), 2 on one host (the writers' lock serialises the two)."""
    rendered = _render_instance(HELM)
    result = validate_config(dagster_instance_config_schema(), rendered)
    assert result.success, result.errors
    launcher = validate_config(K8sRunLauncher.config_type(), rendered["run_launcher"]["config"])
    assert launcher.success, launcher.errors
    container = rendered["run_launcher"]["config"]["run_k8s_config"]["container_config"]
    # Dagster merges it into the run's container, which it names "dagster".
    container = {"name": "dagster", **container}
    k8s_model_from_dict(k8s.V1Container, k8s_snake_case_dict(k8s.V1Container, container))
    assert rendered["concurrency"]["pools"].pop("default_limit") == 1
    one_host = {**INSTANCE["concurrency"], "pools": dict(INSTANCE["concurrency"]["pools"])}
    assert one_host["pools"].pop("default_limit") == 2
    assert rendered["concurrency"] == one_host
    for section in ("run_monitoring", "run_retries", "telemetry"):
        assert rendered[section] == INSTANCE[section], section
    assert rendered["run_coordinator"]["config"] == INSTANCE["run_queue"]
    # The same database; on one host through our pooled storage class (the chart only
    # writes Dagster's own, which opens a connection per statement).
    pooled = INSTANCE["storage"]["custom"]
    assert (pooled["module"], pooled["class"]) == (
        "jf_pipeline.pg_storage",
        "PooledPostgresStorage",
    )
    scheme = rendered["storage"]["postgres"]["postgres_db"]["scheme"]
    assert scheme == pooled["config"]["postgres_db"]["scheme"]
    # The limits name things that exist: the sensor's tenant tag, and one pool for the only
    # pooled step, the DuckDB writer.
    limits = INSTANCE["concurrency"]["runs"]["tag_concurrency_limits"]
    assert [limit["key"] for limit in limits] == [TENANT_TAG]
    from jf_pipeline.definitions import all_assets

    assert {a.op.pool for a in all_assets if a.op.pool} == {WAREHOUSE_POOL}


def test_the_production_instance_holds_its_postgres_connections_open(
    tmp_path, postgres_server, monkeypatch
):
    """Protects PooledPostgresStorage (jf_pipeline/pg_storage.py): deploy/dagster.yaml's
    instance stores a run's events over a connection it keeps, where Dagster's own class
    opens a PostgreSQL connection per statement (a new backend process each, over a hundred
    per small run). Both instances store the same 30 events and read them back."""
    import sqlalchemy
    from dagster import DagsterInstance, DagsterRun

    database = postgres_server.create_database()
    for key, value in postgres_server.instance_env(database).items():
        monkeypatch.setenv(key, value)
    ours = {k: v for k, v in INSTANCE.items() if k != "run_launcher"}
    dagsters = {**ours, "storage": {"postgres": ours["storage"]["custom"]["config"]}}
    opened = {}
    for name, config in (("ours", ours), ("dagster's", dagsters)):
        home = tmp_path / name
        home.mkdir()
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        with DagsterInstance.from_config(str(home)) as instance:
            storage = instance.event_log_storage
            connections = []
            sqlalchemy.event.listen(
                storage._engine, "connect", lambda *a, seen=connections: seen.append(1)
            )
            run = instance.add_run(DagsterRun(job_name="probe", run_id=str(uuid.uuid4())))
            for i in range(30):
                instance.report_engine_event(f"event {i}", run)
            opened[name] = len(connections)
            # PostgreSQL drops every connection (a restart, a failover): the next event is
            # stored all the same, over a new connection.
            with postgres_server.connect(database) as admin, admin.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    [database],
                )
            instance.report_engine_event("after the drop", run)
            logged = instance.all_logs(run.run_id)
            expected = [f"event {i}" for i in range(30)] + ["after the drop"]
            assert [e.message for e in logged] == expected
    assert opened["dagster's"] >= 30  # what the pool saves: one connection per statement
    assert opened["ours"] <= 2, opened


def test_helm_user_deployment_refers_to_what_exists():
    """The code location's image, module, variables, secrets and volumes in the Helm values
    resolve to the Dockerfile's image, importable code, our settings table, and objects in
    deploy/k8s/jf-pipeline.yaml that the Kubernetes client accepts."""
    for manifest in MANIFESTS:
        model = getattr(k8s, f"V1{manifest['kind']}")
        k8s_model_from_dict(model, k8s_snake_case_dict(model, manifest))

    (deployment,) = HELM["dagster-user-deployments"]["deployments"]
    assert deployment["image"]["repository"].rsplit("/", 1)[-1] == IMAGE
    _assert_code_location(_module_of(deployment["dagsterApiGrpcArgs"]))
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert set(env) <= KNOWN_ENV, set(env) - KNOWN_ENV
    for var in ("JF_LANDING", "JF_STORAGE"):
        # Runs are separate pods: the landing zone and intermediate results are in S3.
        assert env[var].startswith("s3://"), var
    for secret in deployment["envSecrets"]:
        data = _manifest("Secret", secret["name"])["stringData"]
        assert set(data) <= KNOWN_ENV
    password = _manifest("Secret", HELM["global"]["postgresqlSecretName"])
    assert "postgresql-password" in password["stringData"]
    assert HELM["generatePostgresqlPasswordSecret"] is False
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True

    volumes = {v["name"]: v for v in deployment["volumes"]}
    for mount in deployment["volumeMounts"]:
        volume = volumes[mount["name"]]
        claim = _manifest("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
        assert "ReadWriteMany" in claim["spec"]["accessModes"]
        assert env["JF_WAREHOUSE"].startswith(mount["mountPath"] + "/")


def test_dev_instance_limits_runs_per_tenant_and_frees_dead_slots_like_production():
    """`make dev` (dagster_home/dagster.yaml) serialises a tenant's runs and frees the pool
    slots of dead runs as production does: without the tenant limit, a run for an earlier
    version could publish after the run for the newer one."""
    dev = _yaml(PROJECT / "dagster_home" / "dagster.yaml")
    runs, prod_runs = dev["concurrency"]["runs"], INSTANCE["concurrency"]["runs"]
    assert runs["tag_concurrency_limits"] == prod_runs["tag_concurrency_limits"]
    assert runs["tag_concurrency_limits"][0]["key"] == TENANT_TAG
    assert dev["concurrency"]["pools"] == INSTANCE["concurrency"]["pools"]
    assert dev.get("run_queue") == INSTANCE["run_queue"]  # launches in parallel threads
    assert dev["run_monitoring"]["enabled"] is True
    assert dev["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert dev["run_retries"]["retry_on_asset_or_op_failure"] is False
