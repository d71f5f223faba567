"""``sms_sender.verify_webhook`` against the Standard Webhooks spec's own test vector
(tests/standard-webhooks-signature.json, with its sources; tests/events/ holds AWS's documents only) and against the ``standardwebhooks``
package both ways. The end-to-end check on real deliveries is in tests/test_client_e2e.py."""
from __future__ import annotations

import base64
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from . import clientlib  # noqa: F401

from sms_sender import WebhookVerificationError, verify_webhook  # noqa: E402
from sms_sender.webhooks import sign  # noqa: E402

SPEC = json.loads((Path(__file__).parent / "standard-webhooks-signature.json").read_text())
VECTOR = SPEC["vector"]


def headers(signature: str, stamp=VECTOR["webhook-timestamp"], webhook_id=VECTOR["webhook-id"]) -> dict:
    return {"Webhook-Id": webhook_id, "Webhook-Timestamp": str(stamp), "Webhook-Signature": signature}


def test_the_specs_vector_signs_and_verifies():
    stamp = VECTOR["webhook-timestamp"]
    assert sign(VECTOR["secret"], VECTOR["webhook-id"], stamp, VECTOR["payload"]) == VECTOR["signature"]
    event = verify_webhook(VECTOR["payload"].encode(), headers(VECTOR["signature"]), VECTOR["secret"],
                           now=lambda: stamp)
    assert event.to_dict() == {"test": 2432232314}


@pytest.mark.parametrize("offset, verifies", [(-300, True), (300, True), (-301, False), (301, False)])
def test_a_timestamp_more_than_five_minutes_off_is_refused(offset, verifies):
    stamp = VECTOR["webhook-timestamp"]
    check = lambda: verify_webhook(VECTOR["payload"], headers(VECTOR["signature"]), VECTOR["secret"],  # noqa: E731
                                   now=lambda: stamp + offset)
    if verifies:
        check()
    else:
        with pytest.raises(WebhookVerificationError, match="too far"):
            check()


def test_any_one_of_several_signatures_is_enough_and_only_v1_counts():
    stamp, good = VECTOR["webhook-timestamp"], VECTOR["signature"]
    wrong = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    as_v2 = "v2," + good.split(",", 1)[1]
    verify_webhook(VECTOR["payload"], headers(f"{wrong} {good} {wrong}"), VECTOR["secret"], now=lambda: stamp)
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify_webhook(VECTOR["payload"], headers(f"{wrong} {as_v2}"), VECTOR["secret"], now=lambda: stamp)


@pytest.mark.parametrize("change", ["body", "id", "timestamp", "secret", "no-id", "no-signature", "bad-stamp"])
def test_anything_changed_does_not_verify(change):
    stamp, body, secret = VECTOR["webhook-timestamp"], VECTOR["payload"], VECTOR["secret"]
    given = headers(VECTOR["signature"])
    if change == "body":
        body = body.replace("2", "3", 1)
    elif change == "id":
        given["Webhook-Id"] = "msg_other"
    elif change == "timestamp":
        given["Webhook-Timestamp"] = str(stamp + 1)
    elif change == "secret":
        secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    elif change == "no-id":
        del given["Webhook-Id"]
    elif change == "no-signature":
        del given["Webhook-Signature"]
    else:
        given["Webhook-Timestamp"] = "soon"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, given, secret, now=lambda: stamp)


def test_agrees_with_the_standardwebhooks_package_both_ways():
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    body = json.dumps({"type": "message.delivered", "timestamp": "2026-12-05T10:00:00Z",
                       "data": {"id": "m-1", "status": "delivered"}})
    now = datetime.now(timezone.utc)
    theirs = Webhook(secret).sign("msg_abc", now, body)
    event = verify_webhook(body.encode(), headers(theirs, int(now.timestamp()), "msg_abc"), secret)
    assert (event.type, event.data.id, event.data.status) == ("message.delivered", "m-1", "delivered")
    ours = sign(secret, "msg_abc", int(now.timestamp()), body)
    assert Webhook(secret).verify(body, {"webhook-id": "msg_abc", "webhook-timestamp": str(int(now.timestamp())),
                                         "webhook-signature": ours})["data"]["id"] == "m-1"
