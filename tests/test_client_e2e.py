"""The Python client end to end, against the local stack over real HTTP on loopback: the emulated AWS's
``/_outbox`` witnesses what was sent, ``devstack/receiver.py`` receives the webhooks.

Send, wait for the final status, page, a batch, MMS from bytes through ``/media``, a webhook verified with
``verify_webhook`` (and with the ``standardwebhooks`` package, the spec's own), each error family's exception,
a provider's 429 retried under the same ``Idempotency-Key`` with exactly one message sent, and the async client.
"""
from __future__ import annotations

import asyncio

import pytest
from standardwebhooks.webhooks import Webhook

from devstack.receipts import SIMULATOR_FAILURE, SIMULATOR_SUCCESS
from devstack.receiver import Receiver
from devstack.server import LocalStack

from .clientlib import FakeTime
from .localhttp import HANG_GUARD, Http

import sms_sender  # noqa: E402
from sms_sender import NO_RETRIES, Client  # noqa: E402

pytestmark = pytest.mark.xdist_group("client-e2e")  # one local stack for the module, on one worker

SUCCESS, FAILURE = sorted(SIMULATOR_SUCCESS)[0], sorted(SIMULATOR_FAILURE)[0]  # US: delivered, failed
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0, visibility_timeout=10, function_timeout=10, receipt_delay=0.3,
                    settings={"PROVIDER_MAX_ATTEMPTS": "2"}) as running:
        yield running


@pytest.fixture
def aws(stack):
    emulated = Http(stack.aws_url)
    emulated.call("DELETE", "/_faults")
    yield emulated
    emulated.call("DELETE", "/_faults")


@pytest.fixture
def sms(stack):
    with Client(stack.app_url, None) as client:
        yield client


def outbox(aws) -> list[dict]:
    return aws.call("GET", "/_outbox")[2]


def test_send_wait_for_final_and_read_back(sms, aws):
    before = len(outbox(aws))
    sent = sms.send_sms(SUCCESS, "client end to end")
    failed = sms.send_sms(FAILURE, "client end to end, failing")
    assert sent.status == failed.status == "sent" and sent.channel == "sms" and sent.segments == 1
    assert [(o["to"], o["providerMessageId"]) for o in outbox(aws)[before:]] == [
        (SUCCESS, sent.provider_message_id), (FAILURE, failed.provider_message_id)]
    delivered = sms.wait_for_final(sent.id, timeout=HANG_GUARD)
    assert delivered.status == "delivered" and delivered.final and delivered.error is None
    refused = sms.wait_for_final(failed.id, timeout=HANG_GUARD)
    assert refused.status == "failed" and refused.error.code == "DeliveryFailed"
    assert sms.get_message(sent.id) == delivered  # models compare by value


def test_iter_messages_pages_through_next(sms):
    ids = [sms.send_sms(SUCCESS, f"page {n}").id for n in range(5)]
    newest_first = list(reversed(ids))
    page = sms.list_messages(limit=2)
    assert [m.id for m in page.items] == newest_first[:2] and page.next
    walked = []
    for message in sms.iter_messages(limit=2):  # 2 a page: at least three pages for these five
        walked.append(message.id)
        if len(walked) == 5:
            break
    assert walked == newest_first
    assert len({m.id for m in sms.iter_messages(limit=100)}) >= 5


def test_a_batch_until_done(sms):
    accepted = sms.create_batch([{"to": SUCCESS, "body": "batch one"}, {"to": FAILURE, "body": "batch two"},
                                 {"to": "not a number", "body": "batch three"}])
    assert accepted.accepted == 2 and [(r.index, r.error.code, r.error.field) for r in accepted.rejected] == [
        (2, "InvalidPhoneNumber", "to")]
    seen = []
    done = sms.wait_for_batch(accepted.id, timeout=120, on_change=seen.append)
    assert done.done and (done.size, done.rejected, done.delivered, done.failed) == (3, 1, 1, 1)
    assert seen[-1] == done and all(not p.done for p in seen[:-1])


def test_mms_from_bytes_through_media(sms, aws):
    before = len(outbox(aws))
    media_url = sms.upload_media(PNG, "image/png", filename="cat.png")
    assert media_url.startswith("s3://")
    message = sms.send_mms(SUCCESS, media_url, "a cat")
    assert message.channel == "mms" and message.media_url == media_url
    assert [(o["channel"], o["mediaUrl"]) for o in outbox(aws)[before:]] == [("mms", media_url)]


