"""Fault injection on the local stack: every AWS fault the send path can meet, each checked against
the message record and the emulated AWS's outbox.

After every fault: no accepted message is lost (each has a record that reaches a final status, or
is retried), and no message is sent twice. The faults come from the emulator's ``/_faults``
(AWS errors, 5xx, timeouts before and after the service carried the call out, on any operation:
SNS, End User Messaging, DynamoDB, S3) and from the pipeline (a worker invocation that dies, a
status ingest that keeps failing). The module prints its figures at the end (cases, faults
injected, messages checked, 5xx answers).
"""
from __future__ import annotations

import re
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from devstack.receipts import SIMULATOR_SUCCESS
from devstack.server import LocalStack

from .localhttp import HANG_GUARD, Http, wait_for

SUCCESS = sorted(SIMULATOR_SUCCESS)[0]  # the US success simulator: delivered
FINAL = {"delivered", "failed", "unknown", "validated"}
READ_TIMEOUT = 1.0  # the app's read timeout while a timeout is injected (10 s otherwise)
# The most an injected timeout holds an answer back. The emulator lets it go once the app has given up on
# it (closed the connection at its read timeout), so the answer reaches nobody however slow the machine;
# this cap only needs to be far longer than READ_TIMEOUT, and a test waits for the answer to have gone
# (``answers_gone``), never for a time.
HELD = 30.0
SENT_WRITE = re.escape('":status": {"S": "sent"}')  # the UpdateItem that records a send

FIGURES: Counter = Counter()


@pytest.fixture(scope="module")
def stack(request):
    # A short visibility timeout, so that the messages of a worker that died come back within seconds (the
    # functions' timeout no longer: Lambda refuses a longer one).
    with LocalStack(app_port=0, aws_port=0, visibility_timeout=10, function_timeout=10, receipt_delay=0.3,
                    settings={"PROVIDER_MAX_ATTEMPTS": "2", "MAX_MPS": "50", "WORKER_CONCURRENCY": "2"}) as running:
        yield running
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\nfault injection: {FIGURES['cases']} cases, {FIGURES['faults']} faults injected, "
                f"{FIGURES['messages']} messages checked (record and outbox), {FIGURES['5xx']} 5xx answers "
                f"({FIGURES['500']} of them 500), {FIGURES['requests']} API requests")


class Counted(Http):
    """The local-stack HTTP helper, counting the answers for the module's figures."""

    def call(self, method, path, body=None, headers=None, raw=None):
        status, headers_out, answer = super().call(method, path, body, headers, raw)
        FIGURES["requests"] += 1
        if status >= 500:
            FIGURES["5xx"] += 1
            FIGURES["500"] += status == 500
        return status, headers_out, answer


@pytest.fixture
def api(stack):
    return Counted(stack.app_url)


@pytest.fixture
def aws(stack):
    """The emulated AWS; every fault the test armed is counted (what was taken) and cleared after it."""
    emulated = Http(stack.aws_url)
    emulated.call("DELETE", "/_faults")
    FIGURES["cases"] += 1
    yield emulated
    clear(emulated)


def clear(aws) -> None:
    """Lift every armed fault, counting the calls each one failed."""
    FIGURES["faults"] += sum(f.get("taken", 0) for f in aws.call("GET", "/_faults")[2])
    aws.call("DELETE", "/_faults")


def inject(aws, operation, **spec):
    status, _, fault = aws.call("POST", "/_faults", {"operation": operation, **spec})
    assert status == 201, fault
    return fault


@pytest.fixture
def short_timeouts(monkeypatch):
    """The app's AWS clients with a 1 s read timeout (10 s deployed), so injected timeouts are quick."""
    from botocore.config import Config
    from chalicelib.core import aws as clients

    monkeypatch.setattr(clients, "Config", lambda **kw: Config(**{**kw, "read_timeout": READ_TIMEOUT}))
    clients.reset()
    yield
    monkeypatch.undo()
    clients.reset()


