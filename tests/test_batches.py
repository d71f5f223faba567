"""POST /batches and GET /batches/{id} through the Chalice test client, and the batch worker on
the records and queue messages they make (moto for DynamoDB, SQS, S3 and SNS)."""
import json
import os

import boto3
import pytest

from .conftest import REGION, body_of, post


def queued_messages():
    sqs = boto3.client("sqs", region_name=REGION)
    found = []
    while True:
        got = sqs.receive_message(QueueUrl=os.environ["BATCH_QUEUE_URL"], MaxNumberOfMessages=10,
                                  AttributeNames=["All"]).get("Messages", [])
        if not got:
            return found
        found += got


def as_event(sqs_messages):
    """What the SQS event source hands the worker."""
    return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                         "attributes": {"ApproximateReceiveCount": m["Attributes"]["ApproximateReceiveCount"]},
                         "eventSource": "aws:sqs"} for m in sqs_messages]}


def test_a_batch_records_valid_items_as_queued_enqueues_them_and_rejects_the_rest(client, put_media):
    media = put_media()
    items = [{"to": "+14155550100", "body": "one"},
             {"to": "+14155550101"},  # no body
             {"to": "+14155550102", "mediaUrl": media},
             {"to": "+14155550103", "mediaUrl": "s3://someone-elses-bucket/x.png"},
             "not an object",
             {"channel": "fax", "to": "+14155550104", "body": "x"}]
    response = post(client, "/batches", {"messages": items})
    assert response.status_code == 202
    accepted = body_of(response)
    assert accepted["accepted"] == 2
    assert [(r["index"], r["error"]["code"]) for r in accepted["rejected"]] == [
        (1, "MissingField"), (3, "InvalidMediaUrl"), (4, "InvalidJson"), (5, "InvalidChannel")]
    assert response.headers["Location"] == f"/batches/{accepted['id']}"
    bodies = [json.loads(m["Body"]) for m in queued_messages()]
    assert len(bodies) == 2 and {b["batchId"] for b in bodies} == {accepted["id"]}
    for body in bodies:
        message = body_of(client.http.get(f"/messages/{body['messageId']}"))
        assert message["status"] == "queued"
    progress = body_of(client.http.get(f"/batches/{accepted['id']}"))
    assert {k: progress[k] for k in ("size", "rejected", "queued", "sent", "delivered", "failed", "done")} == {
        "size": 6, "rejected": 4, "queued": 2, "sent": 0, "delivered": 0, "failed": 0, "done": False}


@pytest.mark.parametrize("body, code", [
    ({}, "MissingField"),
    ({"messages": []}, "MissingField"),
    ({"messages": "nope"}, "MissingField"),
    ({"messages": [{"to": "+14155550100", "body": "x"}] * 1001}, "BatchTooLarge"),
])
def test_a_wrong_batch_is_one_clear_400(client, body, code):
    response = post(client, "/batches", body)
    assert response.status_code == 400 and body_of(response)["error"]["code"] == code
    assert queued_messages() == []


def test_an_unknown_batch_is_404_and_a_message_id_is_not_a_batch(client):
    assert body_of(client.http.get("/batches/batch-nope"))["error"]["code"] == "BatchNotFound"
    message = body_of(post(client, "/sms", {"to": "+14155550100", "body": "hi"}))
    response = client.http.get(f"/batches/{message['id']}")
    assert response.status_code == 404
    batch = body_of(post(client, "/batches", {"messages": [{"to": "+14155550100", "body": "x"}]}))
    assert client.http.get(f"/messages/{batch['id']}").status_code == 404  # a batch is not a message


def test_the_same_idempotency_key_does_not_enqueue_twice(client):
    payload = {"messages": [{"to": "+14155550100", "body": "once"}]}
    first = post(client, "/batches", payload, {"Idempotency-Key": "bulk-1"})
    again = post(client, "/batches", payload, {"Idempotency-Key": "bulk-1"})
    assert body_of(first) == body_of(again)
    assert len(queued_messages()) == 1
    other = post(client, "/batches", {"messages": [{"to": "+14155550100", "body": "twice"}]},
                 {"Idempotency-Key": "bulk-1"})
    assert other.status_code == 409 and body_of(other)["error"]["code"] == "IdempotencyKeyReused"