def test_a_webhook_delivery_verifies(sms):
    with Receiver(204, lifetime=120) as receiver:
        endpoint = sms.create_webhook(receiver.url, ["message.delivered"])
        try:
            assert endpoint.secret.startswith("whsec_") and endpoint.secret not in repr(endpoint)
            message = sms.send_sms(SUCCESS, "webhook end to end")
            delivery = receiver.wait_for(lambda ds: next((d for d in ds if d.event.get("data", {}).get("id")
                                                          == message.id), None), timeout=HANG_GUARD)
            assert delivery is not None, "no delivery came"
            event = sms_sender.verify_webhook(delivery.body, delivery.headers, endpoint.secret)
            assert (event.type, event.data.id, event.data.status) == ("message.delivered", message.id, "delivered")
            assert event.data.body is None  # a webhook carries the message less its body
            assert Webhook(endpoint.secret).verify(delivery.body, delivery.headers)["data"]["id"] == message.id
            with pytest.raises(sms_sender.WebhookVerificationError):
                sms_sender.verify_webhook(delivery.body.replace(b"delivered", b"failed"), delivery.headers,
                                          endpoint.secret)
            rotated = sms.rotate_webhook_secret(endpoint.id)
            with pytest.raises(sms_sender.WebhookVerificationError):  # the old delivery, the new secret only
                sms_sender.verify_webhook(delivery.body, delivery.headers, rotated.secret)
            assert sms_sender.verify_webhook(delivery.body, delivery.headers,
                                             [rotated.secret, endpoint.secret]).data.id == message.id
            assert endpoint.id in [w.id for w in sms.list_webhooks()]
            assert any(d.event_id == delivery.id for d in sms.list_webhook_deliveries(endpoint.id))
        finally:
            sms.delete_webhook(endpoint.id)
    with pytest.raises(sms_sender.NotFoundError) as gone:
        sms.get_webhook(endpoint.id)
    assert gone.value.code == "WebhookNotFound"


def test_each_error_family_raises_its_exception(stack, aws):
    plain = Client(stack.app_url, None, retries=NO_RETRIES)
    with plain:
        with pytest.raises(sms_sender.BadRequestError) as bad:
            plain.send_sms("12", "hi")
        assert (bad.value.status, bad.value.code, bad.value.field) == (400, "InvalidPhoneNumber", "to")

        with pytest.raises(sms_sender.AuthenticationError) as unknown:
            Client(stack.app_url, "sk_live_" + "a" * 16 + "_" + "b" * 49, retries=NO_RETRIES).get_current_key()
        assert (unknown.value.status, unknown.value.code) == (401, "Unauthorized")

        reader = plain.create_key("client e2e reader", ["messages:read"])
        assert reader.key and reader.key not in repr(reader)
        with Client(stack.app_url, reader.key, retries=NO_RETRIES) as limited:
            assert limited.get_current_key().id == reader.id
            with pytest.raises(sms_sender.PermissionDeniedError) as scope:
                limited.send_sms(SUCCESS, "not allowed")
        assert (scope.value.status, scope.value.code) == (403, "InsufficientScope")
        plain.revoke_key(reader.id)
        assert plain.get_key(reader.id).revoked_at

        with pytest.raises(sms_sender.NotFoundError) as missing:
            plain.get_message("no-such-message")
        assert (missing.value.status, missing.value.code) == (404, "MessageNotFound")

        opted = "+14255550142"
        plain.put_opt_out(opted)
        assert plain.get_opt_out(opted).source == "api"
        with pytest.raises(sms_sender.ConflictError) as conflict:
            plain.send_sms(opted, "you opted out")
        assert (conflict.value.status, conflict.value.code) == (409, "RecipientOptedOut")

        with pytest.raises(sms_sender.UnprocessableError) as media:
            plain.create_media_upload("text/plain", 10)
        assert (media.value.status, media.value.code) == (422, "MediaTypeNotSupported")

        aws.call("POST", "/_faults", {"operation": "Publish", "code": "Throttling", "count": 2})
        with pytest.raises(sms_sender.RateLimitError) as throttled:
            plain.send_sms(SUCCESS, "throttled twice")
        err = throttled.value
        assert (err.status, err.code, err.retry_after) == (429, "Throttled", 1.0) and err.message_id
        assert plain.get_message(err.message_id).status == "failed"

        aws.call("POST", "/_faults", {"operation": "Publish", "code": "AuthorizationError", "status": 403,
                                      "count": 1})
        with pytest.raises(sms_sender.ServerError) as denied:
            plain.send_sms(SUCCESS, "denied")
        assert (denied.value.status, denied.value.code) == (502, "ProviderAccessDenied")


def test_a_throttled_send_is_retried_under_the_same_key_and_sent_once(stack, aws):
    """The app answers 429 when AWS throttles every one of its tries; the client waits Retry-After (injected,
    so no real wait) and asks again under the same Idempotency-Key, which the app did not remember for a
    throttled send: the second try sends, once."""
    time = FakeTime()
    before = len(outbox(aws))
    aws.call("POST", "/_faults", {"operation": "Publish", "code": "Throttling", "count": 2})
    with Client(stack.app_url, None, sleep=time.sleep, clock=time.clock, random=lambda: 0.0) as sms:
        message = sms.send_sms(SUCCESS, "throttled, then sent", idempotency_key="client-e2e-throttled")
        again = sms.send_sms(SUCCESS, "throttled, then sent", idempotency_key="client-e2e-throttled")
    assert time.slept == [1.0]
    assert message.status == "sent" and again == message  # the same key and body: the first answer again
    assert [o["providerMessageId"] for o in outbox(aws)[before:]] == [message.provider_message_id]


def test_the_async_client_end_to_end(stack):
    async def run():
        async with sms_sender.AsyncClient(stack.app_url, None) as sms:
            sent = await sms.send_sms(SUCCESS, "async end to end")
            final = await sms.wait_for_final(sent.id, timeout=HANG_GUARD)
            first = [m.id async for m in sms.iter_messages(limit=1)][:1]
            return sent, final, first, await sms.health()

    sent, final, first, health = asyncio.run(run())
    assert final.id == sent.id and final.status == "delivered" and health.status == "ok"
    assert first and isinstance(first[0], str)
