"""The batch queue and its dead-letter queue, and the queue-with-dead-letters every queue a function drains
is made with (the batch, webhook delivery, inbound and export queues)."""
from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import StageConfig


def queue_with_dead_letters(scope: Construct, prefix: str = "", *, max_receives: int, visibility_timeout: Duration,
                            retention_period: Duration | None = None) -> tuple[sqs.Queue, sqs.Queue]:
    """``<prefix>Queue`` and its dead-letter queue ``<prefix>DeadLetters`` in ``scope``: both encrypted and SSL
    only, a message moved to the dead-letter queue after ``max_receives`` receives. ``visibility_timeout`` is 6
    times the draining function's timeout, as AWS advises for Lambda event sources; ``retention_period`` is the
    queue's (SQS's default, 4 days, when left out). SQS keeps a redriven message's first enqueue time, so the
    dead-letter queue keeps messages longer than its source queue: 14 days
    (tests/aws_docs/sqs-dead-letter-queue-retention.json). Returns ``(queue, dead_letters)``."""
    dead_letters = sqs.Queue(
        scope, f"{prefix}DeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
        retention_period=Duration.days(14))
    queue = sqs.Queue(
        scope, f"{prefix}Queue", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
        retention_period=retention_period, visibility_timeout=visibility_timeout,
        dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=max_receives, queue=dead_letters))
    return queue, dead_letters


class BatchQueue(Construct):
    """The bulk-send queue and its dead-letter queue: encrypted, SSL only, redrive after N receives."""

    MAX_RECEIVES = 5
    # The worker's timeout; the queue's visibility timeout is 6 times it.
    WORKER_TIMEOUT_SECONDS = 30

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        self.queue, self.dead_letters = queue_with_dead_letters(
            self, max_receives=self.MAX_RECEIVES, visibility_timeout=Duration.seconds(6 * self.WORKER_TIMEOUT_SECONDS))
