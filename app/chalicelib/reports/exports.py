"""``POST /exports`` and ``GET /exports/{id}``: CSV exports of the messages of a range of UTC days.

``POST /exports`` checks the range and the filters, stores the export (``running``) in the reports table and
puts its id on the export queue; the export function (``writer``) does the work. ``GET /exports/{id}``
answers its state: ``running`` (with the rows written so far), ``ready`` (with ``rows`` and a presigned GET
``url`` of the file, valid ``URL_SECONDS``), or ``failed`` (with the ``reason``). The file and the export
expire after ``schema.EXPORT_DAYS`` days.

A test key exports only what test keys sent, and sees only its own kind's exports, as listings do.
"""
from __future__ import annotations

import base64
import json
import re
import secrets
import time
from datetime import datetime, timezone

from botocore.exceptions import BotoCoreError, ClientError

from ..core import aws, schema, store
from ..core.caller import Caller
from ..core.errors import InvalidRequest, NotConfigured, NotFound, aws_errors
from ..core.log import logger
from ..core.settings import Settings
from . import daily

RUNNING, READY, FAILED = "running", "ready", "failed"
URL_SECONDS = 15 * 60
ID_PREFIX = "exp_"
_ID = re.compile(r"exp_[a-z2-7]{26}")


def configured(settings: Settings) -> Settings:
    if not (settings.reports_table and settings.export_queue_url):
        raise NotConfigured("ReportsNotConfigured", "This stage has no reports table or export queue "
                                                    "(REPORTS_TABLE, EXPORT_QUEUE_URL).")
    return settings


def new_id() -> str:
    return ID_PREFIX + base64.b32encode(secrets.token_bytes(20)).decode("ascii")[:26].lower()


def item_key(export_id: str) -> dict:
    return {schema.REPORTS_KEY: {"S": schema.REPORTS_EXPORT + export_id}, schema.REPORTS_SORT: {"S": schema.REPORTS_ONE}}


def object_key(export_id: str) -> str:
    return f"{schema.EXPORTS_PREFIX}{export_id}.csv"


def filters(data: dict) -> tuple[str | None, str | None]:
    """(direction, status) of an export request: each optional."""
    direction, status = data.get("direction"), data.get("status")
    if direction is not None and not (isinstance(direction, str) and direction in store.LIST_PREFIXES):
        raise InvalidRequest("InvalidDirection", "'direction' must be 'outbound' or 'inbound'.", field="direction")
    if status is not None and status not in store.SHOWN_STATUSES:  # a status the API shows, any of them
        raise InvalidRequest("InvalidStatus", f"'status' must be a message status: "
                             f"{', '.join(map(repr, store.SHOWN_STATUSES))}.", field="status")
    return direction, status


def load(export_id: str, settings: Settings) -> dict | None:
    item = aws.client("dynamodb").get_item(TableName=settings.reports_table, Key=item_key(export_id),
                                           ConsistentRead=True).get("Item")
    return store.from_item(item) if item else None


def _iso(seconds: float) -> str:
    return store.now_iso(datetime.fromtimestamp(seconds, timezone.utc))


def url_for(settings: Settings, item: dict) -> str:
    """A presigned GET of the export's file, valid ``URL_SECONDS`` (the API's own right to read the bucket)."""
    name = f"messages-{item['from']}-to-{item['to']}.csv"
    return aws.client("s3").generate_presigned_url("get_object", ExpiresIn=URL_SECONDS, Params={
        "Bucket": settings.media_bucket, "Key": item["objectKey"],
        "ResponseContentDisposition": f'attachment; filename="{name}"', "ResponseContentType": "text/csv"})


def public(item: dict, settings: Settings) -> dict:
    ready = item.get("status") == READY
    return {"id": item["id"], "status": item.get("status"), "from": item["from"], "to": item["to"],
            "filter": {"direction": item.get("direction"), "status": item.get("messageStatus")},
            "rows": int(item.get("rows") or 0), "url": url_for(settings, item) if ready else None,
            "urlExpiresIn": URL_SECONDS if ready else None, "reason": item.get("reason"),
            "createdAt": item.get("createdAt"), "updatedAt": item.get("updatedAt"),
            "expiresAt": _iso(item[schema.REPORTS_TTL]) if item.get(schema.REPORTS_TTL) else None}


@aws_errors("start the export")
def start(data: dict, caller: Caller, settings: Settings, *, now: float | None = None) -> dict:
    """``POST /exports``: the export as stored (``running``), once its id is on the export queue."""
    first, last = daily.parse_range(data.get("from"), data.get("to"), required=True)
    direction, status = filters(data)
    configured(settings)
    now = time.time() if now is None else now
    export_id, stamp = new_id(), _iso(now)
    item = {schema.REPORTS_KEY: schema.REPORTS_EXPORT + export_id, schema.REPORTS_SORT: schema.REPORTS_ONE,
            "id": export_id, "status": RUNNING, "from": first.isoformat(), "to": last.isoformat(),
            "direction": direction, "messageStatus": status, "test": caller.test, "keyId": caller.key_id,
            "rows": 0, "objectKey": object_key(export_id), "createdAt": stamp, "updatedAt": stamp,
            schema.REPORTS_TTL: int(now) + schema.EXPORT_DAYS * 86400}
    client = aws.client("dynamodb")
    client.put_item(TableName=settings.reports_table, Item=store.to_item(item),
                    ConditionExpression="attribute_not_exists(#pk)", ExpressionAttributeNames={"#pk": schema.REPORTS_KEY})
    try:
        aws.client("sqs").send_message(QueueUrl=settings.export_queue_url,
                                       MessageBody=json.dumps({"exportId": export_id}))
    except (ClientError, BotoCoreError):
        mark_failed(settings, export_id, "The export could not be queued; start it again.")
        raise
    logger.info("export started", extra={"exportId": export_id, "days": (last - first).days + 1,
                                         "keyId": caller.key_id, "test": caller.test})
    return public(item, settings)


@aws_errors("read the export")
def get(export_id: str, caller: Caller, settings: Settings) -> dict:
    """``GET /exports/{id}``: the export, if it is this kind of key's (live or test)."""
    if not _ID.fullmatch(export_id or ""):
        raise NotFound("ExportNotFound", "No export with this id.")
    configured(settings)
    item = load(export_id, settings)
    if item is None or bool(item.get("test")) != caller.test:
        raise NotFound("ExportNotFound", "No export with this id.")
    return public(item, settings)


def mark_failed(settings: Settings, export_id: str, reason: str) -> None:
    """The export ends ``failed`` with ``reason`` (unless it is over already)."""
    client = aws.client("dynamodb")
    try:
        client.update_item(TableName=settings.reports_table, Key=item_key(export_id),
                           UpdateExpression="SET #status = :failed, #reason = :reason, #updated = :now",
                           ConditionExpression="#status = :running",
                           ExpressionAttributeNames={"#status": "status", "#reason": "reason", "#updated": "updatedAt"},
                           ExpressionAttributeValues={":failed": {"S": FAILED}, ":running": {"S": RUNNING},
                                                      ":reason": {"S": reason}, ":now": {"S": store.now_iso()}})
    except client.exceptions.ConditionalCheckFailedException:
        pass
