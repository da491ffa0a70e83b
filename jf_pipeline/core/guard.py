"""The publish guard: refuse to replace a tenant's published deals with a suspicious set.

A customer's broken or half-uploaded export should not empty what their users build
projects from. The guard refuses a publish when a file was rejected as a whole, or when
the valid deal count falls by more than a share of what is published (or to zero). A data
engineer who knows the drop is real approves it for one run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from jf_pipeline.core.problems import ERROR
from jf_pipeline.settings import SETTINGS

APPROVE_TAG = "jf/approve-publish"
"""Run tag that approves one publish the guard would refuse (value `true`)."""
DEFAULT_MAX_DROP_SHARE = float(SETTINGS["JF_GUARD_MAX_DROP"].default)


@dataclass
class GuardDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    approved: bool = False
    published_deals: int = 0
    new_deals: int | None = None

    @property
    def summary(self) -> str:
        if not self.reasons:
            return f"publish {self.new_deals} deals (published now: {self.published_deals})"
        verdict = "approved by run tag" if self.approved else "refused; the published rows stay"
        return f"{verdict}: " + "; ".join(self.reasons)


def rejected_files(rejected_rows: pl.DataFrame) -> dict[str, str]:
    """file -> message, for every file rejected as a whole (an error with no row number)."""
    whole = rejected_rows.filter(pl.col("row_number").is_null() & (pl.col("severity") == ERROR))
    return dict(
        whole.group_by("file", maintain_order=True).agg(pl.col("message").first()).iter_rows()
    )


def publish_guard(
    new_deals: int | None,
    published_deals: int,
    rejected_rows: pl.DataFrame,
    *,
    approved: bool = False,
    max_drop_share: float = DEFAULT_MAX_DROP_SHARE,
) -> GuardDecision:
    """`new_deals` is None when deals could not be built (a rejected deals/accounts file)."""
    reasons = [
        f"{file} was rejected as a whole ({message})"
        for file, message in rejected_files(rejected_rows).items()
    ]
    if new_deals is not None and published_deals > 0:
        if new_deals == 0:
            reasons.append(f"the valid deal count would fall from {published_deals} to 0")
        elif new_deals < published_deals * (1 - max_drop_share):
            reasons.append(
                f"the valid deal count would fall from {published_deals} to {new_deals} "
                f"(more than {max_drop_share:.0%})"
            )
    return GuardDecision(
        passed=not reasons or approved,
        reasons=reasons,
        approved=approved and bool(reasons),
        published_deals=published_deals,
        new_deals=new_deals,
    )
