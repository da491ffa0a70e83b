"""A tenant's own S3 credentials, enforced by a real policy evaluator (issue #13): a moto
server of its own with IAM enforcement on (`INITIAL_NO_AUTH_ACTION_COUNT`), reached by the
same boto3 code as AWS. `jf tenant add` makes an IAM user whose key uploads and reads its
own files and is denied on another tenant's prefix, on the operator area `_jointflows/`,
while paused, after the next rotation (the old key) and after `remove`.

What moto does not evaluate, and how production checks it instead (README, "Onboarding a
customer"): the `s3:prefix` condition on ListBucket (moto lets a tenant's key list any
prefix of the bucket; the policy's condition is asserted as stored in IAM here, and the IAM
policy simulator checks it in a deployment), and an access key's Inactive status (moto
still accepts an inactive key: the status is asserted through IAM here; a paused tenant is
also refused by an explicit deny policy, which moto does evaluate)."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from jf_pipeline import onboarding
from jf_pipeline.cli import main
from jf_pipeline_tests.conftest import SAMPLE_LANDING
from jf_pipeline_tests.servers import moto_server

pytestmark = pytest.mark.integration
REGION = "us-east-1"


@pytest.fixture(scope="module")
def enforcing_moto(tmp_path_factory):
    """(url, admin key): the first three requests, unauthenticated, make the operator's
    admin user and key; every request after that is checked against IAM policies."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "3"}, log) as url:
        iam = _client("iam", url, {"id": "bootstrap", "secret": "bootstrap"})
        iam.create_user(UserName="jf-operator")
        everything = {"Effect": "Allow", "Action": "*", "Resource": "*"}
        iam.put_user_policy(
            UserName="jf-operator",
            PolicyName="admin",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [everything]}),
        )
        key = iam.create_access_key(UserName="jf-operator")["AccessKey"]
        yield url, {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def _client(service: str, url: str, key: dict):
    return boto3.session.Session().client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key["id"],
        aws_secret_access_key=key["secret"],
    )


@pytest.fixture
def landing(enforcing_moto, monkeypatch):
    """An S3 landing zone `s3://<bucket>/drops` with the operator's credentials in the
    environment (as the pipeline's own role in production)."""
    url, admin = enforcing_moto
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", admin["id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", admin["secret"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    bucket = f"landing-{uuid.uuid4().hex[:10]}"
    _client("s3", url, admin).create_bucket(Bucket=bucket)
    return bucket


