"""Create in the embedded AWS the resources the CDK stack creates, and return the app's settings.

Names follow the stack's pattern for a stage called ``local``; table keys and indexes come from
``chalicelib.schema``, the same module the stack and the app use.
"""
from __future__ import annotations

import json

import boto3

from . import appload  # noqa: F401
from chalicelib.core import schema

STAGE = "local"
PREFIX = f"sms-sender-{STAGE}"
ORIGINATION_NUMBER = "+12065550100"


def _arn(sqs, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def queue_with_dlq(sqs, name: str, dlq_name: str, max_receives: int, visibility_timeout: int) -> tuple[str, str]:
    """A queue and its dead-letter queue, as the stack makes each of its queues: (queue URL, DLQ URL)."""
    dlq = sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
    queue = sqs.create_queue(QueueName=name, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": _arn(sqs, dlq), "maxReceiveCount": str(max_receives)}),
        "VisibilityTimeout": str(visibility_timeout)})["QueueUrl"]
    return queue, dlq


def _table(dynamodb, name: str, key: str, sort: str | None = None, *, ttl: str | None = None) -> str:
    """An on-demand table keyed by the string ``key`` (and ``sort``, its range key, where given) whose items
    expire by their ``ttl`` attribute where given, as the stack makes its plain tables; returns its name."""
    keys = (key,) if sort is None else (key, sort)
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in keys],
        KeySchema=[{"AttributeName": n, "KeyType": kind} for n, kind in zip(keys, ("HASH", "RANGE"))],
    )
    if ttl is not None:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})
    return name


def create(endpoint: str, region: str, emulator, *, visibility_timeout: int = 30, keywords=(),
           two_way: bool = True) -> dict:
    """Create everything in the embedded AWS; return the environment variables the app reads. ``keywords``
    (``infra.config.Keyword``s: the stage's ``all_keywords``) are what the local number answers. Without
    ``two_way`` (a stage with ``twoWay: false``) the local number stays one-way, as the stack leaves the
    stage's identity: no inbound topic or queue, and no two-way settings for the app."""
    session = boto3.session.Session()  # one for all the clients: a session parses botocore's data anew

    def client(service: str):
        return session.client(service, endpoint_url=endpoint, region_name=region)

    env = create_core(client, region, emulator.sms_voice.account, visibility_timeout=visibility_timeout)
    sms_voice = client("pinpoint-sms-voice-v2")
    configuration_set = f"{PREFIX}-config"
    sms_voice.create_configuration_set(ConfigurationSetName=configuration_set)
    identity = emulator.sms_voice.add_phone_number(ORIGINATION_NUMBER)
    emulator.local_number = ORIGINATION_NUMBER
    two_way = create_two_way(client, identity["PhoneNumberId"],
                             keywords, visibility_timeout=visibility_timeout) if two_way else {}
    return {**env, **two_way, "ORIGINATION_IDENTITY": identity["PhoneNumberArn"],
            "CONFIGURATION_SET_NAME": configuration_set}


INBOUND_TOPIC, INBOUND_QUEUE, INBOUND_DLQ = f"{PREFIX}-inbound", f"{PREFIX}-inbound", f"{PREFIX}-inbound-dlq"


def create_two_way(client, identity: str, keywords, *, visibility_timeout: int = 30) -> dict:
    """Two-way messaging on the local number, as ``infra/two_way.py`` builds it: the inbound SNS topic
    (standard) and the inbound queue subscribed to it (not raw: the SNS envelope's ``Timestamp`` is the
    reply's time) with its dead-letter queue; then the stack's own custom-resource handler
    (``infra/handlers/two_way.py``) turns two-way on for the number, points it at the topic, and sets
    the keywords, through the sms-voice stand-in. The number keeps its own opt-out list (``Default``).
    Returns the app's settings for it (``OPT_OUT_LIST_NAME``: that list, as the handler read it;
    ``ORIGINATION_NUMBER``) and the queues' URLs."""
    from infra.handlers import two_way

    topic = client("sns").create_topic(Name=INBOUND_TOPIC)["TopicArn"]
    sqs = client("sqs")
    queue, dlq = queue_with_dlq(sqs, INBOUND_QUEUE, INBOUND_DLQ, MAX_RECEIVES, visibility_timeout)
    queue_arn = _arn(sqs, queue)
    client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    sms_voice = client("pinpoint-sms-voice-v2")
    done = two_way.on_event({"RequestType": "Create", "ResourceProperties": {
        "Identity": identity, "TopicArn": topic, "Stage": STAGE,
        "Keywords": [{"Keyword": k.keyword, "Message": k.message, "Action": k.action} for k in keywords]}},
        sms=sms_voice)
    return {"OPT_OUT_LIST_NAME": done["Data"]["OptOutListName"], "ORIGINATION_NUMBER": done["Data"]["PhoneNumber"],
            "INBOUND_TOPIC_ARN": topic, "INBOUND_QUEUE_URL": queue, "INBOUND_DLQ_URL": dlq}


