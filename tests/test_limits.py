"""Validity period and price cap (issue 21, sections 5 and 6): ``validityPeriod`` and ``maxPriceUsd`` on
POST /sms, /mms, batch items and whole batches, on both providers.

What AWS says, kept in tests/aws_docs/sms-voice-limits.json and checked here against botocore's model of
pinpoint-sms-voice-v2: ``TimeToLive`` (5 to 259,200 seconds) and ``MaxPrice`` (``[0-9]{0,2}\\.[0-9]{1,5}``)
on SendTextMessage / SendMediaMessage, ValidationException's ``PRICE_OVER_THRESHOLD``, and the
``TEXT_TTL_EXPIRED`` / ``MEDIA_TTL_EXPIRED`` event types. Every End User Messaging call goes through a
Stubber, which validates its parameters against that model; time is an injected clock
(``messages.clock``), never a sleep.
"""
from __future__ import annotations

import copy
import itertools
import json
import time
from datetime import datetime
from pathlib import Path

import botocore.session
import pytest
from botocore.stub import ANY, Stubber

from devstack.receipts import MMS_PRICE_USD, SMS_PRICE_USD, Receipts, eum_receipts, subscription_event
from devstack.sms_voice.model import ApiError
from devstack.sms_voice.standin import SmsVoiceStandIn

from .conftest import NullLogs, body_of, post
from .test_batches import as_event, queued_messages
from .test_provider_calls import Recorder, model_problems

TO, GB = "+14255550123", "+442079460958"
SMS_VOICE = "pinpoint-sms-voice-v2"
IDENTITY = "arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc"
HERE = Path(__file__).resolve().parent
DOCS = json.loads((HERE / "aws_docs" / "sms-voice-limits.json").read_text())["quotes"]
MODEL = botocore.session.get_session().get_service_model(SMS_VOICE)
EVENTS_GROUP = "/sms-sender-test/sms-voice-events"


@pytest.fixture
def clock(monkeypatch):
    """The send path's clock, fixed on a whole second; move it with ``clock.now``."""
    from chalicelib.sending import messages

    class Clock:
        now = float(int(time.time()))

    monkeypatch.setattr(messages, "clock", lambda: Clock.now)
    return Clock


@pytest.fixture
def eum(client, aws_env):
    """An ``sms-voice`` stage, with a Stubber on its End User Messaging client."""
    from chalicelib.core import aws

    aws_env(SMS_PROVIDER="sms-voice")
    with Stubber(aws.client(SMS_VOICE)) as stub:
        yield stub
        stub.assert_no_pending_responses()


def text_params(**limits):
    return {"DestinationPhoneNumber": TO, "MessageBody": "Your table is ready", "MessageType": "TRANSACTIONAL",
            "OriginationIdentity": ANY, "ConfigurationSetName": "sms-sender-test", "Context": ANY, **limits}


def get(client, message_id):
    return body_of(client.http.get(f"/messages/{message_id}"))


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def run_worker():
    from chalicelib.core.settings import get_settings
    from chalicelib.sending import worker

    return worker.handle(as_event(queued_messages()), settings=get_settings(), pacer=worker.TokenBucket(1000))


# -- what AWS documents, against botocore's model --------------------------------------------------
def test_the_documented_limits_are_the_models_and_the_apps():
    from chalicelib.sending import messages, validation

    for operation, kind in (("SendTextMessage", "text"), ("SendMediaMessage", "media")):
        members = MODEL.operation_model(operation).input_shape.members
        for member, quote in (("TimeToLive", f"send_{kind}_time_to_live"), ("MaxPrice", f"send_{kind}_max_price")):
            documented = DOCS[quote]
            assert members[member].documentation.replace("<code>", "").replace("</code>", "") == \
                f"<p>{documented['quote']}</p>"
            assert {k: members[member].metadata[k] for k in documented["value"]} == documented["value"]
    ttl = DOCS["send_text_time_to_live"]["value"]
    assert messages.TTL_MIN == ttl["min"] and validation.MAX_VALIDITY == ttl["max"]
    assert validation.MIN_VALIDITY >= ttl["min"]
    assert validation.MAX_PRICE.pattern == DOCS["send_text_max_price"]["value"]["pattern"]
    assert DOCS["price_over_threshold"]["value"] in MODEL.shape_for("ValidationExceptionReason").enum


