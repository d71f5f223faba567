"""Bulk sends: ``POST /batches`` validates each item, records the accepted ones as ``queued`` and
puts them on the batch queue; the worker (``worker.py``) sends them at the stage's pace. An item to a
number on the stage's opt-out list is rejected (``RecipientOptedOut``), and the worker checks again
before it sends.

A personalised batch names a template once (``{"templateId", "messages": [{"to", "personalisation"}]}``); an
item may name its own instead. Each template version is read once per batch, and each item rendered on its own
(``templated``): an item that fails comes back in ``rejected`` with its index.

``validityPeriod`` and ``maxPriceUsd`` given on the batch are the default of every item that does not name its
own (an item's own value, null included, wins).

With ``sendAt`` the whole batch is recorded ``scheduled`` and leaves at that time (``schedule``);
``POST /batches/{id}/cancel`` cancels what of it is still waiting."""
from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import BotoCoreError, ClientError

from ..core import aws, inputs, pages, schema, store
from ..core.errors import Conflict, InvalidRequest, MessagingError, NotConfigured, NotFound, aws_errors, before_send
from ..core.log import logger
from ..core.settings import Settings
from ..core.caller import Caller
from ..replies import optouts
from . import fields, messages, schedule, templated, validation

MAX_ITEMS = 1000
# The statuses GET /batches/{id} counts (a batch item cannot be a dry run, so never ``validated``).
COUNTED = (store.QUEUED, store.SENT, store.DELIVERED, store.FAILED, store.UNKNOWN, store.SCHEDULED, store.CANCELED)
SQS_BATCH = 10  # SendMessageBatch takes at most 10 entries
# An item: an SMS's fields or an MMS's, and which it is (a dryRun is refused by name: a batch cannot be one).
# ``sendAt`` is the whole batch's (a member of the request), never an item's.
ITEM_FIELDS = (fields.SMS_FIELDS | fields.MMS_FIELDS | {"channel"}) - {"sendAt"}


