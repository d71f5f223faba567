"""Scheduled sends (issue 21, section 4) through the Chalice test client under moto: ``sendAt`` and its 400s,
the two ways to the batch queue (the API's own delayed enqueue, and the sweep over the due index with its
cursor), the worker that claims a scheduled message only once its time has come and checks the opt-out list
and the allowlist at send time, cancel (one message, a batch) and the forced race between a cancel and the
worker's claim, ``GET /messages?status=scheduled``, and the two webhook events.

Time is injected wherever it matters (``schedule.clock``, the sweep's ``now``): nothing waits for the wall
clock, and nothing asserts how long anything took."""
from __future__ import annotations

import json
import math
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from chalicelib.core import aws, schema, store
from chalicelib.core.settings import MAX_DELAY_SECONDS, ConfigError, Settings, get_settings
from chalicelib.sending import deadletters, schedule, validation, worker
from chalicelib.webhooks import endpoints as webhook_endpoints
from chalicelib.webhooks import events as webhook_events

from .conftest import REGION, body_of, post
from .test_keys import bearer, make_key

TO = "+14255550123"
DOCS = json.loads((Path(__file__).parent / "aws_docs" / "sqs-delay-seconds.json").read_text())


def at(seconds: float, base: float | None = None) -> str:
    """A time ``seconds`` from now (or from ``base``), as a client writes it."""
    moment = datetime.fromtimestamp((time.time() if base is None else base) + seconds, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sent_sms() -> list:
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


def item_of(message_id: str) -> dict:
    return boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=get_settings().messages_table, Key={"id": {"S": message_id}}, ConsistentRead=True)["Item"]


def queue_depth() -> dict[str, int]:
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=get_settings().batch_queue_url, AttributeNames=["All"])["Attributes"]
    return {name: int(attributes[f"ApproximateNumberOf{name}"]) for name in ("Messages", "MessagesDelayed")}


def handed_over(message_id: str) -> dict:
    """An SQS event with one record naming ``message_id``, as the queue hands it to the worker (a real queue
    message, visible now, so that the worker's visibility calls land on it)."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = get_settings().batch_queue_url
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"messageId": message_id}))
    for _ in range(10):
        for got in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            if json.loads(got["Body"])["messageId"] == message_id:
                return {"Records": [{"messageId": got["MessageId"], "receiptHandle": got["ReceiptHandle"],
                                     "body": got["Body"], "attributes": {"ApproximateReceiveCount": "1"}}]}
    raise AssertionError("the queue did not hand the message over")


def run_worker(event: dict) -> dict:
    return worker.handle(event, settings=get_settings(), pacer=worker.TokenBucket(1000))


@pytest.fixture
def now(monkeypatch):
    """Scheduling's clock, held where a test puts it (``now.set``); starts at the real time."""
    class Clock:
        value = time.time()

        def set(self, value: float) -> None:
            self.value = value

    clock = Clock()
    monkeypatch.setattr(schedule, "clock", lambda: clock.value)
    return clock


# -- sendAt -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("send_at, why", [
    ("tomorrow", "not ISO 8601"),
    ("2027-01-31T09:00:00", "no offset: whose 9 o'clock?"),
    ("2027-01-31", "a date, no time"),
    (1798707600, "a number, not a string"),
    ("2020-01-01T00:00:00Z", "in the past"),
    ("PAST", "a moment ago"),
    ("FAR", "36 days ahead"),
])
@pytest.mark.parametrize("path", ["/sms", "/mms", "/batches"])
def test_a_send_at_that_is_not_an_iso_time_with_an_offset_in_the_next_35_days_is_400(client, path, send_at, why):
    send_at = {"PAST": at(-1), "FAR": at(36 * 86400)}.get(send_at, send_at)
    item = {"to": TO, "body": "later"} if path != "/mms" else {"to": TO, "mediaUrl": "s3://b/k.png"}
    body = {"messages": [item], "sendAt": send_at} if path == "/batches" else {**item, "sendAt": send_at}
    response = post(client, path, body)
    assert response.status_code == 400, (why, response.body)
    assert body_of(response)["error"]["code"] in ("InvalidSendAt", "MmsNotConfigured", "InvalidMediaUrl")
    if path != "/mms":  # an MMS may be refused for its media first; the rule is the same
        assert (body_of(response)["error"]["code"], body_of(response)["error"]["field"]) == ("InvalidSendAt", "sendAt")
    assert sent_sms() == [] and queue_depth() == {"Messages": 0, "MessagesDelayed": 0}


