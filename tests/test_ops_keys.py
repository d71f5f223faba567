"""``make key``, ``make keys`` and ``make revoke-key`` (``ops/keys.py``): with AWS credentials alone (moto here),
a new stage gets its first key, and a key made that way works through the authorizer until it is revoked."""
from __future__ import annotations

import io
import json

import boto3
import pytest
from moto import mock_aws

from chalicelib.keys import authorizer
from ops import keys

from .conftest import REGION, hygiene

ARN = "arn:aws:execute-api:us-east-1:123456789012:abc/api/POST/sms"


@pytest.fixture
def stage(settings_env, tmp_path, monkeypatch):
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(TableName="SmsSender-dev-Keys", BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
        outputs = tmp_path / "cdk-outputs-dev.json"
        outputs.write_text(json.dumps({"SmsSender-dev": {"KeysTableName": "SmsSender-dev-Keys"}}))
        settings_env(KEYS_TABLE="SmsSender-dev-Keys", MEDIA_BUCKET="b", MESSAGES_TABLE="m", IDEMPOTENCY_TABLE="i")
        yield outputs


def run(outputs, *argv, capsys):
    out = io.StringIO()
    status = keys.main([*argv, "--stage", "dev", "--outputs", str(outputs)], session=boto3.Session(), out=out)
    return status, out.getvalue(), capsys.readouterr().err


def test_the_first_key_of_a_stage_works_through_the_authorizer_until_revoked(stage, capsys):
    status, out, err = run(stage, "create", "--name", "first admin", "--scopes", "keys:manage,messages:send",
                           capsys=capsys)
    assert status == 0, err
    made, key = out.splitlines()
    hygiene.keys.add(key)
    assert key.startswith("sk_live_") and "key_" in made and "messages:send keys:manage" in made
    answer = authorizer.check(f"Bearer {key}", ARN)
    assert answer["context"]["scopes"] == "messages:send keys:manage"

    status, out, _ = run(stage, "list", capsys=capsys)
    assert status == 0 and "first admin" in out and "last used" in out and key not in out
    key_id = answer["principalId"]
    status, out, _ = run(stage, "revoke", "--id", key_id, capsys=capsys)
    assert status == 0 and key_id in out
    with pytest.raises(authorizer.Unauthorized):
        authorizer.check(f"Bearer {key}", ARN)
    assert "revoked" in run(stage, "list", capsys=capsys)[1]


def test_a_test_key_and_an_expiry(stage, capsys):
    status, out, _ = run(stage, "create", "--name", "ci", "--scopes", "messages:send", "--test",
                         "--expires-at", "2030-01-01T00:00:00Z", capsys=capsys)
    key = out.splitlines()[1]
    hygiene.keys.add(key)
    assert status == 0 and key.startswith("sk_test_") and "(test key)" in out


@pytest.mark.parametrize("argv, complaint", [
    (["create", "--name", "x", "--scopes", "messages:delete"], "InvalidScope"),
    (["create", "--scopes", "messages:read"], "MissingField"),
    (["revoke", "--id", "key_aaaaaaaaaaaaaaaa"], "KeyNotFound"),
])
def test_mistakes_are_one_line_and_a_failure(stage, capsys, argv, complaint):
    status, out, err = run(stage, *argv, capsys=capsys)
    assert status == 1 and out == "" and len(err.splitlines()) == 1 and complaint in err


def test_without_outputs_the_table_comes_from_cloudformation_or_a_clear_refusal(stage, tmp_path, capsys):
    status, _, err = run(tmp_path / "none.json", "list", capsys=capsys)
    assert status == 1 and "make deploy STAGE=dev" in err and len(err.splitlines()) == 1


def test_without_a_region_or_credentials_the_refusal_says_how_to_give_them(stage, tmp_path, capsys, monkeypatch):
    """Not "deploy it first": the stage may well be deployed. The fix is preflight's, word for word."""
    from ops import CREDENTIALS_FIX, REGION_FIX

    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "CDK_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask an instance's metadata service
    status, _, err = run(tmp_path / "none.json", "list", capsys=capsys)
    assert status == 1 and err.strip().endswith(f"no region is set: {REGION_FIX}") and len(err.splitlines()) == 1
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    status, _, err = run(tmp_path / "none.json", "list", capsys=capsys)
    assert status == 1 and err.strip().endswith(f"no AWS credentials: {CREDENTIALS_FIX}") and len(err.splitlines()) == 1


def _no_shell_region(tmp_path, monkeypatch):
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "CDK_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask an instance's metadata service


def test_the_region_comes_from_the_outputs_api_url(stage, tmp_path, capsys, monkeypatch):
    """The stage's region is the one its ApiUrl names: no region in the shell is needed, and another one in it
    does not send the calls elsewhere."""
    api_url = f"https://a1b2c3d4e5.execute-api.{REGION}.amazonaws.com/api/"
    stage.write_text(json.dumps({"SmsSender-dev": {"KeysTableName": "SmsSender-dev-Keys", "ApiUrl": api_url}}))
    _no_shell_region(tmp_path, monkeypatch)
    status, out, err = run(stage, "create", "--name", "ci", "--scopes", "messages:send", capsys=capsys)
    assert status == 0, err
    hygiene.keys.add(out.splitlines()[1])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")  # the table is not there
    status, out, err = run(stage, "list", capsys=capsys)
    assert status == 0 and "ci" in out, err


def test_with_outputs_but_no_region_or_credentials_the_refusal_says_how_to_give_them(stage, tmp_path, capsys,
                                                                                     monkeypatch):
    from ops import CREDENTIALS_FIX, REGION_FIX

    _no_shell_region(tmp_path, monkeypatch)
    status, _, err = run(stage, "list", capsys=capsys)  # outputs whose ApiUrl is missing: no region to take
    assert status == 1 and err.strip().endswith(f"no region is set: {REGION_FIX}") and len(err.splitlines()) == 1
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    status, _, err = run(stage, "list", capsys=capsys)
    assert status == 1 and err.strip().endswith(f"no AWS credentials: {CREDENTIALS_FIX}") and len(err.splitlines()) == 1
