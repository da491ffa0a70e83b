"""docs/contract.md and jf_pipeline/contract.py state the same contract.

The document is what users read; the code is what runs. These tests protect against the
two drifting apart: a column added, renamed or made optional in one place only."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from jf_pipeline.contract import FILES, WAREHOUSE_TABLES

PROJECT = Path(__file__).resolve().parents[1]
DOC = (PROJECT / "docs" / "contract.md").read_text(encoding="utf-8")


def _names(text: str) -> list[str]:
    return re.findall(r"`([A-Za-z_]+)`", text)


def _bullet(title: str) -> str:
    """The text of the bullet that starts with **title**, up to the next bullet."""
    match = re.search(rf"^- \*\*{re.escape(title)}\*\*(.*?)(?=^- |^#|^$|\Z)", DOC, re.M | re.S)
    assert match, f"docs/contract.md has no bullet for {title}"
    return " ".join(match.group(1).split())


@pytest.mark.parametrize("dataset", sorted(FILES))
def test_file_columns_in_the_doc_match_the_code(dataset: str) -> None:
    spec = FILES[dataset]
    text = _bullet(spec.file_name)
    required_text, _, optional_text = text.partition("Optional:")
    assert _names(required_text) == spec.required
    assert _names(optional_text) == [c.name for c in spec.columns if not c.required]


@pytest.mark.parametrize("table", sorted(WAREHOUSE_TABLES))
def test_warehouse_columns_in_the_doc_match_the_code(table: str) -> None:
    keys, columns = WAREHOUSE_TABLES[table]
    text = _bullet(table)
    key_text = re.match(r", key \(([^)]*)\)", text)
    if keys:
        assert key_text and _names(key_text.group(1)) == list(keys)
        text = text[key_text.end() :]
    listed = _names(text.split(".", 1)[0] if table != "rejected_rows" else text.split(". ", 1)[0])
    assert listed == [name for name, _ in columns]
    for name, duck_type in columns:
        if duck_type in ("DATE", "DECIMAL(18,2)"):
            assert f"`{name}` {duck_type}" in text, (
                f"{table}.{name} should be documented as {duck_type}"
            )


def test_nothing_tracked_points_outside_the_repository() -> None:
    """Every file the project runs, tests or links lives in the clone (issue #12)."""
    out = subprocess.run(
        ["git", "grep", "-n", "-I", r"\.\./shared"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    if out.returncode == 128:  # not a git checkout (an sdist): nothing to check
        pytest.fail(f"git grep failed: {out.stderr.strip()}")
    assert out.stdout == "", out.stdout


def test_readme_links_resolve_inside_the_repository() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    assert links, "the README links nothing: the pattern is broken"
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        target = (PROJECT / link).resolve()
        assert target.is_relative_to(PROJECT), f"README links outside the repository: {link}"
        assert target.exists(), f"README links a missing file: {link}"