MAX_RECEIVES = 5  # as the stack's redrive policy
EVENTS_LOG_GROUP = f"/{PREFIX}/sms-voice-events"


def sns_log_groups(region: str, account: str) -> tuple[str, str]:
    """The names SNS gives its SMS delivery-status log groups: (success, failure)."""
    base = f"sns/{region}/{account}/DirectPublishToPhoneNumber"
    return base, f"{base}/Failure"


def create_core(client, region: str, account: str, *, visibility_timeout: int = 30) -> dict:
    """The resources moto serves (S3, DynamoDB, SQS, Logs, KMS), made with ``client(service)``.
    The API tests call this inside ``mock_aws``."""
    s3 = client("s3")
    bucket = f"{PREFIX}-media"
    s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedMethods": ["POST"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"]}]})

    dynamodb = client("dynamodb")
    messages = f"{PREFIX}-messages"
    dynamodb.create_table(
        TableName=messages,
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},  # the webhook fanout
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in (
            schema.MESSAGES_KEY, schema.MESSAGES_LIST_PARTITION, schema.MESSAGES_LIST_SORT,
            schema.MESSAGES_PROVIDER_KEY, schema.MESSAGES_BATCH_PARTITION, schema.MESSAGES_DUE_PARTITION,
            schema.MESSAGES_DUE_SORT)],
        KeySchema=[{"AttributeName": schema.MESSAGES_KEY, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {"IndexName": schema.MESSAGES_LIST_INDEX, "Projection": {"ProjectionType": "KEYS_ONLY"},
             "KeySchema": [{"AttributeName": schema.MESSAGES_LIST_PARTITION, "KeyType": "HASH"},
                           {"AttributeName": schema.MESSAGES_LIST_SORT, "KeyType": "RANGE"}]},
            {"IndexName": schema.MESSAGES_PROVIDER_INDEX, "Projection": {"ProjectionType": "KEYS_ONLY"},
             "KeySchema": [{"AttributeName": schema.MESSAGES_PROVIDER_KEY, "KeyType": "HASH"}]},
            {"IndexName": schema.MESSAGES_BATCH_INDEX,
             "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(schema.MESSAGES_BATCH_PROJECTION)},
             "KeySchema": [{"AttributeName": schema.MESSAGES_BATCH_PARTITION, "KeyType": "HASH"}]},
            {"IndexName": schema.MESSAGES_DUE_INDEX, "Projection": {"ProjectionType": "KEYS_ONLY"},
             "KeySchema": [{"AttributeName": schema.MESSAGES_DUE_PARTITION, "KeyType": "HASH"},
                           {"AttributeName": schema.MESSAGES_DUE_SORT, "KeyType": "RANGE"}]},
        ],
    )
    dynamodb.update_time_to_live(TableName=messages, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": schema.MESSAGES_TTL})
    idempotency = _table(dynamodb, f"{PREFIX}-idempotency", schema.IDEMPOTENCY_KEY, ttl=schema.IDEMPOTENCY_TTL)
    keys = _table(dynamodb, f"{PREFIX}-keys", schema.KEYS_KEY)

    templates = create_templates(dynamodb)

    sqs = client("sqs")
    queue, dlq = queue_with_dlq(sqs, f"{PREFIX}-batch", f"{PREFIX}-batch-dlq", MAX_RECEIVES, visibility_timeout)

    logs = client("logs")
    for group in (*sns_log_groups(region, account), EVENTS_LOG_GROUP):
        logs.create_log_group(logGroupName=group)

    return {
        "STAGE": STAGE,
        "MEDIA_BUCKET": bucket,
        "MESSAGES_TABLE": messages,
        "IDEMPOTENCY_TABLE": idempotency,
        "KEYS_TABLE": keys,
        "TEMPLATES_TABLE": templates,
        "BATCH_QUEUE_URL": queue,
        "BATCH_DLQ_URL": dlq,
        "MAX_RECEIVES": str(MAX_RECEIVES),
        **create_webhooks(client, visibility_timeout=visibility_timeout),
        **create_reports(client, bucket),
    }


def create_templates(dynamodb) -> str:
    """The templates table, as ``infra/templates.py`` makes it: a template's versions under its id, and the list
    index, keys only, which holds only the templates' heads. Returns its name."""
    table = f"{PREFIX}-templates"
    dynamodb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": schema.TEMPLATES_KEY, "AttributeType": "S"},
            {"AttributeName": schema.TEMPLATES_SORT, "AttributeType": "N"},
            {"AttributeName": schema.TEMPLATES_LIST_PARTITION, "AttributeType": "S"},
            {"AttributeName": schema.TEMPLATES_LIST_SORT, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": schema.TEMPLATES_KEY, "KeyType": "HASH"},
                   {"AttributeName": schema.TEMPLATES_SORT, "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {"IndexName": schema.TEMPLATES_LIST_INDEX, "Projection": {"ProjectionType": "KEYS_ONLY"},
             "KeySchema": [{"AttributeName": schema.TEMPLATES_LIST_PARTITION, "KeyType": "HASH"},
                           {"AttributeName": schema.TEMPLATES_LIST_SORT, "KeyType": "RANGE"}]}],
    )
    return table


