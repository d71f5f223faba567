"""The webhook part of the stack (``infra/webhooks.py``, wired in ``infra/api.py`` and ``infra/monitoring.py``),
read from the template synthesized once per session: where events wait, how they are retried and kept, and
exactly what each function may do with them."""
import json
from pathlib import Path

import pytest

from infra.api import WEBHOOK_CONTEXT_KEY, WEBHOOK_ID_PREFIX
from infra.webhooks import Webhooks

from . import aws_docs

DAY = 24 * 3600
EVENTS = Path(__file__).parent / "events"
FUNCTIONS = ("APIHandler", "BatchWorker", "StatusIngest", "WebhookFanout", "WebhookDelivery")


def resources(template) -> dict:
    return template.to_json()["Resources"]


def the(template, kind: str, test=lambda resource: True) -> tuple[str, dict]:
    """The one resource of a kind that passes ``test``: (logical id, resource)."""
    (found,) = [(name, r) for name, r in resources(template).items() if r["Type"] == kind and test(r)]
    return found


def env(template, function_id: str) -> dict:
    return resources(template)[function_id]["Properties"]["Environment"]["Variables"]


def ref_id(value) -> str:
    """The logical id a Ref or GetAtt names."""
    return value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]


def webhook_queues(template) -> dict[str, str]:
    """The delivery queue, its dead-letter queue and the fanout's failure queue, found the way the
    app finds them (its environment) or the way Lambda does (the stream's on-failure destination)."""
    variables = env(template, "WebhookDelivery")
    (_, stream) = stream_mapping(template)
    return {"queue": ref_id(variables["WEBHOOK_QUEUE_URL"]), "dead letters": ref_id(variables["WEBHOOK_DLQ_URL"]),
            "fanout failures": ref_id(stream["Properties"]["DestinationConfig"]["OnFailure"]["Destination"])}


def mapping_of(template, function_id: str) -> tuple[str, dict]:
    return the(template, "AWS::Lambda::EventSourceMapping",
               lambda r: function_id in json.dumps(r["Properties"]["FunctionName"]))


def role_policy(template, function_id: str) -> str:
    """The logical id of the policy attached to the role a function runs as."""
    role = ref_id(resources(template)[function_id]["Properties"]["Role"])
    (policy,) = [name for name, p in template.find_resources("AWS::IAM::Policy").items()
                 if {"Ref": role} in p["Properties"]["Roles"]]
    return policy


FILTERING = json.loads((Path(aws_docs.__file__).parent / "lambda-dynamodb-filtering.json").read_text())


def passes(pattern: dict, record: dict) -> bool:
    """Lambda's event filtering, in the forms the stack uses: an object descends into the record's
    object of the same key; a list holds the values the field may have, or ``{"exists": bool}``."""
    for key, wanted in pattern.items():
        if isinstance(wanted, dict):
            if not isinstance(record.get(key), dict) or not passes(wanted, record[key]):
                return False
            continue
        assert isinstance(wanted, list) and wanted, f"not a filter form this helper knows: {wanted!r}"
        if not any(rule["exists"] == (key in record) if isinstance(rule, dict) and set(rule) == {"exists"}
                   else key in record and record[key] == rule for rule in wanted):
            return False
    return True


def dynamodb_stream_filters(template: dict) -> tuple[list[tuple[str, dict]], int]:
    """Every filter pattern of every event source that reads a DynamoDB stream, as (where, pattern),
    and how many such event sources the template (its JSON) has."""
    found, sources = [], 0
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            arn = props["EventSourceArn"]
            table = arn.get("Fn::GetAtt", [None, None]) if isinstance(arn, dict) else [None, None]
            if not (table[1] == "StreamArn" and template["Resources"][table[0]]["Type"] == "AWS::DynamoDB::Table"
                    or isinstance(arn, str) and ":dynamodb:" in arn):
                continue
            events = {name: props}
        elif resource["Type"] == "AWS::Serverless::Function":
            events = {f"{name}.{event_id}": event["Properties"]
                      for event_id, event in props.get("Events", {}).items() if event["Type"] == "DynamoDB"}
        else:
            continue
        for where, source in events.items():
            sources += 1
            found += [(where, json.loads(c["Pattern"])) for c in source.get("FilterCriteria", {}).get("Filters", [])]
    return found, sources


