"""Create in the embedded AWS the resources the CDK stack creates, and return the app's settings.

Names follow the stack's pattern for a stage called ``local``; table keys and indexes come from
``chalicelib.schema``, the same module the stack and the app use.
"""
from __future__ import annotations

import json

import boto3

from . import appload  # noqa: F401
from chalicelib import schema

STAGE = "local"
PREFIX = f"sms-sender-{STAGE}"
ORIGINATION_NUMBER = "+12065550100"


def _client(service: str, endpoint: str, region: str):
    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name=region)


def create(endpoint: str, region: str, emulator, *, visibility_timeout: int = 30) -> dict:
    """Create everything in the embedded AWS; return the environment variables the app reads."""
    env = create_core(lambda service: _client(service, endpoint, region), region, emulator.sms_voice.account,
                      visibility_timeout=visibility_timeout)
    sms_voice = _client("pinpoint-sms-voice-v2", endpoint, region)
    configuration_set = f"{PREFIX}-config"
    sms_voice.create_configuration_set(ConfigurationSetName=configuration_set)
    identity = emulator.sms_voice.add_phone_number(ORIGINATION_NUMBER)
    return {**env, "ORIGINATION_IDENTITY": identity["PhoneNumberArn"], "CONFIGURATION_SET_NAME": configuration_set}


MAX_RECEIVES = 5  # as the stack's redrive policy
EVENTS_LOG_GROUP = f"/{PREFIX}/sms-voice-events"


def sns_log_groups(region: str, account: str) -> tuple[str, str]:
    """The names SNS gives its SMS delivery-status log groups: (success, failure)."""
    base = f"sns/{region}/{account}/DirectPublishToPhoneNumber"
    return base, f"{base}/Failure"


def create_core(client, region: str, account: str, *, visibility_timeout: int = 30) -> dict:
    """The resources moto serves (S3, DynamoDB, SQS, Logs), made with ``client(service)``.
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
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in (
            schema.MESSAGES_KEY, schema.MESSAGES_LIST_PARTITION, schema.MESSAGES_LIST_SORT,
            schema.MESSAGES_PROVIDER_KEY, schema.MESSAGES_BATCH_KEY)],
        KeySchema=[{"AttributeName": schema.MESSAGES_KEY, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {"IndexName": schema.MESSAGES_LIST_INDEX, "Projection": {"ProjectionType": "ALL"},
             "KeySchema": [{"AttributeName": schema.MESSAGES_LIST_PARTITION, "KeyType": "HASH"},
                           {"AttributeName": schema.MESSAGES_LIST_SORT, "KeyType": "RANGE"}]},
            {"IndexName": schema.MESSAGES_PROVIDER_INDEX, "Projection": {"ProjectionType": "KEYS_ONLY"},
             "KeySchema": [{"AttributeName": schema.MESSAGES_PROVIDER_KEY, "KeyType": "HASH"}]},
            {"IndexName": schema.MESSAGES_BATCH_INDEX,
             "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(schema.MESSAGES_BATCH_PROJECTION)},
             "KeySchema": [{"AttributeName": schema.MESSAGES_BATCH_KEY, "KeyType": "HASH"}]},
        ],
    )
    dynamodb.update_time_to_live(TableName=messages, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": schema.MESSAGES_TTL})
    idempotency = f"{PREFIX}-idempotency"
    dynamodb.create_table(
        TableName=idempotency, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": schema.IDEMPOTENCY_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": schema.IDEMPOTENCY_KEY, "KeyType": "HASH"}],
    )
    dynamodb.update_time_to_live(TableName=idempotency, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": schema.IDEMPOTENCY_TTL})

    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName=f"{PREFIX}-batch-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=f"{PREFIX}-batch", Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}),
        "VisibilityTimeout": str(visibility_timeout)})["QueueUrl"]

    logs = client("logs")
    for group in (*sns_log_groups(region, account), EVENTS_LOG_GROUP):
        logs.create_log_group(logGroupName=group)

    return {
        "STAGE": STAGE,
        "MEDIA_BUCKET": bucket,
        "MESSAGES_TABLE": messages,
        "IDEMPOTENCY_TABLE": idempotency,
        "BATCH_QUEUE_URL": queue,
        "MAX_RECEIVES": str(MAX_RECEIVES),
    }
