"""End User Messaging sends carry our record id in ``Context``; the events echo it in ``context``
and the status ingest settles that record directly. Receipts whose provider id is not found yet
are looked up again, and young ones fail the invocation so that Lambda retries them. The final
status ``unknown`` (End User Messaging's ``UNKNOWN``, no carrier receipt within 72 hours).

Event lines follow the documented shape ("SMS example log", AWS End User Messaging SMS User Guide,
https://docs.aws.amazon.com/sms-voice/latest/userguide/configuration-sets-event-format.html), where
``context`` holds the ``Context`` of the send.
"""
import json
import time

import pytest
from botocore.stub import Stubber

from devstack.sms_voice import model as standin
from devstack.receipts import eum_receipts, subscription_event
from tests.conftest import body_of, post
from chalicelib.core import aws

TO = "+14255550123"
EVENTS_GROUP = "/sms-sender-test/sms-voice-events"
SNS_GROUP = "sns/us-east-1/123456789012/DirectPublishToPhoneNumber"


def eum_line(provider_id, context=None, event_type="TEXT_SUCCESSFUL", status="SUCCESSFUL", final=True, at=None,
             description="Message has been accepted by phone carrier", price=0.00581):
    """The documented SMS event; ``context`` as the send's Context, omitted when the send had none."""
    data = {
        "eventType": event_type, "eventVersion": "1.0", "eventTimestamp": at or int(time.time() * 1000),
        "isFinal": final, "originationPhoneNumber": "+12065550152", "destinationPhoneNumber": "+14255550156",
        "isoCountryCode": "US", "mcc": "310", "mnc": "800", "messageId": provider_id,
        "messageRequestTimestamp": (at or int(time.time() * 1000)) - 300, "messageEncoding": "GSM",
        "messageType": "PROMOTIONAL", "messageStatus": status}
    if description is not None:
        data["messageStatusDescription"] = description
    if context is not None:
        data["context"] = context
    data.update({"totalMessageParts": 1, "totalMessagePrice": price, "totalCarrierFee": 0.0})
    return json.dumps(data)


def sns_line(provider_id, at_text):
    """The documented SNS SMS delivery-status log (SNS Developer Guide, "Viewing Amazon CloudWatch
    metrics and logs for SMS")."""
    return json.dumps({
        "notification": {"messageId": provider_id, "timestamp": at_text},
        "delivery": {"phoneCarrier": "My Phone Carrier", "mnc": 270, "numberOfMessageParts": 1,
                     "destination": "+14155550100", "priceInUSD": 0.00645, "smsType": "Transactional",
                     "mcc": 310, "providerResponse": "Message has been accepted by phone carrier",
                     "dwellTimeMs": 599, "dwellTimeMsUntilDeviceAck": 1344},
        "status": "SUCCESS"})


def sns_stamp(ms):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}"


@pytest.fixture
def make(aws_env):
    """A stored message; ``provider_id`` None leaves it as the send path leaves it before the
    provider answered. Returns our id."""
    from chalicelib.sending import messages
    from chalicelib.core import store
    from chalicelib.sending.validation import Outbound

    def create(provider_id="prov-1", status="sent", batch_id=None):
        extra = {"batchId": batch_id} if batch_id else {}
        record = messages.new_record(Outbound("sms", "+14155550100", "hi"), **extra)
        store.create(record)
        if provider_id is not None:
            store.transition(record["id"], status, providerMessageId=provider_id)
        return record["id"]

    return create


def ingest(*lines, group=EVENTS_GROUP, **kwargs):
    from chalicelib.status import ingest as status

    kwargs.setdefault("sleep", lambda seconds: None)
    return status.ingest(subscription_event(group, list(lines)), **kwargs)


def record(message_id):
    from chalicelib.core import store

    return store.public(store.get(message_id))


# -- Context on every End User Messaging send ---------------------------------------------------

@pytest.mark.parametrize("channel", ["sms", "mms"])
def test_every_end_user_messaging_send_carries_our_id_in_context(client, aws_env, put_media, channel):
    aws_env(SMS_PROVIDER="sms-voice")
    sent = {}
    sms_voice = aws.client("pinpoint-sms-voice-v2")
    operation = "SendTextMessage" if channel == "sms" else "SendMediaMessage"
    sms_voice.meta.events.register(f"provide-client-params.pinpoint-sms-voice-v2.{operation}",
                                   lambda params, **kw: sent.update(params))
    with Stubber(sms_voice) as stub:
        stub.add_response("send_text_message" if channel == "sms" else "send_media_message", {"MessageId": "m-1"})
        body = {"to": TO, "body": "hi"} if channel == "sms" else {"to": TO, "mediaUrl": put_media()}
        response = post(client, f"/{channel}", body)
    assert response.status_code == 202
    message_id = body_of(response)["id"]
    assert sent["Context"] == {"messageId": message_id}
    # Within the model's limits: at most 5 entries, keys \S+ of 1 to 100, values of 1 to 800 with
    # no space at either end (checked by the stand-in's validator, which reads botocore's model).
    standin.validate(operation, sent)


