"""What one publish of a tenant will do, decided without touching anything.

`plan_publish` takes the clean files, what the warehouse holds for the tenant now, and the
policy (threshold, approval), and returns a `PublishPlan`: the tables to write (or keep),
the guard's verdict with its reason, the `ingestions` row, the counts, and the import
report for the customer. The Dagster asset and `jf ingest` only carry it out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from jf_pipeline.contract import INGESTION_ID
from jf_pipeline.core.cleaning import CleanTable
from jf_pipeline.core.guard import DEFAULT_MAX_DROP_SHARE, GuardDecision, publish_guard
from jf_pipeline.core.landing import LandingFile, file_versions
from jf_pipeline.core.publication import publication
from jf_pipeline.core.report import error_files, import_report

REFUSED_COUNTS = ("deals_published", "accounts_published", "contacts_published")
"""Nothing of these was published when the guard refused; the counts stay empty."""


@dataclass(frozen=True)
class PublishedState:
    """What the warehouse holds for the tenant before this publish."""

    baseline: dict[str, int]
    """dataset -> the count a new drop is compared with (see `Writer.guard_baseline`)."""
    account_ids: Callable[[], pl.Series]
    """The published account ids, asked only when a rejected file keeps them as reference."""
    refused_version: str | None = None
    """The landing_version of the tenant's latest publish attempt when the guard refused it
    (what an approval without a version of its own approves), else None."""


@dataclass(frozen=True)
class PublishPolicy:
    max_drop_share: float = DEFAULT_MAX_DROP_SHARE
    approved: bool = False
    """An engineer approved a publish the guard would refuse: the drop named by
    `approved_version`, or else the tenant's latest refused drop. The approval applies only
    when the files read are exactly that drop, so a newer drop is never approved blindly."""
    approved_by: str | None = None
    approved_version: str | None = None
    """The landing_version (fingerprint) the approval is for."""
    default_owner: str | None = None
    """The tenant's default owner e-mail for owners users.csv cannot resolve (None: errors)."""
    settings_version: int | None = None
    """The tenant's settings version applied by this run (None: never set)."""


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    started_at: datetime | None
    finished_at: datetime


@dataclass
class PublishPlan:
    tables: dict[str, pl.DataFrame | None]
    """Table -> the tenant's new rows; None keeps the published rows (rejected file)."""
    rejected_rows: pl.DataFrame
    guard: GuardDecision
    outcome: str
    """`published`, `partial` (a rejected file kept some tables) or `refused` (the guard)."""
    counts: dict[str, int | None]
    ingestion: dict
    report: tuple[bytes, bytes] = field(repr=False, default=(b"", b""))
    """(import report CSV, summary text) for the tenant's landing folder."""
    approval_note: str | None = None
    """Why an approval this run carried did not apply (see `approval_for`), else None."""
    error_files: dict[str, bytes] = field(repr=False, default_factory=dict)
    """Data Loader style error files (name -> CSV), one per file of the drop."""


@dataclass(frozen=True)
class Approval:
    applies: bool
    version: str | None
    """The landing_version the approval was for (None: nothing to approve)."""
    note: str | None = None
    """Why a requested approval does not apply."""


def approval_for(policy: PublishPolicy, state: PublishedState, landing_version: str) -> Approval:
    """Whether this run's approval covers the files it read: only the drop it names (the
    tenant's latest refused drop unless the policy names one) is approved, so files that
    changed since the refusal (a newer drop) are judged by the guard as usual."""
    if not policy.approved:
        return Approval(False, None)
    version = policy.approved_version or state.refused_version
    if version is None:
        return Approval(False, None, "the approval did not apply: no refused drop to approve")
    if version != landing_version:
        return Approval(
            False,
            version,
            f"the approval was for the drop {version} but the files read are {landing_version} "
            "(they changed since): not approved",
        )
    return Approval(True, version)


def stamp_ingestion(
    tables: dict[str, pl.DataFrame | None], run_id: str | None
) -> dict[str, pl.DataFrame | None]:
    """Every row to write carries `ingestion_id`: the run id its `ingestions` row is logged
    under (like dlt's `_dlt_load_id`), so any published row leads to the publish that wrote
    it, and from there to the files, their versions and any approval."""
    column = INGESTION_ID.name
    return {
        name: None if frame is None else frame.with_columns(pl.lit(run_id, pl.String).alias(column))
        for name, frame in tables.items()
    }


def plan_publish(
    tenant: str,
    clean: dict[str, CleanTable],
    sources: dict[str, LandingFile | None],
    state: PublishedState,
    policy: PublishPolicy,
    run: RunInfo,
) -> PublishPlan:
    """Apply the cross-file rules and the publish guard; say what to write.

    `clean` maps each file's dataset (`deals`, `accounts`, `contacts`, optionally `users`)
    to its clean table, `sources` to the landing file it came from (None when absent). A
    refused publish still replaces `rejected_rows`, so the customer's admin sees why; every
    other table keeps its published rows.
    """
    result = publication(
        clean["deals"],
        clean["accounts"],
        clean["contacts"],
        state.account_ids,
        users=clean.get("users"),
        default_owner=policy.default_owner,
    )
    frames = {
        "deals": result.importable_deals,
        "accounts": result.accounts,
        "contacts": result.importable_contacts,
    }
    new_counts = {d: None if f is None else f.height for d, f in frames.items()}
    landing_version = file_versions({f"{d}.csv": f for d, f in sources.items() if f})
    approval = approval_for(policy, state, landing_version)
    guard = publish_guard(
        new_counts["deals"],
        state.baseline.get("deals", 0),
        result.rejected_rows,
        approved=approval.applies,
        max_drop_share=policy.max_drop_share,
        new_counts=new_counts,
        baseline=state.baseline,
    )
    tables = result.tables() if guard.passed else {"rejected_rows": result.rejected_rows}
    reason = guard.reason
    if approval.note and not guard.passed:
        reason = f"{reason}; {approval.note}"
    tables = stamp_ingestion(tables, run.run_id)
    outcome = result.outcome if guard.passed else "refused"
    counts = {**result.counts(), **({} if guard.passed else dict.fromkeys(REFUSED_COUNTS))}
    ingestion = {
        "run_id": run.run_id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "outcome": outcome,
        "landing_version": landing_version,
        **{f"{d}_version": f.version if f else None for d, f in sources.items()},
        **{f"{d}_key": f.key if f else None for d, f in sources.items()},
        **{f"{d}_size": f.size if f else None for d, f in sources.items()},
        **counts,
        **{f"{d}_in_drop": n for d, n in new_counts.items()},
        "settings_version": policy.settings_version,
        "reason": reason,
        "approved": guard.approved,
        "approved_by": (policy.approved_by or "approved") if guard.approved else None,
        "approved_at": run.finished_at if guard.approved else None,
        "approved_version": approval.version if policy.approved else None,
    }
    report = import_report(
        tenant,
        result.rejected_rows,
        outcome,
        {**counts, **ingestion},
        reason=reason,
        files=sources,
        imported_at=run.finished_at,
    )
    present = {d for d, f in sources.items() if f is not None and f.present}
    return PublishPlan(
        tables,
        result.rejected_rows,
        guard,
        outcome,
        counts,
        ingestion,
        report,
        approval.note,
        error_files(result.rejected_rows, clean, present),
    )