class _Templates:
    """The template versions a batch sends from, each read once: the batch's own (``templateId``), and those its
    items name. A version that cannot be read rejects each item that names it, with the same error."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.read: dict[tuple, object] = {}

    def get(self, chosen: templated.Asked):
        key = (repr(chosen.template_id), chosen.version)
        if key not in self.read:
            try:
                self.read[key] = templated.fetch(chosen, self.settings)
            except MessagingError as err:
                self.read[key] = err
        if isinstance(self.read[key], MessagingError):
            raise self.read[key]
        return self.read[key]


def _parse(item, settings: Settings, checked_media: dict, templates: _Templates,
           batch_template: templated.Asked | None = None, defaults: dict | None = None) -> validation.Outbound:
    if not isinstance(item, dict):
        raise InvalidRequest("InvalidJson", "Each item of 'messages' must be a JSON object.")
    inputs.only(item, ITEM_FIELDS)
    item = {**(defaults or {}), **item}
    chosen = templated.asked(item, batch_template)
    template = templates.get(chosen) if chosen else None
    channel = item.get("channel", template.channel if template else "mms" if "mediaUrl" in item else "sms")
    if channel not in ("sms", "mms"):
        raise InvalidRequest("InvalidChannel", "'channel' must be 'sms' or 'mms'.", field="channel")
    if item.get("dryRun") is True:
        raise InvalidRequest("DryRunNotSupported", (
            "A batch item cannot be a dry run: the worker sends at the stage's pace. "
            "Validate one message with POST /sms or POST /mms and \"dryRun\": true."), field="dryRun")
    if template:
        message = templated.rendered(channel, item, settings, template)
    else:
        message = templated.PARSERS[channel](item, settings)
    if channel == "mms":  # one media preflight per distinct mediaUrl in the batch
        if message.media_url not in checked_media:
            try:
                messages.check_channel(message, settings)
                checked_media[message.media_url] = None
            except MessagingError as err:
                checked_media[message.media_url] = err
        if checked_media[message.media_url] is not None:
            raise checked_media[message.media_url]
    return message


def _defaults(data: dict) -> dict:
    """The batch's own ``validityPeriod`` and ``maxPriceUsd``, checked as an item's are: a wrong one is a 400
    for the whole batch, naming it."""
    validation.validity_period(data)
    validation.max_price(data)
    return {name: data[name] for name in fields.LIMIT_FIELDS if data.get(name) is not None}


def submit(data: dict, settings: Settings, caller: Caller | None = None) -> dict:
    """Validate, record and enqueue. Returns ``{"id", "accepted", "rejected": [{"index", "error"}]}``."""
    items = data.get("messages")
    if not isinstance(items, list) or not items:
        raise InvalidRequest("MissingField", "'messages' must be a non-empty list of messages.", field="messages")
    if len(items) > MAX_ITEMS:
        raise InvalidRequest("BatchTooLarge", f"A batch holds at most {MAX_ITEMS} messages; this one has {len(items)}.",
                             field="messages")
    defaults = _defaults(data)
    send_at = validation.send_at(data.get("sendAt"))
    if not settings.batch_queue_url:
        raise NotConfigured("BatchesNotConfigured", "This stage has no batch queue (BATCH_QUEUE_URL).")
    templates = _Templates(settings)
    batch_template = templated.asked({"templateId": data.get("templateId"),
                                      "templateVersion": data.get("templateVersion")})
    if batch_template is not None:
        templates.get(batch_template)  # a batch's own template must be there: else the whole request is refused
    batch_id = f"{schema.BATCH_ID_PREFIX}{uuid.uuid4()}"
    parsed, rejected, checked_media = [], [], {}
    for index, item in enumerate(items):
        try:
            message = _parse(item, settings, checked_media, templates, batch_template, defaults)._replace(
                send_at=send_at)
            parsed.append((index, message._replace(key_id=caller.key_id, test=caller.test) if caller else message))
        except MessagingError as err:
            rejected.append({"index": index, "error": err.as_dict()})
    try:
        opted_out = optouts.opted_out_among([message.to for _, message in parsed], settings)
    except (ClientError, BotoCoreError) as exc:
        raise before_send(exc, "check the opt-out list") from exc
    records = []
    for index, message in parsed:
        if message.to in opted_out:
            rejected.append({"index": index, "error": optouts.opted_out_error().as_dict()})
            continue
        records.append(messages.new_record(message, settings,
                                           **{schema.MESSAGES_BATCH_KEY: batch_id, "batchIndex": index}))
    summary = {"id": batch_id, "kind": "batch", "createdAt": store.now_iso(), "size": len(items),
               "rejected": len(rejected), "keyId": caller.key_id if caller else None,
               "test": bool(caller and caller.test)}
    if send_at is not None:
        summary["sendAt"] = send_at
    store.create_many(records, extra=summary)
    # Now: every record. Scheduled: those the API puts on the queue itself, delayed (the sweep takes the rest).
    now = [r for r in records if r["status"] == store.QUEUED]
    held = [r for r in records if r["status"] == store.SCHEDULED and schedule.queued_by_api(r)]
    lost = _enqueue(settings, batch_id, now) + _enqueue_held(settings, batch_id, held)
    for record, error in lost:
        store.transition(record["id"], store.FAILED, expect=(record["status"],), error=error)
        rejected.append({"index": record["batchIndex"], "error": error})
    rejected.sort(key=lambda r: r["index"])
    accepted = len(items) - len(rejected)
    logger.info("batch accepted", extra={"batchId": batch_id, "accepted": accepted, "rejected": len(rejected)})
    return {"id": batch_id, "accepted": accepted, "rejected": rejected}


def _enqueue(settings: Settings, batch_id: str, records: list[dict]) -> list[tuple[dict, dict]]:
    """SendMessageBatch, 10 at a time, retrying entries SQS reports as failed. Returns the records
    that could not be enqueued, each with the error to record."""
    client = aws.client("sqs")
    lost = []
    for start in range(0, len(records), SQS_BATCH):
        pending = {str(i): r for i, r in enumerate(records[start:start + SQS_BATCH])}
        failures = {}
        for attempt in range(4):
            entries = [{"Id": key, "MessageBody": json.dumps({"messageId": r["id"], "batchId": batch_id})}
                       for key, r in pending.items()]
            response = client.send_message_batch(QueueUrl=settings.batch_queue_url, Entries=entries)
            failures = {f["Id"]: f for f in response.get("Failed", [])}
            pending = {key: pending[key] for key in failures}
            if not pending:
                break
            time.sleep(0.1 * 2 ** attempt)
        for key, record in pending.items():
            lost.append((record, {"code": "EnqueueFailed",
                                  "message": f"The batch queue refused this message: {failures[key].get('Code')}."}))
    return lost


def _enqueue_held(settings: Settings, batch_id: str, records: list[dict]) -> list[tuple[dict, dict]]:
    """Scheduled records the API queues itself, each delayed until the batch's ``sendAt``; those SQS refused."""
    if not records:
        return []
    by_id = {r["id"]: r for r in records}
    refused = schedule.enqueue(settings, [(r["id"], r["sendAt"], batch_id) for r in records])
    return [(by_id[message_id], {"code": "EnqueueFailed", "message": messages.ENQUEUE_FAILED})
            for message_id in refused]


