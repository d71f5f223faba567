"""Table layouts, shared by the app, the CDK stack and the local stack so they cannot drift."""

MESSAGES_KEY = "id"
# GET /messages lists newest first from this index: one partition, sorted by createdAt#id.
MESSAGES_LIST_INDEX = "byCreatedAt"
MESSAGES_LIST_PARTITION = "listKey"
MESSAGES_LIST_SORT = "sortKey"
# Delivery receipts carry the provider's message id; this index finds our record from it.
MESSAGES_PROVIDER_INDEX = "byProviderMessageId"
MESSAGES_PROVIDER_KEY = "providerMessageId"
MESSAGES_TTL = "expiresAt"

IDEMPOTENCY_KEY = "id"
IDEMPOTENCY_TTL = "expiration"

# S3 key prefix under which POST /media puts uploads.
MEDIA_PREFIX = "media/"

# POST /batches: each message record carries its batch id; GET /batches/{id} counts from this index.
MESSAGES_BATCH_INDEX = "byBatchId"
MESSAGES_BATCH_KEY = "batchId"
MESSAGES_BATCH_PROJECTION = ("status",)
# Items of the messages table that are not messages carry an id with one of these prefixes:
# the batch summary, and the per-recipient pacing gate of the batch worker.
BATCH_ID_PREFIX = "batch-"
RECIPIENT_GATE_PREFIX = "recipient#"
