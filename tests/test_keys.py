"""Scoped, revocable keys (``chalicelib/keys``): every scope against every route, the one 401, test keys,
revocation through the authorizer's cache, the key format, and no secret anywhere after the answer that made it.

The requests go through the Chalice test client behind the local stack's API Gateway (``devstack/gateway.py``):
the app's own authorizer runs before each protected route, its answer cached per key as API Gateway caches it.
"""
from __future__ import annotations

import json
import os

import boto3
import pytest
from botocore.stub import Stubber
from chalice.local import ARNMatcher
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from chalicelib.core import aws
from chalicelib.keys import authorizer, routing, scopes, tokens
from chalicelib.sending import simulator

from . import aws_docs
from .conftest import REGION, body_of, hygiene, post

TO = "+14255550123"
US = "+14254147755"  # AWS's success simulator number
FAILS = "+14254147167"  # AWS's failure simulator number


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def make_key(client, scope_list, *, test: bool = False, **extra) -> tuple[dict, str]:
    response = post(client, "/keys", {"name": "test " + ",".join(scope_list), "scopes": list(scope_list),
                                      "test": test, **extra})
    assert response.status_code == 201, response.body
    made = body_of(response)
    hygiene.keys.add(made["key"])  # the log-hygiene check fails the session if a line ever holds it
    return made, made["key"]


def key_check(client):
    return client.http._local_gateway.key_check


class Clock:
    def __init__(self):
        self.now = 1_000.0

    def __call__(self):
        return self.now


def sent_sms():
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


# -- a minimal request per route: enough to pass the key check and reach the route ------------------------------
def request_for(method: str, route: str) -> tuple[str, str, dict | None]:
    path = (route.replace("{message_id}", "00000000-0000-4000-8000-000000000000")
            .replace("{batch_id}", "batch-00000000-0000-4000-8000-000000000000")
            .replace("{number}", "%2B14255550123").replace("{webhook_id}", "wh_" + "0" * 32)
            .replace("{key_id}", "key_" + "a" * 16).replace("{template_id}", "tpl_" + "0" * 32)
            .replace("{export_id}", "exp_" + "a" * 26))
    bodies = {"/sms": {"to": TO, "body": "scope check"}, "/mms": {"to": TO, "mediaUrl": "s3://nowhere/x.png"},
              "/media": {"contentType": "image/png", "size": 10}, "/batches": {"messages": [{"to": TO, "body": "x"}]},
              "/webhooks": {"url": "http://127.0.0.1:9/hooks"}, "/keys": {"name": "n", "scopes": [scopes.KEYS]},
              "/templates": {"name": "scope check", "body": "Hi ((name))"},
              "/templates/{template_id}": {"name": "scope check", "body": "Hi ((name)), again"},
              "/exports": {"from": "2026-12-05", "to": "2026-12-05"}}
    body = bodies.get(route, {}) if method in ("POST", "PUT") else None
    return method, path, body


def call(client, method, path, body, headers):
    if body is not None:
        return client.http.request(method, path, headers={"Content-Type": "application/json", **headers},
                                   body=json.dumps(body).encode())
    return client.http.request(method, path, headers=headers)


@pytest.fixture
def keyed(client):
    """A key per scope (each with that one scope only)."""
    return {scope: make_key(client, [scope])[1] for scope in scopes.SCOPES}


@pytest.mark.parametrize("method, route", sorted(scopes.ROUTES))
def test_every_route_opens_to_its_scope_and_refuses_every_other_naming_it(client, keyed, method, route):
    needed = scopes.ROUTES[(method, route)]
    method, path, body = request_for(method, route)
    for scope, key in keyed.items():
        response = call(client, method, path, body, bearer(key))
        if scope == needed:
            assert response.status_code not in (401, 403), (scope, response.body)
        else:
            assert response.status_code == 403, (scope, response.status_code, response.body)
            error = body_of(response)["error"]
            assert error["code"] == "InsufficientScope" and needed in error["message"], error


def test_any_valid_key_reads_itself(client, keyed):
    for scope, key in keyed.items():
        response = client.http.get("/keys/current", headers=bearer(key))
        assert response.status_code == 200 and body_of(response)["scopes"] == [scope]


def test_the_open_routes_need_no_key_even_where_keys_are_required(client):
    key_check(client).require_keys = True
    for method, path in scopes.OPEN:
        assert client.http.request(method, path).status_code in (200, 204), path