def test_the_worker_sends_each_message_once_even_when_sqs_delivers_it_again(client):
    from chalicelib.sending import worker
    from chalicelib.core.settings import get_settings

    batch = body_of(post(client, "/batches", {"messages": [
        {"to": f"+1415555010{i}", "body": f"m{i}"} for i in range(3)]}))
    event = as_event(queued_messages())
    pacer = worker.TokenBucket(1000)
    assert worker.handle(event, settings=get_settings(), pacer=pacer) == {"batchItemFailures": []}
    assert worker.handle(event, settings=get_settings(), pacer=pacer) == {"batchItemFailures": []}  # redelivery
    progress = body_of(client.http.get(f"/batches/{batch['id']}"))
    assert (progress["sent"], progress["queued"]) == (3, 0)
    sns = boto3.client("sns", region_name=REGION)
    from moto.sns.models import sns_backends

    published = sns_backends[sns.meta.config.__dict__.get("account_id", "123456789012")]["us-east-1"].sms_messages
    assert sorted(m[1] for m in published.values()) == ["m0", "m1", "m2"]


def test_a_throttled_message_goes_back_to_the_queue_and_fails_on_its_last_receive(client, sns_stub):
    from chalicelib.sending import worker
    from chalicelib.core.settings import get_settings

    message = body_of(post(client, "/batches", {"messages": [{"to": "+14155550100", "body": "hi"}]}))
    sqs_messages = queued_messages()
    sns_stub.add_client_error("publish", service_error_code="Throttling", http_status_code=400)
    event = as_event(sqs_messages)
    record = event["Records"][0]
    message_id = json.loads(record["body"])["messageId"]
    result = worker.handle(event, settings=get_settings(), pacer=worker.TokenBucket(1000))
    assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert body_of(client.http.get(f"/messages/{message_id}"))["status"] == "queued"  # back, not lost
    record["attributes"]["ApproximateReceiveCount"] = str(get_settings().max_receives)
    sns_stub.add_client_error("publish", service_error_code="Throttling", http_status_code=400)
    result = worker.handle(event, settings=get_settings(), pacer=worker.TokenBucket(1000))
    assert result["batchItemFailures"]  # the queue moves it to the dead-letter queue
    failed = body_of(client.http.get(f"/messages/{message_id}"))
    assert failed["status"] == "failed" and failed["error"]["code"] == "Throttled"
    assert message["accepted"] == 1


def test_a_message_claimed_by_a_worker_that_died_is_never_sent_again(client, sns_stub):
    import time

    from chalicelib.core import store
    from chalicelib.sending import worker
    from chalicelib.core.settings import get_settings

    post(client, "/batches", {"messages": [{"to": "+14155550100", "body": "hi"}]})
    event = as_event(queued_messages())
    message_id = json.loads(event["Records"][0]["body"])["messageId"]
    # A worker claimed it and died before recording the outcome.
    store.transition(message_id, store.SENDING, claimedAt=time.time())
    result = worker.handle(event, settings=get_settings(), pacer=worker.TokenBucket(1000))
    assert result["batchItemFailures"]  # too recent to judge: look again later
    store.transition(message_id, store.SENDING, expect=(store.SENDING,),
                     claimedAt=time.time() - worker.STALE_CLAIM_SECONDS - 1)
    assert worker.handle(event, settings=get_settings(), pacer=worker.TokenBucket(1000)) == {"batchItemFailures": []}
    message = body_of(client.http.get(f"/messages/{message_id}"))
    assert message["status"] == "failed" and message["error"]["code"] == "SendInterrupted"
    # sns_stub has no responses queued: any Publish would have failed the test.