def test_send_at_takes_35_days_to_the_millisecond_and_any_offset_and_is_stored_in_utc():
    base = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc).timestamp()
    assert validation.send_at("2027-01-09T12:00:00Z", now=base) == "2027-01-09T12:00:00.000Z"  # 35 days exactly
    with pytest.raises(Exception) as late:
        validation.send_at("2027-01-09T12:00:00.001Z", now=base)
    assert late.value.code == "InvalidSendAt"
    assert late.value.message == ("'sendAt' must lie at most 35 days ahead: 2027-01-09T12:00:00.001Z is later than "
                                  "2027-01-09T12:00:00.000Z.")  # which rule, and the latest time it takes
    assert validation.send_at("2026-12-05T14:30:00+02:00", now=base) == "2026-12-05T12:30:00.000Z"
    with pytest.raises(Exception) as exact:
        validation.send_at("2026-12-05T12:00:00Z", now=base)  # now is not the future
    assert exact.value.code == "InvalidSendAt"
    with pytest.raises(Exception) as gone:
        validation.send_at("2026-12-05T13:59:00+02:00", now=base)
    assert gone.value.message == ("'sendAt' must lie in the future: 2026-12-05T11:59:00.000Z has passed "
                                  "(it is 2026-12-05T12:00:00.000Z).")
    assert validation.send_at(None, now=base) is None


def test_a_dry_run_cannot_be_scheduled(client):
    response = post(client, "/mms", {"to": TO, "mediaUrl": "s3://b/k.png", "dryRun": True, "sendAt": at(600)})
    assert response.status_code in (400, 503)
    with pytest.raises(Exception) as refused:
        validation.send_at(at(600), dry_run=True)
    assert (refused.value.code, refused.value.field) == ("InvalidSendAt", "sendAt")


def test_a_batch_item_cannot_have_its_own_send_at(client):
    response = post(client, "/batches", {"messages": [{"to": TO, "body": "a"}, {"to": TO, "body": "b", "sendAt": at(60)}]})
    answer = body_of(response)
    assert response.status_code == 202 and answer["accepted"] == 1
    assert [(r["index"], r["error"]["code"], r["error"]["field"]) for r in answer["rejected"]] == [
        (1, "UnknownField", "sendAt")]


def test_a_stage_without_a_batch_queue_cannot_schedule(client, aws_env):
    aws_env(BATCH_QUEUE_URL=None)
    response = post(client, "/sms", {"to": TO, "body": "no queue to leave by", "sendAt": at(600)})
    assert response.status_code == 503 and body_of(response)["error"]["code"] == "BatchesNotConfigured"
    assert body_of(client.http.get("/messages"))["messages"] == []  # nothing recorded


def test_scheduling_settings_must_keep_the_sweep_behind_the_api_and_within_sqs_delay():
    base = {"MEDIA_BUCKET": "b", "MESSAGES_TABLE": "m", "IDEMPOTENCY_TABLE": "i"}
    assert Settings.from_env(base).schedule_direct_seconds == 600
    for bad in ({"SCHEDULE_DIRECT_SECONDS": "901"}, {"SWEEP_LOOKAHEAD_SECONDS": "600"},
                {"SCHEDULE_DIRECT_SECONDS": "30", "SWEEP_LOOKAHEAD_SECONDS": "30"}):
        with pytest.raises(ConfigError):
            Settings.from_env({**base, **bad})