def test_the_stand_in_refuses_a_context_the_model_forbids():
    too_many = {f"k{i}": "v" for i in range(6)}
    for context in (too_many, {"messageId": " padded "}, {"has space": "v"}, {"k": "x" * 801}):
        with pytest.raises(standin.ApiError) as caught:
            standin.validate("SendTextMessage", {"DestinationPhoneNumber": TO, "MessageBody": "hi",
                                                 "Context": context})
        assert caught.value.code == "ValidationException"


# -- the ingest settles by context ------------------------------------------------------------

def test_an_event_with_our_context_settles_its_record_without_the_provider_id_index(make, monkeypatch):
    from chalicelib.core import store

    message_id = make(provider_id=None)  # the receipt overtook the write of the provider id
    monkeypatch.setattr(store, "find_id_by_provider_id", lambda _: pytest.fail("looked up the provider id"))
    counts = ingest(eum_line("prov-9", {"messageId": message_id}))
    assert counts["applied"] == 1
    settled = record(message_id)
    assert (settled["status"], settled["providerMessageId"], settled["error"]) == ("delivered", "prov-9", None)
    # The send path's own write comes after, finds the record final, and leaves it so.
    assert store.transition(message_id, store.SENT, providerMessageId="prov-9") is None
    assert record(message_id)["status"] == "delivered"


def test_a_context_naming_a_record_with_another_provider_id_changes_nothing(make):
    message_id = make(provider_id="prov-1")
    counts = ingest(eum_line("prov-other", {"messageId": message_id}))
    assert counts["stale"] == 1 and record(message_id)["status"] == "sent"


def test_a_context_naming_no_record_is_counted_not_retried(make):
    from chalicelib.status import ingest as status

    slept = []
    counts = status.ingest(subscription_event(EVENTS_GROUP, [eum_line("p", {"messageId": "gone"})]),
                           sleep=slept.append)
    assert counts["unknown"] == 1 and slept == []


def test_an_event_without_our_context_is_still_matched_by_provider_id(make):
    message_id = make(provider_id="prov-2")
    assert ingest(eum_line("prov-2", {"account": "bar"}))["applied"] == 1  # the documented example's context
    assert record(message_id)["status"] == "delivered"


def test_the_stand_in_events_echo_the_context_as_documented():
    entry = {"channel": "sms", "to": TO, "body": "hi", "providerMessageId": "p-1"}
    pending, final = (json.loads(line) for line in eum_receipts(entry, True, 1, "+12065550100",
                                                                {"messageId": "our-1"}))
    assert pending["context"] == final["context"] == {"messageId": "our-1"}
    assert (final["messageId"], final["isFinal"], final["isoCountryCode"]) == ("p-1", True, "US")
    no_context = json.loads(eum_receipts(entry, True, 1, "+12065550100")[1])
    assert "context" not in no_context


# -- unknown provider ids: retried, then Lambda's retries -------------------------------------

def test_a_provider_id_not_in_the_index_yet_is_looked_up_again(make):
    from chalicelib.core import store

    message_id = make(provider_id=None)
    slept = []

    def sleep(seconds):  # the send path records the provider id while the ingest waits
        slept.append(seconds)
        if len(slept) == 2:
            store.transition(message_id, store.SENT, providerMessageId="late-1")

    now = int(time.time() * 1000)
    counts = ingest(sns_line("late-1", sns_stamp(now)), group=SNS_GROUP, sleep=sleep, now_ms=now)
    assert counts["applied"] == 1 and record(message_id)["status"] == "delivered"
    assert slept == sorted(slept) and slept[1] > slept[0]  # backing off


def test_a_young_unknown_receipt_fails_the_invocation_after_the_rest_is_applied(make):
    """An End User Messaging event comes from the stage's own configuration set: still unknown
    after the look-ups, it fails the invocation so that Lambda delivers it again."""
    from chalicelib.status import ingest as status

    known = make(provider_id="known-1")
    now = int(time.time() * 1000)
    slept = []
    lines = [eum_line("known-1", at=now), eum_line("not-yet", at=now - 60_000)]
    with pytest.raises(status.UnknownReceipts):
        status.ingest(subscription_event(EVENTS_GROUP, lines), sleep=slept.append, now_ms=now)
    assert record(known)["status"] == "delivered"  # applied before raising
    assert 0 < sum(slept) <= 10  # bounded: a few seconds
    # Lambda's retry of the same event, once the send path recorded the provider id: the known
    # receipt is not applied twice, the other one settles.
    late = make(provider_id="not-yet")
    counts = status.ingest(subscription_event(EVENTS_GROUP, lines), sleep=slept.append, now_ms=now)
    assert (counts["applied"], counts["stale"], counts["unknown"]) == (1, 1, 0)
    assert record(late)["status"] == "delivered"


