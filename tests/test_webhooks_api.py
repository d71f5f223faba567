"""The webhook routes through the Chalice test client, with moto for DynamoDB, KMS and SQS: create, list,
read, delete, rotate, the deliveries list; the secret shown only when made and stored only as KMS
ciphertext; the 400s, the 404s, the endpoint limit, the 503 of a stage without webhooks; and every AWS call
the routes make, checked against botocore's models."""
from __future__ import annotations

import base64
import copy
import os
import re
import socket
import threading
import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import ANY, Stubber

from chalicelib.core import aws
from chalicelib.webhooks import netguard
from chalicelib.core import schema
from chalicelib.webhooks import endpoints as webhooks
from chalicelib.webhooks import manage
from chalicelib.core.errors import MessagingError
from chalicelib.core.settings import get_settings

from .conftest import REGION, body_of, post
from .localhttp import HANG_GUARD
from .test_provider_calls import model_problems

URL = "http://127.0.0.1:9/hooks"  # loopback (WEBHOOK_URLS=loopback in the API tests); nothing listens there
WEBHOOK_FIELDS = {"id", "url", "events", "enabled", "createdAt", "disabledReason"}


def create(client, body=None, headers=None):
    return post(client, "/webhooks", {"url": URL} if body is None else body, headers)


def stored_items():
    return boto3.client("dynamodb", region_name=REGION).scan(TableName=os.environ["WEBHOOKS_TABLE"])["Items"]


def test_create_answers_the_endpoint_with_its_secret_once(client):
    response = create(client, {"url": URL, "events": ["message.delivered", "message.failed"]})
    assert response.status_code == 201, response.body
    made = body_of(response)
    assert set(made) == WEBHOOK_FIELDS | {"secret"}
    assert re.fullmatch(r"wh_[0-9a-f]{32}", made["id"])
    assert (made["url"], made["events"], made["enabled"], made["disabledReason"]) == (
        URL, ["message.delivered", "message.failed"], True, None)
    assert response.headers["Location"] == f"/webhooks/{made['id']}"
    secret = made["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[len("whsec_"):], validate=True)) == 24
    # Never again: not in the list, not in the resource, not in the store (only KMS ciphertext is).
    listed = client.http.get("/webhooks")
    one = client.http.get(f"/webhooks/{made['id']}")
    assert listed.status_code == one.status_code == 200
    assert body_of(listed) == {"webhooks": [{k: v for k, v in made.items() if k != "secret"}]}
    assert body_of(one) == body_of(listed)["webhooks"][0]
    for raw in (listed.body, one.body):
        assert b"whsec_" not in raw and b"secret" not in raw
    stored = repr(stored_items())
    assert secret not in stored and secret[len("whsec_"):] not in stored


def test_the_secret_is_kms_ciphertext_bound_to_its_endpoint(client):
    made = body_of(create(client))
    (item,) = [i for i in stored_items() if i[schema.WEBHOOKS_SORT]["S"] == made["id"]]
    ciphertext = item["secrets"]["L"][0]["M"]["ciphertext"]["B"]
    kms = boto3.client("kms", region_name=REGION)
    plain = kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext={"webhookId": made["id"]})["Plaintext"]
    assert plain.decode() == made["secret"]
    with pytest.raises(kms.exceptions.InvalidCiphertextException):  # another endpoint's context does not open it
        kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext={"webhookId": "wh_" + "0" * 32})


def test_events_default_to_every_type_and_repeats_are_dropped(client):
    assert body_of(create(client))["events"] == list(webhooks.EVENT_TYPES)
    assert body_of(create(client, {"url": URL, "events": None}))["events"] == list(webhooks.EVENT_TYPES)
    assert body_of(create(client, {"url": URL, "events": ["message.sent", "message.sent"]}))["events"] == [
        "message.sent"]