# -- scheduling, and the API's own enqueue ----------------------------------------------------------
def test_a_scheduled_sms_is_recorded_scheduled_and_queued_delayed_until_its_send_at(client, calls, now):
    send_at = at(120, now.value)
    response = post(client, "/sms", {"to": TO, "body": "in two minutes", "sendAt": send_at})
    assert response.status_code == 202, response.body
    message = body_of(response)
    assert (message["status"], message["sendAt"], message["providerMessageId"]) == ("scheduled", send_at, None)
    assert response.headers["Location"] == f"/messages/{message['id']}"
    assert body_of(client.http.get(f"/messages/{message['id']}")) == message
    assert sent_sms() == []
    (batch,) = [params for service, op, params in calls if op == "SendMessageBatch"]
    (entry,) = batch["Entries"]
    assert json.loads(entry["MessageBody"]) == {"messageId": message["id"]}
    # Rounded up: never handed over before its time (the moment the API sent it is a little after `now`).
    assert entry["DelaySeconds"] == 120
    assert queue_depth() == {"Messages": 0, "MessagesDelayed": 1}
    item = item_of(message["id"])
    assert item[schema.MESSAGES_DUE_PARTITION]["S"].startswith(schema.DUE_QUEUED_PREFIX)
    assert item[schema.MESSAGES_DUE_SORT]["S"] == f"{send_at}#{message['id']}"


def test_a_message_due_later_waits_for_the_sweep_which_queues_it_once_with_the_delay_left(client, calls, now):
    send_at = at(3600, now.value)
    message = body_of(post(client, "/sms", {"to": TO, "body": "in an hour", "sendAt": send_at}))
    assert not [op for _, op, _ in calls if op.startswith("SendMessage")]
    assert item_of(message["id"])[schema.MESSAGES_DUE_PARTITION]["S"].startswith(schema.DUE_SWEEP_PREFIX)
    settings = get_settings()
    # An hour early: beyond the sweep's look-ahead, nothing to queue (the first run reads all it may).
    assert schedule.sweep(settings=settings, now=now.value)["enqueued"] == 0
    # Four minutes before: within the look-ahead; queued once, with four minutes' delay.
    start = len(calls)
    later = schedule.epoch(send_at) - 240
    assert schedule.sweep(settings=settings, now=later)["enqueued"] == 1
    (batch,) = [params for _, op, params in calls[start:] if op == "SendMessageBatch"]
    assert [(json.loads(e["MessageBody"])["messageId"], e["DelaySeconds"]) for e in batch["Entries"]] == [
        (message["id"], 240)]
    # The cursor moved past it: the next runs never read that range again.
    assert schedule.sweep(settings=settings, now=later)["enqueued"] == 0
    assert schedule.sweep(settings=settings, now=later + 30)["enqueued"] == 0
    assert queue_depth()["MessagesDelayed"] == 1


def test_the_sweep_reads_a_step_at_a_time_from_its_cursor_and_queues_test_keys_messages_too(client, calls, now):
    settings = get_settings()
    base = math.floor(now.value / 60) * 60 + 7200  # two hours ahead, on a minute
    _, test_key = make_key(client, ["messages:send", "messages:read"], test=True)
    live = [body_of(post(client, "/sms", {"to": TO, "body": f"live {i}", "sendAt": at(i * 60 + 5, base)}))
            for i in range(3)]
    tested = body_of(post(client, "/sms", {"to": TO, "body": "a test-keyed one", "sendAt": at(65, base)}, bearer(test_key)))
    assert schedule.sweep(settings=settings, now=base - 3600)["enqueued"] == 0  # sets the cursor
    start = len(calls)
    # Three minutes' worth of steps: each message in the run of its minute.
    runs = [schedule.sweep(settings=settings, now=base - settings.sweep_lookahead_seconds + 60 * i)
            for i in range(1, 4)]
    assert [r["enqueued"] for r in runs] == [1, 2, 1]
    assert queue_depth()["MessagesDelayed"] == 4
    queued = [json.loads(e["MessageBody"])["messageId"] for _, op, p in calls[start:] if op == "SendMessageBatch"
              for e in p["Entries"]]
    assert sorted(queued) == sorted([m["id"] for m in live] + [tested["id"]])


def test_two_sweeps_that_overlap_move_the_cursor_once(client, now):
    settings = get_settings()
    assert schedule.sweep(settings=settings, now=now.value)["steps"] == 1
    cursor = schedule.read_cursor(settings)
    assert schedule.move_cursor(settings, cursor, "2099-01-01T00:00:00.000Z", now.value)
    assert not schedule.move_cursor(settings, cursor, "2099-01-01T00:01:00.000Z", now.value)  # stale: refused
    assert schedule.read_cursor(settings) == "2099-01-01T00:00:00.000Z"