def test_no_key_a_wrong_secret_a_revoked_key_and_an_expired_key_get_one_identical_401(client):
    made, good = make_key(client, [scopes.READ])
    _, revoked = make_key(client, [scopes.READ])
    revoked_id = tokens.parse(revoked)[0]
    assert client.http.delete(f"/keys/{revoked_id}").status_code == 204
    _, expiring = make_key(client, [scopes.READ], expiresAt="2030-01-01T00:00:00Z")
    # The same id, another secret with a right checksum: a key the table holds another digest for.
    body = good[:-tokens.CHECK_CHARS]
    forged = tokens.new_key(made["id"], test=False)
    assert forged != good and tokens.parse(forged) == (made["id"], False)

    key_check(client).require_keys = True
    answers = [client.http.get("/messages")]
    answers += [client.http.get("/messages", headers=bearer(k)) for k in (forged, revoked, body + "AAAAAA", "sk_live_x")]
    # The expired one: the authorizer's clock past expiresAt.
    real_time = authorizer.time.time
    try:
        authorizer.time.time = lambda: 1_900_000_000.0  # 2030-03-17
        answers.append(client.http.get("/messages", headers=bearer(expiring)))
    finally:
        authorizer.time.time = real_time
    assert {a.status_code for a in answers} == {401}
    assert len({a.body for a in answers}) == 1, [a.body for a in answers]
    assert body_of(answers[0])["error"]["code"] == "Unauthorized"
    assert all(a.headers["WWW-Authenticate"] == "Bearer" for a in answers)
    assert client.http.get("/messages", headers=bearer(good)).status_code == 200


def test_a_revoked_key_stops_once_the_cached_answer_expires(client):
    clock = Clock()
    key_check(client).clock = clock
    made, key = make_key(client, [scopes.READ, scopes.KEYS])
    assert client.http.get("/messages", headers=bearer(key)).status_code == 200
    assert client.http.delete(f"/keys/{made['id']}", headers=bearer(key)).status_code == 204
    # API Gateway keeps the authorizer's answer for its TTL: the key works that long, and not a moment more.
    clock.now += routing.CACHE_SECONDS - 1
    assert client.http.get("/messages", headers=bearer(key)).status_code == 200
    clock.now += 2
    assert client.http.get("/messages", headers=bearer(key)).status_code == 401
    listed = body_of(client.http.get("/keys"))["keys"]
    assert [k["revokedAt"] is not None for k in listed if k["id"] == made["id"]] == [True]


def test_a_key_cannot_make_a_key_with_a_scope_it_lacks(client):
    _, manager = make_key(client, [scopes.KEYS, scopes.READ])
    refused = post(client, "/keys", {"name": "more", "scopes": [scopes.SEND]}, bearer(manager))
    assert refused.status_code == 403
    assert body_of(refused)["error"]["code"] == "InsufficientScope" and scopes.SEND in body_of(refused)["error"]["message"]
    assert post(client, "/keys", {"name": "less", "scopes": [scopes.READ]}, bearer(manager)).status_code == 201


def test_a_test_key_makes_only_test_keys(client):
    _, test_manager = make_key(client, [scopes.KEYS], test=True)
    refused = post(client, "/keys", {"name": "live", "scopes": [scopes.KEYS]}, bearer(test_manager))
    assert refused.status_code == 403 and body_of(refused)["error"]["code"] == "InsufficientScope"
    made = post(client, "/keys", {"name": "t", "scopes": [scopes.KEYS], "test": True}, bearer(test_manager))
    assert made.status_code == 201 and body_of(made)["key"].startswith("sk_test_")


@pytest.mark.parametrize("body, code, field", [
    ({"scopes": [scopes.READ]}, "MissingField", "name"),
    ({"name": "x"}, "MissingField", "scopes"),
    ({"name": "x", "scopes": ["messages:delete"]}, "InvalidScope", "scopes"),
    ({"name": "x", "scopes": []}, "InvalidScope", "scopes"),
    ({"name": "x", "scopes": "messages:read"}, "InvalidScope", "scopes"),
    ({"name": "x" * 65, "scopes": [scopes.READ]}, "InvalidName", "name"),
    ({"name": "x", "scopes": [scopes.READ], "test": "yes"}, "InvalidTest", "test"),
    ({"name": "x", "scopes": [scopes.READ], "expiresAt": "2001-01-01T00:00:00Z"}, "InvalidExpiresAt", "expiresAt"),
    ({"name": "x", "scopes": [scopes.READ], "expiresAt": "tomorrow"}, "InvalidExpiresAt", "expiresAt"),
    ({"name": "x", "scopes": [scopes.READ], "expiresAt": "2030-01-01T00:00:00"}, "InvalidExpiresAt", "expiresAt"),
])
def test_a_bad_key_request_is_a_400_naming_the_field(client, body, code, field):
    response = post(client, "/keys", body)
    assert response.status_code == 400
    assert (body_of(response)["error"]["code"], body_of(response)["error"]["field"]) == (code, field)


