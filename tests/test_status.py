"""Delivery status ingest: log lines in the documented shapes, delivered the way CloudWatch Logs
delivers them to a subscription (gzipped, base64), against records in moto's DynamoDB."""
import base64
import copy
import gzip
import json
from pathlib import Path

import pytest

from devstack.receipts import subscription_event

from .conftest import sender

SNS_GROUP = "sns/us-east-1/123456789012/DirectPublishToPhoneNumber"
EVENTS = Path(__file__).resolve().parent / "events"


def documented(name):
    """A documented example from tests/events/ (each file names its source): the whole record."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def sns_line(provider_id, status="SUCCESS", response="Message has been accepted by phone carrier",
             timestamp="2026-11-22 10:00:00.100", price=0.00645):
    """The SNS SMS delivery-status log, the SNS developer guide's example with these values."""
    example = documented("sns-sms-delivery-success" if status == "SUCCESS" else "sns-sms-delivery-failure")
    line = copy.deepcopy(example["event"])
    line["notification"].update(messageId=provider_id, timestamp=timestamp)
    line["delivery"].update(providerResponse=response, priceInUSD=price)
    line["status"] = status
    return json.dumps(line)


def eum_line(provider_id, event_type="TEXT_DELIVERED", status="DELIVERED", final=True, at=1686975103470,
             description="Message has been accepted by phone", price=0.00581):
    """An End User Messaging event as a configuration set's CloudWatch Logs destination writes it:
    the user guide's example with these values."""
    line = copy.deepcopy(documented("eum-text-successful")["event"])
    line.update(eventType=event_type, messageStatus=status, isFinal=final, eventTimestamp=at,
                messageRequestTimestamp=at - 300, messageId=provider_id, messageStatusDescription=description,
                totalMessagePrice=price)
    return json.dumps(line)


@pytest.fixture
def sent(aws_env):
    """A stored message in ``sent`` with a provider id; returns (our id, provider id)."""
    from chalicelib.sending import messages
    from chalicelib.core import store
    from chalicelib.sending.validation import Outbound

    def make(provider_id="prov-1", channel="sms"):
        record = messages.new_record(Outbound(channel, "+14155550100", "hi",
                                              media_url="s3://b/k.png" if channel == "mms" else None))
        store.create(record)
        store.transition(record["id"], store.SENT, providerMessageId=provider_id)
        return record["id"]

    return make


def ingest(*lines, group=SNS_GROUP):
    return sender.status_ingest(subscription_event(group, list(lines)), None)


def record(message_id):
    from chalicelib.sending import messages

    return messages.get(message_id)


def test_the_event_is_decoded_as_cloudwatch_logs_delivers_it():
    from chalicelib.status import ingest as status

    event = subscription_event("g", ["a", "b"])
    payload = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    assert payload["messageType"] == "DATA_MESSAGE"
    assert status.decode(event) == ("g", ["a", "b"])


@pytest.mark.parametrize("line, status, response, price", [
    (sns_line("p"), "delivered", "Message has been accepted by phone carrier", 0.00645),
    (sns_line("p", "FAILURE", "Phone is currently unreachable/unavailable", price=0.0), "failed",
     "Phone is currently unreachable/unavailable", 0.0),
    (sns_line("p", "FAILURE", "Phone number is opted out", price=0.0), "failed", "Phone number is opted out", 0.0),
    (sns_line("p", "FAILURE", "Phone carrier is currently unreachable/unavailable", price=0.0), "failed",
     "Phone carrier is currently unreachable/unavailable", 0.0),
    (eum_line("p"), "delivered", "TEXT_DELIVERED: Message has been accepted by phone", 0.00581),
    (eum_line("p", "TEXT_SUCCESSFUL", "SUCCESSFUL", description="Message has been accepted by phone carrier"),
     "delivered", "TEXT_SUCCESSFUL: Message has been accepted by phone carrier", 0.00581),
    (eum_line("p", "TEXT_OPTED_OUT", "OPTED_OUT", description="The recipient has opted out", price=0.0),
     "failed", "TEXT_OPTED_OUT: The recipient has opted out", 0.0),
    (eum_line("p", "TEXT_CARRIER_UNREACHABLE", "CARRIER_UNREACHABLE",
              description="Phone carrier is currently unreachable/unavailable", price=0.0),
     "failed", "TEXT_CARRIER_UNREACHABLE: Phone carrier is currently unreachable/unavailable", 0.0),
    (eum_line("p", "MEDIA_FILE_INACCESSIBLE", "FILE_INACCESSIBLE",
              description="The media file could not be retrieved", price=0.0),
     "failed", "MEDIA_FILE_INACCESSIBLE: The media file could not be retrieved", 0.0),
])
def test_documented_outcomes_settle_the_message(sent, line, status, response, price):
    message_id = sent("p")
    assert ingest(line)["applied"] == 1
    settled = record(message_id)
    assert (settled["status"], settled["priceUsd"], settled["providerResponse"]) == (status, price, response)
    if status == "failed":
        assert settled["error"] == {"code": "DeliveryFailed", "message": response}
    else:
        assert settled["error"] is None


def test_a_pending_event_changes_nothing(sent):
    message_id = sent("p")
    counts = ingest(eum_line("p", "TEXT_PENDING", "PENDING", final=False))
    assert counts["pending"] == 1 and counts["applied"] == 0
    assert record(message_id)["status"] == "sent"