def test_when_sqs_refuses_the_step_stays_behind_the_cursor_and_the_next_run_queues_it(client, now):
    settings = get_settings()
    send_at = at(3600, now.value)
    message = body_of(post(client, "/sms", {"to": TO, "body": "refused once", "sendAt": send_at}))
    schedule.sweep(settings=settings, now=now.value)
    cursor = schedule.read_cursor(settings)
    with Stubber(aws.client("sqs")) as sqs:
        for _ in range(4):  # every attempt of the one SendMessageBatch call
            sqs.add_response("send_message_batch", {"Successful": [], "Failed": [
                {"Id": "0", "SenderFault": False, "Code": "InternalError"}]})
        with pytest.raises(RuntimeError):
            schedule.sweep(settings=settings, now=schedule.epoch(send_at) - 200)
    # The steps before it went on; the cursor stopped at the start of the step that holds it.
    assert cursor < schedule.read_cursor(settings) <= send_at
    assert schedule.sweep(settings=settings, now=schedule.epoch(send_at) - 200)["enqueued"] == 1
    assert store.get(message["id"])["status"] == store.SCHEDULED


def test_the_sweeps_calls_are_the_models_and_its_delay_never_passes_sqs_maximum(aws_env):
    """Every call of a sweep run, against Stubbers (the client checks each call's parameters against botocore's
    service model before the Stubber answers; the Stubber checks each answer against it too)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sqs")
    documented = [model.operation_model("SendMessage").input_shape.members["DelaySeconds"].documentation,
                  model.shape_for("SendMessageBatchRequestEntry").members["DelaySeconds"].documentation,
                  model.operation_model("ChangeMessageVisibility").input_shape.members["VisibilityTimeout"].documentation]
    assert DOCS["source"].startswith("https://docs.aws.amazon.com/") and DOCS["retrieved"]
    for quote, text in zip(DOCS["quotes"], documented):  # the page's words are the model's
        assert quote.replace("0 to 43200", "<code>0</code> to <code>43200</code>") in text
    assert MAX_DELAY_SECONDS == int(DOCS["quotes"][0].split("Valid values: 0 to ")[1].split(".")[0])
    assert worker.MAX_VISIBILITY_SECONDS == int(DOCS["quotes"][2].split("0 to ")[1].split(".")[0])
    settings = get_settings()
    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    cursor = "2027-01-15T08:04:00.000Z"
    due = "2027-01-15T08:04:30.000Z"
    with Stubber(aws.client("dynamodb")) as dynamodb, Stubber(aws.client("sqs")) as sqs:
        key = {schema.IDEMPOTENCY_KEY: {"S": schema.SWEEP_CURSOR}}
        dynamodb.add_response("get_item", {"Item": {**key, "until": {"S": cursor}}},
                              {"TableName": settings.idempotency_table, "Key": key, "ConsistentRead": True})
        for shard in range(2 * schema.INDEX_SHARDS):  # one Query per shard of both key kinds, in any order
            items = [{schema.MESSAGES_KEY: {"S": "m-1"}, schema.MESSAGES_DUE_PARTITION: {"S": "due#3"},
                      schema.MESSAGES_DUE_SORT: {"S": f"{due}#m-1"}}] if shard == 0 else []
            dynamodb.add_response("query", {"Items": items, "Count": len(items)}, {
                "TableName": settings.messages_table, "IndexName": schema.MESSAGES_DUE_INDEX,
                "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :start AND :end",
                "ExpressionAttributeNames": {"#pk": schema.MESSAGES_DUE_PARTITION, "#sk": schema.MESSAGES_DUE_SORT},
                "ExpressionAttributeValues": {":pk": ANY, ":start": {"S": cursor},
                                              ":end": {"S": "2027-01-15T08:05:00.000Z"}}})
        sqs.add_response("send_message_batch", {"Successful": [
            {"Id": "0", "MessageId": "q-1", "MD5OfMessageBody": "0" * 32}], "Failed": []}, {
            "QueueUrl": settings.batch_queue_url,
            "Entries": [{"Id": "0", "MessageBody": json.dumps({"messageId": "m-1"}), "DelaySeconds": 270}]})
        dynamodb.add_response("update_item", {}, {
            "TableName": settings.idempotency_table, "Key": key, "UpdateExpression": "SET #until = :new, #ttl = :ttl",
            "ConditionExpression": "#until = :old",
            "ExpressionAttributeNames": {"#until": "until", "#ttl": schema.IDEMPOTENCY_TTL},
            "ExpressionAttributeValues": {":new": {"S": "2027-01-15T08:05:00.000Z"}, ":old": {"S": cursor},
                                          ":ttl": ANY}})
        # Then the batch dead-letter queue, empty here (tests/test_dead_letters.py has the rest).
        sqs.add_response("receive_message", {}, {"QueueUrl": settings.batch_dlq_url, "MaxNumberOfMessages": 10,
                                                 "VisibilityTimeout": deadletters.STALE_CLAIM_SECONDS,
                                                 "WaitTimeSeconds": 0})
        assert schedule.sweep(settings=settings, now=now) == {
            "enqueued": 1, "steps": 1, "cursor": "2027-01-15T08:05:00.000Z", "settled": 0}
        dynamodb.assert_no_pending_responses()
        sqs.assert_no_pending_responses()
    assert schedule.delay_for("2027-01-15T09:00:00.000Z", now) == MAX_DELAY_SECONDS  # an hour: capped
    assert schedule.delay_for("2027-01-15T07:00:00.000Z", now) == 0  # overdue: at once


# -- the worker -------------------------------------------------------------------------------------
def test_the_worker_hands_an_early_message_back_for_the_time_left_then_sends_it_once_due(client, calls, now):
    send_at = at(120, now.value)
    message = body_of(post(client, "/sms", {"to": TO, "body": "not before two minutes", "sendAt": send_at}))
    event = handed_over(message["id"])  # SQS handed it over early (a clock that runs ahead, say)
    start = len(calls)
    assert run_worker(event)["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    (hidden,) = [params for _, op, params in calls[start:] if op == "ChangeMessageVisibility"]
    assert hidden["VisibilityTimeout"] == 120
    assert store.get(message["id"])["status"] == store.SCHEDULED and sent_sms() == []
    now.set(schedule.epoch(send_at))
    assert run_worker(event) == {"batchItemFailures": []}
    assert [m[1] for m in sent_sms()] == ["not before two minutes"]
    sent = body_of(client.http.get(f"/messages/{message['id']}"))
    assert sent["status"] in ("sent", "delivered") and sent["sendAt"] == send_at
    item = item_of(message["id"])
    assert schema.MESSAGES_DUE_PARTITION not in item and schema.MESSAGES_DUE_SORT not in item  # left the index
    assert run_worker(handed_over(message["id"])) == {"batchItemFailures": []}  # a second copy sends nothing
    assert len(sent_sms()) == 1


def test_a_recipient_who_opts_out_between_scheduling_and_sending_gets_nothing(client, now):
    send_at = at(120, now.value)
    message = body_of(post(client, "/sms", {"to": TO, "body": "they said stop", "sendAt": send_at}))
    assert client.http.put(f"/opt-outs/%2B{TO[1:]}").status_code == 201
    now.set(schedule.epoch(send_at) + 1)
    assert run_worker(handed_over(message["id"])) == {"batchItemFailures": []}
    failed = body_of(client.http.get(f"/messages/{message['id']}"))
    assert (failed["status"], failed["error"]["code"]) == ("failed", "RecipientOptedOut")
    assert sent_sms() == [] and schema.MESSAGES_DUE_PARTITION not in item_of(message["id"])


def test_the_allowlist_at_send_time_applies_not_the_one_at_scheduling_time(client, aws_env, now):
    aws_env(ALLOWED_COUNTRIES="US,CA")
    send_at = at(120, now.value)
    message = body_of(post(client, "/sms", {"to": TO, "body": "US, allowed today", "sendAt": send_at}))
    aws_env(ALLOWED_COUNTRIES="CA")  # a deploy narrowed the stage's allowlist meanwhile
    now.set(schedule.epoch(send_at))
    assert run_worker(handed_over(message["id"])) == {"batchItemFailures": []}
    failed = body_of(client.http.get(f"/messages/{message['id']}"))
    assert (failed["status"], failed["error"]["code"]) == ("failed", "CountryNotAllowed")
    assert sent_sms() == []


def test_a_scheduled_test_key_message_is_simulated_when_due(client, now):
    _, key = make_key(client, ["messages:send", "messages:read"], test=True)
    send_at = at(60, now.value)
    message = body_of(post(client, "/sms", {"to": TO, "body": "a test-keyed later one", "sendAt": send_at}, bearer(key)))
    now.set(schedule.epoch(send_at))
    assert run_worker(handed_over(message["id"])) == {"batchItemFailures": []}
    assert body_of(client.http.get(f"/messages/{message['id']}", headers=bearer(key)))["status"] == "delivered"
    assert sent_sms() == []  # a test key never reaches a provider


# -- cancel -----------------------------------------------------------------------------------------
def test_cancel_turns_a_scheduled_message_canceled_once_and_then_it_is_not_cancelable(client, now):
    send_at = at(120, now.value)
    message = body_of(post(client, "/sms", {"to": TO, "body": "never mind", "sendAt": send_at}))
    response = client.http.post(f"/messages/{message['id']}/cancel")
    assert response.status_code == 200
    canceled = body_of(response)
    assert (canceled["id"], canceled["status"], canceled["sendAt"]) == (message["id"], "canceled", send_at)
    assert schema.MESSAGES_DUE_PARTITION not in item_of(message["id"])
    again = client.http.post(f"/messages/{message['id']}/cancel")
    assert again.status_code == 409 and body_of(again)["error"]["code"] == "NotCancelable"
    now.set(schedule.epoch(send_at))
    assert run_worker(handed_over(message["id"])) == {"batchItemFailures": []}  # the queued copy: nothing sent
    assert sent_sms() == [] and store.get(message["id"])["status"] == store.CANCELED


def test_a_message_already_sent_and_one_that_does_not_exist_cannot_be_canceled(client):
    sent = body_of(post(client, "/sms", {"to": TO, "body": "right now"}))
    response = client.http.post(f"/messages/{sent['id']}/cancel")
    assert response.status_code == 409 and body_of(response)["error"]["code"] == "NotCancelable"
    assert "sent" in body_of(response)["error"]["message"]
    missing = client.http.post("/messages/00000000-0000-4000-8000-000000000000/cancel")
    assert missing.status_code == 404 and body_of(missing)["error"]["code"] == "MessageNotFound"


def test_a_key_cancels_only_its_own_kinds_messages_and_batches(client):
    _, test_key = make_key(client, ["messages:send", "messages:read"], test=True)
    live = body_of(post(client, "/sms", {"to": TO, "body": "live", "sendAt": at(300)}))
    tested = body_of(post(client, "/sms", {"to": TO, "body": "test", "sendAt": at(300)}, bearer(test_key)))
    live_batch = body_of(post(client, "/batches", {"messages": [{"to": TO, "body": "b"}], "sendAt": at(300)}))
    assert client.http.post(f"/messages/{live['id']}/cancel", headers=bearer(test_key)).status_code == 404
    assert client.http.post(f"/batches/{live_batch['id']}/cancel", headers=bearer(test_key)).status_code == 404
    assert client.http.post(f"/messages/{tested['id']}/cancel").status_code == 404
    assert store.get(live["id"])["status"] == store.get(tested["id"])["status"] == store.SCHEDULED
    assert client.http.post(f"/messages/{tested['id']}/cancel", headers=bearer(test_key)).status_code == 200


def test_cancel_under_the_same_idempotency_key_answers_the_same(client):
    message = body_of(post(client, "/sms", {"to": TO, "body": "once", "sendAt": at(300)}))
    first = client.http.post(f"/messages/{message['id']}/cancel", headers={"Idempotency-Key": "stop-1"})
    again = client.http.post(f"/messages/{message['id']}/cancel", headers={"Idempotency-Key": "stop-1"})
    assert (first.status_code, again.status_code) == (200, 200) and body_of(first) == body_of(again)


def test_a_scheduled_batch_counts_scheduled_then_canceled_and_cancel_is_409_once_nothing_waits(client, calls):
    send_at = at(120)
    items = [{"to": f"+1425555012{i}", "body": f"batch {i}"} for i in range(4)] + [{"to": "nope", "body": "x"}]
    accepted = body_of(post(client, "/batches", {"messages": items, "sendAt": send_at}))
    assert accepted["accepted"] == 4 and [r["index"] for r in accepted["rejected"]] == [4]
    entries = [e for _, op, p in calls if op == "SendMessageBatch" for e in p["Entries"]]
    assert len(entries) == 4 and {e["DelaySeconds"] for e in entries} <= {119, 120}
    assert {json.loads(e["MessageBody"])["batchId"] for e in entries} == {accepted["id"]}
    progress = body_of(client.http.get(f"/batches/{accepted['id']}"))
    assert (progress["scheduled"], progress["queued"], progress["canceled"], progress["done"]) == (4, 0, 0, False)
    # One of them the worker already took: cancel leaves it alone.
    first = json.loads(entries[0]["MessageBody"])["messageId"]
    assert store.transition(first, store.SENDING, expect=(store.SCHEDULED,)) is not None
    response = client.http.post(f"/batches/{accepted['id']}/cancel")
    assert response.status_code == 200, response.body
    progress = body_of(response)
    assert (progress["scheduled"], progress["canceled"], progress["queued"], progress["done"]) == (0, 3, 1, False)
    assert body_of(client.http.get(f"/batches/{accepted['id']}")) == progress
    again = client.http.post(f"/batches/{accepted['id']}/cancel")
    assert again.status_code == 409 and body_of(again)["error"]["code"] == "NotCancelable"
    unknown = client.http.post("/batches/batch-00000000-0000-4000-8000-000000000000/cancel")
    assert unknown.status_code == 404 and body_of(unknown)["error"]["code"] == "BatchNotFound"


class Paused:
    """Holds ``store.transition`` to ``status`` on the thread that gets there first, between the caller's read of
    the record and this write, until ``go()``: the forced interleaving of a cancel and the worker's claim."""

    def __init__(self, monkeypatch, status: str):
        self.status, self.reached, self.release = status, threading.Event(), threading.Event()
        original = store.transition

        def transition(message_id, to, **kwargs):
            if to == self.status and not self.reached.is_set():
                self.reached.set()
                assert self.release.wait(30), "never released"
            return original(message_id, to, **kwargs)

        monkeypatch.setattr(store, "transition", transition)

    def go(self) -> None:
        self.release.set()


