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
# The batch summary sits in the messages table under an id with this prefix (it is not a message).
BATCH_ID_PREFIX = "batch-"
# The batch worker's per-recipient pacing gate sits in the idempotency table (short-lived keys,
# cleaned by the same TTL) under ids with this prefix, which idempotency keys never have.
RECIPIENT_GATE_PREFIX = "recipient#"