def unsupported_filters(patterns: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The patterns that filter on anything but the ``dynamodb`` key (and under it, the keys or an image)."""
    key = FILTERING["key"]
    under = {*FILTERING["keys_example"][key], *FILTERING["images"]["keys"]}
    return [(where, pattern) for where, pattern in patterns
            if set(pattern) != {key} or not isinstance(pattern[key], dict) or not set(pattern[key]) <= under]


def stream_mapping(template):
    return mapping_of(template, "WebhookFanout")


def messages_table(template) -> str:
    return ref_id(env(template, "APIHandler")["MESSAGES_TABLE"])


# -- the endpoint store and its key ---------------------------------------------------------------

def test_endpoints_and_the_key_to_their_secrets_outlive_a_destroy_together(template):
    from chalicelib.core import schema

    variables = env(template, "APIHandler")
    table_id, key_id = ref_id(variables["WEBHOOKS_TABLE"]), ref_id(variables["WEBHOOK_KEY_ID"])
    table, key = resources(template)[table_id], resources(template)[key_id]
    assert variables["WEBHOOK_KEY_ID"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": schema.WEBHOOKS_KEY, "KeyType": "HASH"},
                                  {"AttributeName": schema.WEBHOOKS_SORT, "KeyType": "RANGE"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": schema.WEBHOOKS_TTL, "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    # Secrets are KMS ciphertext: while the table (or a restore of it) can exist, so must the key.
    # The endpoints are the user's configuration, kept on delete like the messages table.
    for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
        assert table[policy] == "Retain" == resources(template)[messages_table(template)][policy]
        assert key[policy] == "Retain", f"a key deleted under a retained table leaves its secrets unreadable ({policy})"


def test_the_messages_table_streams_both_images(template):
    stream = resources(template)[messages_table(template)]["Properties"]["StreamSpecification"]
    assert stream == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


# -- the queues -------------------------------------------------------------------------------------

def test_an_event_is_retried_for_a_day_then_kept_in_the_dead_letter_queue(template):
    queues = webhook_queues(template)
    queue, dead = (resources(template)[queues[k]]["Properties"] for k in ("queue", "dead letters"))
    delivery = resources(template)["WebhookDelivery"]["Properties"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [queues["dead letters"], "Arn"]},
                                      "maxReceiveCount": Webhooks.MAX_RECEIVES}
    assert queue["VisibilityTimeout"] >= 6 * delivery["Timeout"]
    # Retries go on for 24 hours: the queue keeps an event longer than that.
    assert queue["MessageRetentionPeriod"] > DAY
    # SQS keeps a redriven message's first enqueue time: the dead-letter queue must keep longer.
    documented = json.loads((aws_docs.HERE / "sqs-dead-letter-queue-retention.json").read_text())
    assert "retention period of a dead-letter queue to be longer" in documented["quote"]
    assert dead["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert "RedrivePolicy" not in dead


def test_the_redrive_backstop_never_cuts_the_days_retries_short():
    """The queue dead-letters after MAX_RECEIVES receives; at the shortest backoff the delivery
    function may choose (all jitter taken off), that many receives last more than 24 hours."""
    from chalicelib.webhooks import delivery as webhook_delivery

    shortest = [webhook_delivery.backoff(n, uniform=lambda low, high: low) for n in range(1, Webhooks.MAX_RECEIVES)]
    assert sum(shortest) > DAY
    assert shortest[0] < 60  # the first retry comes within a minute


def test_a_delivery_batch_fits_in_the_function_timeout(template):
    """A batch's endpoints are posted to at once, each endpoint's records in two rounds (one record, then
    the others together), each POST cut at the receiver's 10 s, and the function keeps time for itself
    after the last POST: all of it inside the timeout, else a batch would be cut and every record in it
    retried."""
    from chalicelib.webhooks import delivery as webhook_delivery

    timeout = resources(template)["WebhookDelivery"]["Properties"]["Timeout"]
    assert timeout == Webhooks.DELIVERY_TIMEOUT_SECONDS
    assert 2 * webhook_delivery.TIMEOUT_SECONDS + webhook_delivery.RESERVE_SECONDS < timeout


def test_every_webhook_queue_is_encrypted_ssl_only_and_watched(template):
    policies = [p["Properties"] for p in template.find_resources("AWS::SQS::QueuePolicy").values()]
    alarms = template.find_resources("AWS::CloudWatch::Alarm").values()
    for name, queue_id in webhook_queues(template).items():
        assert resources(template)[queue_id]["Properties"]["SqsManagedSseEnabled"] is True, name
        assert any({"Ref": queue_id} in p["Queues"] and any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in p["PolicyDocument"]["Statement"]) for p in policies), name
        if name == "queue":
            continue  # events wait here on purpose, for their next try
        (alarm,) = [a["Properties"] for a in alarms if a["Properties"].get("Dimensions") == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]]
        assert (alarm["MetricName"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
            "ApproximateNumberOfMessagesVisible", 1, "GreaterThanOrEqualToThreshold"), name
        assert alarm["AlarmActions"] == [{"Ref": next(n for n in resources(template) if n.startswith(
            "MonitoringAlarms") and resources(template)[n]["Type"] == "AWS::SNS::Topic")}]
        board = json.dumps(template.find_resources("AWS::CloudWatch::Dashboard"))
        assert queue_id in board, f"the {name} queue is not on the dashboard"


# -- the event sources ------------------------------------------------------------------------------

def test_the_fanout_reads_the_stream_in_batches_and_keeps_what_it_gives_up_on(template):
    _, mapping = stream_mapping(template)
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": [messages_table(template), "StreamArn"]}
    assert (props["StartingPosition"], props["BatchSize"], props["BisectBatchOnFunctionError"]) == ("LATEST", 100, True)
    # Bounded (-1, the default, retries until the record leaves the stream after 24 hours).
    assert 1 <= props["MaximumRetryAttempts"] <= 10_000
    assert 60 <= props["MaximumRecordAgeInSeconds"] < DAY
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": [webhook_queues(template)["fanout failures"], "Arn"]}
    # Only writes reach the fanout: the documented INSERT and MODIFY records, keyed as the messages
    # table is, pass; a deletion (REMOVE: a TTL expiry) never costs an invocation. A deletion's
    # record has no new image (the StreamRecord reference: NewImage is the item "as it appeared
    # after it was modified"), only the old one.
    (only,) = props["FilterCriteria"]["Filters"]
    pattern = json.loads(only["Pattern"])
    documented = json.loads((EVENTS / "dynamodb-stream-event.json").read_text())["event"]["Records"]
    assert {r["eventName"] for r in documented} == {"INSERT", "MODIFY"}
    keyed = [messages_record(template, r) for r in documented]
    assert all(passes(pattern, r) for r in keyed)
    removed = {**keyed[-1], "eventName": "REMOVE",
               "dynamodb": {k: v for k, v in keyed[-1]["dynamodb"].items() if k != "NewImage"}}
    assert not passes(pattern, removed)
    assert not passes(pattern, documented[0]), "the filter must name the messages table's own key"
    # Lambda checks the role's rights when it creates the mapping: the policy comes first.
    assert role_policy(template, "WebhookFanout") in mapping["DependsOn"]


def messages_record(template, record: dict) -> dict:
    """A documented stream record with its images keyed as the messages table is (its key's name and
    type from the template), in place of the guide's table's ``Id`` number."""
    table = resources(template)[messages_table(template)]["Properties"]
    ((key,),) = [[k["AttributeName"] for k in table["KeySchema"] if k["KeyType"] == "HASH"]]
    (kind,) = [a["AttributeType"] for a in table["AttributeDefinitions"] if a["AttributeName"] == key]
    images = {name: {**{k: v for k, v in image.items() if k != "Id"}, key: {kind: "msg_1"}}
              for name, image in record["dynamodb"].items() if name in ("Keys", "NewImage", "OldImage")}
    return {**record, "dynamodb": {**record["dynamodb"], **images}}


def test_every_dynamodb_stream_filter_filters_only_under_the_dynamodb_key(
        template, prod_template, mms_template, sms_voice_template, second_stage):
    """The Lambda guide: DynamoDB event source mappings filter only on the ``dynamodb`` key, and
    under it on the keys and images. Every stage's every DynamoDB event source holds to it."""
    assert FILTERING["source"].startswith("https://docs.aws.amazon.com/lambda/")
    assert f"only support filtering on the {FILTERING['key']} key" in FILTERING["quote"]
    assert all(k in FILTERING["images"]["quote"] for k in FILTERING["images"]["keys"])
    for synthesized in (template, prod_template, mms_template, sms_voice_template, second_stage):
        patterns, sources = dynamodb_stream_filters(synthesized.to_json())
        assert sources >= 1 and patterns  # the webhook fanout's, at least
        assert unsupported_filters(patterns) == []


def test_the_filter_check_refuses_a_pattern_on_the_event_name(template):
    """The fanout's earlier pattern (``eventName``), which the guide says Lambda does not filter on."""
    bare = json.loads(json.dumps(template.to_json()))
    (name, _) = stream_mapping(template)
    bare["Resources"][name]["Properties"]["FilterCriteria"]["Filters"] = [
        {"Pattern": json.dumps({"eventName": ["INSERT", "MODIFY"]})}]
    patterns, _ = dynamodb_stream_filters(bare)
    assert unsupported_filters(patterns) == [(name, {"eventName": ["INSERT", "MODIFY"]})]


def test_deliveries_report_each_failure_and_run_on_a_bounded_number_of_instances(template):
    _, mapping = mapping_of(template, "WebhookDelivery")
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": [webhook_queues(template)["queue"], "Arn"]}
    assert props["BatchSize"] == 10 and props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # SQS event sources take 2 to 1000; a few instances leave the account's concurrency to the sends.
    assert 2 <= props["ScalingConfig"]["MaximumConcurrency"] == Webhooks.DELIVERY_CONCURRENCY <= 10
    assert role_policy(template, "WebhookDelivery") in mapping["DependsOn"]


def test_the_webhook_settings_reach_every_function(template, prod_template):
    for function_id in FUNCTIONS:
        variables = env(template, function_id)
        assert (variables["WEBHOOK_URLS"], variables["MAX_WEBHOOKS"]) == ("https", "10")
        assert {"WEBHOOKS_TABLE", "WEBHOOK_QUEUE_URL", "WEBHOOK_DLQ_URL", "WEBHOOK_KEY_ID"} <= set(variables)
    assert env(prod_template, "WebhookDelivery")["WEBHOOK_URLS"] == "https"


def test_max_webhooks_is_a_stage_setting():
    from infra.config import StageConfig, StageConfigError

    config = StageConfig.from_dict("dev", {"maxWebhooks": 3})
    variables = config.app_environment(media_bucket="b", messages_table="m", idempotency_table="i",
                                       batch_queue_url="q", batch_dlq_url="d", max_receives=5, worker_concurrency=2)
    assert variables["MAX_WEBHOOKS"] == "3"
    assert "WEBHOOKS_TABLE" not in variables  # no table given: the app answers 503 NotConfigured
    for wrong in (0, "ten", True):
        with pytest.raises(StageConfigError, match="max_webhooks"):
            StageConfig.from_dict("dev", {"maxWebhooks": wrong})


# -- the grants: exactly what each function does with the webhook resources ------------------------

def granted(template, function_id: str) -> dict[str, set[str]]:
    """Resource (logical id, ``.StreamArn`` for a stream) -> the actions the function's role is allowed
    on it, for every statement naming a webhook resource or the messages stream."""
    role = ref_id(resources(template)[function_id]["Properties"]["Role"])
    found: dict[str, set[str]] = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            if "dynamodb:LeadingKeys" in json.dumps(statement.get("Condition", {})):
                continue  # the opt-out items of the table (tests/test_two_way_stack.py checks those)
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for target in targets:
                if isinstance(target, dict) and "Fn::GetAtt" in target:
                    name = target["Fn::GetAtt"][0] + (".StreamArn" if target["Fn::GetAtt"][1] == "StreamArn" else "")
                    found.setdefault(name, set()).update(actions)
    return found


def webhook_resources(template) -> dict[str, str]:
    variables = env(template, "APIHandler")
    return {"table": ref_id(variables["WEBHOOKS_TABLE"]), "key": ref_id(variables["WEBHOOK_KEY_ID"]),
            "stream": messages_table(template) + ".StreamArn", **webhook_queues(template)}


DELIVERY_QUEUE_POLLING = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                          "sqs:ChangeMessageVisibility"}
EXPECTED = {
    # Endpoints: create, read, list (and count), rotate, delete, attempts; a secret is encrypted, and
    # decrypted only to replay an answer to the same Idempotency-Key.
    "APIHandler": {"table": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                             "dynamodb:Query"}, "key": {"kms:Encrypt", "kms:Decrypt"}},
    # The stream, as the DynamoDB guide's trigger policy less ListStreams (see below); the endpoints;
    # the delivery queue, and the on-failure destination Lambda sends to as the function.
    "WebhookFanout": {"stream": {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"},
                      "table": {"dynamodb:Query"}, "queue": {"sqs:SendMessage"},
                      "fanout failures": {"sqs:SendMessage"}},
    # Endpoint reads, attempt records, disabling on 410; the secret; the queue's event source plus the
    # backoff (ChangeMessageVisibility); the dead-letter queue after 24 hours.
    "WebhookDelivery": {"table": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
                        "key": {"kms:Decrypt"}, "queue": DELIVERY_QUEUE_POLLING, "dead letters": {"sqs:SendMessage"}},
    "BatchWorker": {},
    "StatusIngest": {},
}


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_each_function_is_granted_exactly_its_webhook_calls(template, function_id):
    names = webhook_resources(template)
    ours = {kind: granted(template, function_id).get(logical_id, set()) for kind, logical_id in names.items()}
    assert {kind: actions for kind, actions in ours.items() if actions} == EXPECTED[function_id]