def test_an_unknown_sns_receipt_is_looked_up_again_then_counted_never_retried(make):
    """SNS's delivery-status groups are account-wide: a receipt no record of this stage holds
    after a few seconds' look-ups is another sender's (another stage, Cognito, ...). Failing the
    invocation for it would fill the on-failure queue with strangers' receipts."""
    from chalicelib.status import ingest as status

    known = make(provider_id="known-1")
    now = int(time.time() * 1000)
    slept = []
    lines = [sns_line("known-1", sns_stamp(now)), sns_line("someone-elses", sns_stamp(now - 60_000))]
    counts = status.ingest(subscription_event(SNS_GROUP, lines), sleep=slept.append, now_ms=now)
    assert (counts["applied"], counts["unknown"]) == (1, 1)
    assert record(known)["status"] == "delivered"
    assert 0 < sum(slept) <= 10  # it was looked up again, for a bounded time


def test_an_old_unknown_receipt_is_counted_and_logged_not_retried(make):
    from chalicelib.status import ingest as status

    now = int(time.time() * 1000)
    old = now - status.RETRY_YOUNGER_THAN_MS - 1000
    slept = []
    counts = status.ingest(subscription_event(SNS_GROUP, [sns_line("someone-elses", sns_stamp(old))]),
                           sleep=slept.append, now_ms=now)
    assert counts["unknown"] == 1 and slept == []


def test_the_app_function_raises_for_lambda_to_retry(make, monkeypatch):
    from chalicelib.status import ingest as status
    from tests.conftest import sender

    monkeypatch.setattr(status, "LOOKUP_RETRY_DELAYS", (0.01,))
    with pytest.raises(status.UnknownReceipts):
        sender.status_ingest(subscription_event(EVENTS_GROUP, [eum_line("nobody-yet")]), None)


# -- the final status "unknown" -----------------------------------------------------------------

@pytest.mark.parametrize("description, response", [
    (None, "TEXT_UNKNOWN: No carrier receipt came within 72 hours; whether it arrived is not known."),
    ("Unknown error attempting to reach phone", "TEXT_UNKNOWN: Unknown error attempting to reach phone"),
])
def test_end_user_messagings_final_unknown_is_its_own_status_not_a_failure(make, description, response):
    message_id = make(provider_id="p-u")
    counts = ingest(eum_line("p-u", {"messageId": message_id}, "TEXT_UNKNOWN", "UNKNOWN", description=description,
                             price=0.0))
    assert counts["applied"] == 1
    settled = record(message_id)
    assert (settled["status"], settled["error"], settled["providerResponse"]) == ("unknown", None, response)


def test_a_pending_unknown_is_not_final(make):
    message_id = make(provider_id="p-q")
    assert ingest(eum_line("p-q", {"messageId": message_id}, "TEXT_QUEUED", "QUEUED", final=False))["pending"] == 1
    assert record(message_id)["status"] == "sent"


def test_a_batch_with_unknown_messages_is_done_and_counts_them(client, make):
    from chalicelib.core import schema
    from chalicelib.core import store

    batch_id = f"{schema.BATCH_ID_PREFIX}test"
    store.create_many([], extra={"id": batch_id, "kind": "batch", "createdAt": store.now_iso(), "size": 3,
                                 "rejected": 0})
    ids = [make(provider_id=f"b-{i}", batch_id=batch_id) for i in range(3)]
    ingest(eum_line("b-0", {"messageId": ids[0]}, "TEXT_UNKNOWN", "UNKNOWN"),
           eum_line("b-1", {"messageId": ids[1]}))
    progress = body_of(client.http.get(f"/batches/{batch_id}"))
    assert {k: progress[k] for k in ("sent", "delivered", "failed", "unknown", "done")} == {
        "sent": 1, "delivered": 1, "failed": 0, "unknown": 1, "done": False}
    ingest(eum_line("b-2", {"messageId": ids[2]}, "TEXT_CARRIER_UNREACHABLE", "CARRIER_UNREACHABLE"))
    progress = body_of(client.http.get(f"/batches/{batch_id}"))
    assert (progress["unknown"], progress["failed"], progress["done"]) == (1, 1, True)


def test_the_documented_event_with_our_context_settles_by_it(make):
    """tests/events/eum-text-successful.json: the user guide's "SMS example log", verbatim, whose
    ``context`` is the Context of the send; here the one our sends carry."""
    from pathlib import Path

    documented = json.loads((Path(__file__).parent / "events" / "eum-text-successful.json").read_text())["event"]
    message_id = make(provider_id=None)
    event = {**documented, "context": {"messageId": message_id}}
    assert ingest(json.dumps(event))["applied"] == 1
    settled = record(message_id)
    assert (settled["status"], settled["providerMessageId"], settled["priceUsd"]) == (
        "delivered", documented["messageId"], documented["totalMessagePrice"])
    assert settled["providerResponse"] == "TEXT_SUCCESSFUL: Message has been accepted by phone carrier"