@pytest.mark.parametrize("body, code, field", [
    ({}, "MissingField", "url"),
    ({"url": ""}, "MissingField", "url"),
    ({"url": 42}, "InvalidUrl", "url"),
    ({"url": "https://hooks.example.com/x"}, "InvalidUrl", "url"),  # the local stack takes loopback only
    ({"url": "http://127.0.0.1/x"}, "InvalidUrl", "url"),  # no port
    ({"url": "http://user:pw@127.0.0.1:9/x"}, "InvalidUrl", "url"),
    ({"url": "http://169.254.169.254:80/latest"}, "InvalidUrl", "url"),
    ({"url": URL, "events": ["message.delivered", "message.queued"]}, "InvalidEventType", "events"),
    ({"url": URL, "events": ["message.validated"]}, "InvalidEventType", "events"),
    ({"url": URL, "events": []}, "InvalidEventType", "events"),
    ({"url": URL, "events": "message.sent"}, "InvalidEventType", "events"),
    ({"url": URL, "events": [1]}, "InvalidEventType", "events"),
])
def test_a_bad_url_or_event_type_is_400_and_stores_nothing(client, body, code, field):
    response = create(client, body)
    assert response.status_code == 400, response.body
    assert body_of(response)["error"]["code"] == code and body_of(response)["error"]["field"] == field
    assert body_of(client.http.get("/webhooks")) == {"webhooks": []}


def test_a_body_that_is_not_json_is_400_invalid_json(client):
    response = client.http.post("/webhooks", body=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and body_of(response)["error"]["code"] == "InvalidJson"


def test_the_stage_limit_is_400_too_many_webhooks_until_one_is_deleted(client, aws_env):
    aws_env(MAX_WEBHOOKS="2")
    first, _second = (body_of(create(client)) for _ in range(2))
    refused = create(client)
    assert refused.status_code == 400 and body_of(refused)["error"]["code"] == "TooManyWebhooks"
    assert "MAX_WEBHOOKS 2" in body_of(refused)["error"]["message"]
    assert len(body_of(client.http.get("/webhooks"))["webhooks"]) == 2
    assert client.http.delete(f"/webhooks/{first['id']}").status_code == 204
    assert create(client).status_code == 201


def test_simultaneous_creates_never_pass_the_limit(aws_env, monkeypatch):
    """Eight creates race for three places: each one gets past the early check and encrypts its secret
    before any of them writes (a barrier), so only the write can refuse. Each DynamoDB request runs
    alone, as DynamoDB applies one request atomically (moto does not: it copies and restores tables)."""
    aws_env(MAX_WEBHOOKS="3")
    racers, settings = 8, get_settings()
    ready, one_request = threading.Barrier(racers, timeout=HANG_GUARD), threading.Lock()  # a hang guard
    dynamodb, encrypt = aws.client("dynamodb"), manage.encrypt
    send = dynamodb._make_api_call

    def atomic(operation, params):
        with one_request:
            return send(operation, params)

    def encrypt_together(*args):
        ready.wait()
        return encrypt(*args)

    monkeypatch.setattr(dynamodb, "_make_api_call", atomic)
    monkeypatch.setattr(manage, "encrypt", encrypt_together)
    outcomes = []

    def race():
        try:
            outcomes.append(manage.create({"url": URL}, settings)[0]["id"])
        except MessagingError as refused:
            outcomes.append(refused.code)

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_GUARD)
    assert not any(thread.is_alive() for thread in threads), f"a create still running after {HANG_GUARD:.0f} s"
    made = [o for o in outcomes if o.startswith("wh_")]
    assert len(outcomes) == racers and len(made) == 3, outcomes
    assert sorted(set(outcomes) - set(made)) == ["TooManyWebhooks"]
    assert sorted(e[schema.WEBHOOKS_SORT] for e in webhooks.all_endpoints(settings)) == sorted(made)
    assert manage.stored_count(settings) == 3