@pytest.fixture
def eum_stage(stack, monkeypatch):
    """The app on an ``sms-voice`` stage: SMS through the End User Messaging stand-in."""
    from chalicelib.core import aws as clients

    monkeypatch.setenv("SMS_PROVIDER", "sms-voice")
    clients.reset()
    yield
    monkeypatch.delenv("SMS_PROVIDER")
    clients.reset()


@pytest.fixture
def media_url(stack):
    bucket = stack.env["MEDIA_BUCKET"]
    key = f"media/{uuid.uuid4()}.png"
    boto3.client("s3", endpoint_url=stack.aws_url, region_name="us-east-1").put_object(
        Bucket=bucket, Key=key, Body=b"\x89PNG" + b"0" * 300, ContentType="image/png")
    return f"s3://{bucket}/{key}"


def tag(label: str) -> str:
    """A message body no other test sends: the outbox is searched by it."""
    return f"fault {label} {uuid.uuid4().hex[:8]}"


def sends(aws, body: str) -> int:
    return sum(1 for entry in aws.call("GET", "/_outbox")[2] if entry["body"] == body)


def record(api, message_id: str) -> dict:
    status, _, message = api.call("GET", f"/messages/{message_id}")
    assert status == 200, message
    return message


def settles(api, message_id: str) -> dict:
    """The record once it is final (asserting that it gets there; the wait is a hang guard)."""
    message = wait_for(lambda: (m := record(api, message_id))["status"] in FINAL and m)
    assert message, f"{message_id} not final after {HANG_GUARD:.0f} s: {record(api, message_id)}"
    return message


def answers_gone(aws) -> None:
    """Wait until no armed fault holds an answer back any more: the held answer has gone out (to nobody:
    the app gave up on it), so whatever it could set off has happened."""
    assert wait_for(lambda: not any(f["holding"] for f in aws.call("GET", "/_faults")[2])), "an answer is still held"


def checked(aws, body: str, expected_sends: int) -> None:
    """The outbox holds the message exactly ``expected_sends`` times (0 or 1), now and a moment later
    (a held answer, a retry or a redelivery could still send it again)."""
    assert sends(aws, body) == expected_sends
    FIGURES["messages"] += 1


def listed(api, body: str) -> list[dict]:
    return [m for m in api.call("GET", "/messages?limit=100")[2]["messages"] if m["body"] == body]


# -- the provider throttles, then recovers ------------------------------------------------------

def test_the_provider_throttles_then_recovers(api, aws):
    # Throttled on every attempt: 429 with Retry-After, the attempt's record failed, nothing sent.
    body, key = tag("throttled"), {"Idempotency-Key": f"throttle-{uuid.uuid4()}"}
    inject(aws, "Publish", code="Throttling", count=2)
    status, headers, error = api.call("POST", "/sms", {"to": SUCCESS, "body": body}, key)
    assert (status, headers["Retry-After"], error["error"]["code"]) == (429, "1", "Throttled")
    first = record(api, error["error"]["messageId"])
    assert (first["status"], first["error"]["code"]) == ("failed", "Throttled")
    checked(aws, body, 0)
    # The provider recovers: the same request under the same key is sent, once.
    status, _, message = api.call("POST", "/sms", {"to": SUCCESS, "body": body}, key)
    assert status == 202 and message["status"] == "sent" and message["id"] != first["id"]
    assert settles(api, message["id"])["status"] == "delivered"
    # One throttle only: botocore's retry absorbs it.
    other = tag("throttled once")
    inject(aws, "Publish", code="Throttling", count=1)
    status, _, once = api.call("POST", "/sms", {"to": SUCCESS, "body": other})
    assert status == 202 and settles(api, once["id"])["status"] == "delivered"
    checked(aws, body, 1)
    checked(aws, other, 1)


