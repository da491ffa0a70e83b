"""The committed sample tenants are exactly what the committed generator writes, so the
demo data can be rebuilt and reviewed as code."""

from __future__ import annotations

import runpy

from jf_pipeline_tests.conftest import PROJECT, SAMPLE_LANDING, SAMPLE_TENANTS, is_run_output


def test_sample_landing_matches_the_deterministic_generator(tmp_path):
    generator = runpy.run_path(str(PROJECT / "scripts" / "make_sample_data.py"))
    generator["write"](tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(SAMPLE_LANDING)
        for p in SAMPLE_LANDING.rglob("*")
        if p.is_file() and not is_run_output(p.name)
    )
    assert written == committed
    for relative in written:
        assert (tmp_path / relative).read_bytes() == (SAMPLE_LANDING / relative).read_bytes(), (
            relative
        )
    assert sorted(p.name for p in SAMPLE_LANDING.iterdir()) == SAMPLE_TENANTS