def test_a_delete_frees_one_place_once(client, aws_env):
    aws_env(MAX_WEBHOOKS="2")
    first, _second = (body_of(create(client)) for _ in range(2))
    assert client.http.delete(f"/webhooks/{first['id']}").status_code == 204
    assert client.http.delete(f"/webhooks/{first['id']}").status_code == 404  # frees nothing more
    assert create(client).status_code == 201
    refused = create(client)
    assert refused.status_code == 400 and body_of(refused)["error"]["code"] == "TooManyWebhooks"
    assert "has 2 webhooks" in body_of(refused)["error"]["message"]


def test_a_replayed_create_takes_no_second_place(client, aws_env):
    aws_env(MAX_WEBHOOKS="2")
    key = {"Idempotency-Key": "count-once"}
    first, again = create(client, headers=key), create(client, headers=key)
    assert first.status_code == again.status_code == 201 and body_of(first)["id"] == body_of(again)["id"]
    assert create(client).status_code == 201  # the second place was still free
    assert create(client).status_code == 400
    assert create(client, headers=key).status_code == 201  # and the replay still answers when full


def test_endpoints_made_before_the_count_are_counted_once(client, aws_env):
    """A stage whose endpoints predate the count item: the first create or delete counts them."""
    aws_env(MAX_WEBHOOKS="3")
    table, dynamodb = os.environ["WEBHOOKS_TABLE"], boto3.client("dynamodb", region_name=REGION)
    uncount = {"TableName": table, "Key": {schema.WEBHOOKS_KEY: {"S": schema.WEBHOOKS_COUNT},
                                           schema.WEBHOOKS_SORT: {"S": schema.WEBHOOKS_COUNT}}}
    made = [body_of(create(client))["id"] for _ in range(3)]
    dynamodb.delete_item(**uncount)
    assert create(client).status_code == 400  # counted: 3
    dynamodb.delete_item(**uncount)
    assert client.http.delete(f"/webhooks/{made[0]}").status_code == 204  # counted (3), then 2
    assert manage.stored_count(get_settings()) == 2
    assert create(client).status_code == 201
    assert create(client).status_code == 400


@pytest.mark.parametrize("reasons, status, code", [
    ([["None", "TransactionConflict"]], 201, None),  # another write on the count: again, then written
    ([["None", "TransactionConflict"]] * manage.COUNT_ATTEMPTS, 429, "Throttled"),
    ([["None", "ThrottlingError"]], 429, "Throttled"),
    ([["ValidationError", "None"]], 502, "ProviderError"),
])
def test_a_cancelled_count_transaction_is_retried_or_mapped(client, reasons, status, code):
    """A Stubber on the app's DynamoDB client: the parameters checked against DynamoDB's model, and
    TransactWriteItems cancelled as DynamoDB reports it (a reason per item)."""
    dynamodb = aws.client("dynamodb")
    count_item = {schema.WEBHOOKS_KEY: {"S": schema.WEBHOOKS_COUNT}, schema.WEBHOOKS_SORT: {"S": schema.WEBHOOKS_COUNT},
                  "count": {"N": "1"}}
    with Stubber(dynamodb) as stub:
        stub.add_response("get_item", {"Item": count_item},
                          {"TableName": os.environ["WEBHOOKS_TABLE"], "Key": ANY, "ConsistentRead": True})
        for codes in reasons:
            stub.add_client_error("transact_write_items", service_error_code="TransactionCanceledException",
                                  http_status_code=400,
                                  modeled_fields={"CancellationReasons": [{"Code": c} for c in codes]})
        if status == 201:
            stub.add_response("transact_write_items", {}, {"TransactItems": ANY, "ClientRequestToken": ANY})
        response = create(client)
        stub.assert_no_pending_responses()
    assert response.status_code == status, response.body
    if code:
        assert body_of(response)["error"]["code"] == code


