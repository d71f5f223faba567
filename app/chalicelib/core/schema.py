"""Table layouts, shared by the app, the CDK stack and the local stack so they cannot drift."""

MESSAGES_KEY = "id"
# End User Messaging sends carry ``Context: {CONTEXT_KEY: <our record id>}``, and echo it in each event
# they log, so the status ingest finds the record by our own id. (The model allows at most 5 entries; keys 1
# to 100 non-space characters, values 1 to 800 characters without leading or trailing space.)
CONTEXT_KEY = "messageId"
# The list and batch indexes spread each of their keys over INDEX_SHARDS partition keys, one per
# shard: a message's shard is a stable hash of its id (``store.shard_of``), so DynamoDB's limit of
# 1,000 write units a second per partition applies to each shard, not to the whole stage. Raising
# it is safe (every shard below the new count is still read); lowering it hides the messages in the
# shards dropped until they expire.
INDEX_SHARDS = 8
# GET /messages lists newest first from this index: keys only, partition "messages#<shard>", sorted
# by createdAt#id; a page merges the shards and reads the records from the table by key.
MESSAGES_LIST_INDEX = "byCreatedAt"
MESSAGES_LIST_PARTITION = "listKey"
MESSAGES_LIST_PREFIX = "messages#"
# Replies (issue 14) list under their own partitions, "inbound#<shard>", in the same index.
MESSAGES_INBOUND_PREFIX = "inbound#"
# Messages sent with a test key (issue 19) list under theirs, "test#<shard>": a test key lists only those,
# a live key never sees them.
MESSAGES_TEST_PREFIX = "test#"
MESSAGES_LIST_SORT = "sortKey"
# Delivery receipts carry the provider's message id; this index finds our record from it.
MESSAGES_PROVIDER_INDEX = "byProviderMessageId"
MESSAGES_PROVIDER_KEY = "providerMessageId"
MESSAGES_TTL = "expiresAt"

IDEMPOTENCY_KEY = "id"

# API keys (issue 19): one item per key, by its id ("key_..."), never its secret: only its SHA-256.
KEYS_KEY = "id"
IDEMPOTENCY_TTL = "expiration"

# S3 key prefix under which POST /media puts uploads.
MEDIA_PREFIX = "media/"

# POST /batches: each message record carries its batch id; GET /batches/{id} counts from this index,
# partitioned by "<batch id>#<shard>" and holding the status the API shows (``store.shown_status``),
# which the worker's claim (queued -> sending) leaves as it is, so the claim never writes the index.
MESSAGES_BATCH_INDEX = "byBatchId"
MESSAGES_BATCH_KEY = "batchId"
MESSAGES_BATCH_PARTITION = "batchShard"
MESSAGES_SHOWN = "shown"
MESSAGES_BATCH_PROJECTION = (MESSAGES_SHOWN,)
# Scheduled sends (issue 21): a message waiting for its ``sendAt`` holds the due index's keys, and only while it
# waits: every write that moves it out of ``scheduled`` (the worker's claim, a cancel, a failure) removes them in
# the same write, so the index holds exactly the waiting messages. Partition "<family><shard>" (the shard is
# ``store.shard_of``, as in the list index), sorted by "<sendAt>#<id>". A family says who puts the message on
# the batch queue and whose key it is: the sweep (``sending.schedule.sweep``) reads only the sweep's families,
# and reads each range once (its cursor); ``GET /messages?status=scheduled`` merges both families of a key kind.
MESSAGES_DUE_INDEX = "byDueAt"
MESSAGES_DUE_PARTITION = "dueShard"
MESSAGES_DUE_SORT = "dueAt"
DUE_SWEEP_PREFIX = "due#"  # due later than the API puts on the queue itself: the sweep will
DUE_QUEUED_PREFIX = "due-queued#"  # the API put it on the queue, with its delay, when it was made
DUE_TEST_SWEEP_PREFIX = "due-test#"  # the same two, for messages sent with a test key
DUE_TEST_QUEUED_PREFIX = "due-test-queued#"
# The sweep's cursor, in the idempotency table (short-lived keys; the cursor is rewritten every run): where the
# next sweep starts reading the due index.
SWEEP_CURSOR = "sweep#cursor"
# The batch summary sits in the messages table under an id with this prefix (it is not a message).
BATCH_ID_PREFIX = "batch-"
# The batch worker's per-recipient pacing gate sits in the idempotency table (short-lived keys,
# cleaned by the same TTL) under ids with this prefix, which idempotency keys never have.
RECIPIENT_GATE_PREFIX = "recipient#"
# The stage's send schedule (``chalicelib.pacing``): items "pacer#0" .. "pacer#<K-1>" in the same table.
PACER_PREFIX = "pacer#"

