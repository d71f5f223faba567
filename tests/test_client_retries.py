"""The client's retries, idempotency keys, errors, paging and waits, against a scripted server on loopback.

Time is injected (``FakeTime``): every wait the client makes is recorded, none is slept, so nothing here
depends on how fast the machine is. The server answers 429/503 with ``Retry-After`` and then 200, or drops the
connection, as the script says.
"""
from __future__ import annotations

import asyncio
import logging

import pytest

from .clientlib import DROP, FakeTime, Scripted, message_json

import sms_sender  # noqa: E402
from sms_sender import Client, Retries  # noqa: E402

KEY = "sk_live_abcdefghijklmnop_" + "A" * 49
THROTTLED = {"error": {"code": "Throttled", "message": "Slow down."}}
UNAVAILABLE = {"error": {"code": "Unavailable", "message": "Try again."}}


def client(server, time: FakeTime, *, random=lambda: 0.0, **kw) -> Client:
    return Client(server.url, KEY, clock=time.clock, sleep=time.sleep, random=random, **kw)


def test_429_then_200_waits_retry_after_and_sends_the_same_idempotency_key():
    time = FakeTime()
    with Scripted([(429, {"Retry-After": "2"}, THROTTLED), (202, {}, message_json())]) as server, \
            client(server, time) as sms:
        message = sms.send_sms("+14254147755", "hello")
    assert message.id == "m-1" and message.status == "sent"
    assert time.slept == [2.0]  # Retry-After, and jitter 0 (random() is 0 here)
    keys = [r.headers["idempotency-key"] for r in server.requests]
    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) >= 32
    assert [r.json() for r in server.requests] == [{"to": "+14254147755", "body": "hello"}] * 2
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)


def test_503_twice_then_200_honours_each_retry_after_with_at_most_ten_percent_jitter():
    time = FakeTime()
    script = [(503, {"Retry-After": "3"}, UNAVAILABLE), (503, {"Retry-After": "1"}, UNAVAILABLE),
              (200, {}, message_json(status="delivered"))]
    with Scripted(script) as server, client(server, time, random=lambda: 1.0) as sms:
        assert sms.get_message("m-1").status == "delivered"
    assert time.slept == [pytest.approx(3.3), pytest.approx(1.1)]
    assert all("idempotency-key" not in r.headers for r in server.requests)  # a GET needs none


def test_the_callers_idempotency_key_is_used_on_every_try():
    time = FakeTime()
    with Scripted([(500, {}, {"error": {"code": "InternalError", "message": "x", "requestId": "r"}}),
                   (202, {}, message_json())]) as server, client(server, time) as sms:
        sms.send_sms("+14254147755", "hello", idempotency_key="order-42")
    assert [r.headers["idempotency-key"] for r in server.requests] == ["order-42", "order-42"]


def test_backoff_without_retry_after_doubles_with_jitter_and_the_tries_are_bounded():
    time = FakeTime()
    script = [(502, {}, {"error": {"code": "ProviderError", "message": "AWS failed."}})] * 5
    with Scripted(script) as server, client(server, time, random=lambda: 1.0) as sms:
        with pytest.raises(sms_sender.ServerError) as raised:
            sms.send_sms("+14254147755", "hello")
    assert len(server.requests) == 4  # Retries().max_attempts
    assert time.slept == [0.5, 1.0, 2.0]  # each step's full length when random() is 1 ...
    assert raised.value.code == "ProviderError" and raised.value.status == 502
    time = FakeTime()
    with Scripted(script) as server, client(server, time, random=lambda: 0.0) as sms:
        with pytest.raises(sms_sender.ServerError):
            sms.send_sms("+14254147755", "hello")
    assert time.slept == [0.25, 0.5, 1.0]  # ... and half of it when random() is 0


def test_a_provider_failure_recorded_on_a_message_is_not_tried_again():
    """A 5xx naming a message record is that message's outcome: the API answers the same key with it again, so
    the client does not try (it did, three more times, each answered the same)."""
    time = FakeTime()
    failed = {"error": {"code": "ProviderError", "message": "AWS failed.", "messageId": "m-1"}}
    with Scripted([(502, {}, failed), (202, {}, message_json())]) as server, client(server, time) as sms:
        with pytest.raises(sms_sender.ServerError) as raised:
            sms.send_sms("+14254147755", "hello", idempotency_key="order-42")
    assert len(server.requests) == 1 and time.slept == []
    assert raised.value.message_id == "m-1" and raised.value.idempotency_key == "order-42"
    # Unavailable is not kept as an outcome (nothing was sent): the same key tries again.
    time = FakeTime()
    late = {"error": {"code": "Unavailable", "message": "Not sent: out of time.", "messageId": "m-1"}}
    with Scripted([(503, {}, late), (202, {}, message_json())]) as server, client(server, time) as sms:
        assert sms.send_sms("+14254147755", "hello").id == "m-1"
    assert len(server.requests) == 2


