"""`jf ingest` as the contract describes it: headless runs of the same assets, a summary,
only changed tenants, idempotent reruns and a non-zero exit when a tenant fails."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jf_pipeline.cli import main
from jf_pipeline_tests.conftest import PROJECT, SAMPLE_TENANTS, query

pytestmark = pytest.mark.integration

TABLES = ["importable_deals", "importable_contacts", "accounts", "rejected_rows"]


def snapshot(warehouse: str) -> dict[str, list]:
    """The published rows, without the id of the ingestion that wrote them."""
    return {
        t: query(warehouse, f"SELECT * EXCLUDE (ingestion_id) FROM {t} ORDER BY ALL")  # noqa: S608
        for t in TABLES
    }


def test_ingest_twice_prints_summary_and_leaves_the_same_rows(landing_root, warehouse_path, capsys):
    assert main(["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == [
        "tenant",
        "outcome",
        "deals",
        "rejected",
        "accounts",
        "contacts",
        "errors",
        "warnings",
    ]
    assert [line.split()[0] for line in lines[2:]] == SAMPLE_TENANTS
    assert "initech   published  15     4" in out
    first = snapshot(warehouse_path)
    assert len(first["importable_deals"]) == 30 + 20 + 15 + 12

    assert main(["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path]) == 0
    assert "nothing to ingest" in capsys.readouterr().out
    assert (
        main(["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path, "--all"])
        == 0
    )
    assert snapshot(warehouse_path) == first


def test_only_changed_tenants_are_ingested(landing_of, warehouse_path, capsys):
    landing_root = landing_of("acme", "globex")
    main(["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path])
    capsys.readouterr()
    contacts = landing_root / "acme" / "contacts.csv"
    # 40 -> 30 contacts: a change within the publish guard's allowed drop.
    contacts.write_text("\n".join(contacts.read_text().splitlines()[:31]) + "\n")
    assert main(["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["acme"]
    assert query(
        warehouse_path, "SELECT count(*) FROM importable_contacts WHERE tenant_id = 'acme'"
    ) == [(30,)]


def test_unknown_or_invalid_named_tenant_fails_but_others_run(landing_root, warehouse_path, capsys):
    code = main(
        [
            "ingest",
            "--landing",
            str(landing_root),
            "--warehouse",
            warehouse_path,
            "--tenant",
            "globex",
            "--tenant",
            "../etc",
            "--tenant",
            "nobody",
        ]
    )
    assert code == 1
    captured = capsys.readouterr()
    assert "no landing folder for tenant '../etc'" in captured.err
    assert "no landing folder for tenant 'nobody'" in captured.err
    assert query(warehouse_path, "SELECT DISTINCT tenant_id FROM importable_deals") == [("globex",)]


def test_a_failing_tenant_exits_non_zero_and_the_others_still_publish(
    landing_root, tmp_path, capsys
):
    # A directory where the DuckDB file should be makes every publish fail.
    bad_warehouse = tmp_path / "is_a_directory.duckdb"
    bad_warehouse.mkdir()
    code = main(
        [
            "ingest",
            "--landing",
            str(landing_root),
            "--warehouse",
            str(bad_warehouse),
            "--tenant",
            "acme",
        ]
    )
    assert code == 1
    assert "failed" in capsys.readouterr().out


def test_invalid_tenant_folders_are_reported_and_skipped(landing_of, warehouse_path, capsys):
    landing_root = landing_of("globex")
    (landing_root / "Bad Name").mkdir()
    (landing_root / "Bad Name" / "deals.csv").write_text("x\n")
    assert main(["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path]) == 0
    assert "skipped landing folder 'Bad Name'" in capsys.readouterr().err
    assert query(warehouse_path, "SELECT DISTINCT tenant_id FROM ingestions") == [("globex",)]


def test_the_installed_jf_command_runs(landing_root, warehouse_path):
    jf = PROJECT / ".venv" / "bin" / "jf"
    command = [str(jf)] if jf.exists() else [sys.executable, "-m", "jf_pipeline.cli"]
    result = subprocess.run(
        [
            *command,
            "ingest",
            "--landing",
            str(landing_root),
            "--warehouse",
            warehouse_path,
            "--tenant",
            "umbrella",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "umbrella  published  12" in result.stdout
    help_text = subprocess.run(
        [*command, "ingest", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "--landing" in help_text.stdout and "Exit codes" in help_text.stdout


def test_a_refused_publish_exits_non_zero_until_approved(landing_of, warehouse_path, capsys):
    landing_root = landing_of("globex")
    assert main(["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path]) == 0
    deals = landing_root / "globex" / "deals.csv"
    deals.write_text("".join(deals.read_text().splitlines(keepends=True)[:3]))  # 20 -> 2 deals
    capsys.readouterr()
    assert main(["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path]) == 1
    captured = capsys.readouterr()
    assert [line.split()[:2] for line in captured.out.splitlines()[2:]] == [["globex", "refused"]]
    assert "publish_guard" in captured.err
    assert "from 20 to 2" in captured.err
    assert (
        main(["ingest", "--landing", str(landing_root), "--warehouse", warehouse_path, "--approve"])
        == 2
    )
    args = [
        "ingest",
        "--landing",
        str(landing_root),
        "--warehouse",
        warehouse_path,
        "--tenant",
        "globex",
        "--approve",
    ]
    assert main(args) == 0
    assert query(
        warehouse_path, "SELECT count(*) FROM importable_deals WHERE tenant_id = 'globex'"
    ) == [(2,)]
    approved = query(
        warehouse_path,
        "SELECT approved, approved_by LIKE '%(jf ingest --approve)', "
        "approved_version = landing_version FROM ingestions ORDER BY finished_at DESC LIMIT 1",
    )
    assert approved == [(True, True, True)]  # recorded as every approval is


def test_jf_approve_submits_the_approve_job_for_the_refused_drop_only(
    landing_of, warehouse_path, tmp_path, monkeypatch, capsys
):
    """`jf approve TENANT` is one action that goes through Dagster: it submits an
    approve_tenant run for the tenant's partition to the instance in DAGSTER_HOME (queued
    for the daemon, tagged jf/tenant), naming the refused drop's fingerprint. It refuses,
    submitting nothing, for an unknown tenant, a tenant whose latest drop was not refused,
    files that changed since the refusal and a paused tenant. (The daemon launching the same
    job from the launchpad: test_daemon.py.)"""
    from dagster import DagsterInstance, DagsterRunStatus

    landing_root = landing_of("globex")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT / "dagster_home" / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    where = ["--landing", str(landing_root), "--warehouse", warehouse_path]
    approve = ["approve", "globex", *where, "--workspace", str(PROJECT / "workspace.yaml")]
    assert main(["ingest", *where]) == 0
    capsys.readouterr()
    assert main(approve) == 1
    assert "nothing to approve: its latest publish attempt was published" in capsys.readouterr().err
    assert main(["approve", "Globex", *where]) == 1
    assert "did you mean 'globex'?" in capsys.readouterr().err

    deals = landing_root / "globex" / "deals.csv"
    original = deals.read_text()
    cut = "".join(original.splitlines(keepends=True)[:3])  # 20 -> 2 deals: refused
    deals.write_text(cut)
    assert main(["ingest", *where]) == 1
    refused = query(
        warehouse_path, "SELECT landing_version FROM ingestions WHERE outcome = 'refused'"
    )
    deals.write_text(cut + original.splitlines(keepends=True)[3])  # a newer drop meanwhile
    capsys.readouterr()
    assert main(approve) == 1
    assert "not approved: the files changed since the refused drop" in capsys.readouterr().err
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs() == []

    deals.write_text(cut)  # the refused drop again
    assert main(["tenant", "pause", "globex", "--landing", str(landing_root)]) == 0
    capsys.readouterr()
    assert main(approve) == 1  # a paused tenant's drops are not ingested, approved or not
    assert "not approved: tenant paused" in capsys.readouterr().err
    assert main(["tenant", "resume", "globex", "--landing", str(landing_root)]) == 0
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs() == []
    capsys.readouterr()
    assert main([*approve, "--json"]) == 0
    submitted = json.loads(capsys.readouterr().out)
    assert submitted["landing_version"] == refused[0][0]
    with DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
    assert run.run_id == submitted["run_id"] and run.job_name == "approve_tenant"
    assert run.status == DagsterRunStatus.QUEUED  # the daemon launches it, as any run
    assert run.tags["jf/tenant"] == run.tags["dagster/partition"] == "globex"
    config = run.run_config["ops"]["publish_tenant"]["config"]
    assert config["approve_publish"] is True and config["landing_version"] == refused[0][0]
    assert config["approved_by"].endswith("(jf approve)")