def _jf(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _denied(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def test_a_tenants_key_reaches_its_own_files_only_until_paused_rotated_or_removed(
    landing, enforcing_moto, capsys
):
    url, admin = enforcing_moto
    uri = f"s3://{landing}/drops"
    code, out, _ = _jf(capsys, "tenant", "add", "acme", "--landing", uri)
    assert code == 0
    key_id = next(line.split()[-1] for line in out.splitlines() if "access key id" in line)
    secret = next(line.split()[-1] for line in out.splitlines() if "secret access key" in line)
    assert f"aws s3 cp deals.csv s3://{landing}/drops/acme/deals.csv" in out
    assert f"bucket             {landing}" in out and "drops/acme/" in out
    code, out, _ = _jf(capsys, "tenant", "add", "globex", "--landing", uri, "--json")
    globex = json.loads(out)
    acme = _client("s3", url, {"id": key_id, "secret": secret})

    # its own three files: uploaded and read back
    for name in ("deals.csv", "accounts.csv", "contacts.csv"):
        data = (SAMPLE_LANDING / "acme" / name).read_bytes()
        acme.put_object(Bucket=landing, Key=f"drops/acme/{name}", Body=data)
        assert acme.get_object(Bucket=landing, Key=f"drops/acme/{name}")["Body"].read() == data
    listed = acme.list_objects_v2(Bucket=landing, Prefix="drops/acme/")
    assert {o["Key"] for o in listed["Contents"]} >= {"drops/acme/deals.csv"}

    # another tenant's prefix, the operator area, the bucket's root: denied
    put = acme.put_object
    assert _denied(lambda: put(Bucket=landing, Key="drops/globex/deals.csv", Body=b"x"))
    assert _denied(lambda: acme.get_object(Bucket=landing, Key="drops/globex/")) == "AccessDenied"
    operator = "drops/_jointflows/tenants/acme.json"
    assert _denied(lambda: put(Bucket=landing, Key=operator, Body=b"{}")) == "AccessDenied"
    assert _denied(lambda: acme.get_object(Bucket=landing, Key=operator)) == "AccessDenied"
    assert _denied(lambda: put(Bucket=landing, Key="deals.csv", Body=b"x")) == "AccessDenied"
    globex_key = {"id": globex["access_key_id"], "secret": globex["secret_access_key"]}
    other = _client("s3", url, globex_key)
    assert _denied(lambda: other.get_object(Bucket=landing, Key="drops/acme/deals.csv"))

    # the stored policy: own objects, and listing restricted by s3:prefix (not evaluated
    # by moto: checked as stored, and by the IAM policy simulator in a deployment)
    iam = _client("iam", url, admin)
    user = onboarding.iam_user_name("acme")
    stored = iam.get_user_policy(UserName=user, PolicyName=onboarding.POLICY_NAME)
    assert stored["PolicyDocument"] == onboarding.tenant_policy(landing, "drops/acme/")
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == [onboarding.POLICY_NAME]

    # paused: keys inactive and an explicit deny; resumed: allowed again
    assert _jf(capsys, "tenant", "pause", "acme", "--landing", uri)[0] == 0
    body = b"Name\n"
    assert _denied(lambda: put(Bucket=landing, Key="drops/acme/deals.csv", Body=body))
    statuses = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    assert [k["Status"] for k in statuses] == ["Inactive"]
    assert _jf(capsys, "tenant", "resume", "acme", "--landing", uri)[0] == 0
    acme.get_object(Bucket=landing, Key="drops/acme/deals.csv")

    # rotated: the new key works, the old one is inactive, and deleted at the next rotation
    code, out, _ = _jf(capsys, "tenant", "rotate-keys", "acme", "--landing", uri, "--json")
    second = json.loads(out)
    assert code == 0 and second["deactivated"] == [key_id]
    rotated = _client(
        "s3", url, {"id": second["access_key_id"], "secret": second["secret_access_key"]}
    )
    rotated.get_object(Bucket=landing, Key="drops/acme/deals.csv")
    statuses = {
        k["AccessKeyId"]: k["Status"]
        for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    }
    assert statuses == {key_id: "Inactive", second["access_key_id"]: "Active"}
    code, out, _ = _jf(capsys, "tenant", "rotate-keys", "acme", "--landing", uri, "--json")
    third = json.loads(out)
    shown = json.loads(_jf(capsys, "tenant", "show", "acme", "--landing", uri, "--json")[1])
    assert shown["access_keys"] == [second["access_key_id"], third["access_key_id"]]
    get = acme.get_object
    assert _denied(lambda: get(Bucket=landing, Key="drops/acme/deals.csv")) == "InvalidAccessKeyId"

    # removed: every key and the user deleted
    assert _jf(capsys, "tenant", "remove", "acme", "--landing", uri)[0] == 0
    newest = _client(
        "s3", url, {"id": third["access_key_id"], "secret": third["secret_access_key"]}
    )
    assert _denied(lambda: newest.get_object(Bucket=landing, Key="drops/acme/deals.csv"))
    assert _denied(lambda: iam.get_user(UserName=user)) == "NoSuchEntity"

    # audited, and adding an existing tenant again changes nothing
    code, out, _ = _jf(capsys, "tenant", "show", "globex", "--landing", uri, "--json")
    assert [e["action"] for e in json.loads(out)["audit"]] == ["add"]
    code, out, _ = _jf(capsys, "tenant", "add", "globex", "--landing", uri)
    assert code == 0 and "nothing changed" in out
    globex_user = onboarding.iam_user_name("globex")
    assert len(iam.list_access_keys(UserName=globex_user)["AccessKeyMetadata"]) == 1
    code, out, _ = _jf(capsys, "tenant", "show", "acme", "--landing", uri, "--json")
    actions = [e["action"] for e in json.loads(out)["audit"]]
    assert actions == ["add", "pause", "resume", "rotate-keys", "rotate-keys", "remove"]
