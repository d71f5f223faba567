"""The members each send request's JSON body may have: any other is 400 ``UnknownField`` (``core.inputs.only``).

The routes declare them when the API function starts; ``validation`` and ``batches`` read them on a send."""

# Fields that cap a message's life and price: on POST /sms, /mms, each batch item, and a batch as a whole
# (there the default of its items).
LIMIT_FIELDS = frozenset({"validityPeriod", "maxPriceUsd"})
# A send from a template gives these instead of ``body`` (``templated``).
TEMPLATE_FIELDS = frozenset({"templateId", "templateVersion", "personalisation"})
SMS_FIELDS = frozenset({"to", "country", "body", "type", "senderId", "dryRun", "sendAt"}) | LIMIT_FIELDS | TEMPLATE_FIELDS
MMS_FIELDS = frozenset({"to", "country", "body", "mediaUrl", "dryRun", "sendAt"}) | LIMIT_FIELDS | TEMPLATE_FIELDS
# POST /batches: its items, and what applies to all of them (a template, the limits' defaults, the send time).
BATCH_FIELDS = frozenset({"messages", "templateId", "templateVersion", "sendAt"}) | LIMIT_FIELDS
MEDIA_FIELDS = frozenset({"contentType", "size"})
