"""Asset names and keys, made in one place (assets, checks and the sensor all use these)."""

from __future__ import annotations

from dagster import AssetKey

from jf_pipeline.contract import WAREHOUSE_TABLES


def raw_name(dataset: str) -> str:
    """`raw_deals`: the landing file as delivered (metadata only)."""
    return f"raw_{dataset}"


def clean_name(dataset: str) -> str:
    """`clean_deals`: the typed, validated rows of one file."""
    return f"clean_{dataset}"


def raw_key(dataset: str) -> AssetKey:
    return AssetKey(raw_name(dataset))


def clean_key(dataset: str) -> AssetKey:
    return AssetKey(clean_name(dataset))


PUBLISHED_KEYS: list[AssetKey] = [AssetKey(table) for table in WAREHOUSE_TABLES]
"""The tables the publish step writes, in the contract's order."""