def _scheduled_and_due(client, now, body: str) -> tuple[dict, dict]:
    send_at = at(120, now.value)
    message = body_of(post(client, "/sms", {"to": TO, "body": body, "sendAt": send_at}))
    event = handed_over(message["id"])
    now.set(schedule.epoch(send_at))
    return message, event


def test_race_the_worker_read_it_first_and_the_cancel_writes_first_so_nothing_is_sent(client, now, monkeypatch):
    message, event = _scheduled_and_due(client, now, "raced: cancel wins")
    paused = Paused(monkeypatch, store.SENDING)  # the worker's claim waits after its read
    outcome = {}
    running = threading.Thread(target=lambda: outcome.update(run_worker(event)))
    running.start()
    assert paused.reached.wait(30)
    canceled = client.http.post(f"/messages/{message['id']}/cancel")
    paused.go()
    running.join(30)
    assert canceled.status_code == 200 and body_of(canceled)["status"] == "canceled"
    assert outcome == {"batchItemFailures": []}  # the claim found it canceled: done, nothing to retry
    assert sent_sms() == [] and store.get(message["id"])["status"] == store.CANCELED


def test_race_the_cancel_read_it_first_and_the_worker_claims_first_so_it_is_sent_once(client, now, monkeypatch):
    message, event = _scheduled_and_due(client, now, "raced: send wins")
    paused = Paused(monkeypatch, store.CANCELED)  # the cancel's write waits after its read
    answer = {}
    canceling = threading.Thread(target=lambda: answer.update(
        response=client.http.post(f"/messages/{message['id']}/cancel")))
    canceling.start()
    assert paused.reached.wait(30)
    assert run_worker(event) == {"batchItemFailures": []}
    paused.go()
    canceling.join(30)
    assert answer["response"].status_code == 409
    assert body_of(answer["response"])["error"]["code"] == "NotCancelable"
    assert [m[1] for m in sent_sms()] == ["raced: send wins"]
    assert store.get(message["id"])["status"] in (store.SENT, store.DELIVERED)