def test_the_expired_event_types_the_ingest_knows_are_documented():
    from chalicelib.status import ingest

    enum = set(MODEL.shape_for("EventType").enum)
    documented = DOCS["text_event_types"]["value"]
    assert set(documented) <= enum  # the user guide's list, all in the API's enum
    assert DOCS["ttl_expired_event"]["value"] in documented
    assert ingest.EUM_EXPIRED_EVENTS == {DOCS["ttl_expired_event"]["value"], DOCS["media_ttl_expired_event"]["value"]}
    assert ingest.EUM_EXPIRED_EVENTS <= enum


# -- validation: one clear 400, nothing recorded or sent ---------------------------------------------
@pytest.mark.parametrize("period", [59, 259_201, 0, -60, "600", 600.5, True, [600]])
def test_a_validity_period_out_of_range_is_400_naming_it(client, sns_stub, period):
    response = post(client, "/sms", {"to": TO, "body": "hi", "validityPeriod": period})
    assert response.status_code == 400
    error = body_of(response)["error"]
    assert (error["code"], error["field"]) == ("InvalidValidityPeriod", "validityPeriod")
    assert "60" in error["message"] and "259,200" in error["message"] and "messageId" not in error
    # sns_stub has nothing queued: a Publish would have failed the test.


@pytest.mark.parametrize("price", ["0.0", "0.00000", "10.0", "9.999991", "99.99999", "1", ".", "0.05 ", "1e-2",
                                   "-0.5", "٠.٥", 0.05, 1, {"usd": "0.05"}])
def test_a_max_price_that_is_not_a_decimal_string_up_to_9_99999_is_400(client, put_media, price):
    response = post(client, "/mms", {"to": TO, "mediaUrl": put_media(), "maxPriceUsd": price})
    assert response.status_code == 400, body_of(response)
    error = body_of(response)["error"]
    assert (error["code"], error["field"]) == ("InvalidMaxPrice", "maxPriceUsd")
    assert '"9.99999"' in error["message"]


@pytest.mark.parametrize("price", ["9.99999", "0.00001", ".5", "1.0", "00.05"])
def test_the_prices_the_model_and_the_cap_allow_are_taken_as_given(price):
    from chalicelib.sending import validation

    assert validation.max_price({"maxPriceUsd": price}) == price
    assert not model_problems(SMS_VOICE, "SendTextMessage", {"DestinationPhoneNumber": TO, "MessageBody": "hi",
                                                             "MaxPrice": price})


@pytest.mark.parametrize("period", [60, 259_200, None])
def test_the_periods_from_60_seconds_to_72_hours_are_taken(period):
    from chalicelib.sending import validation

    assert validation.validity_period({"validityPeriod": period}) == period


def test_sns_has_no_price_cap_so_an_sms_with_one_is_400_before_anything_is_recorded(client, sns_stub):
    response = post(client, "/sms", {"to": TO, "body": "hi", "maxPriceUsd": "0.05"})
    assert response.status_code == 400
    error = body_of(response)["error"]
    assert (error["code"], error["field"]) == ("MaxPriceNotSupported", "maxPriceUsd")
    assert "SNS" in error["message"] and "sms-voice" in error["message"] and "messageId" not in error
    assert body_of(client.http.get("/messages"))["messages"] == []


def test_a_test_key_is_held_to_the_same_rules_and_never_reaches_a_provider(client, calls, clock):
    from chalicelib.keys import scopes

    from .test_keys import make_key

    _, key = make_key(client, [scopes.SEND, scopes.READ], test=True)
    auth = {"Authorization": f"Bearer {key}"}
    refused = post(client, "/sms", {"to": TO, "body": "hi", "maxPriceUsd": "0.05"}, auth)
    assert body_of(refused)["error"]["code"] == "MaxPriceNotSupported"
    assert body_of(post(client, "/sms", {"to": TO, "body": "hi", "validityPeriod": 30}, auth))["error"]["code"] == \
        "InvalidValidityPeriod"
    sent = body_of(post(client, "/sms", {"to": TO, "body": "hi", "validityPeriod": 600}, auth))
    assert (sent["test"], sent["status"], sent["validityPeriod"]) == (True, "sent", 600)
    sends = [op for _service, op, _ in calls if op in ("Publish", "SendTextMessage", "SendMediaMessage")]
    assert sends == []


