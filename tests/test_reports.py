"""Delivery reports (issue 22) in unit and API tests: what each message counts for, the change each stream record
makes (in the documented event format, tests/events/dynamodb-stream-event.json), the tally counting each record
exactly once however often it comes (against moto), ``GET /reports/daily`` with its ranges, and exports
(``POST /exports``, the export function's CSV, its hand-over between invocations and its failures).

The local stack runs all of it end to end in tests/test_reports_e2e.py."""
from __future__ import annotations

import copy
import csv
import io
import json
import os
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import boto3
import botocore.session
import pytest

from chalicelib.core import schema, store
from chalicelib.core.caller import Caller
from chalicelib.core.settings import get_settings
from chalicelib.reports import daily, exports, figures, tally, writer

from .conftest import REGION, body_of, post
from .test_keys import bearer, make_key

EVENTS = Path(__file__).parent / "events"
DOCUMENTED = json.loads((EVENTS / "dynamodb-stream-event.json").read_text())["event"]["Records"]
DAY = "2026-12-05"
LIVE = Caller("key_live", frozenset({"messages:read"}), False)


def message(status: str, **fields) -> dict:
    """A message record (as the app stores it) in ``status``."""
    record = {"id": str(uuid.uuid4()), "direction": "outbound", "channel": "sms", "from": None,
              "to": "+14255550123", "body": "report test body", "mediaUrl": None, "status": status,
              "providerMessageId": "pm-1" if status not in ("queued", "sending", "validated") else None,
              "segments": 1, "encoding": "GSM-7", "priceUsd": None, "error": None,
              "createdAt": f"{DAY}T10:00:00.000Z", "updatedAt": f"{DAY}T10:00:01.000Z", "dryRun": False,
              "keyId": "key_live", "test": False}
    record.update(fields)
    return record


def image(record: dict | None) -> dict | None:
    """A record as a stream image (DynamoDB JSON), nulls dropped as the store never writes them to a key."""
    if record is None:
        return None
    return store.to_item({k: v for k, v in record.items() if not (k == "providerMessageId" and v is None)})


def stream_record(event_name: str, new: dict | None, old: dict | None = None, event_id: str | None = None) -> dict:
    """A record in Lambda's documented DynamoDB stream event format, carrying our images."""
    documented = copy.deepcopy(DOCUMENTED[1 if old is not None else 0])
    change = documented["dynamodb"]
    key = (new or old)["id"]
    change["Keys"] = {schema.MESSAGES_KEY: {"S": key}}
    change.pop("NewImage", None)
    change.pop("OldImage", None)
    if new is not None:
        change["NewImage"] = image(new)
    if old is not None:
        change["OldImage"] = image(old)
    return {**documented, "eventName": event_name, "eventID": event_id or uuid.uuid4().hex, "dynamodb": change}


def settled(record: dict, status: str, **fields) -> dict:
    return {**record, "status": status, **fields}


# -- what counts ------------------------------------------------------------------------------------

CASES = [
    ("sent: taken by the provider, not final", message("sent"), {"accepted": 1, "pending": 1, "segments": 1}),
    ("delivered, with its price", message("delivered", priceUsd=0.00581, segments=2),
     {"accepted": 1, "delivered": 1, "segments": 2, "costUsd": Decimal("0.00581")}),
    ("a carrier failure", message("failed", error={"code": "DeliveryFailed", "message": "unreachable"}),
     {"accepted": 1, "failed": 1, "segments": 1, "failure#DeliveryFailed": 1}),
    ("unknown, with no provider id: it may have gone", message("unknown", providerMessageId=None),
     {"accepted": 1, "unknown": 1, "segments": 1}),
    ("a reply", message("received", direction="inbound", providerMessageId=None), {"received": 1}),
    ("an MMS", message("delivered", channel="mms", priceUsd=0.02), {"accepted": 1, "delivered": 1, "segments": 1,
                                                                     "costUsd": Decimal("0.02")}),
    ("refused before sending (no provider id)", message("failed", providerMessageId=None,
                                                        error={"code": "Throttled", "message": "x"}), None),
    ("expired before sending", message("failed", providerMessageId=None, error={"code": "Expired", "message": "x"}),
     None),
    ("queued", message("queued"), None),
    ("being sent", message("sending"), None),
    ("a dry run", message("validated", dryRun=True), None),
    ("a dry run, however it ended", message("delivered", dryRun=True), None),
    ("a test key's message", message("delivered", test=True), None),
    ("scheduled (a status this code does not know)", message("scheduled"), None),
    ("canceled (a status this code does not know)", message("canceled"), None),
    ("a batch summary", {"id": "batch-1", "createdAt": f"{DAY}T10:00:00.000Z", "size": 3}, None),
]