def test_a_full_count_refused_by_the_transaction_is_400_with_the_count(client, aws_env):
    """The early check saw a free place; the transaction's condition finds none (another create won)."""
    aws_env(MAX_WEBHOOKS="2")
    count_item = {schema.WEBHOOKS_KEY: {"S": schema.WEBHOOKS_COUNT}, schema.WEBHOOKS_SORT: {"S": schema.WEBHOOKS_COUNT}}
    with Stubber(aws.client("dynamodb")) as stub:
        stub.add_response("get_item", {"Item": {**count_item, "count": {"N": "1"}}})
        stub.add_client_error("transact_write_items", service_error_code="TransactionCanceledException",
                              http_status_code=400, modeled_fields={"CancellationReasons": [
                                  {"Code": "None"}, {"Code": "ConditionalCheckFailed",
                                                     "Item": {**count_item, "count": {"N": "2"}}}]})
        response = create(client)
        stub.assert_no_pending_responses()
    assert response.status_code == 400 and body_of(response)["error"]["code"] == "TooManyWebhooks"
    assert "has 2 webhooks" in body_of(response)["error"]["message"]


def test_delete_answers_204_and_the_endpoint_is_gone(client):
    made = body_of(create(client))
    kept = body_of(create(client))
    response = client.http.delete(f"/webhooks/{made['id']}")
    assert response.status_code == 204 and response.body in (b"", "")
    assert "Content-Type" not in response.headers
    for method, path in (("get", ""), ("delete", ""), ("post", "/rotate"), ("get", "/deliveries")):
        gone = getattr(client.http, method)(f"/webhooks/{made['id']}{path}")
        assert gone.status_code == 404 and body_of(gone)["error"]["code"] == "WebhookNotFound", (method, path)
    assert [w["id"] for w in body_of(client.http.get("/webhooks"))["webhooks"]] == [kept["id"]]


@pytest.mark.parametrize("webhook_id", ["wh_" + "0" * 32, "nope", "x" * 129, "batch-1", "a%20b"])
def test_an_id_that_names_no_webhook_is_404(client, webhook_id):
    for response in (client.http.get(f"/webhooks/{webhook_id}"), client.http.delete(f"/webhooks/{webhook_id}"),
                     client.http.get(f"/webhooks/{webhook_id}/deliveries")):
        assert response.status_code == 404 and body_of(response)["error"]["code"] == "WebhookNotFound"


def test_rotation_answers_a_new_secret_and_keeps_the_old_one_for_24_hours(client):
    made = body_of(create(client))
    response = client.http.post(f"/webhooks/{made['id']}/rotate")
    assert response.status_code == 200, response.body
    rotated = body_of(response)
    assert rotated["id"] == made["id"] and set(rotated) == WEBHOOK_FIELDS | {"secret"}
    assert rotated["secret"] != made["secret"] and rotated["secret"].startswith("whsec_")
    assert b"whsec_" not in client.http.get(f"/webhooks/{made['id']}").body
    settings = get_settings()
    endpoint = webhooks.load(settings, made["id"])
    now = datetime.now(timezone.utc)
    assert webhooks.secrets_in_force(settings, endpoint, now) == [rotated["secret"], made["secret"]]
    assert webhooks.secrets_in_force(settings, endpoint, now + timedelta(hours=23, minutes=59)) == [
        rotated["secret"], made["secret"]]
    assert webhooks.secrets_in_force(settings, endpoint, now + timedelta(hours=24, seconds=5)) == [rotated["secret"]]
    # A second rotation: the newest first; the first secret keeps its own 24 hours, not more.
    again = body_of(client.http.post(f"/webhooks/{made['id']}/rotate"))
    endpoint = webhooks.load(settings, made["id"])
    assert webhooks.secrets_in_force(settings, endpoint, now) == [again["secret"], rotated["secret"], made["secret"]]
    expiries = [s.get("expiresAt") for s in endpoint["secrets"]]
    assert expiries[0] is None and expiries[2] <= expiries[1]