def test_a_test_keys_message_that_outlived_its_period_ends_expired_too(client, calls, monkeypatch):
    from chalicelib.keys import scopes
    from chalicelib.sending import messages

    from .test_keys import make_key

    _, key = make_key(client, [scopes.SEND, scopes.READ], test=True)
    ticks = itertools.count(float(int(time.time())), 61)  # 61 s between recording and sending
    monkeypatch.setattr(messages, "clock", lambda: next(ticks))
    response = post(client, "/sms", {"to": TO, "body": "hi", "validityPeriod": 60}, {"Authorization": f"Bearer {key}"})
    assert (response.status_code, body_of(response)["error"]["code"]) == (422, "Expired")
    assert [op for _service, op, _ in calls if op in ("Publish", "SendTextMessage", "SendMediaMessage")] == []


# -- the message resource ------------------------------------------------------------------------------
def test_the_message_shows_its_period_its_end_and_its_cap(client, eum, clock):
    eum.add_response("send_text_message", {"MessageId": "eum-1"},
                     text_params(TimeToLive=3600, MaxPrice="0.05"))
    response = post(client, "/sms", {"to": TO, "body": "Your table is ready", "validityPeriod": 3600,
                                      "maxPriceUsd": "0.05"})
    assert response.status_code == 202, body_of(response)
    message = body_of(response)
    assert (message["validityPeriod"], message["maxPriceUsd"]) == (3600, "0.05")
    assert at(message["validUntil"]) - at(message["createdAt"]) == 3600
    assert get(client, message["id"]) == message
    listed = body_of(client.http.get("/messages"))["messages"]
    assert [(m["validityPeriod"], m["validUntil"], m["maxPriceUsd"]) for m in listed] == [
        (3600, message["validUntil"], "0.05")]


def test_without_either_field_nothing_changes_on_the_wire(client, eum):
    """No TimeToLive (End User Messaging's default, 72 hours) and no MaxPrice: the Stubber's expected
    parameters are exact."""
    eum.add_response("send_text_message", {"MessageId": "eum-1"}, text_params())
    message = body_of(post(client, "/sms", {"to": TO, "body": "Your table is ready"}))
    assert (message["status"], message["validityPeriod"], message["validUntil"], message["maxPriceUsd"]) == (
        "sent", None, None, None)


# -- End User Messaging: TimeToLive and MaxPrice, pinned --------------------------------------------
def test_send_text_message_gets_time_to_live_and_max_price(client, eum, clock):
    calls = Recorder()
    eum.add_response("send_text_message", {"MessageId": "eum-1"}, text_params(TimeToLive=600, MaxPrice="0.00581"))
    response = post(client, "/sms", {"to": TO, "body": "Your table is ready", "validityPeriod": 600,
                                      "maxPriceUsd": "0.00581"})
    assert response.status_code == 202 and body_of(response)["status"] == "sent"
    assert calls.problems() == []


def test_send_media_message_gets_them_on_an_sns_stage_too(client, sms_voice, put_media, clock):
    """MMS always goes through End User Messaging, so an SNS stage's MMS takes a price cap."""
    calls = Recorder()
    url = put_media()
    sms_voice.add_response("send_media_message", {"MessageId": "mms-1"}, {
        "DestinationPhoneNumber": TO, "OriginationIdentity": IDENTITY, "MediaUrls": [url],
        "ConfigurationSetName": "sms-sender-test", "Context": ANY, "TimeToLive": 259_200, "MaxPrice": "0.02"})
    response = post(client, "/mms", {"to": TO, "mediaUrl": url, "validityPeriod": 259_200, "maxPriceUsd": "0.02"})
    assert response.status_code == 202 and body_of(response)["maxPriceUsd"] == "0.02"
    assert calls.problems() == []


def test_time_to_live_is_what_is_left_of_the_period_when_the_worker_sends(client, eum, clock):
    """Queued at T with 600 s; sent 100.5 s later: 499 whole seconds are left."""
    post(client, "/batches", {"messages": [{"to": TO, "body": "Your table is ready"}], "validityPeriod": 600})
    clock.now += 100.5
    eum.add_response("send_text_message", {"MessageId": "eum-1"}, text_params(TimeToLive=499))
    assert run_worker() == {"batchItemFailures": []}


def test_time_to_live_is_never_under_the_models_minimum(client, eum, clock):
    post(client, "/batches", {"messages": [{"to": TO, "body": "Your table is ready"}], "validityPeriod": 60})
    clock.now += 58.5  # 1.5 s left: still valid, sent with the model's minimum of 5
    eum.add_response("send_text_message", {"MessageId": "eum-1"}, text_params(TimeToLive=5))
    assert run_worker() == {"batchItemFailures": []}