def test_a_delivery_that_loses_the_claim_leaves_the_message_on_the_queue(client, sns_stub):
    """SQS delivers at least once, so two deliveries of one message can be in two workers at once. The
    one that loses the claim must leave the message on the queue: the claimant may still hand it back
    (a throttled send puts the record back to queued, for the message's next receive)."""
    import time

    from chalicelib.core import store
    from chalicelib.sending import worker
    from chalicelib.core.settings import get_settings

    post(client, "/batches", {"messages": [{"to": "+14155550100", "body": "hi"}]})
    event = as_event(queued_messages())
    message_id = json.loads(event["Records"][0]["body"])["messageId"]

    class OtherDeliveryClaimsMeanwhile(worker.TokenBucket):
        """While this delivery waits for its window, the other one claims the message."""

        def acquire(self, parts, deadline=None):
            assert store.transition(message_id, store.SENDING, expect=(store.QUEUED,), claimedAt=time.time())
            return super().acquire(parts, deadline)

    result = worker.handle(event, settings=get_settings(), pacer=OtherDeliveryClaimsMeanwhile(1000))
    # The claimant's send is throttled: the record goes back to queued, waiting for the message to come again.
    assert store.transition(message_id, store.QUEUED, expect=(store.SENDING,))
    assert result["batchItemFailures"], "the message left the queue while its record went back to queued"
    # sns_stub has no responses queued: a Publish by the delivery that lost the claim would fail the test.


def test_a_worker_near_its_timeout_hands_the_rest_back(client):
    from chalicelib.sending import worker
    from chalicelib.core.settings import get_settings

    post(client, "/batches", {"messages": [{"to": f"+1415555010{i}", "body": "x"} for i in range(2)]})
    event = as_event(queued_messages())

    class AlmostOut:
        def get_remaining_time_in_millis(self):
            return worker.SAFETY_MS - 1

    result = worker.handle(event, AlmostOut(), settings=get_settings(), pacer=worker.TokenBucket(1000))
    assert len(result["batchItemFailures"]) == 2


def test_one_recipient_gets_at_most_one_message_a_second(aws_env):
    from chalicelib.sending import pacing

    # The clock is injected: the test holds on a busy machine, where seconds pass between two calls.
    assert pacing.reserve_recipient("+14155550100", now=1_000.0) == 0
    assert pacing.reserve_recipient("+14155550100", now=1_000.35) == pytest.approx(0.65)  # the rest of the second
    assert pacing.reserve_recipient("+14155550199", now=1_000.35) == 0  # another recipient is not held up
    assert pacing.reserve_recipient("+14155550100", now=1_001.0) == 0  # the next second is free again


def test_the_token_bucket_never_lets_more_parts_through_than_its_rate():
    from chalicelib.sending.worker import TokenBucket

    now = [0.0]
    bucket = TokenBucket(5, capacity=1, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    sent_at = []
    for parts in [1, 3, 1, 1, 2, 1, 1, 1, 1, 3]:
        bucket.acquire(parts)
        sent_at.append((now[0], parts))
    total = sum(p for _, p in sent_at)
    elapsed = sent_at[-1][0]
    # 15 parts at 5 parts/s with a burst of 1: the last goes out no earlier than (15 - 1 - 3) / 5 s.
    assert elapsed >= (total - 1 - 3) / 5 - 1e-9
    for start, _ in sent_at:
        window = sum(p for t, p in sent_at if start <= t < start + 1)
        assert window <= 5 + 3  # the rate, plus the one message that may leave a debt
    assert bucket.acquire(1, deadline=now[0]) is False  # would have to wait past the deadline


def test_a_message_the_worker_never_got_to_fails_on_its_last_receive(client):
    from chalicelib.sending import worker
    from chalicelib.core.settings import get_settings

    post(client, "/batches", {"messages": [{"to": "+14155550100", "body": "x"}]})
    event = as_event(queued_messages())
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(get_settings().max_receives)
    message_id = json.loads(event["Records"][0]["body"])["messageId"]

    class AlmostOut:
        def get_remaining_time_in_millis(self):
            return worker.SAFETY_MS - 1

    assert worker.handle(event, AlmostOut(), settings=get_settings(), pacer=worker.TokenBucket(1000))[
        "batchItemFailures"]
    message = body_of(client.http.get(f"/messages/{message_id}"))
    assert (message["status"], message["error"]["code"]) == ("failed", "NotSent")