def test_the_fanouts_stream_rights_are_the_documented_ones_that_take_a_stream(template):
    """The DynamoDB guide's trigger policy names ListStreams on the stream; the Service Authorization
    Reference gives ListStreams no resource type, so there it grants nothing, and Lambda reads the
    stream without it. The fanout gets every other action of that policy, on its one stream."""
    from .test_iam_reference import resource_types

    documented = set(aws_docs.actions("dynamodb-stream-lambda-policy.json"))
    taking_a_stream = {a for a in documented if "stream" in resource_types("dynamodb", a.split(":")[1])}
    assert documented - taking_a_stream == {"dynamodb:ListStreams"}
    stream = webhook_resources(template)["stream"]
    assert granted(template, "WebhookFanout")[stream] == taking_a_stream
    assert not any(stream in granted(template, f) for f in FUNCTIONS if f != "WebhookFanout")


def test_the_secret_key_is_used_only_under_an_endpoints_encryption_context(template):
    key = webhook_resources(template)["key"]
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Resource") == {"Fn::GetAtt": [key, "Arn"]}:
                assert statement["Condition"] == {"StringLike": {"kms:EncryptionContext:webhookId": "wh_*"}}
    # IAM policies decide: the key policy only hands the key to the account's IAM.
    (statement,) = resources(template)[key]["Properties"]["KeyPolicy"]["Statement"]
    assert statement["Principal"]["AWS"]["Fn::Join"][1][-1] == ":root"


