"""Scheduled sends end to end on the local stack: the real API, the real sweep function (run as the stack's
EventBridge rule runs it, every second here: ``devstack/rules.py``), SQS's DelaySeconds as moto honours it, the
real batch worker and the emulated provider, whose outbox is the witness.

The stack runs with the scheduling windows shortened (a message due within 6 s is queued by the API itself,
later ones by the sweep, 3 s ahead, in steps of 1 s) so that both ways to the queue run within seconds;
``make dev`` runs the deployed windows (600 s, 300 s, 60 s) with the same code. Every wait here is for a
condition; nothing asserts how long something took, only that no message left before its ``sendAt``."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import boto3
import pytest
from standardwebhooks.webhooks import Webhook

from devstack.receiver import Receiver
from devstack.server import REGION, LocalStack

from .localhttp import Http, wait_for

TO = "+14255550177"
WINDOWS = {"SCHEDULE_DIRECT_SECONDS": "6", "SWEEP_LOOKAHEAD_SECONDS": "3", "SWEEP_STEP_SECONDS": "1"}
SETTLE = 90  # seconds any one condition may take on a busy machine: a bound on waiting, not a measurement


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0, visibility_timeout=10, function_timeout=10, receipt_delay=0.3,
                    settings=WINDOWS) as running:
        yield running


@pytest.fixture
def aws(stack):
    return Http(stack.aws_url)


def at(seconds: float) -> str:
    moment = datetime.fromtimestamp(time.time() + seconds, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def late(entry: dict, send_at: str) -> float:
    """How long after ``send_at`` the provider took it (printed, never asserted: the machine may be busy)."""
    return (datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
            - datetime.fromisoformat(send_at.replace("Z", "+00:00"))).total_seconds()


def out(aws: Http, body: str) -> list[dict]:
    return [entry for entry in aws.call("GET", "/_outbox")[2] if entry.get("body") == body]


def schedule(api: Http, body: str, seconds: float, to: str = TO) -> dict:
    status, headers, message = api.call("POST", "/sms", {"to": to, "body": body, "sendAt": at(seconds)})
    assert status == 202, message
    assert message["status"] == "scheduled" and headers["Location"] == f"/messages/{message['id']}"
    return message


def due_family(stack, message_id: str) -> str:
    item = boto3.client("dynamodb", endpoint_url=stack.aws_url, region_name=REGION).get_item(
        TableName=stack.env["MESSAGES_TABLE"], Key={"id": {"S": message_id}}, ConsistentRead=True)["Item"]
    return item["dueShard"]["S"].rstrip("0123456789")


def queue_empty(stack) -> bool:
    attributes = boto3.client("sqs", endpoint_url=stack.aws_url, region_name=REGION).get_queue_attributes(
        QueueUrl=stack.env["BATCH_QUEUE_URL"], AttributeNames=["All"])["Attributes"]
    return all(attributes[f"ApproximateNumberOf{kind}"] == "0" for kind in ("Messages", "MessagesNotVisible",
                                                                              "MessagesDelayed"))


def test_a_message_due_soon_is_queued_by_the_api_and_leaves_at_its_send_at_never_before(stack, api, aws):
    message = schedule(api, "scheduled: due in four seconds", 4)
    assert due_family(stack, message["id"]) == "due-queued#"
    sent = wait_for(lambda: out(aws, "scheduled: due in four seconds"), SETTLE)
    assert len(sent) == 1 and sent[0]["at"] >= message["sendAt"]
    print(f"queued by the API: left {late(sent[0], message['sendAt']):.2f} s after its sendAt")
    final = wait_for(lambda: api.call("GET", f"/messages/{message['id']}")[2]["status"] == "delivered", SETTLE)
    assert final and len(out(aws, "scheduled: due in four seconds")) == 1


def test_a_message_due_later_is_queued_by_the_sweep_and_leaves_at_its_send_at_never_before(stack, api, aws):
    message = schedule(api, "scheduled: due in twelve seconds", 12)
    assert due_family(stack, message["id"]) == "due#"  # the API left it to the sweep
    listed = api.call("GET", "/messages?status=scheduled&limit=100")[2]["messages"]
    assert message["id"] in [m["id"] for m in listed]
    sent = wait_for(lambda: out(aws, "scheduled: due in twelve seconds"), SETTLE)
    assert len(sent) == 1 and sent[0]["at"] >= message["sendAt"]
    print(f"queued by the sweep: left {late(sent[0], message['sendAt']):.2f} s after its sendAt")
    assert stack.sweep.runs > 1 and stack.sweep.errors == 0
    gone = wait_for(lambda: message["id"] not in [
        m["id"] for m in api.call("GET", "/messages?status=scheduled&limit=100")[2]["messages"]], SETTLE)
    assert gone  # left the due index when the worker claimed it


def test_a_scheduled_batch_leaves_whole_at_its_send_at(stack, api, aws):
    send_at = at(5)
    items = [{"to": f"+1425555018{i}", "body": f"scheduled batch #{i}"} for i in range(5)]
    status, _, accepted = api.call("POST", "/batches", {"messages": items, "sendAt": send_at})
    assert status == 202 and accepted["accepted"] == 5
    assert api.call("GET", f"/batches/{accepted['id']}")[2]["scheduled"] == 5
    done = wait_for(lambda: api.call("GET", f"/batches/{accepted['id']}")[2]["done"], SETTLE)
    assert done
    sent = [e for e in aws.call("GET", "/_outbox")[2] if (e.get("body") or "").startswith("scheduled batch #")]
    assert len(sent) == 5 and min(e["at"] for e in sent) >= send_at


def test_a_message_canceled_before_its_send_at_never_leaves(stack, api, aws):
    message = schedule(api, "scheduled: canceled in time", 5)
    status, _, canceled = api.call("POST", f"/messages/{message['id']}/cancel")
    assert status == 200 and canceled["status"] == "canceled"
    # Its queue message comes due and reaches the worker, which finds it canceled and drops it.
    assert wait_for(lambda: time.time() > datetime.fromisoformat(message["sendAt"].replace("Z", "+00:00"))
                    .timestamp() and queue_empty(stack), SETTLE)
    assert out(aws, "scheduled: canceled in time") == []
    assert api.call("GET", f"/messages/{message['id']}")[2]["status"] == "canceled"
    again = api.call("POST", f"/messages/{message['id']}/cancel")
    assert again[0] == 409 and again[2]["error"]["code"] == "NotCancelable"


def test_a_recipient_who_opts_out_before_the_send_at_gets_nothing(stack, api, aws):
    number = "+14255550166"
    message = schedule(api, "scheduled: they opted out", 5, to=number)
    assert api.call("PUT", f"/opt-outs/%2B{number[1:]}")[0] == 201
    failed = wait_for(lambda: (api.call("GET", f"/messages/{message['id']}")[2]
                               if api.call("GET", f"/messages/{message['id']}")[2]["status"] == "failed" else None),
                      SETTLE)
    assert failed and failed["error"]["code"] == "RecipientOptedOut"
    assert out(aws, "scheduled: they opted out") == []
    assert api.call("DELETE", f"/opt-outs/%2B{number[1:]}")[0] in (204, 409)


def test_scheduling_and_canceling_are_posted_to_webhooks_signed(stack, api):
    with Receiver(lifetime=180) as receiver:
        status, _, endpoint = api.call("POST", "/webhooks", {
            "url": receiver.url, "events": ["message.scheduled", "message.canceled"]})
        assert status == 201, endpoint
        try:
            message = schedule(api, "scheduled: watched by a webhook", 300)
            assert api.call("POST", f"/messages/{message['id']}/cancel")[0] == 200
            both = receiver.wait_for(lambda deliveries: [d for d in deliveries
                                                         if d.event.get("data", {}).get("id") == message["id"]]
                                     if len([d for d in deliveries if d.event.get("data", {}).get("id") ==
                                             message["id"]]) >= 2 else None, SETTLE)
            # Two events, delivered at least once each (possibly out of order: deliveries run in parallel).
            by_type = {d.event["type"]: d for d in both}
            assert set(by_type) == {"message.scheduled", "message.canceled"}
            for delivery in by_type.values():
                Webhook(endpoint["secret"]).verify(delivery.body, delivery.headers)
            assert by_type["message.canceled"].event["data"]["status"] == "canceled"
            scheduled = by_type["message.scheduled"].event["data"]
            assert scheduled["status"] == "scheduled" and scheduled["sendAt"] == message["sendAt"]
            assert "body" not in scheduled
        finally:
            api.call("DELETE", f"/webhooks/{endpoint['id']}")


def test_a_message_the_batch_queue_dead_lettered_is_ended_by_the_sweep_and_never_sent(stack, api, aws):
    """The local stack wires the sweep to the batch queue's dead-letter queue, as the stack does: a message SQS set
    aside there (its record still waiting) ends ``failed`` within a sweep or two, and nothing is sent."""
    sqs = boto3.client("sqs", endpoint_url=stack.aws_url, region_name=REGION)
    redrive = sqs.get_queue_attributes(QueueUrl=stack.env["BATCH_QUEUE_URL"], AttributeNames=["RedrivePolicy"])
    dlq_arn = sqs.get_queue_attributes(QueueUrl=stack.env["BATCH_DLQ_URL"], AttributeNames=["QueueArn"])
    assert f'"{dlq_arn["Attributes"]["QueueArn"]}"' in redrive["Attributes"]["RedrivePolicy"]
    message = schedule(api, "scheduled: set aside by SQS", 3600)  # due in an hour: nothing sends it before then
    sqs.send_message(QueueUrl=stack.env["BATCH_DLQ_URL"], MessageBody=f'{{"messageId": "{message["id"]}"}}')
    ended = wait_for(lambda: (m := api.call("GET", f"/messages/{message['id']}")[2])["status"] == "failed" and m,
                     SETTLE)
    assert ended["error"]["code"] == "NotSent"
    assert wait_for(lambda: sqs.get_queue_attributes(QueueUrl=stack.env["BATCH_DLQ_URL"], AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"] == "0", SETTLE)
    assert out(aws, "scheduled: set aside by SQS") == []