def test_the_provider_throttles_a_batch_then_recovers(api, aws, media_url):
    bodies = [tag(f"batch throttled {i}") for i in range(6)]
    items = [{"to": f"+1206555{2000 + i:04d}", "body": b} for i, b in enumerate(bodies)]
    items[0]["mediaUrl"] = media_url
    inject(aws, "Publish", code="Throttling", count=8)
    inject(aws, "SendMediaMessage", code="ThrottlingException", count=3)
    status, _, batch = api.call("POST", "/batches", {"messages": items})
    assert status == 202 and batch["accepted"] == 6
    progress = wait_for(lambda: (p := api.call("GET", f"/batches/{batch['id']}")[2])["done"] and p, every=0.5)
    assert progress and progress["delivered"] == 6, progress
    for body in bodies:
        checked(aws, body, 1)
    assert [f["count"] for f in aws.call("GET", "/_faults")[2]] == [0, 0]  # the throttling did happen


# -- the provider answers 5xx -------------------------------------------------------------------

@pytest.mark.parametrize("channel", ["sns", "sms-voice"])
def test_the_provider_answers_5xx(api, aws, request, channel):
    if channel == "sms-voice":
        request.getfixturevalue("eum_stage")
    operation, code = ("Publish", "InternalError") if channel == "sns" else ("SendTextMessage",
                                                                             "InternalServerException")
    # Once: an AWS error answer means the call was not carried out, so botocore retries it.
    body = tag(f"5xx once {channel}")
    inject(aws, operation, code=code, status=500, count=1)
    status, _, message = api.call("POST", "/sms", {"to": SUCCESS, "body": body})
    assert status == 202 and settles(api, message["id"])["status"] == "delivered"
    checked(aws, body, 1)
    # On every attempt: 502 ProviderError naming the failed record; nothing sent.
    body = tag(f"5xx always {channel}")
    inject(aws, operation, code=code, status=503 if channel == "sns" else 500, count=2)
    status, _, error = api.call("POST", "/sms", {"to": SUCCESS, "body": body})
    assert (status, error["error"]["code"]) == (502, "ProviderError")
    assert record(api, error["error"]["messageId"])["status"] == "failed"
    # The fault's own words: it names its code, never "Rate exceeded" (which read as throttling).
    assert f"{code} (a fault armed on the local stack's /_faults)" in error["error"]["message"]
    checked(aws, body, 0)


# -- the provider times out after it accepted the message ---------------------------------------

def test_a_timeout_after_the_provider_accepted_is_never_sent_again(api, aws, short_timeouts):
    body, key = tag("accepted then timed out"), {"Idempotency-Key": f"timeout-{uuid.uuid4()}"}
    inject(aws, "Publish", effect="timeout-after-accept", delay=HELD, count=1)
    status, _, message = api.call("POST", "/sms", {"to": SUCCESS, "body": body}, key)
    # Accepted by SNS, answer lost: whether it went is not known, so it is recorded as such
    # (final) and not sent again, neither by botocore's retry nor by the caller's retry.
    assert status == 202 and message["status"] == "unknown" and message["error"] is None
    assert "not sent again" in message["providerResponse"]
    replay = api.call("POST", "/sms", {"to": SUCCESS, "body": body}, key)
    assert replay[0] == 202 and replay[2]["id"] == message["id"]
    answers_gone(aws)
    checked(aws, body, 1)
    # SNS's receipt is matched by the provider's id, which never came: the record stays unknown.
    assert record(api, message["id"])["status"] == "unknown"