# -- GET /messages?status=scheduled ---------------------------------------------------------------
def test_the_scheduled_list_pages_soonest_first_and_each_key_kind_sees_its_own(client):
    _, test_key = make_key(client, ["messages:send", "messages:read"], test=True)
    base = time.time()
    # Both families: two due soon (queued by the API), two later (the sweep's), out of order.
    made = [body_of(post(client, "/sms", {"to": TO, "body": f"in {s}s", "sendAt": at(s, base)}))
            for s in (7200, 60, 3600, 300)]
    body_of(post(client, "/sms", {"to": TO, "body": "right now"}))
    tested = body_of(post(client, "/sms", {"to": TO, "body": "a test-keyed one", "sendAt": at(90, base)}, bearer(test_key)))
    soonest_first = [m["id"] for m in sorted(made, key=lambda m: m["sendAt"])]
    seen, token = [], None
    while True:
        page = body_of(client.http.get("/messages?status=scheduled&limit=3" + (f"&next={token}" if token else "")))
        assert all(m["status"] == "scheduled" for m in page["messages"])
        seen += [m["id"] for m in page["messages"]]
        token = page["next"]
        if token is None:
            break
    assert seen == soonest_first
    assert [m["id"] for m in body_of(client.http.get("/messages?status=scheduled", headers=bearer(test_key)))[
        "messages"]] == [tested["id"]]
    assert client.http.post(f"/messages/{soonest_first[0]}/cancel").status_code == 200
    assert [m["id"] for m in body_of(client.http.get("/messages?status=scheduled"))["messages"]] == soonest_first[1:]
    assert body_of(client.http.get("/messages?status=scheduled&direction=inbound")) == {"messages": [], "next": None}