def _summary(batch_id: str, test: bool) -> dict:
    summary = store.get(batch_id) if batch_id.startswith(schema.BATCH_ID_PREFIX) else None
    if summary is None or summary.get("kind") != "batch" or bool(summary.get("test")) != test:
        raise NotFound("BatchNotFound", f"No batch with id {batch_id}.")
    return summary


def progress(batch_id: str, *, test: bool = False, statuses: dict[str, str] | None = None) -> dict:
    """Counts per status for a batch (a test key sees only test keys' batches, a live key only the others).
    ``statuses``: each message's status, when the caller has just read (and changed) them."""
    summary = _summary(batch_id, test)
    if statuses is None:
        counts = pages.count_batch(batch_id)
    else:
        counts = {}
        for status in statuses.values():
            counts[status] = counts.get(status, 0) + 1
    result = {"id": batch_id, "createdAt": summary["createdAt"], "size": summary["size"],
              "rejected": summary["rejected"]}
    for status in COUNTED:
        result[status] = counts.get(status, 0)
    # Every other status is final: delivered, failed, canceled, or unknown (no carrier receipt in 72 hours).
    result["done"] = result[store.QUEUED] == 0 and result[store.SENT] == 0 and result[store.SCHEDULED] == 0
    return result


@aws_errors("cancel the batch")
def cancel(batch_id: str, *, test: bool = False) -> dict:
    """``POST /batches/{id}/cancel``: every message of the batch still ``scheduled`` to ``canceled``, each in one
    conditional write (16 at once; one the worker claimed meanwhile is left to it). Returns the batch's
    progress. None of them scheduled: 409 ``NotCancelable``. The batch index is eventually consistent: a
    message that changed in the last moment may not show its new status yet."""
    _summary(batch_id, test)
    statuses = pages.batch_statuses(batch_id)
    waiting = [message_id for message_id, shown in statuses.items() if shown == store.SCHEDULED]

    def one(message_id: str) -> bool:
        return store.transition(message_id, store.CANCELED, expect=(store.SCHEDULED,)) is not None

    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="cancel") as pool:
        won = [message_id for message_id, canceled in zip(waiting, pool.map(one, waiting)) if canceled]
    if not won:
        raise Conflict("NotCancelable", "No message of this batch is still scheduled: there is nothing to cancel.")
    for message_id in won:
        statuses[message_id] = store.CANCELED
    logger.info("scheduled batch canceled", extra={"batchId": batch_id, "canceled": len(won),
                                                   "notCanceled": len(waiting) - len(won)})
    return progress(batch_id, test=test, statuses=statuses)