def test_at_most_five_secrets_stay_in_force(client):
    made = body_of(create(client))
    secrets = [made["secret"]] + [body_of(client.http.post(f"/webhooks/{made['id']}/rotate"))["secret"]
                                  for _ in range(6)]
    settings = get_settings()
    assert webhooks.secrets_in_force(settings, webhooks.load(settings, made["id"])) == secrets[::-1][:5]


def test_an_idempotency_key_replays_the_created_endpoint_and_its_secret(client):
    key = {"Idempotency-Key": "make-hook-1"}
    first, second = create(client, headers=key), create(client, headers=key)
    assert first.status_code == second.status_code == 201
    assert body_of(first) == body_of(second) and second.headers["Location"] == first.headers["Location"]
    assert len(body_of(client.http.get("/webhooks"))["webhooks"]) == 1
    other = create(client, {"url": URL, "events": ["message.sent"]}, headers=key)
    assert other.status_code == 409 and body_of(other)["error"]["code"] == "IdempotencyKeyReused"
    # The replayed answer shows the secret again, but the idempotency store never held it.
    table = boto3.client("dynamodb", region_name=REGION).scan(TableName=os.environ["IDEMPOTENCY_TABLE"])["Items"]
    assert table and body_of(first)["secret"] not in repr(table)


def test_an_idempotency_key_replays_a_rotation_without_rotating_again(client):
    made = body_of(create(client))
    key = {"Idempotency-Key": "rotate-1"}
    first = client.http.post(f"/webhooks/{made['id']}/rotate", headers=key)
    second = client.http.post(f"/webhooks/{made['id']}/rotate", headers=key)
    assert first.status_code == second.status_code == 200 and body_of(first) == body_of(second)
    settings = get_settings()
    assert len(webhooks.secrets_in_force(settings, webhooks.load(settings, made["id"]))) == 2


def test_deliveries_are_listed_newest_first_with_a_limit(client):
    made = body_of(create(client))
    settings = get_settings()
    base = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
    for n in range(3):
        webhooks.record_attempt(settings, made["id"], {
            "eventId": f"msg_{n}", "type": "message.sent", "attempt": n + 1,
            "attemptedAt": webhooks.now_iso(base + timedelta(seconds=n)), "outcome": "retrying", "status": 500,
            "error": "http", "durationMs": 12, "nextAttemptAt": webhooks.now_iso(base + timedelta(minutes=n + 1))})
    response = client.http.get(f"/webhooks/{made['id']}/deliveries")
    assert response.status_code == 200
    deliveries = body_of(response)["deliveries"]
    assert [d["eventId"] for d in deliveries] == ["msg_2", "msg_1", "msg_0"]
    assert deliveries[0] == {"eventId": "msg_2", "type": "message.sent", "attempt": 3,
                             "attemptedAt": "2026-11-25T10:00:02.000Z", "outcome": "retrying", "status": 500,
                             "error": "http", "durationMs": 12, "nextAttemptAt": "2026-11-25T10:03:00.000Z"}
    assert [d["eventId"] for d in body_of(client.http.get(f"/webhooks/{made['id']}/deliveries?limit=2"))[
        "deliveries"]] == ["msg_2", "msg_1"]
    for bad in ("0", "101", "x"):
        refused = client.http.get(f"/webhooks/{made['id']}/deliveries?limit={bad}")
        assert refused.status_code == 400 and body_of(refused)["error"]["code"] == "InvalidLimit"
    # Attempts expire (TTL) after 7 days.
    attempts = [i for i in stored_items() if i[schema.WEBHOOKS_KEY]["S"].startswith(schema.WEBHOOKS_DELIVERIES)]
    for item in attempts:
        left = int(item[schema.WEBHOOKS_TTL]["N"]) - datetime.now(timezone.utc).timestamp()
        assert 7 * 86400 - 60 < left <= 7 * 86400