@pytest.mark.parametrize("query, code", [
    ("status=sent", "InvalidStatus"), ("status=", "InvalidStatus"), ("status=SCHEDULED", "InvalidStatus"),
    ("status=scheduled&direction=sideways", "InvalidDirection"),
])
def test_the_list_takes_only_the_status_it_can_list(client, query, code):
    response = client.http.get(f"/messages?{query}")
    assert response.status_code == 400 and body_of(response)["error"]["code"] == code
    if code == "InvalidStatus":
        assert "'scheduled'" in body_of(response)["error"]["message"]


def test_a_token_of_the_other_list_is_not_taken(client):
    for i in range(3):
        post(client, "/sms", {"to": TO, "body": f"now {i}"})
        post(client, "/sms", {"to": TO, "body": f"later {i}", "sendAt": at(600 + i)})
    listed = body_of(client.http.get("/messages?limit=1"))["next"]
    scheduled = body_of(client.http.get("/messages?status=scheduled&limit=1"))["next"]
    assert listed and scheduled
    wrong = client.http.get(f"/messages?status=scheduled&next={listed}")
    assert wrong.status_code == 400 and body_of(wrong)["error"]["code"] == "InvalidNext"
    wrong = client.http.get(f"/messages?next={scheduled}")
    assert wrong.status_code == 400 and body_of(wrong)["error"]["code"] == "InvalidNext"