# Webhooks (issue 13): endpoints (pk "endpoint", sk the endpoint id) and delivery attempts
# (pk "deliveries#<endpoint id>", sk "<attempt time>#<event id>", expiring after 7 days) in one table.
WEBHOOKS_KEY = "pk"
WEBHOOKS_SORT = "sk"
WEBHOOKS_TTL = "expiresAt"
# The partition values of the two kinds of item (the app's; the stack needs only the keys above).
WEBHOOKS_ENDPOINTS = "endpoint"
WEBHOOKS_DELIVERIES = "deliveries#"
# The stage's endpoint count (pk and sk both this value, attribute "count"): each create and delete
# changes it in the same transaction as the endpoint, so MAX_WEBHOOKS holds under simultaneous creates.
WEBHOOKS_COUNT = "endpoint-count"
WEBHOOK_ATTEMPT_DAYS = 7
# Opt-outs (issue 14), in the same table: the stage's list (pk "optout", sk the number in E.164;
# attributes number, optedOutAt, source), and per number the last opt-in through the API and the
# time of the last reply keyword (pk "optin", sk the number; expiring 31 days after its last write).
OPT_OUTS = "optout"
OPT_INS = "optin"

# Templates (issue 21): one item per version (pk the template id "tpl_...", sk its version number, from 1), and
# the template's head at version 0: the latest version's content, which version that is ("latest"), and
# "archivedAt" once archived. Only heads carry the list keys: GET /templates lists newest first from this index
# (keys only, one partition; a page reads the heads by key).
TEMPLATES_KEY = "id"
TEMPLATES_SORT = "version"
TEMPLATE_HEAD = 0
TEMPLATE_ID_PREFIX = "tpl_"
TEMPLATES_LIST_INDEX = "byCreatedAt"
TEMPLATES_LIST_PARTITION = "listKey"
TEMPLATES_LIST_VALUE = "templates"
TEMPLATES_LIST_SORT = "sortKey"

# Delivery reports (issue 22): one table of two kinds of item, pk ``REPORTS_KEY`` and sk ``REPORTS_SORT``.
# - Daily counters: pk "daily#<YYYY-MM-DD>#<shard>" (the UTC day the message was created on; shards
#   0 .. REPORT_SHARDS-1), sk the channel ("sms" | "mms"); numbers only, expiring REPORT_DAYS after
#   their day. A day's figures are the sum of its REPORT_SHARDS items per channel.
# - Markers: pk "applied#<stream eventID>", sk "-": the stream record was counted (written in the same
#   transaction as its counts), expiring after a couple of days (the stream keeps records 24 hours).
# - Exports: pk "export#<export id>", sk "-": a CSV export's state and progress, expiring with its file.
REPORTS_KEY = "pk"
REPORTS_SORT = "sk"
REPORTS_TTL = "expiresAt"
REPORTS_DAILY = "daily#"
REPORTS_APPLIED = "applied#"
REPORTS_EXPORT = "export#"
REPORTS_ONE = "-"  # the sort key of an item that is alone in its partition
REPORT_SHARDS = 16
REPORT_DAYS = 400
# S3 key prefix of the CSV exports, in the media bucket (a lifecycle rule expires them).
EXPORTS_PREFIX = "exports/"
EXPORT_DAYS = 7
