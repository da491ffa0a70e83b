"""Asset names and keys, made in one place (assets, checks and the sensor all use these)."""

from __future__ import annotations

from dagster import AssetKey

from jf_pipeline.contract import WAREHOUSE_TABLES, clean_name, raw_name

__all__ = ["PUBLISHED_KEYS", "clean_key", "clean_name", "raw_key", "raw_name"]


def raw_key(dataset: str) -> AssetKey:
    return AssetKey(raw_name(dataset))


def clean_key(dataset: str) -> AssetKey:
    return AssetKey(clean_name(dataset))


PUBLISHED_KEYS: list[AssetKey] = [AssetKey(table) for table in WAREHOUSE_TABLES]
"""The tables the publish step writes, in the contract's order."""