# -- webhooks ---------------------------------------------------------------------------------------
def _stream(name: str, new: dict, old: dict | None = None) -> dict:
    images = {"NewImage": store.to_item(new)}
    if old is not None:
        images["OldImage"] = store.to_item(old)
    return {"eventName": name, "dynamodb": images}


def test_scheduling_and_canceling_make_their_webhook_events_and_the_claim_makes_none(client):
    assert {"message.scheduled", "message.canceled"} <= set(webhook_endpoints.EVENT_TYPES)
    message = body_of(post(client, "/sms", {"to": TO, "body": "hooked", "sendAt": at(300)}))
    scheduled = store.get(message["id"])
    made = webhook_events.event_for(_stream("INSERT", scheduled))
    assert made["type"] == "message.scheduled" and made["data"]["sendAt"] == message["sendAt"]
    assert "body" not in made["data"] and made["data"]["status"] == "scheduled"
    claimed = {**scheduled, "status": store.SENDING}
    assert webhook_events.event_for(_stream("MODIFY", claimed, scheduled)) is None  # shows as queued: no event
    canceled = body_of(client.http.post(f"/messages/{message['id']}/cancel"))
    event = webhook_events.event_for(_stream("MODIFY", store.get(message["id"]), scheduled))
    assert event["type"] == "message.canceled" and event["data"]["status"] == canceled["status"] == "canceled"
    # The same change handed over twice makes the same id (receivers drop the duplicate).
    assert webhook_events.event_for(_stream("MODIFY", store.get(message["id"]), scheduled))["id"] == event["id"]