def test_a_request_still_being_answered_is_asked_again_until_the_deadline():
    """A batch slower than a try's timeout: each try after the first is told the first is still being answered,
    and the client asks again (the same key: nothing is sent twice) until the answer comes, past max_attempts."""
    time = FakeTime()
    busy = {"error": {"code": "IdempotencyKeyInProgress", "message": "Still in progress; retry shortly."}}
    accepted = {"id": "batch-1", "accepted": 1, "rejected": []}
    script = [DROP] + [(409, {"Retry-After": "1"}, busy)] * 6 + [(202, {}, accepted)]
    with Scripted(script) as server, client(server, time) as sms:
        answer = sms.create_batch([{"to": "+14254147755", "body": "hello"}])
    assert answer.id == "batch-1" and len(server.requests) == 8
    assert len({r.headers["idempotency-key"] for r in server.requests}) == 1
    # The deadline still bounds it, and the error names the key to ask again with.
    time = FakeTime()
    with Scripted([(409, {"Retry-After": "5"}, busy)] * 20) as server, \
            client(server, time, retries=Retries(deadline=30)) as sms:
        with pytest.raises(sms_sender.ConflictError) as raised:
            sms.create_batch([{"to": "+14254147755", "body": "hello"}], idempotency_key="run-7")
    assert len(server.requests) == 6 and sum(time.slept) < 30
    assert raised.value.code == "IdempotencyKeyInProgress" and raised.value.idempotency_key == "run-7"


def test_a_retry_after_past_the_deadline_ends_the_call_at_once():
    time = FakeTime()
    with Scripted([(429, {"Retry-After": "120"}, THROTTLED), (202, {}, message_json())]) as server, \
            client(server, time, retries=Retries(deadline=60)) as sms:
        with pytest.raises(sms_sender.RateLimitError) as raised:
            sms.send_sms("+14254147755", "hello")
    assert time.slept == [] and len(server.requests) == 1
    assert raised.value.retry_after == 120 and raised.value.code == "Throttled"


def test_the_deadline_bounds_the_sum_of_the_waits():
    time = FakeTime()
    script = [(503, {"Retry-After": "4"}, UNAVAILABLE)] * 10
    with Scripted(script) as server, client(server, time, retries=Retries(max_attempts=10, deadline=10)) as sms:
        with pytest.raises(sms_sender.ServerError):
            sms.health()
    assert time.slept == [4.0, 4.0] and len(server.requests) == 3  # a third wait would end past 10 s


def test_retry_after_as_an_http_date():
    time = FakeTime()
    wall = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    with Scripted([(429, {"Retry-After": "Tue, 14 Nov 2023 22:13:25 GMT"}, THROTTLED),
                   (200, {}, {"status": "ok"})]) as server, \
            client(server, time, wall=lambda: wall) as sms:
        assert sms.health().status == "ok"
    assert time.slept == [5.0]


def test_connection_dropped_then_answered():
    time = FakeTime()
    with Scripted([DROP, DROP, (202, {}, message_json())]) as server, client(server, time) as sms:
        assert sms.send_sms("+14254147755", "hello").id == "m-1"
    assert len(server.requests) == 3 and len(time.slept) == 2
    assert len({r.headers["idempotency-key"] for r in server.requests}) == 1


def test_no_answer_at_all_is_a_connection_error_after_the_last_try():
    time = FakeTime()
    with Scripted([DROP] * 4) as server, client(server, time) as sms:
        with pytest.raises(sms_sender.ApiConnectionError) as raised:
            sms.get_batch("batch-1")
    assert raised.value.attempts == 4 and len(server.requests) == 4
    assert raised.value.idempotency_key is None  # a GET goes with none
    with Scripted([DROP] * 4) as server, client(server, FakeTime()) as sms:
        with pytest.raises(sms_sender.ApiConnectionError) as raised:
            sms.send_sms("+14254147755", "hello")
    assert raised.value.idempotency_key == server.requests[0].headers["idempotency-key"]


@pytest.mark.parametrize("status, code, family", [
    (400, "InvalidPhoneNumber", sms_sender.BadRequestError),
    (401, "Unauthorized", sms_sender.AuthenticationError),
    (403, "InsufficientScope", sms_sender.PermissionDeniedError),
    (404, "MessageNotFound", sms_sender.NotFoundError),
    (409, "RecipientOptedOut", sms_sender.ConflictError),
    (422, "MediaTooLarge", sms_sender.UnprocessableError),
    (503, "MmsNotConfigured", sms_sender.ServerError),  # how the stage is set up: trying again changes nothing
])
def test_errors_that_are_not_retried_raise_their_family_at_once(status, code, family):
    time = FakeTime()
    body = {"error": {"code": code, "message": "No.", "field": "to", "messageId": "m-9"}}
    with Scripted([(status, {}, body), (202, {}, message_json())]) as server, client(server, time) as sms:
        with pytest.raises(family) as raised:
            sms.send_sms("+14254147755", "hello")
    assert len(server.requests) == 1 and time.slept == []
    err = raised.value
    assert (err.status, err.code, err.message, err.field, err.message_id) == (status, code, "No.", "to", "m-9")
    assert KEY not in str(err) and KEY not in repr(err)