@pytest.mark.parametrize("label, record, counts", CASES, ids=[c[0] for c in CASES])
def test_what_each_message_counts_for(label, record, counts):
    found = figures.counts_of(image(record))
    assert found == (None if counts is None else (figures.Key(DAY, record.get("channel", "sms")), counts))


def test_a_receipt_moves_a_message_from_pending_to_its_final_status():
    sent = message("sent", segments=3)
    delivered = settled(sent, "delivered", priceUsd=0.01743)
    assert figures.change(stream_record("MODIFY", delivered, sent)) == {
        figures.Key(DAY, "sms"): {"pending": -1, "delivered": 1, "costUsd": Decimal("0.01743")}}
    # Its creation counted nothing, and its acceptance counted it once.
    queued = message("queued")
    assert figures.change(stream_record("INSERT", queued)) == {}
    assert figures.change(stream_record("MODIFY", settled(queued, "sent"), queued)) == {
        figures.Key(DAY, "sms"): {"accepted": 1, "pending": 1, "segments": 1}}


def test_a_later_receipt_moves_the_count_from_one_final_status_to_the_other():
    failed = message("failed", priceUsd=0.0, error={"code": "DeliveryFailed", "message": "unreachable"})
    delivered = settled(failed, "delivered", priceUsd=0.00581, error=None)
    assert figures.change(stream_record("MODIFY", delivered, failed)) == {
        figures.Key(DAY, "sms"): {"failed": -1, "failure#DeliveryFailed": -1, "delivered": 1,
                                  "costUsd": Decimal("0.00581")}}


def test_an_expiry_and_a_change_of_nothing_counted_change_nothing():
    delivered = message("delivered", priceUsd=0.00581)
    assert figures.change({**stream_record("MODIFY", delivered, delivered), "eventName": "REMOVE"}) == {}
    removed = stream_record("MODIFY", None, delivered)
    assert figures.change({**removed, "eventName": "REMOVE"}) == {}
    touched = settled(delivered, "delivered", updatedAt=f"{DAY}T11:00:00.000Z")
    assert figures.change(stream_record("MODIFY", touched, delivered)) == {}


def test_the_documented_records_are_not_messages_and_count_nothing():
    assert [r["eventName"] for r in DOCUMENTED] == ["INSERT", "MODIFY"]
    assert all(figures.change(r) == {} for r in DOCUMENTED)
    assert tally.counted_records({"Records": DOCUMENTED}) == []


def test_a_failure_code_is_an_attribute_name_of_its_own():
    odd = message("failed", error={"code": "weird code; with spaces", "message": "x"})
    assert figures.counts_of(image(odd))[1]["failure#Unknown"] == 1


# -- the tally (moto) -------------------------------------------------------------------------------

def counters(day: str = DAY, channel: str = "sms") -> dict:
    """A day's counters summed over the shards, straight from the table."""
    table = boto3.client("dynamodb", region_name=REGION)
    total: dict = {}
    for shard in range(schema.REPORT_SHARDS):
        item = table.get_item(TableName=os.environ["REPORTS_TABLE"], Key={
            schema.REPORTS_KEY: {"S": f"{schema.REPORTS_DAILY}{day}#{shard}"},
            schema.REPORTS_SORT: {"S": channel}}).get("Item", {})
        for name, value in item.items():
            if "N" in value and name != schema.REPORTS_TTL:
                total[name] = total.get(name, 0) + Decimal(value["N"])
    return {name: amount for name, amount in total.items() if amount}