def test_a_repeated_or_late_event_never_moves_a_final_status_back(sent):
    message_id = sent("p")
    ingest(eum_line("p", "TEXT_DELIVERED", "DELIVERED", at=2000))
    counts = ingest(eum_line("p", "TEXT_DELIVERED", "DELIVERED", at=2000),  # repeated
                    eum_line("p", "TEXT_CARRIER_UNREACHABLE", "CARRIER_UNREACHABLE", at=1000))  # late, older
    assert counts["stale"] == 2
    assert record(message_id)["status"] == "delivered"


def test_out_of_order_events_settle_on_the_latest(sent):
    message_id = sent("p")
    # The carrier's later failure report arrives before the earlier acceptance.
    ingest(eum_line("p", "TEXT_CARRIER_UNREACHABLE", "CARRIER_UNREACHABLE", at=3000, price=0.0),
           eum_line("p", "TEXT_SUCCESSFUL", "SUCCESSFUL", at=1000))
    assert record(message_id)["status"] == "failed"


def test_an_unknown_id_and_malformed_lines_are_counted_and_the_rest_applied(sent):
    first, second = sent("p1"), sent("p2")
    counts = ingest(sns_line("p1"), "not json at all", json.dumps({"some": "thing"}),
                    json.dumps({"notification": {"messageId": "p2"}, "delivery": {}, "status": "MAYBE"}),
                    sns_line("nobody-knows-this"), sns_line("p2", "FAILURE", "Unknown error"))
    assert counts == {"applied": 2, "stale": 0, "pending": 0, "unknown": 1, "malformed": 3}
    assert (record(first)["status"], record(second)["status"]) == ("delivered", "failed")


def test_a_broken_subscription_payload_is_counted_not_raised(aws_env):
    counts = sender.status_ingest({"awslogs": {"data": "bm90IGd6aXA="}}, None)
    assert counts["malformed"] == 1


def test_ingest_logs_no_full_phone_number(sent, capsys):
    sent("p")
    ingest("{broken +14155550100", sns_line("p"))
    out = capsys.readouterr()
    assert "+14155550100" not in out.out + out.err


# -- the documented examples themselves (tests/events/) ----------------------------------------
def test_every_event_fixture_names_its_source():
    for path in sorted(EVENTS.glob("*.json")):
        record = json.loads(path.read_text())
        assert record["source"].startswith("https://docs.aws.amazon.com/"), path.name
        assert record["retrieved"] and "event" in record, path.name


@pytest.mark.parametrize("name, status, price, response", [
    ("sns-sms-delivery-success", "delivered", 0.00645, "Message has been accepted by phone carrier"),
    ("sns-sms-delivery-failure", "failed", 0.00645, "Unknown error attempting to reach phone"),
])
def test_the_documented_sns_logs_parse_as_they_are(name, status, price, response):
    from chalicelib.status import ingest

    event = documented(name)["event"]
    receipt = ingest.parse(json.dumps(event))
    assert (receipt.provider_id, receipt.status, receipt.price_usd, receipt.response) == (
        event["notification"]["messageId"], status, price, response)
    assert receipt.at_ms == 1467074434000 + int(event["notification"]["timestamp"][-3:])  # 2016-06-28 00:40:34 UTC


@pytest.mark.parametrize("name, detail, response, price", [
    ("eum-text-successful", False, "TEXT_SUCCESSFUL: Message has been accepted by phone carrier", 0.09582),
    ("eum-eventbridge-text-delivered", True, "TEXT_DELIVERED: Message has been accepted by phone", 0.00581 + 0.003),
    ("eum-eventbridge-text-successful-protect", True, "TEXT_SUCCESSFUL: Message has been accepted by phone carrier",
     0.06087),
])
def test_the_documented_end_user_messaging_events_parse_as_they_are(name, detail, response, price):
    from chalicelib.status import ingest

    event = documented(name)["event"]
    event = event["detail"] if detail else event  # the EventBridge form wraps the event-destination data
    receipt = ingest.parse(json.dumps(event))
    assert (receipt.provider_id, receipt.status, receipt.at_ms, receipt.response) == (
        event["messageId"], "delivered", event["eventTimestamp"], response)
    assert receipt.price_usd == pytest.approx(price)


def test_the_documented_event_echoes_the_sends_context_in_context():
    """End User Messaging logs the Context a send carried under the event's "context" key."""
    from chalicelib.status import ingest
    from chalicelib.core.schema import CONTEXT_KEY

    event = documented("eum-text-successful")["event"]
    assert event["context"] == {"account": "bar"}
    assert ingest.parse(json.dumps(event)).message_id is None  # someone else's Context: no id of ours
    ours = {**event, "context": {CONTEXT_KEY: "our-record-id"}}
    assert ingest.parse(json.dumps(ours)).message_id == "our-record-id"


def test_the_documented_subscription_payload_decodes_and_the_local_one_has_its_shape():
    from chalicelib.status import ingest

    payload = documented("cloudwatch-logs-subscription-event")["decoded"]
    event = {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}
    assert ingest.decode(event) == ("/aws/lambda/echo-nodejs", [payload["logEvents"][0]["message"]])
    local = json.loads(gzip.decompress(base64.b64decode(subscription_event("g", ["x"])["awslogs"]["data"])))
    assert set(local) == set(payload)
    assert set(local["logEvents"][0]) == set(payload["logEvents"][0])
    assert {k: type(v) for k, v in local["logEvents"][0].items()} == {
        k: type(v) for k, v in payload["logEvents"][0].items()}