@pytest.mark.parametrize("channel", ["sms", "mms"])
def test_a_timeout_after_end_user_messaging_accepted_settles_by_its_receipt(api, aws, short_timeouts, eum_stage,
                                                                           media_url, channel):
    body = tag(f"eum accepted then timed out {channel}")
    operation = "SendTextMessage" if channel == "sms" else "SendMediaMessage"
    inject(aws, operation, effect="timeout-after-accept", delay=HELD, count=1)
    request = {"to": SUCCESS, "body": body, **({"mediaUrl": media_url} if channel == "mms" else {})}
    status, _, message = api.call("POST", f"/{channel}", request)
    assert status == 202 and message["status"] in ("unknown", "delivered")
    # The receipt carries our id (Context), so it settles the record whatever the send answered: waited
    # for as delivered, since "unknown" (the send's own answer) is final too and may come first.
    assert wait_for(lambda: record(api, message["id"])["status"] == "delivered"), record(api, message["id"])
    answers_gone(aws)
    checked(aws, body, 1)


def test_a_timeout_before_the_provider_saw_it_is_not_sent_again_either(api, aws, short_timeouts):
    # From the app's side the two timeouts look the same: it cannot know, so it never resends.
    body = tag("timed out unseen")
    inject(aws, "Publish", effect="timeout", delay=HELD, count=1)
    status, _, message = api.call("POST", "/sms", {"to": SUCCESS, "body": body})
    assert status == 202 and message["status"] == "unknown"
    answers_gone(aws)
    checked(aws, body, 0)


# -- DynamoDB fails before the send -------------------------------------------------------------

def test_dynamodb_fails_before_the_send(api, aws, stack):
    table = re.escape(stack.env["MESSAGES_TABLE"])
    body, key = tag("ddb before"), {"Idempotency-Key": f"ddb-{uuid.uuid4()}"}
    inject(aws, "PutItem", service="dynamodb", match=table, code="InternalServerError", status=500, count=2)
    status, _, error = api.call("POST", "/sms", {"to": SUCCESS, "body": body}, key)
    assert (status, error["error"]["code"]) == (502, "ProviderError") and "messageId" not in error["error"]
    assert listed(api, body) == []  # no record: nothing was accepted
    checked(aws, body, 0)
    # Throttled by DynamoDB: 429 with Retry-After.
    inject(aws, "PutItem", service="dynamodb", match=table, code="ProvisionedThroughputExceededException", count=2)
    status, headers, error = api.call("POST", "/sms", {"to": SUCCESS, "body": body}, key)
    assert (status, error["error"]["code"], headers.get("Retry-After")) == (429, "Throttled", "1")
    # DynamoDB is back: the same key sends it, once.
    status, _, message = api.call("POST", "/sms", {"to": SUCCESS, "body": body}, key)
    assert status == 202 and settles(api, message["id"])["status"] == "delivered"
    assert [m["id"] for m in listed(api, body)] == [message["id"]]
    checked(aws, body, 1)


def test_a_record_write_whose_answer_was_lost_is_not_a_conflict(api, aws, stack, short_timeouts):
    # PutItem stored the record, its answer timed out, botocore wrote again: the conditional write
    # then finds our own record, which is success.
    body = tag("ddb put answer lost")
    inject(aws, "PutItem", service="dynamodb", match=re.escape(stack.env["MESSAGES_TABLE"]),
           effect="timeout-after-accept", delay=HELD, count=1)
    status, _, message = api.call("POST", "/sms", {"to": SUCCESS, "body": body})
    assert status == 202, message
    assert settles(api, message["id"])["status"] == "delivered"
    assert len(listed(api, body)) == 1
    checked(aws, body, 1)


# -- DynamoDB fails after the send --------------------------------------------------------------

def test_dynamodb_fails_after_the_send_briefly(api, aws):
    # Recording "sent" fails on botocore's two attempts and once more: the send path writes again.
    body = tag("ddb after brief")
    inject(aws, "UpdateItem", service="dynamodb", match=SENT_WRITE, code="InternalServerError", status=500, count=3)
    status, _, message = api.call("POST", "/sms", {"to": SUCCESS, "body": body})
    assert status == 202 and message["status"] == "sent" and message["providerMessageId"]
    assert settles(api, message["id"])["status"] == "delivered"
    checked(aws, body, 1)