def traffic() -> list[dict]:
    """A message accepted and delivered, one failed by the carrier, one unknown, a reply, a dry run."""
    records = []
    a = message("queued", segments=2)
    records += [stream_record("INSERT", a), stream_record("MODIFY", settled(a, "sent"), a),
                stream_record("MODIFY", settled(a, "delivered", priceUsd=0.01162), settled(a, "sent"))]
    b = message("sent")
    records += [stream_record("MODIFY", b, settled(b, "queued")),
                stream_record("MODIFY", settled(b, "failed", priceUsd=0.0, error={"code": "DeliveryFailed",
                                                                                  "message": "x"}), b)]
    c = message("queued")
    records.append(stream_record("MODIFY", settled(c, "unknown", providerMessageId=None), c))
    records.append(stream_record("INSERT", message("received", direction="inbound", providerMessageId=None)))
    d = message("queued", dryRun=True)
    records.append(stream_record("MODIFY", settled(d, "validated"), d))
    return records


EXPECTED = {"accepted": 3, "delivered": 1, "failed": 1, "unknown": 1, "received": 1, "segments": 4,
            "costUsd": Decimal("0.01162"), "failure#DeliveryFailed": 1}


def test_the_tally_counts_known_traffic(aws_env):
    result = tally.handle({"Records": traffic()})
    assert (result["counted"], result["applied"], result["skipped"]) == (6, 6, 0)
    assert counters() == EXPECTED


def test_a_batch_handed_over_again_counts_nothing_twice(aws_env):
    records = traffic()
    tally.handle({"Records": records})
    again = tally.handle({"Records": records})
    assert (again["applied"], again["skipped"]) == (0, 6)
    # Lambda splits a failing batch: the halves, and then a batch with a new record among the old ones.
    for half in (records[:4], records[4:]):
        assert tally.handle({"Records": half})["applied"] == 0
    extra = message("sent")
    more = tally.handle({"Records": records[2:] + [stream_record("MODIFY", settled(extra, "delivered"), extra)]})
    assert (more["applied"], more["skipped"]) == (1, 5)
    assert counters() == {**EXPECTED, "pending": -1, "delivered": 2}


def test_what_was_counted_before_a_failure_is_not_counted_again(aws_env):
    """The first half of a batch was counted, then the invocation failed: the whole batch, handed over again,
    counts only the rest (the transaction's cancellation names the markers that exist)."""
    records = traffic()
    assert tally.handle({"Records": records[:4]})["applied"] == 3
    again = tally.handle({"Records": records})
    assert (again["applied"], again["skipped"]) == (3, 3)
    assert counters() == EXPECTED


