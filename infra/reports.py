"""Delivery reports: the reports table (daily counters, the stream records they counted, exports) and the
export queue with its dead-letter queue. The functions (``report_tally``, ``export_writer``) and their grants
are wired in ``infra/api.py``; the exports' lifecycle rule is the media bucket's (``infra/media.py``)."""
from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from constructs import Construct

import apppath  # noqa: F401  (puts app/ on the path for chalicelib)
from chalicelib.core import schema  # table keys shared with the app and the local stack
from chalicelib.reports import writer  # how often an export is tried before it ends failed

from .config import StageConfig
from .queue import queue_with_dead_letters
from .store import table


class Reports(Construct):
    """The counters outlive the messages (400 days, whatever the message retention) and are kept on delete,
    like the messages table. An export waits on the queue for the export function, which runs up to Lambda's
    15 minutes and hands what is left to its next invocation; a message that keeps failing goes to the
    dead-letter queue after ``writer.MAX_RECEIVES`` receives (the function ends the export ``failed`` first)."""

    WRITER_TIMEOUT_SECONDS = 900  # Lambda's most
    TALLY_TIMEOUT_SECONDS = 60
    # The tally's batches: up to 100 records, gathered for up to a second.
    TALLY_BATCH_SIZE = 100
    TALLY_BATCHING_WINDOW_SECONDS = 1
    # Export invocations at once: each streams one export.
    WRITER_CONCURRENCY = 5

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        self.table = table(self, "Table", schema.REPORTS_KEY, schema.REPORTS_SORT, ttl=schema.REPORTS_TTL,
                           removal=RemovalPolicy.RETAIN)
        self.queue, self.dead_letters = queue_with_dead_letters(
            self, "Export", max_receives=writer.MAX_RECEIVES, retention_period=Duration.days(4),
            visibility_timeout=Duration.seconds(6 * self.WRITER_TIMEOUT_SECONDS))