def test_the_key_appears_only_in_the_answer_that_made_it_and_is_stored_only_as_a_digest(client):
    made, key = make_key(client, [scopes.READ], test=True)
    assert made["key"].startswith("sk_test_") and made["prefix"] and key.startswith(made["prefix"].rstrip("…"))
    assert set(made) == {"id", "name", "scopes", "test", "prefix", "createdAt", "expiresAt", "lastUsedAt",
                         "revokedAt", "key"}
    for answer in (client.http.get("/keys"), client.http.get(f"/keys/{made['id']}"),
                   client.http.get("/keys/current", headers=bearer(key))):
        assert answer.status_code == 200 and key not in answer.body.decode() and b'"key"' not in answer.body
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=os.environ["KEYS_TABLE"])["Items"]
    assert key not in json.dumps(items) and key[len(tokens.TEST):] not in json.dumps(items)
    (item,) = [i for i in items if i["id"]["S"] == made["id"]]
    assert item["hash"]["S"] == tokens.digest(key)


def test_a_replayed_create_cannot_show_the_key_again(client):
    first = post(client, "/keys", {"name": "once", "scopes": [scopes.READ]}, {"Idempotency-Key": "key-once-1"})
    again = post(client, "/keys", {"name": "once", "scopes": [scopes.READ]}, {"Idempotency-Key": "key-once-1"})
    hygiene.keys.add(body_of(first)["key"])
    assert body_of(first)["key"] and body_of(again)["key"] is None
    assert body_of(again)["id"] == body_of(first)["id"] and again.headers["Location"] == first.headers["Location"]


def test_two_keys_never_share_an_idempotency_key(client):
    _, one = make_key(client, [scopes.SEND])
    _, two = make_key(client, [scopes.SEND])
    first = post(client, "/sms", {"to": TO, "body": "from one"}, {**bearer(one), "Idempotency-Key": "shared-1"})
    second = post(client, "/sms", {"to": TO, "body": "from two"}, {**bearer(two), "Idempotency-Key": "shared-1"})
    assert first.status_code == second.status_code == 202
    assert body_of(first)["id"] != body_of(second)["id"] and body_of(second)["body"] == "from two"


def test_every_message_records_the_key_that_sent_it(client):
    made, key = make_key(client, [scopes.SEND, scopes.READ])
    sent = body_of(post(client, "/sms", {"to": TO, "body": "who sent me"}, bearer(key)))
    assert sent["keyId"] == made["id"] and sent["test"] is False
    assert body_of(client.http.get(f"/messages/{sent['id']}", headers=bearer(key)))["keyId"] == made["id"]
    keyless = body_of(post(client, "/sms", {"to": TO, "body": "no key under make dev"}))
    assert keyless["keyId"] == "local"


def test_only_the_old_x_api_key_is_refused_under_make_dev_too(client):
    """As deployed, where the stack makes no API key any more: a caller not yet moved to Bearer keys is told so
    on the local stack first, instead of acting as make dev's keyless caller. (It was let through.)"""
    before = len(sent_sms())
    refused = post(client, "/sms", {"to": TO, "body": "old key"}, {"x-api-key": "an-old-api-gateway-key"})
    assert refused.status_code == 401 and len(sent_sms()) == before
    assert client.http.get("/messages", headers={"x-api-key": "an-old-api-gateway-key"}).status_code == 401


def test_a_test_key_never_reaches_a_provider_and_settles_as_the_simulator_numbers_do(client, calls):
    _, key = make_key(client, [scopes.SEND, scopes.READ], test=True)
    before = len(sent_sms())
    delivered = body_of(post(client, "/sms", {"to": US, "body": "test delivered"}, bearer(key)))
    failed = body_of(post(client, "/sms", {"to": FAILS, "body": "test failed"}, bearer(key)))
    other = body_of(post(client, "/sms", {"to": TO, "body": "any other number"}, bearer(key)))
    assert all(m["status"] == "sent" and m["test"] is True and m["providerMessageId"].startswith("test-")
               for m in (delivered, failed, other))
    sends = [(service, op) for service, op, _ in calls if op in ("Publish", "SendTextMessage", "SendMediaMessage")]
    assert sends == [] and len(sent_sms()) == before
    read = {m["id"]: body_of(client.http.get(f"/messages/{m['id']}", headers=bearer(key)))
            for m in (delivered, failed, other)}
    assert read[delivered["id"]]["status"] == "delivered" and read[other["id"]]["status"] == "delivered"
    assert read[failed["id"]]["status"] == "failed" and read[failed["id"]]["error"]["code"] == "DeliveryFailed"
    assert all(m["priceUsd"] == 0 for m in read.values())
    assert simulator.fails(FAILS) and not simulator.fails(US)