def test_dynamodb_fails_after_the_send_for_longer(api, aws, stack):
    # Every write of "sent" the API tries fails (4 tries, 2 attempts each), and the worker's first
    # one too: the outcome goes through the batch queue and lands once DynamoDB takes it. SNS's
    # receipt is matched by the provider id that write stores; SNS's receipts come seconds after
    # the send, later than the local 0.3 s, so they are made to here.
    stack.receipts.delay = 12.0
    try:
        body = tag("ddb after long")
        inject(aws, "UpdateItem", service="dynamodb", match=SENT_WRITE, code="InternalServerError", status=500,
               count=10)
        status, _, message = api.call("POST", "/sms", {"to": SUCCESS, "body": body})
    finally:
        stack.receipts.delay = 0.3
    # The caller is told what happened: sent, with the provider's id. Never a second send.
    assert status == 202 and message["status"] == "sent" and message["providerMessageId"]
    assert record(api, message["id"])["status"] == "queued"  # the table has not caught up yet
    stored = wait_for(lambda: (m := record(api, message["id"]))["status"] != "queued" and m)
    assert stored and stored["providerMessageId"] == message["providerMessageId"]
    assert settles(api, message["id"])["status"] == "delivered"
    checked(aws, body, 1)


def test_dynamodb_loses_the_answer_to_the_sent_write(api, aws, short_timeouts):
    body = tag("ddb sent answer lost")
    inject(aws, "UpdateItem", service="dynamodb", match=SENT_WRITE, effect="timeout-after-accept", delay=HELD,
           count=1)
    status, _, message = api.call("POST", "/sms", {"to": SUCCESS, "body": body})
    assert status == 202 and message["status"] in ("sent", "delivered")
    assert settles(api, message["id"])["status"] == "delivered"
    checked(aws, body, 1)


# -- S3 HeadObject times out --------------------------------------------------------------------

def test_the_media_check_times_out(api, aws, media_url, short_timeouts):
    body, key = tag("head timed out"), {"Idempotency-Key": f"head-{uuid.uuid4()}"}
    inject(aws, "HeadObject", service="s3", effect="timeout", delay=HELD, count=2)
    status, _, error = api.call("POST", "/mms", {"to": SUCCESS, "body": body, "mediaUrl": media_url}, key)
    assert (status, error["error"]["code"]) == (502, "ProviderError") and "messageId" not in error["error"]
    assert listed(api, body) == []
    checked(aws, body, 0)
    # Once only: botocore retries the read (HeadObject sends nothing), and the MMS goes, once.
    inject(aws, "HeadObject", service="s3", effect="timeout", delay=HELD, count=1)
    status, _, message = api.call("POST", "/mms", {"to": SUCCESS, "body": body, "mediaUrl": media_url}, key)
    assert status == 202 and settles(api, message["id"])["status"] == "delivered"
    answers_gone(aws)
    checked(aws, body, 1)


# -- the worker dies mid-batch ------------------------------------------------------------------

@pytest.mark.parametrize("at", ["claim", "send"])
def test_the_worker_dies_mid_batch(api, aws, stack, at):
    runner = stack.queue_runner
    deaths = runner.deaths
    bodies = [tag(f"dies at {at} {i}") for i in range(8)]
    runner.kill_next_invocation(after=2, at=at)
    # All 8 wait on the queue first, then both instances take them at once: the one that dies is the one
    # with more than 2 of them (devstack.queues.QueueRunner.kill_next_invocation).
    runner.pause()
    try:
        status, _, batch = api.call("POST", "/batches", {"messages": [
            {"to": f"+1206555{3000 + i:04d}", "body": b} for i, b in enumerate(bodies)]})
    finally:
        runner.resume()
    assert status == 202 and batch["accepted"] == 8
    progress = wait_for(lambda: (p := api.call("GET", f"/batches/{batch['id']}")[2])["done"] and p, every=0.5)
    assert progress, api.call("GET", f"/batches/{batch['id']}")[2]
    assert runner.deaths == deaths + 1
    FIGURES["faults"] += 1  # the death itself (the emulator counts its own faults)
    for body in bodies:
        checked(aws, body, 1)  # every one went out, none twice
    if at == "claim":  # it died before claiming the third: that one was sent on a redelivery
        assert progress["delivered"] == 8
    else:  # it died after the provider took the third, before its record said so: never sent again
        assert (progress["delivered"], progress["failed"]) == (7, 1)
        failed = [m for b in bodies for m in listed(api, b) if m["status"] == "failed"]
        assert [m["error"]["code"] for m in failed] == ["SendInterrupted"]


