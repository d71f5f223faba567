"""Shared fixtures. The Chalice app is loaded in one place, ``devstack.appload``."""
from __future__ import annotations

import json
import os

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from devstack import appload, resources

REGION = "us-east-1"
sender = appload.load()

from chalicelib import aws  # noqa: E402  (importable once appload has set the path)

FAKE_ENV = {
    # moto's fake credentials; no real key is ever used by the tests.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "PROVIDER_MAX_ATTEMPTS": "2",
}


@pytest.fixture
def settings_env(monkeypatch):
    """Environment for the API tests; yields a function to change settings and drop cached clients."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "ALLOWED_COUNTRIES", "SMS_PROVIDER",
                 "ORIGINATION_IDENTITY", "CONFIGURATION_SET_NAME", "SENDER_ID", "DEFAULT_SMS_TYPE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)

    def configure(**values):
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        aws.reset()

    yield configure
    aws.reset()


@pytest.fixture
def aws_env(settings_env):
    """moto for S3, SNS, DynamoDB, SQS and Logs, with the resources the stack creates."""
    with mock_aws():
        env = resources.create_core(lambda s: boto3.client(s, region_name=REGION), REGION, "123456789012")
        settings_env(**env, ORIGINATION_IDENTITY="arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc",
                     CONFIGURATION_SET_NAME="sms-sender-test")
        yield settings_env


# Templates synthesized once per session (see tests/synth.py).
@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="session")
def template(synth_dir):
    """The dev stage as cdk.json has it."""
    from .synth import synth_stage

    return synth_stage(synth_dir, "dev")


@pytest.fixture(scope="session")
def prod_template(tmp_path_factory):
    from .synth import synth_stage

    return synth_stage(tmp_path_factory.mktemp("synth-prod"), "prod")


@pytest.fixture(scope="session")
def mms_template(tmp_path_factory):
    """An SNS stage with an origination identity: MMS on, End User Messaging resources created."""
    from .synth import MMS_STAGE, synth_stage

    return synth_stage(tmp_path_factory.mktemp("synth-mms"), "dev", MMS_STAGE)


@pytest.fixture(scope="session")
def sms_voice_template(tmp_path_factory):
    """An End User Messaging stage with a pool, a sender id and a spend limit."""
    from .synth import SMS_VOICE_STAGE, synth_stage

    return synth_stage(tmp_path_factory.mktemp("synth-sms-voice"), "eum", SMS_VOICE_STAGE)


@pytest.fixture(scope="session")
def second_stage(tmp_path_factory):
    """Another stage for the same account and region, leaving the account-wide settings to dev."""
    from .synth import synth_stage

    return synth_stage(tmp_path_factory.mktemp("synth-staging"), "staging", {"accountSettings": False})


@pytest.fixture
def client(aws_env):
    from chalice.test import Client

    with Client(sender.app) as test_client:
        yield test_client


@pytest.fixture
def sms_voice(aws_env):
    """A Stubber on the app's own sms-voice client (moto has no pinpoint-sms-voice-v2)."""
    with Stubber(aws.client("pinpoint-sms-voice-v2")) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def sns_stub(aws_env):
    """A Stubber on the app's SNS client, for exact Publish parameters and injected SNS errors."""
    with Stubber(aws.client("sns")) as stub:
        yield stub
        stub.assert_no_pending_responses()


def post(client, path, body, headers=None):
    payload = body if isinstance(body, str) else json.dumps(body)
    return client.http.post(path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})


def body_of(response):
    return json.loads(response.body)


@pytest.fixture
def put_media():
    """Put an object in the media bucket (inside the moto mock); returns its s3:// URL."""
    def put(key="media/cat.png", content_type="image/png", size=1024):
        bucket = os.environ["MEDIA_BUCKET"]
        boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key=key, Body=b"x" * size,
                                                          ContentType=content_type)
        return f"s3://{bucket}/{key}"

    return put


@pytest.fixture
def api(stack):
    """Real HTTP to the app of the module's local stack (its ``stack`` fixture)."""
    from .localhttp import Http

    return Http(stack.app_url)