def test_price_over_threshold_is_422_price_over_max_with_nothing_charged(client, eum):
    eum.add_client_error("send_text_message", "ValidationException", "Price over MaxPrice",
                         modeled_fields={"Reason": "PRICE_OVER_THRESHOLD"},
                         expected_params=text_params(MaxPrice="0.001"))
    response = post(client, "/sms", {"to": TO, "body": "Your table is ready", "maxPriceUsd": "0.001"})
    assert response.status_code == 422
    error = body_of(response)["error"]
    assert (error["code"], error["field"]) == ("PriceOverMax", "maxPriceUsd")
    assert "nothing charged" in error["message"]
    record = get(client, error["messageId"])
    assert record["status"] == "failed" and record["error"]["code"] == "PriceOverMax"
    assert record["priceUsd"] is None


def test_the_mapping_is_one_function():
    from botocore.exceptions import ClientError

    from chalicelib.core import errors

    refused = ClientError({"Error": {"Code": "ValidationException", "Message": "x"},
                           "Reason": "PRICE_OVER_THRESHOLD"}, "SendMediaMessage")
    mapped = errors.from_aws(refused)
    assert isinstance(mapped, errors.Unprocessable) and mapped.code == "PriceOverMax"


# -- expiry on both providers: waited past its period, never handed to the provider ----------------
@pytest.mark.parametrize("provider", ["sns", "sms-voice"])
def test_a_message_that_waits_past_its_period_in_the_queue_ends_expired_and_is_never_sent(
        client, aws_env, provider, clock):
    from chalicelib.core import aws

    aws_env(SMS_PROVIDER=provider)
    service = "sns" if provider == "sns" else SMS_VOICE
    with Stubber(aws.client(service)) as stub:  # nothing queued: any send would fail the test
        batch = body_of(post(client, "/batches", {"messages": [
            {"to": TO, "body": "Your table is ready"},
            {"to": TO, "body": "Your table is ready, later", "validityPeriod": 3600}], "validityPeriod": 60}))
        assert batch["accepted"] == 2
        clock.now += 60  # the shorter period is over (valid until, not through, validUntil)
        if provider == "sns":
            stub.add_response("publish", {"MessageId": "sns-1"}, {
                "PhoneNumber": TO, "Message": "Your table is ready, later", "MessageAttributes": ANY})
        else:
            stub.add_response("send_text_message", {"MessageId": "eum-1"}, {
                **text_params(TimeToLive=3540), "MessageBody": "Your table is ready, later"})
        assert run_worker() == {"batchItemFailures": []}
        stub.assert_no_pending_responses()
    progress = body_of(client.http.get(f"/batches/{batch['id']}"))
    assert (progress["failed"], progress["sent"], progress["done"]) == (1, 1, False)
    listed = {m["body"]: m for m in body_of(client.http.get("/messages"))["messages"]}
    expired = listed["Your table is ready"]
    assert (expired["status"], expired["error"]["code"], expired["providerMessageId"]) == ("failed", "Expired", None)
    assert "nothing was charged" in expired["error"]["message"]
    assert listed["Your table is ready, later"]["status"] == "sent"


@pytest.mark.parametrize("provider", ["sns", "sms-voice"])
def test_the_send_path_itself_refuses_a_message_whose_period_ran_out(client, aws_env, provider, clock):
    """The check is in ``deliver``, the one send path: a record whose period runs out after the worker's
    own look (while it was paced) is failed there, before the provider call."""
    from chalicelib.core import aws, store
    from chalicelib.core.errors import Unprocessable
    from chalicelib.sending import messages, validation
    from chalicelib.core.settings import get_settings

    aws_env(SMS_PROVIDER=provider)
    record = messages.new_record(validation.Outbound("sms", TO, "hi", validity_period=60), get_settings())
    store.create(record)
    claimed = store.transition(record["id"], store.SENDING, expect=(store.QUEUED,), claimedAt=clock.now)
    clock.now += 61
    with Stubber(aws.client("sns" if provider == "sns" else SMS_VOICE)):  # nothing queued: no send
        with pytest.raises(Unprocessable) as caught:
            messages.deliver(claimed, get_settings(), claimed=True)
    assert (caught.value.code, caught.value.message_id) == ("Expired", record["id"])
    assert store.get(record["id"])["status"] == store.FAILED