@pytest.mark.parametrize("missing", ["WEBHOOKS_TABLE", "WEBHOOK_QUEUE_URL", "WEBHOOK_KEY_ID"])
def test_a_stage_without_webhooks_answers_503(client, aws_env, missing):
    aws_env(**{missing: None})
    calls = [create(client), client.http.get("/webhooks"), client.http.get("/webhooks/wh_" + "0" * 32),
             client.http.delete("/webhooks/wh_" + "0" * 32), client.http.post("/webhooks/wh_" + "0" * 32 + "/rotate"),
             client.http.get("/webhooks/wh_" + "0" * 32 + "/deliveries")]
    for response in calls:
        assert response.status_code == 503, response.body
        assert body_of(response)["error"]["code"] == "WebhooksNotConfigured"


# -- deployed URL rules, with the resolver stubbed (no name is resolved, nothing is reached) -----
@pytest.fixture
def deployed(aws_env, monkeypatch):
    aws_env(WEBHOOK_URLS="https")
    answers = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(netguard, "getaddrinfo", getaddrinfo)
    return answers


def test_deployed_a_url_is_checked_after_resolution_when_created(client, deployed):
    deployed.update({"hooks.example.com": ["93.184.215.14"], "rebind.example.com": ["93.184.215.14", "127.0.0.1"],
                     "metadata.example.com": ["169.254.169.254"]})
    assert create(client, {"url": "https://hooks.example.com/sms"}).status_code == 201
    for url, says in (("https://rebind.example.com/sms", "resolves to"), ("https://metadata.example.com/", "resolves"),
                      ("https://nowhere.example.com/", "does not resolve"), ("http://hooks.example.com/", "https"),
                      ("https://93.184.215.14/", "IP address"), ("http://127.0.0.1:9/hooks", "https")):
        refused = create(client, {"url": url})
        assert refused.status_code == 400 and body_of(refused)["error"]["code"] == "InvalidUrl", url
        assert says in body_of(refused)["error"]["message"], (url, body_of(refused))
    assert len(body_of(client.http.get("/webhooks"))["webhooks"]) == 1


# -- AWS failing: a 429 or a 502 the caller can retry, never a 500, nothing stored -----------------
@pytest.mark.parametrize("code, status, answer", [("ThrottlingException", 400, 429),
                                                   ("KMSInternalException", 500, 502),
                                                   ("DisabledException", 400, 502)])
def test_kms_failing_is_a_retryable_answer_and_stores_nothing(client, code, status, answer):
    with Stubber(aws.client("kms")) as kms:
        for _ in range(get_settings().provider_max_attempts):
            kms.add_client_error("encrypt", service_error_code=code, http_status_code=status)
        response = create(client)
    assert response.status_code == answer, response.body
    assert body_of(response)["error"]["code"] == ("Throttled" if answer == 429 else "ProviderError")
    assert body_of(client.http.get("/webhooks")) == {"webhooks": []}


# -- every call, against botocore's models -------------------------------------------------------
class Calls:
    """Every call made through the app's DynamoDB, KMS and SQS clients, as botocore is about to send it."""

    def __init__(self):
        self.calls: list[tuple[str, str, dict]] = []
        self.at: list[float] = []  # when each call was made (time.time()), in the same order
        for service in ("dynamodb", "kms", "sqs"):
            aws.client(service).meta.events.register("before-parameter-build", self._record)

    def _record(self, params, model, **_):
        self.at.append(time.time())
        self.calls.append((model.service_model.service_name, model.name, copy.deepcopy(params)))

    def operations(self) -> set[tuple[str, str]]:
        return {(service, operation) for service, operation, _ in self.calls}

    def problems(self) -> list[str]:
        return [f"{s}.{o}: {p}" for s, o, params in self.calls for p in model_problems(s, o, params)]


