"""The SQS queue that S3 event notifications for the landing prefix arrive in (issue 18).

`JF_EVENTS=sqs://<queue name>` (or the queue's URL) turns the landing sensor from listing
the bucket every tick into draining this queue; `jf events setup` creates the queue, its
access policy and the bucket's notification. boto3 is imported only when a client is made,
so a code location without events never imports it.

Why SQS and not EventBridge: S3 sends to SQS directly (one resource, one policy, set up by
`jf events setup` or two Terraform resources), messages wait up to 14 days when the
daemon is down, and a receive returns up to 10 at a time. EventBridge would add a rule and
a target (to the same SQS queue, since a sensor polls) for no gain here.
"""

from __future__ import annotations

import json
import threading
import time

VISIBILITY_SECONDS = 300
"""A received message is hidden this long: the next tick deletes it once its tick was
committed; if the daemon stops first, the message is delivered again (events are
idempotent)."""
MAX_MESSAGES_PER_TICK = 2_000
"""At most this many messages a tick; the rest wait for the next tick."""
DRAIN_SECONDS = 10.0
"""A tick stops receiving after this long (plus its long-polling wait)."""
RETENTION_SECONDS = 14 * 86_400
EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
CONFIGURATION_ID = "jf-landing-events"

_CLIENTS: dict[tuple, object] = {}
_LOCK = threading.Lock()


def client(service: str, endpoint_url: str | None, region_name: str | None):
    """One boto3 client per service and endpoint for the process (the code server keeps
    it between ticks: a new client parses the service model again, 0.1-0.9 s of CPU)."""
    key = (service, endpoint_url, region_name)
    with _LOCK:
        if key not in _CLIENTS:
            import boto3  # deferred: only a code location with events imports it
            from botocore.config import Config

            _CLIENTS[key] = boto3.session.Session().client(
                service,
                endpoint_url=endpoint_url,
                region_name=region_name,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            )
        return _CLIENTS[key]


def queue_name_of(uri: str) -> str | None:
    """The queue's name for `sqs://name`, None for a queue URL."""
    if uri.startswith("sqs://"):
        name = uri.removeprefix("sqs://").strip("/")
        if not name or "/" in name:
            raise ValueError(f"{uri!r} is not sqs://<queue name>")
        return name
    if uri.startswith(("https://", "http://")):
        return None
    raise ValueError(f"JF_EVENTS={uri!r}: expected sqs://<queue name> or the queue's URL")


class EventQueue:
    """The queue named by `JF_EVENTS`, reached with the landing store's S3 settings."""

    def __init__(self, uri: str, endpoint_url: str | None = None, region_name: str | None = None):
        self.uri, self.name = uri, queue_name_of(uri)
        self.endpoint_url, self.region_name = endpoint_url, region_name
        self._url = None if self.name else uri

    @property
    def sqs(self):
        return client("sqs", self.endpoint_url, self.region_name)

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = self.sqs.get_queue_url(QueueName=self.name)["QueueUrl"]
        return self._url

    def receive(
        self, wait_seconds: float, max_messages: int = MAX_MESSAGES_PER_TICK
    ) -> list[tuple[str, str]]:
        """(receipt handle, body) of the waiting messages, 10 per request, each request
        long-polling up to `wait_seconds`, until the queue answers empty, `max_messages`
        were received or the drain took `DRAIN_SECONDS`."""
        received: list[tuple[str, str]] = []
        deadline = time.monotonic() + wait_seconds
        wait = max(0, min(20, int(wait_seconds)))
        while len(received) < max_messages:
            response = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=min(10, max_messages - len(received)),
                WaitTimeSeconds=wait,
                VisibilityTimeout=VISIBILITY_SECONDS,
            )
            messages = response.get("Messages", [])
            received += [(m["ReceiptHandle"], m.get("Body", "")) for m in messages]
            # Long polling on every request: it answers as soon as a message is there, and
            # a short poll may answer empty while messages wait on other SQS servers.
            if not messages or time.monotonic() > deadline + DRAIN_SECONDS:
                break
        return received

    def delete(self, handles: list[str]) -> list[str]:
        """Delete messages, 10 per request; returns the error messages of any that failed
        (an expired receipt handle: the message comes back, and is idempotent)."""
        failed = []
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": h}
                for i, h in enumerate(handles[start : start + 10])
            ]
            response = self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
            failed += [f"{f.get('Code')}: {f.get('Message')}" for f in response.get("Failed", [])]
        return failed


# --- set-up ------------------------------------------------------------------------------


def queue_policy(queue_arn: str, bucket: str, account: str | None) -> dict:
    """The queue's access policy: the S3 service may send messages, for this bucket only."""
    condition: dict = {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}}
    if account:
        condition["StringEquals"] = {"aws:SourceAccount": account}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "jf-landing-events",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": condition,
            }
        ],
    }


def notification_configuration(existing: dict, queue_arn: str, prefix: str) -> dict:
    """The bucket's notification configuration with ours (for the landing prefix) added or
    replaced; every other configuration the bucket has is kept."""
    config = {k: v for k, v in existing.items() if k != "ResponseMetadata"}
    queues = [q for q in config.get("QueueConfigurations", []) if q.get("Id") != CONFIGURATION_ID]
    ours: dict = {"Id": CONFIGURATION_ID, "QueueArn": queue_arn, "Events": list(EVENTS)}
    if prefix:
        ours["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
    config["QueueConfigurations"] = [*queues, ours]
    return config


def setup(
    bucket: str,
    prefix: str,
    queue_name: str,
    endpoint_url: str | None = None,
    region_name: str | None = None,
) -> dict:
    """Create (or update) the queue, its policy and the bucket's notification; idempotent.
    Returns what was done: the queue's URL and ARN, and the JF_EVENTS value to set."""
    sqs = client("sqs", endpoint_url, region_name)
    s3 = client("s3", endpoint_url, region_name)
    url = sqs.create_queue(
        QueueName=queue_name,
        Attributes={
            "MessageRetentionPeriod": str(RETENTION_SECONDS),
            "VisibilityTimeout": str(VISIBILITY_SECONDS),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    account = arn.split(":")[4] if arn.count(":") >= 5 else None
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={"Policy": json.dumps(queue_policy(arn, bucket, account))},
    )
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    existing = s3.get_bucket_notification_configuration(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration=notification_configuration(existing, arn, base),
    )
    return {"queue_url": url, "queue_arn": arn, "events": f"sqs://{queue_name}", "prefix": base}