def test_a_direct_send_that_outlived_its_period_answers_422_expired(client, sns_stub, monkeypatch):
    """Only a stopped clock makes this happen (a period is at least 60 s, a request at most 29): the
    clock here moves 61 s between recording the message and sending it."""
    from chalicelib.sending import messages

    ticks = itertools.count(float(int(time.time())), 61)
    monkeypatch.setattr(messages, "clock", lambda: next(ticks))
    response = post(client, "/sms", {"to": TO, "body": "hi", "validityPeriod": 60})
    assert response.status_code == 422
    error = body_of(response)["error"]
    assert (error["code"], error["field"]) == ("Expired", "validityPeriod")
    assert get(client, error["messageId"])["error"]["code"] == "Expired"


# -- batches: the batch's own fields are its items' defaults ---------------------------------------
def test_a_batchs_fields_are_the_default_of_items_that_name_none(client, eum):
    batch = body_of(post(client, "/batches", {"validityPeriod": 120, "maxPriceUsd": "0.05", "messages": [
        {"to": TO, "body": "defaults"},
        {"to": TO, "body": "own", "validityPeriod": 600, "maxPriceUsd": "0.1"},
        {"to": TO, "body": "none", "validityPeriod": None, "maxPriceUsd": None},
        {"to": TO, "body": "bad", "validityPeriod": 5}]}))
    assert batch["accepted"] == 3
    assert [(r["index"], r["error"]["code"]) for r in batch["rejected"]] == [(3, "InvalidValidityPeriod")]
    shown = {m["body"]: (m["validityPeriod"], m["maxPriceUsd"]) for m in body_of(client.http.get("/messages"))[
        "messages"]}
    assert shown == {"defaults": (120, "0.05"), "own": (600, "0.1"), "none": (None, None)}


@pytest.mark.parametrize("field, value, code", [("validityPeriod", 10, "InvalidValidityPeriod"),
                                                ("maxPriceUsd", "0.0", "InvalidMaxPrice")])
def test_a_wrong_batch_level_field_is_one_400_for_the_batch(client, field, value, code):
    response = post(client, "/batches", {"messages": [{"to": TO, "body": "x"}], field: value})
    assert response.status_code == 400
    assert (body_of(response)["error"]["code"], body_of(response)["error"]["field"]) == (code, field)
    assert queued_messages() == []


def test_on_an_sns_stage_a_batch_price_cap_rejects_its_sms_items_only(client, put_media):
    batch = body_of(post(client, "/batches", {"maxPriceUsd": "0.05", "messages": [
        {"to": TO, "body": "sms"}, {"to": TO, "mediaUrl": put_media()}]}))
    assert batch["accepted"] == 1
    assert [(r["index"], r["error"]["code"]) for r in batch["rejected"]] == [(0, "MaxPriceNotSupported")]


# -- status ingest: End User Messaging's TTL events -----------------------------------------------
def ttl_event(provider_id, message_id, event_type="TEXT_TTL_EXPIRED", status="TTL_EXPIRED"):
    """The documented event (tests/events/eum-text-successful.json) as a TTL-expired one: AWS shows no
    example of that event, so its messageStatus and description are this test's guess."""
    line = copy.deepcopy(json.loads((HERE / "events" / "eum-text-successful.json").read_text())["event"])
    line.update(eventType=event_type, messageStatus=status, messageId=provider_id, totalMessagePrice=0.0,
                eventTimestamp=int(time.time() * 1000), context={"messageId": message_id},
                messageStatusDescription="Message has expired")
    return json.dumps(line)


@pytest.fixture
def sent(aws_env):
    from chalicelib.core import store
    from chalicelib.sending import messages
    from chalicelib.sending.validation import Outbound

    def make(channel="sms"):
        record = messages.new_record(Outbound(channel, TO, "hi", validity_period=600,
                                              media_url="s3://b/k.png" if channel == "mms" else None))
        store.create(record)
        store.transition(record["id"], store.SENT, providerMessageId=f"prov-{record['id']}")
        return record["id"]

    return make


def ingest_lines(*lines):
    from chalicelib.status import ingest

    return ingest.ingest(subscription_event(EVENTS_GROUP, list(lines)), sleep=lambda seconds: None)


@pytest.mark.parametrize("channel, event_type, status", [
    ("sms", "TEXT_TTL_EXPIRED", "TTL_EXPIRED"),
    ("sms", "TEXT_TTL_EXPIRED", "SOMETHING_ELSE"),  # the event type alone decides
    ("mms", "MEDIA_TTL_EXPIRED", "TTL_EXPIRED"),
])
def test_a_ttl_expired_event_ends_the_message_failed_expired(sent, channel, event_type, status):
    from chalicelib.sending import messages

    message_id = sent(channel)
    assert ingest_lines(ttl_event(f"prov-{message_id}", message_id, event_type, status))["applied"] == 1
    record = messages.get(message_id)
    assert (record["status"], record["error"]["code"]) == ("failed", "Expired")
    assert record["providerResponse"].startswith(event_type)


