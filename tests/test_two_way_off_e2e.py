"""``twoWay: false`` under ``make dev`` (issue 20, item 3): the local stack follows the stage as the deployed
stack does. The local number stays one-way (no inbound topic or queue, two-way off on the number), and the
app gets none of the two-way settings (``INBOUND_ENABLED``, ``OPT_OUT_LIST_NAME``, ``ORIGINATION_NUMBER``).
A STOP to the number is still End User Messaging's to apply and answer; nothing reaches the app.
"""
from __future__ import annotations

import boto3
import pytest

from devstack import stage as stages
from devstack.server import REGION, LocalStack
from infra.config import StageConfig

from .localhttp import Http

PHONE = "+14255550188"


@pytest.fixture
def stack(monkeypatch):
    dev = stages.load("dev")
    raw = {"smsProvider": dev.sms_provider, "allowedCountries": list(dev.allowed_countries), "twoWay": False}
    monkeypatch.setattr(stages, "load", lambda stage=stages.DEFAULT_STAGE: StageConfig.from_dict(stage, raw))
    with LocalStack(app_port=0, aws_port=0) as running:
        yield running


def test_with_twoway_false_the_local_stack_receives_no_replies(stack):
    assert stack.stage_config.two_way_off
    assert not {"INBOUND_ENABLED", "OPT_OUT_LIST_NAME", "ORIGINATION_NUMBER"} & set(stack.env)
    assert "INBOUND_QUEUE_URL" not in stack.resources and stack.inbound is None
    sms = boto3.client("pinpoint-sms-voice-v2", endpoint_url=stack.aws_url, region_name=REGION)
    (number,) = sms.describe_phone_numbers()["PhoneNumbers"]
    assert (number["TwoWayEnabled"], number["OptOutListName"]) == (False, "Default")

    aws, api = Http(stack.aws_url), Http(stack.app_url)
    status, _, played = aws.call("POST", "/_inbound", {"originationNumber": PHONE, "messageBody": "STOP"})
    assert status == 202 and (played["action"], played["answered"], played["published"]) == ("OPT_OUT", True, False)
    # End User Messaging keeps the STOP on the number's own list; the app heard nothing.
    assert [n["OptedOutNumber"] for n in sms.describe_opted_out_numbers(OptOutListName="Default")[
        "OptedOutNumbers"]] == [PHONE]
    assert api.call("GET", "/messages?direction=inbound")[2]["messages"] == []
