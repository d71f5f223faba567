"""The message store: the messages table (with its indexes) and the idempotency table; and the table every
construct's table is made with (``table``)."""
from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

import apppath  # noqa: F401  (puts app/ on the path for chalicelib)
from chalicelib.core import schema  # table keys shared with the app and the local stack

from .config import StageConfig


def table(scope: Construct, id: str, key: str, sort: str | None = None, *, removal: RemovalPolicy,
          sort_type: dynamodb.AttributeType = dynamodb.AttributeType.STRING, ttl: str | None = None,
          stream: dynamodb.StreamViewType | None = None) -> dynamodb.Table:
    """A table keyed by the string ``key`` (and ``sort``, of ``sort_type``, where given): on demand, point-in-time
    recovery, items expiring by ``ttl`` and writes in a ``stream`` where given."""
    return dynamodb.Table(
        scope, id,
        partition_key=dynamodb.Attribute(name=key, type=dynamodb.AttributeType.STRING),
        sort_key=None if sort is None else dynamodb.Attribute(name=sort, type=sort_type),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True),
        time_to_live_attribute=ttl,
        removal_policy=removal,
        stream=stream,
    )


class MessageStore(Construct):
    """Message records (with the list, provider-id, batch and due indexes) and the idempotency records."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        string = dynamodb.AttributeType.STRING
        # Every write lands in the stream, both images, for the webhook fanout (infra/webhooks.py).
        self.messages = table(self, "Messages", schema.MESSAGES_KEY, ttl=schema.MESSAGES_TTL,
                              removal=RemovalPolicy.RETAIN, stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES)
        self.messages.add_global_secondary_index(
            index_name=schema.MESSAGES_LIST_INDEX,
            partition_key=dynamodb.Attribute(name=schema.MESSAGES_LIST_PARTITION, type=string),
            sort_key=dynamodb.Attribute(name=schema.MESSAGES_LIST_SORT, type=string),
            # Keys only, none of which changes after the record is created: one index write per message.
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        self.messages.add_global_secondary_index(
            index_name=schema.MESSAGES_PROVIDER_INDEX,
            partition_key=dynamodb.Attribute(name=schema.MESSAGES_PROVIDER_KEY, type=string),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,  # the ingest needs only our id
        )
        self.messages.add_global_secondary_index(
            index_name=schema.MESSAGES_BATCH_INDEX,
            partition_key=dynamodb.Attribute(name=schema.MESSAGES_BATCH_PARTITION, type=string),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=list(schema.MESSAGES_BATCH_PROJECTION),
        )
        # Scheduled sends: only a message waiting for its sendAt holds these keys (a sparse index), and keys
        # only: the sweep needs the id and sendAt (both in the keys), a page of GET /messages?status=scheduled
        # reads its records by key. One write when a message is scheduled, one when it leaves scheduled.
        self.messages.add_global_secondary_index(
            index_name=schema.MESSAGES_DUE_INDEX,
            partition_key=dynamodb.Attribute(name=schema.MESSAGES_DUE_PARTITION, type=string),
            sort_key=dynamodb.Attribute(name=schema.MESSAGES_DUE_SORT, type=string),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        self.idempotency = table(self, "Idempotency", schema.IDEMPOTENCY_KEY, ttl=schema.IDEMPOTENCY_TTL,
                                 removal=RemovalPolicy.DESTROY)