def test_every_call_the_routes_make_passes_the_model(client):
    calls = Calls()
    made = body_of(create(client, headers={"Idempotency-Key": "k1"}))
    create(client, headers={"Idempotency-Key": "k1"})  # the replay decrypts the secret
    client.http.get("/webhooks")
    client.http.get(f"/webhooks/{made['id']}")
    client.http.post(f"/webhooks/{made['id']}/rotate")
    client.http.get(f"/webhooks/{made['id']}/deliveries?limit=5")
    client.http.delete(f"/webhooks/{made['id']}")
    assert {("dynamodb", o) for o in ("Query", "PutItem", "GetItem", "UpdateItem", "TransactWriteItems")} | {
        ("kms", "Encrypt"), ("kms", "Decrypt")} <= calls.operations()
    assert calls.problems() == []


def test_kms_is_called_with_the_key_and_the_endpoints_encryption_context(client):
    """A Stubber on the app's KMS client: the exact parameters, and answers shaped as KMS's model says."""
    key = os.environ["WEBHOOK_KEY_ID"]
    with Stubber(aws.client("kms")) as kms:
        kms.add_response("encrypt", {"CiphertextBlob": b"blob-1", "KeyId": key},
                         {"KeyId": key, "Plaintext": ANY, "EncryptionContext": ANY})
        made = body_of(create(client, headers={"Idempotency-Key": "k2"}))
        kms.assert_no_pending_responses()
        replay = Calls()  # registered now: only the replay's calls
        kms.add_response("decrypt", {"Plaintext": made["secret"].encode(), "KeyId": key},
                         {"KeyId": key, "CiphertextBlob": b"blob-1", "EncryptionContext": {"webhookId": made["id"]}})
        assert body_of(create(client, headers={"Idempotency-Key": "k2"}))["secret"] == made["secret"]
        kms.assert_no_pending_responses()
    (stored,) = [i for i in stored_items() if i[schema.WEBHOOKS_SORT]["S"] == made["id"]]
    assert stored["secrets"]["L"][0]["M"]["ciphertext"]["B"] == b"blob-1"
    assert [o for _, o, _ in replay.calls if o in ("Encrypt", "Decrypt")] == ["Decrypt"]  # nothing encrypted again


ODD = [None, 0, -1, 1.5, True, "", " ", "x" * 5000, [], [URL], {}, {"a": 1}, "\u0000", "😀", "http://127.0.0.1:9/\r\n",
       "http://127.0.0.1:99999/", "http://[::1/", "http://127.0.0.1:9/\ud800"]


@pytest.mark.parametrize("field", ["url", "events"])
def test_odd_field_values_are_4xx_not_500(client, field):
    for value in ODD:
        response = create(client, {"url": URL, "events": ["message.sent"], field: value})
        assert response.status_code in (201, 400), (field, value, response.body)
        if response.status_code == 400:
            assert body_of(response)["error"]["code"] in ("MissingField", "InvalidUrl", "InvalidEventType", "InvalidJson")
        else:  # only an absent or null event list is a valid odd value
            assert (field, value) == ("events", None)
            client.http.delete(f"/webhooks/{body_of(response)['id']}")


def test_a_rotation_racing_another_loses_neither_secret(client, monkeypatch):
    """Another rotation lands between this one's read and its write: the write's version condition fails,
    and this rotation goes again on top of the other, so both new secrets sign."""
    made = body_of(create(client))
    settings = get_settings()
    encrypt, raced = manage.encrypt, []

    def encrypt_and_race(*args):
        if not raced:
            raced.append(None)
            raced[0] = manage.rotate(made["id"], settings)[1]  # the other rotation, done first
        return encrypt(*args)

    monkeypatch.setattr(manage, "encrypt", encrypt_and_race)
    _resource, mine = manage.rotate(made["id"], settings)
    monkeypatch.setattr(manage, "encrypt", encrypt)
    assert webhooks.secrets_in_force(settings, webhooks.load(settings, made["id"])) == [mine, raced[0], made["secret"]]