def test_a_test_key_dry_run_calls_no_provider_either(client, calls, put_media):
    _, key = make_key(client, [scopes.SEND], test=True)
    response = post(client, "/mms", {"to": US, "mediaUrl": put_media(), "dryRun": True}, bearer(key))
    assert response.status_code == 202 and body_of(response)["status"] == "validated"
    assert not [c for c in calls if c[1] in ("Publish", "SendTextMessage", "SendMediaMessage")]


def test_listings_and_reads_are_kept_apart_between_test_and_live_keys(client):
    _, live = make_key(client, [scopes.SEND, scopes.READ])
    _, test = make_key(client, [scopes.SEND, scopes.READ], test=True)
    live_sent = body_of(post(client, "/sms", {"to": TO, "body": "live one"}, bearer(live)))
    test_sent = body_of(post(client, "/sms", {"to": TO, "body": "test one"}, bearer(test)))
    live_batch = body_of(post(client, "/batches", {"messages": [{"to": TO, "body": "lb"}]}, bearer(live)))
    test_batch = body_of(post(client, "/batches", {"messages": [{"to": TO, "body": "tb"}]}, bearer(test)))

    def listed(key):
        return {m["id"] for m in body_of(client.http.get("/messages?limit=100", headers=bearer(key)))["messages"]}

    assert test_sent["id"] in listed(test) and live_sent["id"] not in listed(test)
    assert live_sent["id"] in listed(live) and test_sent["id"] not in listed(live)
    assert all(m["test"] for m in body_of(client.http.get("/messages", headers=bearer(test)))["messages"])
    assert client.http.get(f"/messages/{test_sent['id']}", headers=bearer(live)).status_code == 404
    assert client.http.get(f"/messages/{live_sent['id']}", headers=bearer(test)).status_code == 404
    assert client.http.get(f"/batches/{test_batch['id']}", headers=bearer(live)).status_code == 404
    assert client.http.get(f"/batches/{live_batch['id']}", headers=bearer(test)).status_code == 404
    assert client.http.get(f"/batches/{test_batch['id']}", headers=bearer(test)).status_code == 200
    assert body_of(client.http.get("/messages?direction=inbound", headers=bearer(test)))["messages"] == []


def test_an_unknown_path_is_a_404_that_never_echoes_the_authorization_header(client):
    _, key = make_key(client, [scopes.READ])
    for headers in ({}, bearer(key)):
        response = client.http.get("/no/such/route", headers=headers)
        assert response.status_code == 404 and body_of(response)["error"]["code"] == "RouteNotFound"
        assert key not in response.body.decode() and "Authorization" not in response.body.decode()


# -- the authorizer itself ----------------------------------------------------------------------------------------
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/api/GET/messages"


def routes_matched(policy: dict) -> set[tuple[str, str]]:
    """Every route of the API (and the open ones) a policy allows, as API Gateway matches its ARNs."""
    resources = policy["Statement"][0]["Resource"]
    everything = set(scopes.ROUTES) | set(scopes.ANY_KEY) | set(scopes.OPEN)
    found = set()
    for method, route in everything:
        concrete = route.replace("{", "x").replace("}", "x")
        arn = f"arn:aws:execute-api:us-east-1:123456789012:abc123/api/{method}{concrete}"
        if ARNMatcher(arn).does_any_resource_match(resources):
            found.add((method, route))
    return found


@pytest.mark.parametrize("scope", scopes.SCOPES)
def test_the_cached_policy_allows_exactly_the_routes_of_the_keys_scopes(scope):
    expected = {route for route, needed in scopes.ROUTES.items() if needed == scope} | set(scopes.ANY_KEY)
    assert routes_matched(scopes.policy(METHOD_ARN, [scope])) == expected
    assert routes_matched(scopes.policy(METHOD_ARN, list(scopes.SCOPES))) == set(scopes.ROUTES) | set(scopes.ANY_KEY)


