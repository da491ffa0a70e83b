"""The S3 landing store against a moto S3 server over HTTP, through the same boto3 code
(and `AWS_ENDPOINT_URL` configuration) as production: listing, reading, versions by ETag,
the sensor and a full tenant ingestion from S3."""

from __future__ import annotations

import uuid

import boto3
import pytest

from jf_pipeline.resources import S3LandingStore, landing_store_from_uri
from jf_pipeline_tests.conftest import SAMPLE_LANDING, query, run_tenant
from jf_pipeline_tests.test_sensor import Ticker

pytestmark = pytest.mark.integration


@pytest.fixture
def bucket(s3_env):
    name = f"landing-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=name)
    for tenant_dir in SAMPLE_LANDING.iterdir():
        for path in tenant_dir.iterdir():
            client.put_object(
                Bucket=name, Key=f"drops/{tenant_dir.name}/{path.name}", Body=path.read_bytes()
            )
    return name


def test_jf_landing_s3_uri_selects_the_s3_store_with_the_endpoint(bucket, s3_env):
    store = landing_store_from_uri(f"s3://{bucket}/drops")
    assert isinstance(store, S3LandingStore)
    assert store.describe() == f"s3://{bucket}/drops/"
    assert store.s3.endpoint_url == s3_env


def test_listing_and_reading_report_key_etag_and_size(bucket):
    store = landing_store_from_uri(f"s3://{bucket}/drops")
    files = {(f.tenant, f.name): f for f in store.list_files()}
    assert ("acme", "deals.csv") in files and ("globex", "deals.csv") in files
    listed = files[("acme", "deals.csv")]
    obj = store.read("acme", "deals.csv")
    assert obj.data == (SAMPLE_LANDING / "acme" / "deals.csv").read_bytes()
    assert obj.file.version == listed.version and obj.file.key == "drops/acme/deals.csv"
    assert obj.file.size == listed.size == len(obj.data)
    assert store.read("globex", "contacts.csv") is None


def test_listing_paginates_past_a_thousand_keys(s3_env):
    name = f"many-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=name)
    for i in range(1100):
        client.put_object(Bucket=name, Key=f"t{i:04d}/deals.csv", Body=b"x")
    store = landing_store_from_uri(f"s3://{name}")
    assert len(store.list_files()) == 1100


def test_reading_refuses_names_outside_the_contract(bucket):
    store = landing_store_from_uri(f"s3://{bucket}/drops")
    with pytest.raises(ValueError):
        store.read("../acme", "deals.csv")
    with pytest.raises(ValueError):
        store.read("acme", "../../secret.csv")


def test_sensor_on_s3_sees_new_tenants_and_same_size_overwrites(bucket, instance):
    store = landing_store_from_uri(f"s3://{bucket}/drops")
    ticker = Ticker(instance, root=None)
    first = ticker.tick_with(store)
    assert sorted(r.partition_key for r in first.run_requests) == [
        "acme",
        "globex",
        "initech",
        "umbrella",
    ]
    assert ticker.tick_with(store).run_requests == []
    client = boto3.client("s3")
    key = "drops/acme/deals.csv"
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    client.put_object(Bucket=bucket, Key=key, Body=body.replace(b"D-0001", b"D-0X01", 1))
    assert [r.partition_key for r in ticker.tick_with(store).run_requests] == ["acme"]
    client.put_object(Bucket=bucket, Key=key, Body=body.replace(b"D-0001", b"D-0X01", 1))
    assert ticker.tick_with(store).run_requests == []  # identical bytes: same ETag


def test_a_tenant_ingests_from_s3_into_duckdb(bucket, warehouse_path, instance):
    store = landing_store_from_uri(f"s3://{bucket}/drops")
    assert run_tenant("initech", store, warehouse_path, instance).success
    assert query(
        warehouse_path, "SELECT count(*) FROM importable_deals WHERE tenant_id = 'initech'"
    ) == [(15,)]
    version = query(
        warehouse_path, "SELECT deals_version FROM ingestions WHERE tenant_id = 'initech'"
    )[0][0]
    etag = (
        boto3.client("s3")
        .head_object(Bucket=bucket, Key="drops/initech/deals.csv")["ETag"]
        .strip('"')
    )
    assert version == etag