def test_other_failures_stay_delivery_failed(sent):
    from chalicelib.sending import messages

    message_id = sent()
    ingest_lines(ttl_event(f"prov-{message_id}", message_id, "TEXT_CARRIER_UNREACHABLE", "CARRIER_UNREACHABLE"))
    assert messages.get(message_id)["error"]["code"] == "DeliveryFailed"


# -- the stand-in honours MaxPrice and TimeToLive ---------------------------------------------------
@pytest.fixture
def standin():
    sent = []
    fake = SmsVoiceStandIn(region="us-east-1", account="123456789012",
                           record_send=lambda *args, **kwargs: sent.append((args, kwargs)),
                           read_media=lambda bucket, key: ("image/png", 100))
    fake.sent = sent
    fake.number = fake.add_phone_number("+12065550100")["PhoneNumberId"]
    return fake


def send_text(standin, **extra):
    return standin.handle("SendTextMessage", {"DestinationPhoneNumber": TO, "MessageBody": "hi",
                                              "OriginationIdentity": standin.number, **extra})


def send_media(standin, **extra):
    return standin.handle("SendMediaMessage", {"DestinationPhoneNumber": TO, "MediaUrls": ["s3://bucket/cat.png"],
                                               "OriginationIdentity": standin.number, **extra})


def test_the_stand_in_refuses_a_part_priced_over_max_price_and_sends_nothing(standin):
    for send, price, under in ((send_text, SMS_PRICE_USD, "0.005"), (send_media, MMS_PRICE_USD, "0.01")):
        for dry_run in (False, True):
            with pytest.raises(ApiError) as caught:
                send(standin, MaxPrice=under, DryRun=dry_run)
            assert (caught.value.code, caught.value.fields["Reason"]) == ("ValidationException",
                                                                          "PRICE_OVER_THRESHOLD")
        assert send(standin, MaxPrice=f"{price:.5f}")["MessageId"]  # at the price: sent
    assert len(standin.sent) == 2 and standin.dry_runs == 0


def test_the_stand_in_expires_a_send_its_carrier_cannot_hand_off_within_time_to_live(standin):
    standin.handoff_seconds = 30.0
    late = send_text(standin, TimeToLive=29)["MessageId"]
    in_time = send_text(standin, TimeToLive=30)["MessageId"]
    default = send_media(standin)["MessageId"]  # no TimeToLive: 72 hours
    assert standin.ttl_expired == {late}
    assert in_time not in standin.ttl_expired and default not in standin.ttl_expired


def test_the_local_receipts_report_its_ttl_expired_event_and_the_ingest_ends_it_expired(sent, standin):
    from chalicelib.core import store
    from chalicelib.status import ingest

    message_id = sent()
    standin.handoff_seconds = 3600.0
    provider_id = send_text(standin, TimeToLive=600)["MessageId"]
    store.transition(message_id, store.SENT, expect=(store.SENT,), providerMessageId=provider_id)
    emulator = type("Emulator", (), {"listeners": [], "sms_voice": standin})()
    handed = []
    receipts = Receipts(emulator=emulator, logs=NullLogs(), ingest=handed.append, sns_groups=("s", "s/Failure"),
                        events_group=EVENTS_GROUP, origination="+12065550100", delay=0.0)
    entry = {"channel": "sms", "to": TO, "body": "hi", "providerMessageId": provider_id}
    receipts.deliver_now([entry], provider="sms-voice")
    (event,) = handed
    _group, lines = ingest.decode(event)
    final = json.loads(lines[-1])
    assert (final["eventType"], final["isFinal"], final["messageStatus"]) == ("TEXT_TTL_EXPIRED", True, "TTL_EXPIRED")
    assert final["eventType"] in MODEL.shape_for("EventType").enum and final["totalMessagePrice"] == 0.0
    ingest.ingest(event, sleep=lambda seconds: None)
    record = store.public(store.get(message_id))
    assert (record["status"], record["error"]["code"]) == ("failed", "Expired")
    media = json.loads(eum_receipts({**entry, "channel": "mms"}, True, 1, "+12065550100", None, expired=True)[-1])
    assert (media["eventType"], media["messageStatus"]) == ("MEDIA_TTL_EXPIRED", "TTL_EXPIRED")