WEBHOOK_MAX_RECEIVES = 100  # as the stack's redrive policy: only the backstop for a function that keeps dying


def create_webhooks(client, *, visibility_timeout: int = 30) -> dict:
    """The webhooks table, the delivery queue with its dead-letter queue, and the KMS key that encrypts
    endpoint secrets, as ``infra/webhooks.py`` makes them; returns their settings. URLs are limited to
    loopback receivers (``WEBHOOK_URLS=loopback``): nothing is delivered off the machine."""
    table = _table(client("dynamodb"), f"{PREFIX}-webhooks", schema.WEBHOOKS_KEY, schema.WEBHOOKS_SORT,
                   ttl=schema.WEBHOOKS_TTL)
    sqs = client("sqs")
    queue, dlq = queue_with_dlq(sqs, f"{PREFIX}-webhooks", f"{PREFIX}-webhooks-dlq", WEBHOOK_MAX_RECEIVES,
                                visibility_timeout)

    key = client("kms").create_key(Description=f"{PREFIX} webhook secrets", KeyUsage="ENCRYPT_DECRYPT",
                                   KeySpec="SYMMETRIC_DEFAULT")["KeyMetadata"]["KeyId"]
    return {"WEBHOOKS_TABLE": table, "WEBHOOK_QUEUE_URL": queue, "WEBHOOK_DLQ_URL": dlq,
            "WEBHOOK_KEY_ID": key, "WEBHOOK_URLS": "loopback"}


# The export function's timeout, Lambda's most, as the stack sets it (infra/reports.py). Its queue's visibility
# timeout is 6 times it, as the stack's: Lambda refuses a function whose timeout exceeds it (devstack/queues.py).
EXPORT_WRITER_TIMEOUT = 900


def create_reports(client, bucket: str) -> dict:
    """The reports table, the export queue with its dead-letter queue, and the media bucket's rule for exports,
    as ``infra/reports.py`` and ``infra/media.py`` make them; returns their settings."""
    from chalicelib.reports import writer

    table = _table(client("dynamodb"), f"{PREFIX}-reports", schema.REPORTS_KEY, schema.REPORTS_SORT,
                   ttl=schema.REPORTS_TTL)
    queue, dlq = queue_with_dlq(client("sqs"), f"{PREFIX}-exports", f"{PREFIX}-exports-dlq", writer.MAX_RECEIVES,
                                6 * EXPORT_WRITER_TIMEOUT)
    client("s3").put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
        "ID": "exports", "Status": "Enabled", "Filter": {"Prefix": schema.EXPORTS_PREFIX},
        "Expiration": {"Days": schema.EXPORT_DAYS}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]})
    return {"REPORTS_TABLE": table, "EXPORT_QUEUE_URL": queue, "EXPORT_DLQ_URL": dlq}
