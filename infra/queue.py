"""The batch queue and its dead-letter queue."""
from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import StageConfig


class BatchQueue(Construct):
    """The bulk-send queue and its dead-letter queue: encrypted, SSL only, redrive after N receives."""

    MAX_RECEIVES = 5
    # The worker's timeout; the queue's visibility timeout is 6 times it, as AWS advises for
    # Lambda event sources.
    WORKER_TIMEOUT_SECONDS = 30

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        self.dead_letters = sqs.Queue(
            self, "DeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=Duration.days(14))
        self.queue = sqs.Queue(
            self, "Queue", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            visibility_timeout=Duration.seconds(6 * self.WORKER_TIMEOUT_SECONDS),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=self.MAX_RECEIVES, queue=self.dead_letters))