# -- the status ingest fails --------------------------------------------------------------------

def test_the_status_ingest_fails_then_recovers_or_waits_for_a_redrive(api, aws, stack):
    # Three receipts in one delivery to the ingest: the first one's write keeps failing, the
    # second's fails once, the third's works. Their own receipts are held back meanwhile.
    stack.receipts.delay = 30.0
    try:
        bodies = [tag("ingest fails throughout"), tag("ingest fails once"), tag("ingest works")]
        ids = [api.call("POST", "/sms", {"to": SUCCESS, "body": body})[2]["id"] for body in bodies]
    finally:
        stack.receipts.delay = 0.3
    lasting, brief, fine = ids
    entries = {e["body"]: e for e in aws.call("GET", "/_outbox")[2] if e["body"] in bodies}
    for message_id, count in ((lasting, 100), (brief, 2)):
        inject(aws, "UpdateItem", service="dynamodb", match=re.escape(message_id), code="InternalServerError",
               status=500, count=count)
    kept = len(stack.receipts.failed)
    stack.receipts.deliver_now([entries[body] for body in bodies])
    # The one that works is applied at once, whatever the others do.
    assert record(api, fine)["status"] == "delivered"
    # Failed once: Lambda's retry (a second later here) applies it.
    assert settles(api, brief)["status"] == "delivered"
    # Failed on every attempt: kept aside (the on-failure queue); the record still "sent", not lost.
    assert wait_for(lambda: len(stack.receipts.failed) > kept)
    assert record(api, lasting)["status"] == "sent"
    clear(aws)
    assert stack.receipts.redrive() >= 1
    assert settles(api, lasting)["status"] == "delivered"
    for body in bodies:
        checked(aws, body, 1)


# -- 50 concurrent identical requests under one Idempotency-Key ---------------------------------

def test_fifty_concurrent_identical_requests_make_one_send(api, aws):
    body, key = tag("fifty at once"), {"Idempotency-Key": f"fifty-{uuid.uuid4()}"}
    start = threading.Barrier(50)

    def one(_):
        start.wait(timeout=HANG_GUARD)  # all fifty at once (the bound only guards against a hang)
        try:
            return api.call("POST", "/sms", {"to": SUCCESS, "body": body}, key)
        except OSError as err:  # a connection reset or refused: the server dropped the client
            return "dropped", type(err).__name__, str(err)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(one, range(50)))
    dropped = [a for a in answers if a[0] == "dropped"]
    assert not dropped, f"{len(dropped)} of 50 clients got no answer, e.g. {dropped[0][1:]}"
    codes = Counter(status for status, _, _ in answers)
    assert set(codes) <= {202, 409}, codes
    accepted = {answer["id"] for status, _, answer in answers if status == 202}
    assert len(accepted) == 1
    assert all(answer["error"]["code"] == "IdempotencyKeyInProgress" and headers["Retry-After"] == "1"
               for status, headers, answer in answers if status == 409)
    # Afterwards the key replays the one answer.
    status, _, replay = api.call("POST", "/sms", {"to": SUCCESS, "body": body}, key)
    assert status == 202 and replay["id"] in accepted
    assert settles(api, replay["id"])["status"] == "delivered"
    assert len(listed(api, body)) == 1
    checked(aws, body, 1)