def test_the_authorizer_answers_with_the_keys_scopes_in_context_and_the_key_id_as_principal(client):
    made, key = make_key(client, [scopes.SEND, scopes.READ])
    answer = authorizer.check(f"Bearer {key}", METHOD_ARN)
    assert answer["principalId"] == made["id"]
    assert answer["context"] == {"keyId": made["id"], "scopes": "messages:send messages:read", "test": "false"}
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_the_deployed_handler_answers_api_gateways_documented_token_input_as_chalices_authorizer_does(client):
    """Deployed, the Bearer function's handler is ``authorizer.handler``, which loads no Chalice. Given the event
    API Gateway documents for a TOKEN authorizer, it answers what Chalice's built-in authorizer (the local
    server's) answers; a bad key fails with exactly ``Unauthorized``, which API Gateway turns into its 401."""
    made, key = make_key(client, [scopes.SEND])
    event = dict(aws_docs.document(aws_docs.API_GATEWAY_TOKEN_AUTHORIZER_INPUT))
    assert set(event) == {"type", "authorizationToken", "methodArn"} and event["type"] == "TOKEN"
    event.update(authorizationToken=f"Bearer {key}", methodArn=METHOD_ARN)
    deployed = authorizer.handler(event, None)
    assert deployed == routing.bearer(event, None)  # Chalice's wrapper, called as Lambda calls a handler
    assert deployed["principalId"] == made["id"] and deployed["context"]["scopes"] == scopes.SEND
    # Well formed, the key's own id, another secret. (The key with its last character made "x" was the same key
    # whenever that character was "x" already: one run in 62.)
    forged = tokens.new_key(made["id"], test=False)
    assert forged != key and tokens.parse(forged) == (made["id"], False)
    for refused in (f"Bearer {forged}", "Bearer sk_live_forged", None):
        with pytest.raises(authorizer.Unauthorized) as caught:
            authorizer.handler({**event, "authorizationToken": refused}, None)
        assert str(caught.value) == "Unauthorized"


def test_an_uncached_check_is_one_getitem_and_last_used_is_written_at_most_once_a_minute(client):
    made, key = make_key(client, [scopes.READ])
    table = os.environ["KEYS_TABLE"]
    now = 1_800_000_000.0
    with Stubber(aws.client("dynamodb")) as stub:
        item = {"id": {"S": made["id"]}, "hash": {"S": tokens.digest(key)}, "test": {"BOOL": False},
                "scopes": {"L": [{"S": scopes.READ}]}}
        stub.add_response("get_item", {"Item": item},
                          {"TableName": table, "Key": {"id": {"S": made["id"]}}, "ConsistentRead": True})
        stub.add_response("update_item", {}, None)  # never used: lastUsedAt is written
        authorizer.check(f"Bearer {key}", METHOD_ARN, now=now)
        stub.assert_no_pending_responses()
        used = authorizer._iso(now - 30)  # 30 s ago: no write
        stub.add_response("get_item", {"Item": {**item, "lastUsedAt": {"S": used}}},
                          {"TableName": table, "Key": {"id": {"S": made["id"]}}, "ConsistentRead": True})
        authorizer.check(f"Bearer {key}", METHOD_ARN, now=now)
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "Bearer sk_live_", "bearer sk_test_x",
                                    "Bearer " + "sk_live_" + "a" * 16 + "_" + "b" * 49])
def test_a_malformed_header_is_refused_without_a_table_read(aws_env, calls, header):
    with pytest.raises(authorizer.Unauthorized):
        authorizer.check(header, METHOD_ARN)
    assert not [c for c in calls if c[0] == "dynamodb"]


# -- the key format -----------------------------------------------------------------------------------------------
def test_a_key_says_what_it_is_carries_256_bits_and_a_checksum():
    key_id = tokens.new_id()
    live, test = tokens.new_key(key_id, test=False), tokens.new_key(key_id, test=True)
    assert live.startswith("sk_live_") and test.startswith("sk_test_")
    assert tokens.parse(live) == (key_id, False) and tokens.parse(test) == (key_id, True)
    assert 62 ** tokens.SECRET_CHARS >= 2 ** 256
    secrets = {tokens.new_key(key_id, test=False) for _ in range(200)}
    assert len(secrets) == 200
    flipped = live[:-8] + ("A" if live[-8] != "A" else "B") + live[-7:]  # one character of the secret
    assert tokens.parse(flipped) is None and tokens.parse(live + "x") is None and tokens.parse(live[:-1]) is None
    assert tokens.LOOKS_LIKE_A_KEY.search(f"text {live} more")


def test_the_keys_guides_scope_table_is_the_one_the_authorizer_follows():
    import re
    from pathlib import Path

    section = (Path(__file__).resolve().parent.parent / "docs" / "guides" / "keys.md").read_text(encoding="utf-8")
    table = {}
    for scope, routes in re.findall(r"^\| `([a-z-]+:[a-z]+)` \| (.+) \|$", section, re.M):
        for method, route in re.findall(r"`([A-Z]+) (/[^`]*)`", routes):
            table[(method, route)] = scope
    assert table == scopes.ROUTES
