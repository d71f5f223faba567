"""Webhooks: the key for endpoint secrets, the endpoint store, the delivery queue and its dead-letter
queue, and the queue that keeps the stream batches the fanout gave up on."""
from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import apppath  # noqa: F401  (puts app/ on the path for chalicelib)
from chalicelib.core import schema  # table keys shared with the app and the local stack

from . import nag
from .config import StageConfig
from .queue import queue_with_dead_letters
from .store import table


class Webhooks(Construct):
    """What the webhook functions (wired in ``infra/api.py``) work on.

    The fanout reads the messages table's stream and puts one message per event and endpoint on the
    delivery queue; the delivery function POSTs it, retrying by the message's visibility for 24 hours,
    then moves it to the dead-letter queue itself. The queue's own redrive (``MAX_RECEIVES``) is only
    the backstop for a function that keeps dying."""

    # The delivery function's timeout: a receiver gets 10 s, and a batch's records run at once. The
    # queue's visibility timeout is 6 times it, as AWS advises for Lambda event sources.
    DELIVERY_TIMEOUT_SECONDS = 30
    FANOUT_TIMEOUT_SECONDS = 60
    # With the backoff (30 s doubling to an hour), 24 hours of retries take about 30 receives.
    MAX_RECEIVES = 100
    # Delivery instances at once (each posts its up to 10 records in parallel): bounded so that a
    # burst of events cannot take the account's Lambda concurrency from the API and the worker.
    DELIVERY_CONCURRENCY = 5
    # The stream event source: a batch that keeps failing is split until the bad record stands
    # alone, retried this often, then its shard and sequence numbers go to ``fanout_failures``.
    FANOUT_RETRIES = 10
    FANOUT_MAX_RECORD_AGE = Duration.hours(6)

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        # Endpoints are the user's configuration: the table outlives a destroy, like the messages
        # table. Its secrets are KMS ciphertext, so the key that reads them must outlive it too
        # (a deleted key would leave every secret unreadable for good). Neither has a fixed name,
        # so the next deploy creates new ones beside them.
        kept = RemovalPolicy.RETAIN
        self.key = kms.Key(self, "SecretsKey", enable_key_rotation=True, removal_policy=kept,
                           description=f"{config.prefix}: encrypts webhook signing secrets")
        self.table = table(self, "Table", schema.WEBHOOKS_KEY, schema.WEBHOOKS_SORT, ttl=schema.WEBHOOKS_TTL,
                           removal=kept)
        self.queue, self.dead_letters = queue_with_dead_letters(
            self, max_receives=self.MAX_RECEIVES, retention_period=Duration.days(4),
            visibility_timeout=Duration.seconds(6 * self.DELIVERY_TIMEOUT_SECONDS))
        self.fanout_failures = sqs.Queue(
            self, "FanoutFailures", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=Duration.days(14))
        nag.acknowledge(self.fanout_failures, "AwsSolutions-SQS3",
                        "This queue is itself the fanout's on-failure destination; an alarm watches it.")
