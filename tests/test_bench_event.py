"""``make bench``'s per-send row calls the API function's handler as Lambda calls it. Its event must be a send
the API accepts as API Gateway hands one on (the key authorizer's answer in the request context): otherwise
the row times a 401 (``make bench`` stopped on exactly that once keys came in)."""
from __future__ import annotations

import json

from bench.per_send import _Context, _proxy_event

from .conftest import sender


def test_the_benchs_send_event_is_accepted_and_sent(aws_env, sns_stub):
    sns_stub.add_response("publish", {"MessageId": "bench-1"})
    event = _proxy_event(json.dumps({"to": "+14255550123", "body": "Your code is 123456"}))
    response = sender.app(event, _Context())
    assert response["statusCode"] == 202, response["body"]
    assert json.loads(response["body"])["keyId"] == "key_bench"