# -- the grants against the code: every call each function makes, recorded ------------------------
# What Lambda itself does as the function, which the function's code never calls: read the stream
# and send a failed batch's place to the on-failure queue (the fanout); poll, delete and read the
# attributes of the delivery queue (the delivery).
EVENT_SOURCE = {"WebhookFanout": {"stream": EXPECTED["WebhookFanout"]["stream"],
                                  "fanout failures": {"sqs:SendMessage"}},
                "WebhookDelivery": {"queue": DELIVERY_QUEUE_POLLING - {"sqs:ChangeMessageVisibility"}}}


class Receiver:
    """A webhook receiver on 127.0.0.1 answering the statuses queued in ``answers`` (then 200)."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import threading

        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sms?token=abc"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


def iam_action(prefix: str, operation: str) -> str:
    """The IAM action a call needs: its own name, or for a batch operation the Service Authorization
    Reference does not list (SendMessageBatch), the action it is authorized as (sqs:SendMessage)."""
    from .test_iam_reference import actions_matching

    for name in (operation, operation.removesuffix("Batch")):
        if actions_matching(f"{prefix}:{name}"):
            return f"{prefix}:{name}"
    raise AssertionError(f"{prefix}:{operation} is not in the Service Authorization Reference")


# A transaction's items are authorized one by one, each as its single-item action
# (tests/aws_docs/dynamodb-transactions-iam.json); TransactWriteItems is no IAM action of its own.
TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                    "ConditionCheck": "ConditionCheckItem"}


def item_by_item(made):
    """The recorded calls, a TransactWriteItems call as its items: (prefix, operation, the item's parameters)."""
    for prefix, operation, params in made:
        if (prefix, operation) == ("dynamodb", "TransactWriteItems"):
            for item in params["TransactItems"]:
                ((kind, body),) = item.items()
                yield prefix, TRANSACT_ACTIONS[kind], body
        else:
            yield prefix, operation, params


def test_a_transaction_item_needs_the_action_aws_documents_for_it():
    from .test_iam_reference import actions_matching

    documented = json.loads((aws_docs.HERE / "dynamodb-transactions-iam.json").read_text())["quote"]
    assert "governed by the permissions used for the underlying PutItem, UpdateItem, DeleteItem" in documented
    allowed = set(aws_docs.actions("dynamodb-transactions-iam.json"))
    assert {f"dynamodb:{a}" for a in TRANSACT_ACTIONS.values()} <= allowed
    assert not actions_matching("dynamodb:TransactWriteItems")  # nothing to grant under that name


class Lambda:
    """The little of Lambda's context the delivery function reads."""

    @staticmethod
    def get_remaining_time_in_millis():
        return Webhooks.DELIVERY_TIMEOUT_SECONDS * 1000


def test_each_function_is_granted_every_call_its_code_makes(client, calls, receiver):
    """Drive the API, the fanout and the delivery through every path that calls AWS (moto behind
    them), record each call, and hold it against ``EXPECTED`` (which the test above holds against the
    roles in the template): every call is granted, and every grant is either called or needed by the
    function's event source."""
    import os
    import time

    import boto3

    from chalicelib.core import store
    from chalicelib.webhooks import delivery, events
    from chalicelib.webhooks import endpoints as webhooks
    from devstack.queues import sqs_record

    from .conftest import REGION, body_of, post

    kinds = {os.environ["WEBHOOKS_TABLE"]: "table", os.environ["WEBHOOK_QUEUE_URL"]: "queue",
             os.environ["WEBHOOK_DLQ_URL"]: "dead letters", os.environ["WEBHOOK_KEY_ID"]: "key"}
    made: dict[str, list] = {}

    def as_function(function_id, run):
        start = len(calls)
        result = run()
        made.setdefault(function_id, []).extend(calls[start:])
        return result

    # The API: create (and replay the create), list, read, rotate, list attempts.
    once = {"Idempotency-Key": "hooks-infra-grants-1"}
    created = as_function("APIHandler", lambda: post(client, "/webhooks", {"url": receiver.url}, once))
    assert created.status_code == 201, created.body
    hook = body_of(created)
    replayed = as_function("APIHandler", lambda: post(client, "/webhooks", {"url": receiver.url}, once))
    assert body_of(replayed)["secret"] == hook["secret"]  # decrypted again for the replay
    for path in ("/webhooks", f"/webhooks/{hook['id']}", f"/webhooks/{hook['id']}/deliveries"):
        assert as_function("APIHandler", lambda: client.http.get(path)).status_code == 200, path
    rotated = as_function("APIHandler", lambda: post(client, f"/webhooks/{hook['id']}/rotate", {}))
    assert rotated.status_code == 200, rotated.body

    # The fanout: a message record sent -> delivered, as the stream hands it over.
    sent = body_of(post(client, "/sms", {"to": "+14255550123", "body": "Your code is 123456"}))
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=os.environ["MESSAGES_TABLE"], Key={"id": {"S": sent["id"]}})["Item"]
    delivered = {**item, "status": {"S": store.DELIVERED}, "updatedAt": {"S": store.now_iso()}}
    stream = {"Records": [{"eventName": "MODIFY", "eventSource": "aws:dynamodb",
                           "dynamodb": {"NewImage": delivered, "OldImage": item}}]}
    assert as_function("WebhookFanout", lambda: events.fanout(stream, Lambda()))["queued"] == 1

    # The delivery: a 500 (retried later: its visibility), then the same event a day old (dead-lettered),
    # then a 410 (the endpoint disabled). Each attempt is recorded.
    sqs = boto3.client("sqs", region_name=REGION)
    queue_arn = sqs.get_queue_attributes(QueueUrl=os.environ["WEBHOOK_QUEUE_URL"],
                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    (message,) = sqs.receive_message(QueueUrl=os.environ["WEBHOOK_QUEUE_URL"], AttributeNames=["All"],
                                     MaxNumberOfMessages=10)["Messages"]
    record = sqs_record(message, queue_arn)
    day_old = {**record, "attributes": {**record["attributes"],
                                        "SentTimestamp": str(int((time.time() - 25 * 3600) * 1000))}}
    receiver.answers += [500, 500, 410]
    table = boto3.client("dynamodb", region_name=REGION)
    for step, (event_record, failures) in enumerate(((record, 1), (day_old, 0), (record, 0))):
        if step:  # the backoff window the last 500 gave the endpoint (its breaker) is over: this one tries
            table.update_item(TableName=os.environ["WEBHOOKS_TABLE"], Key=webhooks.endpoint_key(hook["id"]),
                              UpdateExpression="SET retryAt = :past",
                              ExpressionAttributeValues={":past": {"S": "2000-01-01T00:00:00.000Z"}})
        webhooks.forget(hook["id"])  # as a new instance would: read the endpoint again
        result = as_function("WebhookDelivery", lambda: delivery.deliver_batch({"Records": [event_record]}, Lambda()))
        assert len(result["batchItemFailures"]) == failures
    assert not receiver.answers
    assert body_of(client.http.get(f"/webhooks/{hook['id']}"))["enabled"] is False
    assert as_function("APIHandler", lambda: client.http.delete(f"/webhooks/{hook['id']}")).status_code == 204

    problems = []
    for function_id in ("APIHandler", "WebhookFanout", "WebhookDelivery"):
        used: dict[str, set[str]] = {}
        for prefix, operation, params in item_by_item(made[function_id]):
            target = params.get("TableName") or params.get("QueueUrl") or params.get("KeyId")
            if target not in kinds:
                if function_id != "APIHandler":  # the API's other calls are checked in test_infra.py
                    problems.append(f"{function_id} calls {prefix}:{operation} on {target}, not a webhook resource")
                continue
            used.setdefault(kinds[target], set()).add(iam_action(prefix, operation))
            if prefix == "kms":  # the condition on the key's grants (infra/api.py) holds for every call
                context = params["EncryptionContext"]
                assert set(context) == {WEBHOOK_CONTEXT_KEY}, context
                assert context[WEBHOOK_CONTEXT_KEY].startswith(WEBHOOK_ID_PREFIX), context
        granted_ = EXPECTED[function_id]
        for kind, actions in used.items():
            if not actions <= granted_.get(kind, set()):
                problems.append(f"{function_id} calls {sorted(actions - granted_.get(kind, set()))} on the {kind}, "
                                f"not granted")
        for kind, actions in granted_.items():
            unused = actions - used.get(kind, set()) - EVENT_SOURCE.get(function_id, {}).get(kind, set())
            if unused:
                problems.append(f"{function_id} is granted {sorted(unused)} on the {kind} and never calls it")
    assert not problems, "\n".join(problems)
