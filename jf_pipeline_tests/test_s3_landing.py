"""The S3 landing store against a moto S3 server over HTTP, through the same boto3 code
(and `AWS_ENDPOINT_URL` configuration) as production: listing, reading, versions by ETag,
the sensor and a full tenant ingestion from S3."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from jf_pipeline.core.landing import survey
from jf_pipeline.resources import S3, S3LandingStore, landing_store_from_uri
from jf_pipeline_tests.conftest import SAMPLE_LANDING, query, run_tenant, sample_files
from jf_pipeline_tests.test_sensor import Ticker

pytestmark = pytest.mark.integration


@pytest.fixture
def bucket(s3_env):
    name = f"landing-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=name)
    for tenant_dir in SAMPLE_LANDING.iterdir():
        for path in sample_files(tenant_dir):
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


def test_reading_refuses_names_outside_the_contract(bucket):
    store = landing_store_from_uri(f"s3://{bucket}/drops")
    with pytest.raises(ValueError):
        store.read("../acme", "deals.csv")
    with pytest.raises(ValueError):
        store.read("acme", "../../secret.csv")


@pytest.fixture
def s3_ticker(persistent_instance, monkeypatch):
    return Ticker(persistent_instance, root=None)


def test_sensor_on_s3_sees_new_tenants_and_same_size_overwrites(bucket, s3_ticker):
    store = landing_store_from_uri(f"s3://{bucket}/drops")
    first = s3_ticker.tick_with(store)
    assert sorted(r.partition_key for r in first.run_requests) == [
        "acme",
        "globex",
        "initech",
        "umbrella",
    ]
    assert s3_ticker.tick_with(store).run_requests == []
    client = boto3.client("s3")
    key = "drops/acme/deals.csv"
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    changed = body.replace(b"D-0001", b"D-0X01", 1)
    assert len(changed) == len(body)
    client.put_object(Bucket=bucket, Key=key, Body=changed)  # same size, same second
    assert [r.partition_key for r in s3_ticker.tick_with(store).run_requests] == ["acme"]
    client.put_object(Bucket=bucket, Key=key, Body=changed)
    assert s3_ticker.tick_with(store).run_requests == []  # identical bytes: same ETag


def test_sensor_on_s3_deleted_unrelated_and_invalid_keys(bucket, s3_ticker):
    store = landing_store_from_uri(f"s3://{bucket}/drops")
    s3_ticker.tick_with(store)
    client = boto3.client("s3")
    client.put_object(Bucket=bucket, Key="drops/acme/import_report.csv", Body=b"ours")
    client.put_object(Bucket=bucket, Key="drops/acme/archive/deals.csv", Body=b"old")
    client.put_object(Bucket=bucket, Key="drops/README.txt", Body=b"hello")
    assert s3_ticker.tick_with(store).run_requests == []  # nothing we own changed
    for bad in ("Acme Corp", "x'; drop table importable_deals; --", "caf\u00e9", "..."):
        client.put_object(Bucket=bucket, Key=f"drops/{bad}/deals.csv", Body=b"Name\nX\n")
    assert s3_ticker.tick_with(store).run_requests == []
    assert sorted(s3_ticker.instance.get_dynamic_partitions("tenants")) == [
        "acme",
        "globex",
        "initech",
        "umbrella",
    ]
    client.delete_object(Bucket=bucket, Key="drops/initech/contacts.csv")
    requests = s3_ticker.tick_with(store).run_requests
    assert [(r.partition_key, r.tags["jf/changed"]) for r in requests] == [
        ("initech", "contacts.csv")
    ]


def test_sensor_on_s3_waits_for_three_uploads_to_settle(bucket, s3_ticker, monkeypatch):
    s3_ticker.settle_seconds = 10.0
    store = landing_store_from_uri(f"s3://{bucket}/drops")
    s3_ticker.advance(60)  # the sample objects are a minute old to the sensor
    assert len(s3_ticker.tick_with(store).run_requests) == 4
    client = boto3.client("s3")
    for name in ("deals.csv", "accounts.csv", "contacts.csv"):
        client.put_object(
            Bucket=bucket,
            Key=f"drops/newco/{name}",
            Body=(SAMPLE_LANDING / "acme" / name).read_bytes(),
        )
        s3_ticker.advance(-60 if name == "deals.csv" else 0)  # back to real time for the uploads
        assert s3_ticker.tick_with(store).run_requests == []
        s3_ticker.advance(3)
    s3_ticker.advance(11)
    requests = s3_ticker.tick_with(store).run_requests
    assert [r.partition_key for r in requests] == ["newco"]


def test_sensor_on_s3_paginates_past_a_thousand_tenants(s3_env, s3_ticker):
    name = f"wide-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=name)
    with ThreadPoolExecutor(8) as pool:  # boto3 clients are thread-safe
        list(
            pool.map(
                lambda i: client.put_object(Bucket=name, Key=f"t{i:04d}/deals.csv", Body=b"N\n"),
                range(1050),
            )
        )
    data = s3_ticker.tick_with(landing_store_from_uri(f"s3://{name}"))
    assert len(data.run_requests) == 1050
    assert len(s3_ticker.instance.get_dynamic_partitions("tenants")) == 1050


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


def test_jf_ingest_reads_an_s3_landing_zone(bucket, warehouse_path, capsys):
    from jf_pipeline.cli import main

    assert (
        main(
            ["ingest", "--landing", f"s3://{bucket}/drops", "--warehouse", warehouse_path, "--json"]
        )
        == 0
    )
    rows = {r["tenant_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert {t: r["deals_published"] for t, r in rows.items()} == {
        "acme": 30,
        "globex": 20,
        "initech": 15,
        "umbrella": 12,
    }
    assert rows["acme"]["deals_key"] == "drops/acme/deals.csv"
    etag = (
        boto3.client("s3").head_object(Bucket=bucket, Key="drops/acme/deals.csv")["ETag"].strip('"')
    )
    assert rows["acme"]["deals_version"] == etag
    assert rows["acme"]["deals_size"] == (SAMPLE_LANDING / "acme" / "deals.csv").stat().st_size
    # The import report went back to the tenant's folder in the bucket.
    keys = {
        o["Key"]
        for o in boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="drops/initech/")[
            "Contents"
        ]
    }
    assert "drops/initech/jointflows_import_report.csv" in keys


_GET_BODIES: list = []


class ObservedS3(S3):
    """The real S3 resource; every GetObject response body is kept so a test can see how
    much of it was read (botocore's own counter). Nothing is replaced or faked."""

    def get_client(self):
        client = super().get_client()  # one client per resource object, made once

        def keep(parsed, **_):
            if "Body" in parsed:  # an error response (NoSuchKey: no users.csv) has none
                _GET_BODIES.append(parsed["Body"])

        # Registered under one id, so asking for the client again adds no second observer.
        client.meta.events.register("after-call.s3.GetObject", keep, unique_id="observe-get")
        return client


def test_an_object_over_the_size_limit_is_rejected_from_its_headers_body_unread(
    bucket, warehouse_path, instance, monkeypatch
):
    store = S3LandingStore(bucket=bucket, prefix="drops", s3=ObservedS3(), max_file_mb=1)
    assert run_tenant("initech", store, warehouse_path, instance).success
    big = b"x" * (3 * 2**20)
    boto3.client("s3").put_object(Bucket=bucket, Key="drops/initech/deals.csv", Body=big)

    _GET_BODIES.clear()
    obj = store.read("initech", "deals.csv")
    assert obj.data is None and obj.problem[0] == "file_too_large"
    assert "3 MB" in obj.problem[1] and obj.file.size == len(big)
    assert [body._amount_read for body in _GET_BODIES] == [0]

    assert not run_tenant("initech", store, warehouse_path, instance).success
    assert query(
        warehouse_path, "SELECT count(*) FROM importable_deals WHERE tenant_id = 'initech'"
    ) == [(15,)]
    assert query(
        warehouse_path,
        "SELECT file, reason FROM rejected_rows WHERE tenant_id = 'initech' AND file = 'deals.csv'",
    ) == [("deals.csv", "file_too_large")]


def test_look_alike_keys_on_s3_are_reported_to_the_customer(bucket, warehouse_path, instance):
    client = boto3.client("s3")
    body = (SAMPLE_LANDING / "acme" / "contacts.csv").read_bytes()
    client.put_object(Bucket=bucket, Key="drops/globex/Contacts.csv", Body=body)
    store = landing_store_from_uri(f"s3://{bucket}/drops")
    found = survey(store.list_files()).tenants["globex"]
    assert found["contacts.csv"].ignored == ("Contacts.csv",)
    assert not found["contacts.csv"].present  # globex has no contacts.csv of its own

    assert run_tenant("globex", store, warehouse_path, instance).success
    assert query(
        warehouse_path,
        "SELECT file, reason, value FROM rejected_rows WHERE tenant_id = 'globex' "
        "AND reason = 'ignored_file'",
    ) == [("contacts.csv", "ignored_file", "Contacts.csv")]
    assert query(
        warehouse_path, "SELECT count(*) FROM importable_contacts WHERE tenant_id = 'globex'"
    ) == [(0,)]
    report = client.get_object(Bucket=bucket, Key="drops/globex/jointflows_import_report.csv")
    assert "'Contacts.csv' was ignored" in report["Body"].read().decode("utf-8-sig")


def test_dated_reports_on_s3_keep_the_last_five(bucket, warehouse_path, instance):
    client = boto3.client("s3")
    for day in range(1, 7):
        for kind, ext in (("report", "csv"), ("summary", "txt")):
            key = f"drops/acme/jointflows_import_{kind}_2026010{day}T000000Z.{ext}"
            client.put_object(Bucket=bucket, Key=key, Body=b"old")
    client.put_object(Bucket=bucket, Key="drops/acme/jointflows_import_report_x.csv", Body=b"x")
    store = landing_store_from_uri(f"s3://{bucket}/drops")
    assert run_tenant("acme", store, warehouse_path, instance).success
    keys = [
        o["Key"].removeprefix("drops/acme/")
        for o in client.list_objects_v2(Bucket=bucket, Prefix="drops/acme/jointflows_import_")[
            "Contents"
        ]
    ]
    dated = [
        k
        for k in keys
        if k.startswith(("jointflows_import_report_2", "jointflows_import_summary_2"))
    ]
    assert len(dated) == 10
    assert "jointflows_import_report_20260102T000000Z.csv" not in keys
    assert "jointflows_import_report_20260103T000000Z.csv" in keys
    assert {"jointflows_import_report.csv", "jointflows_import_report_x.csv"} <= set(keys)
