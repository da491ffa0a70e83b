"""The publish guard: refuse to replace a tenant's published rows with a suspicious set.

A customer's broken or half-uploaded export should not empty what their users build
projects from. The guard refuses a publish when a file was rejected as a whole, or when
the valid count of deals, accounts or contacts falls by more than a share of its baseline
(or to zero). The baseline is the largest count recently published (the warehouse keeps
it), not just the last one, so a series of drops each within the share cannot walk a
tenant's data down. A data engineer who knows the drop is real approves it for one run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from jf_pipeline.core.problems import ERROR

DEFAULT_MAX_DROP_SHARE = 0.5
"""The share of a baseline a drop may lose unless the caller passes another."""
GUARDED = ("deals", "accounts", "contacts")


@dataclass
class GuardDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    approved: bool = False
    published_deals: int = 0
    new_deals: int | None = None
    baseline: dict[str, int] = field(default_factory=dict)
    new_counts: dict[str, int | None] = field(default_factory=dict)

    @property
    def reason(self) -> str | None:
        """The reasons as one line (None when there is nothing to refuse)."""
        return "; ".join(self.reasons) if self.reasons else None

    @property
    def summary(self) -> str:
        if not self.reasons:
            return f"publish {self.new_deals} deals (published now: {self.published_deals})"
        verdict = "approved" if self.approved else "refused; the published rows stay"
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
    new_counts: dict[str, int | None] | None = None,
    baseline: dict[str, int] | None = None,
) -> GuardDecision:
    """`new_deals` is None when deals could not be built (a rejected deals/accounts file).

    `new_counts` and `baseline` (dataset -> count) guard accounts and contacts too; a
    dataset whose new count is None keeps its published rows and is not compared. Without
    them only deals are compared, against `published_deals`.
    """
    reasons = [
        f"{file} was rejected as a whole ({message})"
        for file, message in rejected_files(rejected_rows).items()
    ]
    new_counts = {"deals": new_deals, **(new_counts or {})}
    baseline = {"deals": published_deals, **(baseline or {})}
    for dataset in GUARDED:
        new, base = new_counts.get(dataset), baseline.get(dataset, 0)
        if new is None or base <= 0:
            continue
        noun = "deal" if dataset == "deals" else dataset.removesuffix("s")
        if new == 0:
            reasons.append(f"the valid {noun} count would fall from {base} to 0")
        elif new < base * (1 - max_drop_share):
            reasons.append(
                f"the valid {noun} count would fall from {base} to {new} "
                f"(more than {max_drop_share:.0%})"
            )
    return GuardDecision(
        passed=not reasons or approved,
        reasons=reasons,
        approved=approved and bool(reasons),
        published_deals=baseline["deals"],
        new_deals=new_deals,
        baseline=baseline,
        new_counts=new_counts,
    )