def test_idempotency_key_in_progress_is_waited_for():
    time = FakeTime()
    busy = {"error": {"code": "IdempotencyKeyInProgress", "message": "Still working on it."}}
    with Scripted([(409, {"Retry-After": "1"}, busy), (202, {}, message_json())]) as server, \
            client(server, time) as sms:
        assert sms.send_sms("+14254147755", "hello").id == "m-1"
    assert time.slept == [1.0]


def test_an_answer_that_is_not_the_contracts_still_raises_its_family():
    time = FakeTime()
    with Scripted([(413, {}, {"message": "Request Too Long"})]) as server, client(server, time) as sms:
        with pytest.raises(sms_sender.ApiError) as raised:
            sms.send_sms("+14254147755", "x")
    assert (raised.value.status, raised.value.code, raised.value.message) == (413, None, "Request Too Long")


def test_paging_follows_next_until_it_is_null():
    time = FakeTime()
    pages = [(200, {}, {"messages": [message_json("m-3"), message_json("m-2")], "next": "tok/1+="}),
             (200, {}, {"messages": [message_json("m-1")], "next": None})]
    with Scripted(pages) as server, client(server, time) as sms:
        assert [m.id for m in sms.iter_messages(limit=2, direction="outbound")] == ["m-3", "m-2", "m-1"]
    assert [r.path for r in server.requests] == ["/messages?limit=2&direction=outbound",
                                                 "/messages?limit=2&next=tok%2F1%2B%3D&direction=outbound"]


def test_wait_for_final_polls_with_growing_waits_until_final():
    time = FakeTime()
    script = [(200, {}, message_json(status=s)) for s in ("sent", "sent", "sent", "delivered")]
    seen = []
    with Scripted(script) as server, client(server, time) as sms:
        final = sms.wait_for_final("m-1", timeout=30, on_change=lambda m: seen.append(m.status))
    assert final.status == "delivered" and seen == ["sent", "delivered"]
    assert time.slept == [0.25, 0.375, 0.5625]


def test_wait_for_final_gives_up_at_its_timeout():
    time = FakeTime()
    script = [(200, {}, message_json(status="sent"))] * 50
    with Scripted(script) as server, client(server, time) as sms:
        with pytest.raises(sms_sender.WaitTimeout) as raised:
            sms.wait_for_final("m-1", timeout=10)
    assert raised.value.last.status == "sent"
    assert sum(time.slept) == pytest.approx(10) and max(time.slept) <= 5
    assert len(server.requests) == len(time.slept) + 1


def test_the_async_client_shares_the_retry_rules():
    time = FakeTime()

    async def run(server):
        async with sms_sender.AsyncClient(server.url, KEY, clock=time.clock, sleep=time.asleep,
                                          random=lambda: 0.0) as sms:
            sent = await sms.send_sms("+14254147755", "hello")
            final = await sms.wait_for_final(sent.id, timeout=30)
            listed = [m.id async for m in sms.iter_messages(limit=1)]
            return sent, final, listed

    script = [(429, {"Retry-After": "2"}, THROTTLED), (202, {}, message_json()),
              (200, {}, message_json(status="sent")), (200, {}, message_json(status="failed")),
              (200, {}, {"messages": [message_json("m-2")], "next": "t"}),
              (200, {}, {"messages": [message_json("m-1")], "next": None})]
    with Scripted(script) as server:
        sent, final, listed = asyncio.run(run(server))
    assert sent.id == "m-1" and final.status == "failed" and listed == ["m-2", "m-1"]
    assert time.slept == [2.0, 0.25]
    posts = [r for r in server.requests if r.method == "POST"]
    assert len(posts) == 2 and posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]


def test_the_key_is_never_shown_and_retries_log_no_number(caplog):
    time = FakeTime()
    caplog.set_level(logging.DEBUG)
    with Scripted([(429, {"Retry-After": "1"}, THROTTLED),
                   (200, {}, {"number": "+14255550123", "optedOutAt": None, "source": "api"})]) as server, \
            client(server, time) as sms:
        entry = sms.get_opt_out("+14255550123")
        assert KEY not in repr(sms) and KEY not in str(vars(sms))
    assert entry.number == "+14255550123" and server.requests[0].path == "/opt-outs/%2B14255550123"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "getOptOut: 429 Throttled; try 2 of 4" in logged
    assert "HTTP Request" in logged  # httpx's own line: its URL's number is masked
    assert "4255550123" not in logged and KEY not in logged


def test_no_key_no_authorization_header(monkeypatch):
    monkeypatch.delenv("SMS_API_KEY", raising=False)
    time = FakeTime()
    with Scripted([(200, {}, {"status": "ok"})]) as server, \
            Client(server.url, None, clock=time.clock, sleep=time.sleep) as sms:
        sms.health()
    assert "authorization" not in server.requests[0].headers
