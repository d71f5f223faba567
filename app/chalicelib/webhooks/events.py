"""The webhook fan-out function: the messages table's stream in, one delivery-queue message per event
and subscribed endpoint out.

An event is made for each change of the status the API shows, to ``sent``, ``delivered``, ``failed``,
``unknown``, ``scheduled`` (a message recorded with ``sendAt``) or ``canceled`` (never to ``queued``, nor a
dry run's ``validated``), and for each reply stored (``received``: ``message.received``; read its body with
GET /messages/{id}): ``{"type": "message.<status>",
"timestamp": <updatedAt>, "data": <the message as GET /messages/{id} shows it, less body>}``. Its id is
made from the message, the status and the time of the change, so a stream batch handed over twice makes
the same ids, and receivers drop the duplicates. The payload text is serialised here, once: every
retry sends (and signs) the same bytes.
"""
from __future__ import annotations

import base64
import hashlib
import json
import time

from ..core import aws, schema, store
from ..core.log import logger
from ..core.settings import Settings, get_settings
from . import endpoints as webhooks

SQS_BATCH = 10  # SendMessageBatch takes at most 10 entries


def event_id(message_id: str, status: str, at) -> str:
    """The same status change gives the same id however often the stream hands it over."""
    digest = hashlib.sha256(f"{message_id}|{status}|{at}".encode()).digest()
    return "msg_" + base64.b32encode(digest).decode("ascii")[:26].lower()


def event_for(record: dict) -> dict | None:
    """The event one stream record makes (``{"id", "type", "timestamp", "data"}``), or None."""
    if record.get("eventName") not in ("INSERT", "MODIFY"):
        return None
    images = record.get("dynamodb") or {}
    if not images.get("NewImage"):
        return None
    new = store.from_item(images["NewImage"])
    message_id = new.get(schema.MESSAGES_KEY)
    if not isinstance(message_id, str) or message_id.startswith(schema.BATCH_ID_PREFIX) or "status" not in new:
        return None  # a batch summary, or an item that is not a message
    old = store.from_item(images["OldImage"]) if images.get("OldImage") else {}
    status = store.shown_status(new["status"])
    if status not in webhooks.EVENT_STATUSES or status == store.shown_status(old.get("status")):
        return None
    data = store.public(new)
    data.pop("body", None)
    return {"id": event_id(message_id, status, new.get("statusAt") or new.get("updatedAt")),
            "type": f"message.{status}", "timestamp": new.get("updatedAt"), "data": data}


def payload(event: dict) -> str:
    """The exact text POSTed (and signed), made once."""
    return json.dumps({"type": event["type"], "timestamp": event["timestamp"], "data": event["data"]},
                      separators=(",", ":"), default=str)


def _enabled_endpoints(settings: Settings) -> list[dict]:
    """Read at every invocation (one Query for up to 100 stream records): an endpoint gets the events
    of every change written after it was created, in every instance."""
    return [e for e in webhooks.all_endpoints(settings) if e.get("enabled")]


def fanout(event: dict, context=None) -> dict:
    """DynamoDB stream records -> one delivery-queue message per (event, subscribed endpoint). Any
    failure raises, so the stream hands the batch over again (the event ids stay the same)."""
    settings = get_settings()
    events = [e for e in (event_for(r) for r in event.get("Records", [])) if e is not None]
    if not events:
        return {"events": 0, "queued": 0}
    webhooks.configured(settings)
    endpoints = _enabled_endpoints(settings)
    created = webhooks.now_iso()
    bodies = []
    for e in events:
        text = payload(e)
        bodies += [json.dumps({"eventId": e["id"], "endpointId": endpoint[schema.WEBHOOKS_SORT], "type": e["type"],
                               "payload": text, "createdAt": created}, separators=(",", ":"))
                   for endpoint in endpoints if e["type"] in endpoint["events"]]
    _enqueue(settings, bodies)
    logger.info("webhook events", extra={"events": len(events), "queued": len(bodies)})
    return {"events": len(events), "queued": len(bodies)}


def _enqueue(settings: Settings, bodies: list[str]) -> None:
    """SendMessageBatch, 10 at a time, sending again the entries SQS reports failed; raises if some
    are still refused (the stream then retries the whole batch)."""
    client = aws.client("sqs")
    for start in range(0, len(bodies), SQS_BATCH):
        pending = {str(i): body for i, body in enumerate(bodies[start:start + SQS_BATCH])}
        for attempt in range(5):
            response = client.send_message_batch(QueueUrl=settings.webhook_queue_url, Entries=[
                {"Id": key, "MessageBody": body} for key, body in pending.items()])
            pending = {f["Id"]: pending[f["Id"]] for f in response.get("Failed", [])}
            if not pending:
                break
            time.sleep(0.1 * 2 ** attempt)
        else:
            raise RuntimeError(f"the delivery queue refused {len(pending)} webhook messages")