def test_a_transaction_conflict_is_tried_again_on_another_shard(aws_env, monkeypatch):
    from chalicelib.core import aws

    client = aws.client("dynamodb")
    real, tried = client.transact_write_items, []

    def conflicted(**params):
        tried.append([i["Update"]["Key"][schema.REPORTS_KEY]["S"] for i in params["TransactItems"] if "Update" in i])
        if len(tried) == 1:
            reasons = [{"Code": "None"}] * (len(params["TransactItems"]) - 1) + [
                {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
            raise client.exceptions.TransactionCanceledException(
                {"Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                 "CancellationReasons": reasons}, "TransactWriteItems")
        return real(**params)

    monkeypatch.setattr(client, "transact_write_items", conflicted)
    result = tally.handle({"Records": traffic()}, sleep=lambda seconds: None)
    assert (result["applied"], result["transactions"]) == (6, 2)
    assert tried[0] != tried[1]  # another shard of the same day
    assert counters() == EXPECTED


def test_a_cancellation_for_another_reason_fails_the_invocation(aws_env, monkeypatch):
    from chalicelib.core import aws

    client = aws.client("dynamodb")

    def invalid(**params):
        raise client.exceptions.TransactionCanceledException(
            {"Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
             "CancellationReasons": [{"Code": "ValidationError", "Message": "Item size too large"}]},
            "TransactWriteItems")

    monkeypatch.setattr(client, "transact_write_items", invalid)
    with pytest.raises(tally.CountFailed, match="ValidationError"):
        tally.handle({"Records": traffic()}, sleep=lambda seconds: None)


def test_a_batch_is_counted_in_transactions_dynamodb_takes():
    """TransactWriteItems takes at most 100 items (botocore's model); a chunk's markers and counters fit."""
    model = botocore.session.get_session().get_service_model("dynamodb")
    limit = model.operation_model("TransactWriteItems").input_shape.members["TransactItems"].metadata["max"]
    assert tally.MAX_ITEMS == limit == 100
    days = [f"2026-12-0{d}" for d in range(1, 5)]
    records = [tally.Counted(f"e{i}", {figures.Key(days[i % 4], ("sms", "mms")[i % 2]): {"accepted": 1}})
               for i in range(250)]
    groups = tally.chunks(records)
    assert sum(len(g) for g in groups) == 250 and [r for g in groups for r in g] == records
    for group in groups:
        assert len(group) + len({k for r in group for k in r.change}) <= limit


def test_counters_outlive_the_messages_and_markers_the_stream(aws_env):
    now = datetime(2026, 12, 5, 12, tzinfo=timezone.utc).timestamp()
    tally.handle({"Records": traffic()[:3]}, now=now)
    table = boto3.client("dynamodb", region_name=REGION).scan(TableName=os.environ["REPORTS_TABLE"])["Items"]
    day_start = datetime(2026, 12, 5, tzinfo=timezone.utc).timestamp()
    daily_items = [i for i in table if i[schema.REPORTS_KEY]["S"].startswith(schema.REPORTS_DAILY)]
    markers = [i for i in table if i[schema.REPORTS_KEY]["S"].startswith(schema.REPORTS_APPLIED)]
    assert daily_items and len(markers) == 2  # the queued -> sent and sent -> delivered records
    for item in daily_items:  # 400 days after the day ends, whatever the message retention
        assert int(item[schema.REPORTS_TTL]["N"]) == int(day_start) + 401 * 86400
    for item in markers:  # the stream keeps a record 24 hours; its marker stays two days
        assert int(item[schema.REPORTS_TTL]["N"]) == int(now) + 2 * 86400


def test_the_streams_limit_of_two_readers_per_shard_is_botocores():
    """The messages table's stream has two readers, the webhook fanout and the tally: the most a shard takes."""
    model = botocore.session.get_session().get_service_model("dynamodbstreams")
    documented = model.shape_for("LimitExceededException").documentation
    assert "More than 2 processes are reading from the same streams shard at the same time" in documented


# -- GET /reports/daily -----------------------------------------------------------------------------

def zero_channel() -> dict:
    return {"accepted": 0, "delivered": 0, "failed": 0, "unknown": 0, "pending": 0, "received": 0, "segments": 0,
            "costUsd": 0.0, "failuresByCode": {}}


def accepted_then(final: str, **fields) -> list[dict]:
    """The two stream records of a message the provider took and that then settled ``final``."""
    queued = message("queued", **{k: v for k, v in fields.items() if k == "channel"})
    sent = settled(queued, "sent", providerMessageId="pm-2")
    return [stream_record("MODIFY", sent, queued), stream_record("MODIFY", settled(sent, final, **fields), sent)]


def test_the_daily_report_has_every_day_of_the_range_in_the_issues_shape(client):
    failure = {"error": {"code": "DeliveryFailed", "message": "unreachable"}}
    records = [r for _ in range(3) for r in accepted_then("delivered", priceUsd=0.00581)]
    records += [r for _ in range(2) for r in accepted_then("failed", priceUsd=0.00581, **failure)]
    records += accepted_then("delivered", channel="mms", priceUsd=0.02)
    records.append(stream_record("INSERT", message("received", direction="inbound", providerMessageId=None)))
    tally.handle({"Records": records})
    response = client.http.get(f"/reports/daily?from=2026-12-04&to={DAY}")
    assert response.status_code == 200, response.body
    report = body_of(response)
    day = {"date": DAY,
           "sms": {"accepted": 5, "delivered": 3, "failed": 2, "unknown": 0, "pending": 0, "received": 1,
                   "segments": 5, "costUsd": 0.02905, "failuresByCode": {"DeliveryFailed": 2}},
           "mms": {"accepted": 1, "delivered": 1, "failed": 0, "unknown": 0, "pending": 0, "received": 0,
                   "segments": 1, "costUsd": 0.02, "failuresByCode": {}}}
    assert report == {"from": "2026-12-04", "to": DAY,
                      "days": [{"date": "2026-12-04", "sms": zero_channel(), "mms": zero_channel()}, day],
                      "totals": {"sms": day["sms"], "mms": day["mms"]}, "spendLimitUsd": None}
    assert '"costUsd":0.02905' in response.body.decode()  # money is a JSON number


def test_the_default_range_is_the_last_seven_utc_days_today_included(client):
    report = body_of(client.http.get("/reports/daily"))
    today = datetime.now(timezone.utc).date()
    assert [d["date"] for d in report["days"]] == [(today - timedelta(days=6 - i)).isoformat() for i in range(7)]
    assert (report["from"], report["to"]) == (report["days"][0]["date"], today.isoformat())
    only_to = body_of(client.http.get("/reports/daily?to=2026-01-10"))
    assert (only_to["from"], only_to["to"]) == ("2026-01-04", "2026-01-10")


@pytest.mark.parametrize("query", [
    "from=2026-12-06&to=2026-12-05",  # from after to
    "from=2025-10-30&to=2026-12-04",  # 401 days
    "from=2026-13-01&to=2026-12-05", "from=2026-02-30", "to=yesterday", "from=20261201",  # not YYYY-MM-DD
    "from=2026-12-01T00:00:00Z", "from=",
])
def test_a_bad_range_is_400_invalid_range(client, query):
    response = client.http.get(f"/reports/daily?{query}")
    assert response.status_code == 400, response.body
    assert body_of(response)["error"]["code"] == "InvalidRange"


def test_400_days_is_the_longest_range_and_reads_a_bounded_number_of_items(client, calls):
    tally.handle({"Records": traffic()})
    start = len(calls)
    response = client.http.get("/reports/daily?from=2025-11-01&to=2026-12-05")
    assert response.status_code == 200 and len(body_of(response)["days"]) == 400
    assert body_of(response)["totals"]["sms"]["accepted"] == 3
    start = len(calls)
    assert client.http.get("/reports/daily?from=2026-11-06&to=2026-12-05").status_code == 200
    asked = [params for prefix, operation, params in calls[start:] if operation == "BatchGetItem"]
    keys = [k for params in asked for request in params["RequestItems"].values() for k in request["Keys"]]
    assert len(keys) == daily.items_for(30) == 30 * 16 * 2 == 960 and len(asked) == 10
    assert all("ConsistentRead" not in r for params in asked for r in params["RequestItems"].values())


def test_a_test_keys_report_is_all_zeros(client):
    tally.handle({"Records": traffic()})
    _, key = make_key(client, ["messages:read"], test=True)
    report = body_of(client.http.get(f"/reports/daily?from={DAY}&to={DAY}", headers=bearer(key)))
    assert report["days"] == [{"date": DAY, "sms": zero_channel(), "mms": zero_channel()}]
    live = body_of(client.http.get(f"/reports/daily?from={DAY}&to={DAY}"))
    assert live["days"][0]["sms"]["accepted"] == 3


def test_the_spend_limit_is_the_stages(client, aws_env):
    aws_env(MONTHLY_SPEND_LIMIT_USD="250")
    assert body_of(client.http.get("/reports/daily"))["spendLimitUsd"] == 250


def test_a_stage_without_the_reports_table_answers_503(client, aws_env):
    aws_env(REPORTS_TABLE=None)
    response = client.http.get("/reports/daily")
    assert response.status_code == 503 and body_of(response)["error"]["code"] == "ReportsNotConfigured"
    response = post(client, "/exports", {"from": DAY, "to": DAY})
    assert response.status_code == 503 and body_of(response)["error"]["code"] == "ReportsNotConfigured"


# -- exports ----------------------------------------------------------------------------------------

def stored(**fields) -> dict:
    """A message stored as the app stores it (its list index keys included)."""
    record = message(**{"status": "delivered", **fields})
    store.create(record)
    return record


def seed() -> list[dict]:
    """Messages over three days (both directions, several statuses), and one test-key message."""
    made = []
    for day in ("2026-12-03", "2026-12-04", "2026-12-05"):
        for minute in range(4):
            created = f"{day}T0{minute}:1{minute}:00.000Z"
            made.append(stored(createdAt=created, updatedAt=created, priceUsd=0.00581))
        made.append(stored(status="failed", createdAt=f"{day}T09:00:00.000Z", error={"code": "DeliveryFailed",
                                                                                      "message": "x"}))
        made.append(stored(status="received", direction="inbound", providerMessageId=None,
                           createdAt=f"{day}T12:00:00.000Z", templateId=None))
    made.append(stored(createdAt="2026-12-04T08:00:00.000Z", test=True, keyId="key_test"))
    return made


def expected_rows(made: list[dict], first: str, last: str, *, test: bool = False, direction=None,
                  status=None) -> list[dict]:
    """The rows a file must hold, made from the messages themselves."""
    rows = []
    for m in sorted(made, key=lambda m: (m["createdAt"], m["id"])):
        if not first <= m["createdAt"][:10] <= last or bool(m.get("test")) != test:
            continue
        if direction and m["direction"] != direction or status and m["status"] != status:
            continue
        rows.append({"id": m["id"], "direction": m["direction"], "channel": m["channel"], "to": m["to"],
                     "from": m["from"] or "", "status": m["status"],
                     "errorCode": (m["error"] or {}).get("code", ""), "segments": str(m["segments"]),
                     "priceUsd": "" if m["priceUsd"] is None else repr(m["priceUsd"]),
                     "createdAt": m["createdAt"], "updatedAt": m["updatedAt"], "templateId": "",
                     "keyId": m["keyId"]})
    return rows


def queued_exports() -> list[dict]:
    sqs = boto3.client("sqs", region_name=REGION)
    found = sqs.receive_message(QueueUrl=os.environ["EXPORT_QUEUE_URL"], MaxNumberOfMessages=10,
                                AttributeNames=["All"]).get("Messages", [])
    return found


def run_writer(**options) -> list[str]:
    """Play the export queue's event source until it is empty; the outcome of each invocation."""
    from devstack.queues import sqs_record

    sqs = boto3.client("sqs", region_name=REGION)
    arn = sqs.get_queue_attributes(QueueUrl=os.environ["EXPORT_QUEUE_URL"],
                                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    outcomes = []
    for _ in range(50):
        waiting = queued_exports()
        if not waiting:
            return outcomes
        for found in waiting:
            result = writer.handle({"Records": [sqs_record(found, arn)]}, options.pop("context", None), **options)
            outcomes.append(result)
            if not result["batchItemFailures"]:
                sqs.delete_message(QueueUrl=os.environ["EXPORT_QUEUE_URL"], ReceiptHandle=found["ReceiptHandle"])
    raise AssertionError("the export queue never emptied")


def file_rows(made: dict) -> list[dict]:
    key = exports.load(made["id"], get_settings())["objectKey"]
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=os.environ["MEDIA_BUCKET"], Key=key)["Body"].read()
    assert body.startswith(b"id,direction,channel,to,from,status,errorCode,segments,priceUsd,createdAt,updatedAt,"
                           b"templateId,keyId\r\n")
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


def test_an_export_runs_in_the_background_and_its_file_matches_the_messages_row_for_row(client):
    made = seed()
    response = post(client, "/exports", {"from": "2026-12-04", "to": "2026-12-05"})
    assert response.status_code == 202, response.body
    started = body_of(response)
    assert (started["status"], started["rows"], started["url"]) == ("running", 0, None)
    assert response.headers["Location"] == f"/exports/{started['id']}"
    assert body_of(client.http.get(f"/exports/{started['id']}"))["status"] == "running"
    run_writer()
    ready = body_of(client.http.get(f"/exports/{started['id']}"))
    rows = expected_rows(made, "2026-12-04", "2026-12-05")
    assert (ready["status"], ready["rows"], ready["reason"]) == ("ready", len(rows), None)
    assert "X-Amz-Expires=900" in ready["url"] and ready["urlExpiresIn"] == 900
    assert f"/{exports.object_key(started['id'])}?" in ready["url"]
    assert file_rows(started) == rows
    assert not any("report test body" in json.dumps(r) for r in file_rows(started))  # never a body


@pytest.mark.parametrize("filters", [{"direction": "inbound"}, {"direction": "outbound", "status": "failed"},
                                     {"status": "delivered"}, {"status": "scheduled"}])
def test_an_export_keeps_only_the_direction_and_status_asked_for(client, filters):
    made = seed()
    started = body_of(post(client, "/exports", {"from": "2026-12-03", "to": "2026-12-05", **filters}))
    assert started["filter"] == {"direction": filters.get("direction"), "status": filters.get("status")}
    run_writer()
    assert file_rows(started) == expected_rows(made, "2026-12-03", "2026-12-05", **filters)


def test_a_test_key_exports_only_test_messages_and_sees_only_its_own_exports(client):
    made = seed()
    _, key = make_key(client, ["messages:read"], test=True)
    started = body_of(post(client, "/exports", {"from": "2026-12-03", "to": "2026-12-05"}, bearer(key)))
    live = body_of(post(client, "/exports", {"from": "2026-12-03", "to": "2026-12-05"}))
    run_writer()
    assert file_rows(started) == expected_rows(made, "2026-12-03", "2026-12-05", test=True)
    assert len(file_rows(started)) == 1
    assert client.http.get(f"/exports/{live['id']}", headers=bearer(key)).status_code == 404
    assert client.http.get(f"/exports/{started['id']}").status_code == 404


class Clock:
    """A Lambda context whose time runs out after ``reads`` looks at it."""

    def __init__(self, reads: int):
        self.reads = reads

    def get_remaining_time_in_millis(self):
        self.reads -= 1
        return 900_000 if self.reads > 0 else 1_000


def test_an_export_too_long_for_one_invocation_hands_over_and_completes(client, monkeypatch):
    """Low on time, the writer puts what it has in a part (if S3 would take it), puts the export back on the
    queue and ends; the next invocation goes on from the last row written. The file is the same."""
    import moto.s3.models

    made = seed()
    for i in range(60):
        created = f"2026-12-04T10:{i:02d}:00.000Z"
        made.append(stored(createdAt=created, updatedAt=created, priceUsd=0.00581))
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1000)  # S3's is 5 MiB: parts of ~1 KB here
    started = body_of(post(client, "/exports", {"from": "2026-12-03", "to": "2026-12-05"}))
    invocations = []
    for _ in range(40):
        waiting = queued_exports()
        if not waiting:
            break
        from devstack.queues import sqs_record

        sqs = boto3.client("sqs", region_name=REGION)
        arn = sqs.get_queue_attributes(QueueUrl=os.environ["EXPORT_QUEUE_URL"],
                                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for found in waiting:
            writer.handle({"Records": [sqs_record(found, arn)]}, Clock(25), part_bytes=1500, min_part_bytes=1000)
            sqs.delete_message(QueueUrl=os.environ["EXPORT_QUEUE_URL"], ReceiptHandle=found["ReceiptHandle"])
            invocations.append(exports.load(started["id"], get_settings()))
    assert len(invocations) >= 3, "the export should have needed several invocations"
    assert [i["status"] for i in invocations[:-1]] == ["running"] * (len(invocations) - 1)
    assert invocations[-1]["status"] == "ready"
    progress = [int(i["rows"]) for i in invocations]
    assert progress == sorted(progress) and progress[0] < progress[-1]
    assert file_rows(started) == expected_rows(made, "2026-12-03", "2026-12-05")


def test_a_second_invocation_on_a_held_export_drops_its_message(client):
    seed()
    started = body_of(post(client, "/exports", {"from": "2026-12-03", "to": "2026-12-05"}))
    holder = writer.Export(get_settings(), started["id"], Clock(10_000))
    holder._take()
    assert writer.Export(get_settings(), started["id"], Clock(10_000)).run() == "busy"
    holder._release()
    assert run_writer() and body_of(client.http.get(f"/exports/{started['id']}"))["status"] == "ready"


def test_an_export_that_keeps_failing_ends_failed_with_the_reason(client, monkeypatch):
    seed()
    started = body_of(post(client, "/exports", {"from": "2026-12-03", "to": "2026-12-05"}))

    def broken(self, *args, **kwargs):
        raise RuntimeError("S3 is down")

    monkeypatch.setattr(writer.Export, "_part", broken)
    (found,) = queued_exports()
    from devstack.queues import sqs_record

    record = sqs_record(found, "arn:aws:sqs:us-east-1:123456789012:exports")
    for receive in range(1, writer.MAX_RECEIVES):
        record["attributes"]["ApproximateReceiveCount"] = str(receive)
        assert writer.handle({"Records": [record]})["batchItemFailures"]  # tried again by the queue
        assert body_of(client.http.get(f"/exports/{started['id']}"))["status"] == "running"
    record["attributes"]["ApproximateReceiveCount"] = str(writer.MAX_RECEIVES)
    assert writer.handle({"Records": [record]})["batchItemFailures"] == []
    failed = body_of(client.http.get(f"/exports/{started['id']}"))
    assert (failed["status"], failed["url"]) == ("failed", None)
    assert "RuntimeError" in failed["reason"]
    uploads = boto3.client("s3", region_name=REGION).list_multipart_uploads(Bucket=os.environ["MEDIA_BUCKET"])
    assert not uploads.get("Uploads")  # aborted


@pytest.mark.parametrize("body, code, field", [
    ({"to": DAY}, "MissingField", "from"),
    ({"from": DAY}, "MissingField", "to"),
    ({"from": "2026-12-06", "to": DAY}, "InvalidRange", "from"),
    ({"from": 20261205, "to": DAY}, "InvalidRange", "from"),
    ({"from": "2025-01-01", "to": DAY}, "InvalidRange", "from"),
    ({"from": DAY, "to": DAY, "direction": "sideways"}, "InvalidDirection", "direction"),
    ({"from": DAY, "to": DAY, "direction": {"is": "inbound"}}, "InvalidDirection", "direction"),
    ({"from": DAY, "to": DAY, "status": ["failed"]}, "InvalidStatus", "status"),
    ({"from": {"day": DAY}, "to": DAY}, "InvalidRange", "from"),
    ({"from": DAY, "to": DAY, "status": "Delivered!"}, "InvalidStatus", "status"),
    # Words no message has: a typo would have made an empty file, not an error. (It did: found by a new user.)
    ({"from": DAY, "to": DAY, "status": "delivred"}, "InvalidStatus", "status"),
    ({"from": DAY, "to": DAY, "status": "bogus"}, "InvalidStatus", "status"),
    ({"from": DAY, "to": DAY, "status": "sending"}, "InvalidStatus", "status"),  # kept inside: shown as queued
    ({"from": DAY, "to": DAY, "format": "xlsx"}, "UnknownField", "format"),
])
def test_a_bad_export_request_is_400_naming_the_field(client, body, code, field):
    response = post(client, "/exports", body)
    assert response.status_code == 400, response.body
    assert (body_of(response)["error"]["code"], body_of(response)["error"]["field"]) == (code, field)
    assert not queued_exports()


def test_an_export_filters_on_exactly_the_statuses_a_message_can_show():
    """The statuses an export takes are the message resource's, as /openapi.json lists them."""
    from chalicelib import openapi
    from chalicelib.core import store

    message = openapi.DOCUMENT["components"]["schemas"]["Message"]
    assert list(store.SHOWN_STATUSES) == message["properties"]["status"]["enum"]


@pytest.mark.parametrize("export_id", ["exp_nope", "exp_" + "a" * 26, "EXP_" + "A" * 26, "exp_" + "a" * 200])
def test_an_unknown_export_is_404(client, export_id):
    response = client.http.get(f"/exports/{export_id}")
    assert response.status_code == 404 and body_of(response)["error"]["code"] == "ExportNotFound"


def test_an_export_the_queue_refuses_is_502_and_ends_failed(client, monkeypatch):
    from botocore.exceptions import ClientError

    from chalicelib.core import aws

    def refused(**params):
        raise ClientError({"Error": {"Code": "InternalError", "Message": "SQS failed"}}, "SendMessage")

    monkeypatch.setattr(aws.client("sqs"), "send_message", refused)
    response = post(client, "/exports", {"from": DAY, "to": DAY})
    assert response.status_code == 502 and body_of(response)["error"]["code"] == "ProviderError"
    (item,) = boto3.client("dynamodb", region_name=REGION).scan(TableName=os.environ["REPORTS_TABLE"])["Items"]
    assert item["status"]["S"] == "failed" and "queued" in item["reason"]["S"]


def test_a_replayed_post_starts_one_export(client):
    key = {"Idempotency-Key": "export-once-1"}
    first = body_of(post(client, "/exports", {"from": DAY, "to": DAY}, key))
    second = body_of(post(client, "/exports", {"from": DAY, "to": DAY}, key))
    assert first["id"] == second["id"] and len(queued_exports()) == 1


def test_the_writers_parts_are_above_s3s_minimum():
    documented = json.loads((Path(__file__).parent / "aws_docs" / "s3-multipart-limits.json").read_text())
    assert "5 MiB to 5 GiB" in documented["quote"] and "no minimum size limit on the last part" in documented["quote"]
    assert writer.MIN_PART_BYTES == 5 * 1024 * 1024 <= writer.PART_BYTES
    assert writer.PART_BYTES * 10_000 > 100_000 * 400  # 100,000 rows of 400 bytes fit S3's 10,000 parts many times
