"""Approving a drop the publish guard refused: one action, recorded once.

The `approve_tenant` job (sensors.py) runs every asset of one tenant partition with this
module's typed run config on `publish_tenant`: `approve_publish: true` approves the drop
named by `landing_version`, or, left empty, the tenant's latest refused drop. The publish
applies the approval only when the files it read are exactly that drop (the fingerprint the
landing sensor and `ingestions.landing_version` use), so a newer drop than the one refused
is never approved blindly: it is judged by the guard like any other.

`jf approve TENANT` submits the same job through the Dagster instance (DAGSTER_HOME), so
the run is queued, launched by the daemon and shown in the UI with the `jf/tenant` tag, like
an approval launched from the launchpad. `jf ingest --approve` makes the same approval without
Dagster (`steps.ingest_tenant`). Every approved publish is recorded in `ingestions` (`approved`,
`approved_by`, `approved_at`, `approved_version`).
"""

from __future__ import annotations

from dagster import Config
from pydantic import Field

APPROVE_JOB = "approve_tenant"
PUBLISH_OP = "publish_tenant"


class ApprovalConfig(Config):
    """`publish_tenant`'s run config: empty for ordinary runs."""

    approve_publish: bool = Field(
        default=False,
        description="Publish this tenant's drop even though the publish guard refused it "
        "(only the drop named by landing_version, or the latest refused one).",
    )
    approved_by: str = Field(
        default="",
        description="Who approves (recorded in ingestions.approved_by); empty: the run's id.",
    )
    landing_version: str = Field(
        default="",
        description="Fingerprint of the drop to approve (ingestions.landing_version of the "
        "refused attempt); empty: the tenant's latest refused drop.",
    )


def approval_run_config(approved_by: str, landing_version: str | None) -> dict:
    """The run config that approves one drop (`landing_version`, or the latest refused)."""
    config = {"approve_publish": True, "approved_by": approved_by}
    if landing_version:
        config["landing_version"] = landing_version
    return {"ops": {PUBLISH_OP: {"config": config}}}


def submit_approval(
    instance, workspace_file: str, tenant: str, landing_version: str, approved_by: str
) -> str:
    """Submit an `approve_tenant` run of `tenant` through `instance`'s run coordinator, as
    `dagster job launch` does, with its code (the code location comes from
    `workspace_file`, the same one the webserver and daemon load, so the daemon launches the
    run like any other; its code server only logs warnings). Returns the run id."""
    from dagster import __version__
    from dagster._cli.job import _create_run
    from dagster._cli.workspace.cli_target import (
        get_code_location_from_workspace,
        get_remote_job_from_remote_repo,
        get_remote_repository_from_code_location,
        get_workspace_from_cli_opts,
    )
    from dagster_shared.cli import WorkspaceOpts

    from jf_pipeline.sensors import TENANT_TAG

    options = WorkspaceOpts(workspace=(workspace_file,))
    with get_workspace_from_cli_opts(
        instance, version=__version__, workspace_opts=options, log_level="WARNING"
    ) as workspace:
        location = get_code_location_from_workspace(workspace, None)
        repository = get_remote_repository_from_code_location(location, None)
        run = _create_run(
            instance=instance,
            code_location=location,
            remote_repo=repository,
            remote_job=get_remote_job_from_remote_repo(repository, APPROVE_JOB),
            run_config=approval_run_config(approved_by, landing_version),
            tags={TENANT_TAG: tenant, "dagster/partition": tenant},
            op_selection=None,
            run_id=None,
        )
        return instance.submit_run(run.run_id, workspace).run_id
