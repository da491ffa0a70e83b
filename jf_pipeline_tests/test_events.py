"""Event-driven change detection (issue 18) against a moto server (S3 and SQS over HTTP,
the same boto3 code as production): the bucket's notifications reach the queue created by
`jf events setup`, with each object's ETag, and the landing sensor's real ticks turn them
into runs without listing the bucket. Protects: one run per upload, none for a duplicated
or re-delivered message, a lost notification caught by the next full listing, one run for
files overwritten within the settle window, messages deleted only after their tick was
committed."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from dagster import DagsterRun, DagsterRunStatus
from dagster._core.utils import make_new_run_id

from jf_pipeline import events as jf_events
from jf_pipeline import tenants as tenant_store
from jf_pipeline.contract import FILE_NAMES
from jf_pipeline.core.tenant_settings import PAUSED, TenantSettings
from jf_pipeline.landing_state import journal_key, namespace_of
from jf_pipeline.resources import S3LandingStore, landing_store_from_uri
from jf_pipeline_tests.conftest import SAMPLE_LANDING, sample_files
from jf_pipeline_tests.test_sensor import Ticker

pytestmark = pytest.mark.integration

ACME = {n: (SAMPLE_LANDING / "acme" / n).read_bytes() for n in ("deals.csv", "accounts.csv")}


@pytest.fixture
def landing(s3_env):
    """A bucket holding the acme sample under drops/, with notifications to a new queue."""
    bucket, queue = f"ev-{uuid.uuid4().hex[:12]}", f"q-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    for path in sample_files(SAMPLE_LANDING / "acme"):
        s3.put_object(Bucket=bucket, Key=f"drops/acme/{path.name}", Body=path.read_bytes())
    done = jf_events.setup(bucket, "drops", queue, s3_env, "us-east-1")
    return bucket, done


@pytest.fixture
def ticker(persistent_instance, landing):
    ticker = Ticker(persistent_instance, root=None)
    ticker.policy = {"events": landing[1]["events"], "events_wait_seconds": 0}
    return ticker


def _tick(ticker, landing):
    return ticker.tick_with(landing_store_from_uri(f"s3://{landing[0]}/drops"))


def _messages(landing) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=landing[1]["queue_url"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.fixture
def no_listing(monkeypatch):
    """After it is applied, a full listing of the landing zone fails the test."""

    def apply():
        def refuse(self):
            raise AssertionError("an event tick listed the whole landing zone")

        monkeypatch.setattr(S3LandingStore, "list_files", refuse)

    return apply


def test_an_upload_arrives_as_an_event_and_a_duplicate_or_redelivery_makes_no_second_run(
    landing, ticker, no_listing
):
    """The first tick lists (start-up reconciliation); then an upload is seen through its
    notification alone, with the run key a listing would give, and its message is deleted
    by the tick after the one that requested the run. S3 may deliver an event twice and SQS
    may deliver a message again (a tick whose result was lost never deleted it): neither
    makes a second run."""
    first = _tick(ticker, landing)
    assert [r.partition_key for r in first.run_requests] == ["acme"]
    no_listing()
    s3 = boto3.client("s3")
    s3.put_object(Bucket=landing[0], Key="drops/newco/deals.csv", Body=ACME["deals.csv"])
    data = _tick(ticker, landing)
    (request,) = data.run_requests
    assert request.partition_key == "newco" and request.tags["jf/changed"]
    assert request.run_key == f"newco:{request.tags['jf/files']}:1"
    assert ticker.instance.has_dynamic_partition("tenants", "newco")
    assert _messages(landing) >= 1  # not deleted before the tick was committed
    assert _tick(ticker, landing).run_requests == []
    assert _messages(landing) == 0

    sqs = boto3.client("sqs")
    url = landing[1]["queue_url"]
    boto3.client("s3").put_object(
        Bucket=landing[0], Key="drops/acme/deals.csv", Body=ACME["deals.csv"] + b"\n"
    )
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    committed = ticker.cursor
    (request,) = _tick(ticker, landing).run_requests
    assert request.partition_key == "acme"
    # The tick's result is lost: the next evaluation starts from the committed cursor and
    # the message comes back (made visible now instead of after the visibility timeout).
    ticker.cursor = committed
    key = journal_key(namespace_of(landing_store_from_uri(f"s3://{landing[0]}/drops").describe()))
    journal = json.loads(ticker.instance.run_storage.get_cursor_values({key})[key])
    for handle in journal["h"]:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    again = _tick(ticker, landing)
    assert [r.run_key for r in again.run_requests] == [request.run_key]  # Dagster skips it
    # The same event once more, as S3 may send it.
    sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
    assert _tick(ticker, landing).run_requests == []
    assert _tick(ticker, landing).run_requests == []
    assert _messages(landing) == 0
    # Its run failed before publishing: an event tick requests the drop again after the
    # backoff (reading only that tenant's state), as a listing tick does.
    run = ticker.instance.add_run(
        DagsterRun(
            job_name="ingest_tenant",
            run_id=make_new_run_id(),
            tags={"jf/tenant": "acme", "jf/files": request.tags["jf/files"]},
            status=DagsterRunStatus.STARTED,
        )
    )
    ticker.instance.report_run_failed(run)
    ticker.advance(61)
    (retry,) = _tick(ticker, landing).run_requests
    assert retry.run_key.startswith(f"acme:{request.tags['jf/files']}:retry-1:")


def test_a_lost_notification_is_caught_by_the_next_full_listing(landing, ticker):
    """A purged queue (or a notification never sent) loses the upload's event; the
    reconciliation listing, due after JF_RECONCILE_SECONDS, requests its run."""
    ticker.policy["reconcile_seconds"] = 600
    _tick(ticker, landing)
    boto3.client("s3").put_object(
        Bucket=landing[0], Key="drops/acme/accounts.csv", Body=ACME["accounts.csv"] + b"\n"
    )
    boto3.client("sqs").purge_queue(QueueUrl=landing[1]["queue_url"])
    assert _tick(ticker, landing).run_requests == []
    ticker.advance(601)
    (request,) = _tick(ticker, landing).run_requests
    assert (request.partition_key, request.tags["jf/changed"]) == ("acme", "accounts.csv")


def test_files_overwritten_within_the_settle_window_make_one_run(landing, ticker, no_listing):
    """deals.csv uploaded, then overwritten, then accounts.csv added, each within the settle
    window: one run once the folder has been quiet, for the last versions."""
    ticker.settle_seconds = 10.0
    ticker.advance(60)  # the sample is a minute old to the sensor
    assert len(_tick(ticker, landing).run_requests) == 1
    ticker.advance(-60)
    no_listing()
    s3 = boto3.client("s3")
    s3.put_object(Bucket=landing[0], Key="drops/lateco/deals.csv", Body=b"Name\nfirst\n")
    assert _tick(ticker, landing).run_requests == []
    ticker.advance(4)
    s3.put_object(Bucket=landing[0], Key="drops/lateco/deals.csv", Body=ACME["deals.csv"])
    assert _tick(ticker, landing).run_requests == []
    ticker.advance(4)
    s3.put_object(Bucket=landing[0], Key="drops/lateco/accounts.csv", Body=ACME["accounts.csv"])
    settling = _tick(ticker, landing)
    assert settling.run_requests == [] and "lateco: settling" in settling.skip_message
    ticker.advance(11)
    (request,) = _tick(ticker, landing).run_requests
    assert request.partition_key == "lateco"
    etag = s3.head_object(Bucket=landing[0], Key="drops/lateco/deals.csv")["ETag"]
    listed = {
        f.name: f for f in landing_store_from_uri(f"s3://{landing[0]}/drops").list_tenant("lateco")
    }
    assert listed["deals.csv"].version == etag.strip('"')
    ticker.advance(30)
    assert _tick(ticker, landing).run_requests == []


def test_events_for_files_the_pipeline_does_not_own_are_dropped_and_deleted(
    landing, ticker, no_listing
):
    """Our own reports, the operator area, other files and invalid tenant folders make no
    run and no partition; a look-alike name is found by listing that one folder."""
    _tick(ticker, landing)
    no_listing()
    s3 = boto3.client("s3")
    for key in (
        "drops/acme/jointflows_import_report.csv",
        "drops/_jointflows/tenants.json",
        "drops/acme/notes.txt",
        "drops/Bad Tenant/deals.csv",
    ):
        s3.put_object(Bucket=landing[0], Key=key, Body=b"x\n")
    data = _tick(ticker, landing)
    assert data.run_requests == []
    assert "0 event(s) for 0 tenant(s), 5 dropped" in data.skip_message  # + s3:TestEvent
    assert not ticker.instance.has_dynamic_partition("tenants", "Bad Tenant")
    s3.put_object(Bucket=landing[0], Key="drops/acme/Deals.csv", Body=b"Name\nx\n")
    (request,) = _tick(ticker, landing).run_requests
    assert (request.partition_key, request.tags["jf/changed"]) == ("acme", "deals.csv")
    _tick(ticker, landing)
    assert _messages(landing) == 0


def test_a_paused_tenants_upload_waits_for_its_resume_and_settings_plan_it(
    landing, ticker, no_listing
):
    """Tenant settings (#13) through events: an upload of a tenant first seen while paused
    is held, not lost; resuming it (its settings file's event) requests it, with its
    partition; a mapping set later re-runs it with every file, without an upload."""
    _tick(ticker, landing)
    no_listing()
    store = landing_store_from_uri(f"s3://{landing[0]}/drops")
    tenant_store.save(store, TenantSettings("pausedco", settings_version=1, status=PAUSED))
    s3 = boto3.client("s3")
    s3.put_object(Bucket=landing[0], Key="drops/pausedco/deals.csv", Body=ACME["deals.csv"])
    held = _tick(ticker, landing)
    assert held.run_requests == [] and "tenant paused" in held.skip_message
    assert _tick(ticker, landing).run_requests == []
    tenant_store.save(store, TenantSettings("pausedco", settings_version=2))
    (resumed,) = _tick(ticker, landing).run_requests
    assert resumed.partition_key == "pausedco"  # its first drop: every file
    assert resumed.run_key == f"pausedco:{resumed.tags['jf/files']}:1"
    assert ticker.instance.has_dynamic_partition("tenants", "pausedco")
    mapping = {"deals": {"Notes": "description"}}
    tenant_store.save(store, TenantSettings("pausedco", settings_version=3, column_mapping=mapping))
    (mapped,) = _tick(ticker, landing).run_requests
    assert mapped.partition_key == "pausedco" and mapped.tags["jf/files"].endswith(
        "/" + TenantSettings("pausedco", column_mapping=mapping).token
    )
    assert mapped.tags["jf/changed"] == ",".join(sorted(FILE_NAMES))


def test_jf_events_setup_is_idempotent_keeps_other_notifications_and_says_what_to_set(
    s3_env, capsys
):
    """`jf events setup` as an operator runs it: twice gives the same queue and our
    notification once (for the prefix, created and removed objects), the bucket's other
    notifications kept, a queue policy that lets only this bucket send; a local landing
    zone or a bad queue name is a usage error."""
    from jf_pipeline.cli import main

    bucket = f"cli-{uuid.uuid4().hex[:12]}"
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    s3.create_bucket(Bucket=bucket)
    other = sqs.create_queue(QueueName=f"other-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    theirs = {"Id": "theirs", "QueueArn": other_arn, "Events": ["s3:ObjectCreated:*"]}
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [theirs]}
    )
    assert main(["events", "setup", f"s3://{bucket}/landing"]) == 0
    first = capsys.readouterr().out
    assert f"JF_EVENTS=sqs://jf-landing-{bucket}" in first
    assert main(["events", "setup", f"s3://{bucket}/landing", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["events"] == f"sqs://jf-landing-{bucket}" and done["queue_url"] in first
    queues = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert sorted(q["Id"] for q in queues) == ["jf-landing-events", "theirs"]
    ours = next(q for q in queues if q["Id"] == "jf-landing-events")
    assert sorted(ours["Events"]) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    assert ours["Filter"]["Key"]["FilterRules"][0]["Value"] == "landing/"
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=done["queue_url"], AttributeNames=["Policy"])[
            "Attributes"
        ]["Policy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{bucket}"
    assert main(["events", "setup", "data/landing"]) == 2
    assert main(["events", "setup", f"s3://{bucket}", "--queue", "bad name\x1b[31m"]) == 2
    err = capsys.readouterr().err
    assert "needs an S3 landing zone" in err and "\x1b" not in err
