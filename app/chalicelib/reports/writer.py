"""The export function (``export_writer``): one export's messages, streamed as CSV into the media bucket.

The export queue hands it an export id. It reads the messages of the export's days the way listings do: every
shard of the list index's partitions (``messages#<n>``, ``inbound#<n>``; a test key's ``test#<n>``), each a
Query of the sort key (``createdAt#id``) between the first and the day after the last, merged in that order;
the records themselves by BatchGetItem, 100 keys a call, only the columns the file has (never a body). Rows go
out as parts of one S3 multipart upload (``PART_BYTES`` each, above S3's 5 MiB minimum): neither the file nor
its rows pass through a Lambda answer, and memory holds one part at most.

Progress is kept on the export item at each part: the upload, its parts, the rows written and the sort key of
the last row written (``cursor``). When the invocation runs low on time (``RESERVE_SECONDS`` left) it puts the
rest of its buffer in a part if S3 would take it (else the next invocation reads those rows again), hands the
export to a new invocation (the id back on the queue) and ends: an export of any size completes, whatever
Lambda's 15 minutes. Only one invocation works on an export at a time (a lease on the item, held for the
invocation's time); one that finds it held drops its message.

An invocation that fails is retried by the queue; on the ``MAX_RECEIVES``-th receive a failure ends the export
``failed`` with the reason, and the upload is aborted. Columns: ``CSV_FIELDS``; ``templateId`` is empty for a
message sent without a template.
"""
from __future__ import annotations

import csv
import heapq
import io
import itertools
import json
import time
import uuid
from datetime import date, timedelta

from botocore.exceptions import ClientError

from ..core import aws, schema, store
from ..core.log import logger
from ..core.settings import Settings, get_settings
from . import exports

CSV_FIELDS = ("id", "direction", "channel", "to", "from", "status", "errorCode", "segments", "priceUsd",
              "createdAt", "updatedAt", "templateId", "keyId")
# Every part but the last must hold at least 5 MiB (tests/aws_docs/s3-multipart-limits.json).
MIN_PART_BYTES = 5 * 1024 * 1024
PART_BYTES = 8 * 1024 * 1024
RESERVE_SECONDS = 60.0
MAX_RECEIVES = 3
LEASE_MARGIN_SECONDS = 30
READ_KEYS = 100  # BatchGetItem takes at most 100 keys
# The record attributes a row needs (``to`` and ``from`` are DynamoDB reserved words: always by name).
COLUMNS = {"#id": "id", "#direction": "direction", "#channel": "channel", "#to": "to", "#from": "from",
           "#status": "status", "#error": "error", "#segments": "segments", "#price": "priceUsd",
           "#created": "createdAt", "#updated": "updatedAt", "#template": "templateId", "#key": "keyId"}


class Busy(Exception):
    """Another invocation holds the export."""


def _raw(item: dict, name: str) -> str:
    """An attribute as the file shows it: a string or a number exactly as stored; empty when absent or null."""
    value = item.get(name)
    if not isinstance(value, dict):
        return ""
    if "S" in value:
        return value["S"]
    if "N" in value:
        return value["N"]
    if "BOOL" in value:
        return "true" if value["BOOL"] else "false"
    return ""


def row_of(item: dict) -> dict[str, str]:
    """One message record (DynamoDB JSON) as a row of the file."""
    error = (item.get("error") or {}).get("M") or {}
    return {"id": _raw(item, "id"), "direction": _raw(item, "direction") or store.OUTBOUND,
            "channel": _raw(item, "channel"), "to": _raw(item, "to"), "from": _raw(item, "from"),
            "status": store.shown_status(_raw(item, "status")), "errorCode": _raw(error, "code"),
            "segments": _raw(item, "segments"), "priceUsd": _raw(item, "priceUsd"),
            "createdAt": _raw(item, "createdAt"), "updatedAt": _raw(item, "updatedAt"),
            "templateId": _raw(item, "templateId"), "keyId": _raw(item, "keyId")}


def csv_text(rows: list[dict[str, str]], *, header: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\r\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _remaining(context) -> float:
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return 900.0
    return context.get_remaining_time_in_millis() / 1000.0


class Export:
    """One invocation's work on one export."""

    def __init__(self, settings: Settings, export_id: str, context=None, *, part_bytes: int = PART_BYTES,
                 min_part_bytes: int = MIN_PART_BYTES, reserve: float = RESERVE_SECONDS, clock=time.time):
        self.settings, self.export_id, self.context = settings, export_id, context
        self.part_bytes, self.min_part_bytes, self.reserve, self.clock = part_bytes, min_part_bytes, reserve, clock
        self.lease = uuid.uuid4().hex
        self.dynamodb, self.s3 = aws.client("dynamodb"), aws.client("s3")

    # -- the export item ----------------------------------------------------------------------------
    def _update(self, sets: dict, *, removes: tuple[str, ...] = (), condition: str | None = None,
                names: dict | None = None, values: dict | None = None) -> None:
        """Set ``sets`` (and remove ``removes``) on the export item, if ``condition`` holds (by default: this
        invocation holds the lease)."""
        if condition is None:
            condition, names, values = "#lease = :lease", {"#lease": "leaseId"}, {":lease": {"S": self.lease}}
        names = {"#updated": "updatedAt", **(names or {})}
        values = {":now": {"S": store.now_iso()}, **(values or {})}
        parts = ["#updated = :now"]
        for i, (name, value) in enumerate(sets.items()):
            names[f"#s{i}"], values[f":s{i}"] = name, store.encode(value)
            parts.append(f"#s{i} = :s{i}")
        expression = "SET " + ", ".join(parts)
        if removes:
            names.update({f"#r{i}": name for i, name in enumerate(removes)})
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
        self.dynamodb.update_item(TableName=self.settings.reports_table, Key=exports.item_key(self.export_id),
                                  UpdateExpression=expression, ConditionExpression=condition,
                                  ExpressionAttributeNames=names, ExpressionAttributeValues=values)

    def _take(self) -> None:
        """Hold the export for this invocation's time, if it is running and no one else holds it."""
        now = self.clock()
        until = int(now + _remaining(self.context) + LEASE_MARGIN_SECONDS)
        try:
            self._update({"leaseId": self.lease, "leaseUntil": until},
                         condition="#state = :running AND (attribute_not_exists(#until) OR #until < :clock)",
                         names={"#state": "status", "#until": "leaseUntil"},
                         values={":running": {"S": exports.RUNNING}, ":clock": {"N": str(int(now))}})
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            raise Busy() from None

    def _release(self) -> None:
        try:
            self._update({"leaseUntil": 0})
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            pass

    # -- reading the messages -------------------------------------------------------------------------
    def _partitions(self, item: dict) -> list[str]:
        prefixes = store.list_prefixes(bool(item.get("test")))
        # Replies are read whether the stage receives them now or not: a stage that had two-way keeps them.
        kept = [d for d in (store.OUTBOUND, store.INBOUND) if d in prefixes and item.get("direction") in (None, d)]
        return [f"{prefixes[d]}{shard}" for d in kept for shard in range(schema.INDEX_SHARDS)]

    def _keys(self, partition: str, low: str, high: str, after: str | None):
        """(sort key, id) of one partition of the list index, in order, from ``low`` to ``high``."""
        params = {"TableName": self.settings.messages_table, "IndexName": schema.MESSAGES_LIST_INDEX,
                  "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :low AND :high",
                  "ExpressionAttributeNames": {"#pk": schema.MESSAGES_LIST_PARTITION, "#sk": schema.MESSAGES_LIST_SORT},
                  "ExpressionAttributeValues": {":pk": {"S": partition}, ":low": {"S": low}, ":high": {"S": high}}}
        while True:
            response = self.dynamodb.query(**params)
            for found in response.get("Items", []):
                sort_key = found[schema.MESSAGES_LIST_SORT]["S"]
                if sort_key != after:
                    yield sort_key, found[schema.MESSAGES_KEY]["S"]
            if not response.get("LastEvaluatedKey"):
                return
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def messages(self, item: dict, cursor: str | None):
        """(sort key, record or None when it is gone) of the export's days after ``cursor``, oldest first."""
        low = cursor or f"{item['from']}T"
        high = f"{(date.fromisoformat(item['to']) + timedelta(days=1)).isoformat()}T"
        merged = heapq.merge(*(self._keys(p, low, high, cursor) for p in self._partitions(item)))
        while group := list(itertools.islice(merged, READ_KEYS)):
            found = store.batch_get(self.settings.messages_table,
                                    [{schema.MESSAGES_KEY: {"S": message_id}} for _, message_id in group],
                                    ProjectionExpression=", ".join(COLUMNS), ExpressionAttributeNames=COLUMNS)
            by_id = {record["id"]["S"]: record for record in found}
            for sort_key, message_id in group:
                yield sort_key, by_id.get(message_id)

    # -- writing the file ---------------------------------------------------------------------------
    def _part(self, item: dict, upload_id: str, number: int, body: bytes) -> dict:
        answer = self.s3.upload_part(Bucket=self.settings.media_bucket, Key=item["objectKey"], UploadId=upload_id,
                                     PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _complete(self, item: dict, upload_id: str, parts: list[dict], rows: int, *, again: bool = False) -> None:
        try:
            self.s3.complete_multipart_upload(Bucket=self.settings.media_bucket, Key=item["objectKey"],
                                              UploadId=upload_id, MultipartUpload={"Parts": parts})
        except ClientError as err:
            # An earlier invocation completed it and stopped before it could say so.
            if not (again and err.response.get("Error", {}).get("Code") == "NoSuchUpload"):
                raise
        self._update({"status": exports.READY, "rows": rows, "leaseUntil": 0},
                     removes=("uploadId", "parts", "finalParts", "cursor"))

    def _low_on_time(self) -> bool:
        return _remaining(self.context) < self.reserve

    def run(self) -> str:
        """Work on the export until it is written or time runs low: ``ready``, ``continued``, ``over`` (not
        running any more) or ``busy`` (another invocation holds it)."""
        item = exports.load(self.export_id, self.settings)
        if item is None or item.get("status") != exports.RUNNING:
            return "over"
        try:
            self._take()
        except Busy:
            return "busy"
        try:
            return self._work(item)
        finally:
            self._release()

    def _work(self, item: dict) -> str:
        upload_id, rows = item.get("uploadId"), int(item.get("rows") or 0)
        if item.get("finalParts"):
            self._complete(item, upload_id, item["finalParts"], rows, again=True)
            return "ready"
        if not upload_id:
            upload_id = self.s3.create_multipart_upload(Bucket=self.settings.media_bucket, Key=item["objectKey"],
                                                        ContentType="text/csv; charset=utf-8")["UploadId"]
            self._update({"uploadId": upload_id, "parts": []})
        parts, cursor = list(item.get("parts") or []), item.get("cursor")
        buffer = bytearray(b"" if parts else csv_text([], header=True))
        waiting, last = 0, cursor  # rows in the buffer; the sort key of the last message read
        wanted = item.get("messageStatus")

        def flush() -> None:
            nonlocal buffer, waiting, rows, cursor
            parts.append(self._part(item, upload_id, len(parts) + 1, bytes(buffer)))
            rows, cursor, buffer, waiting = rows + waiting, last, bytearray(), 0
            self._update({"parts": parts, "rows": rows, "cursor": cursor})

        for sort_key, record in self.messages(item, cursor):
            if self._low_on_time():
                if len(buffer) >= self.min_part_bytes:
                    flush()
                self._hand_off()
                return "continued"
            last = sort_key
            if record is not None:
                row = row_of(record)
                if wanted is None or row["status"] == wanted:
                    buffer += csv_text([row])
                    waiting += 1
            if len(buffer) >= self.part_bytes:
                flush()
        if buffer or not parts:
            parts.append(self._part(item, upload_id, len(parts) + 1, bytes(buffer)))
            rows += waiting
        self._update({"finalParts": parts, "rows": rows})  # written: a crash from here on completes it again
        self._complete(item, upload_id, parts, rows)
        logger.info("export ready", extra={"exportId": self.export_id, "rows": rows, "parts": len(parts)})
        return "ready"

    def _hand_off(self) -> None:
        """Let go of the export and put it back on the queue: the next invocation goes on from the cursor."""
        self._release()
        aws.client("sqs").send_message(QueueUrl=self.settings.export_queue_url,
                                       MessageBody=json.dumps({"exportId": self.export_id}))
        logger.info("export continues in the next invocation", extra={"exportId": self.export_id})


def _abort(settings: Settings, export_id: str) -> None:
    """Abort the export's upload, if it has one (its parts cost storage until then)."""
    item = exports.load(export_id, settings)
    if item and item.get("uploadId"):
        try:
            aws.client("s3").abort_multipart_upload(Bucket=settings.media_bucket, Key=item["objectKey"],
                                                    UploadId=item["uploadId"])
        except ClientError:
            pass  # the bucket's lifecycle rule aborts it after a day


def handle(event: dict, context=None, *, settings: Settings | None = None, **options) -> dict:
    """SQS records of the export queue (one export id each) -> ``{"batchItemFailures": [...]}``."""
    settings = exports.configured(settings or get_settings())
    failed = []
    for record in event.get("Records", []):
        try:
            export_id = json.loads(record["body"])["exportId"]
            if not isinstance(export_id, str):
                raise TypeError("exportId")
        except (ValueError, KeyError, TypeError):
            logger.error("export message malformed; dropped", extra={"sqsMessageId": record.get("messageId")})
            continue
        receives = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
        try:
            outcome = Export(settings, export_id, context, **options).run()
            logger.info("export invocation", extra={"exportId": export_id, "outcome": outcome})
        except Exception as err:
            logger.exception("export failed", extra={"exportId": export_id, "receive": receives})
            if receives < MAX_RECEIVES:
                failed.append(record["messageId"])
                continue
            try:
                _abort(settings, export_id)
                exports.mark_failed(settings, export_id, f"The export could not be written ({type(err).__name__}).")
            except Exception:
                logger.exception("export not marked failed", extra={"exportId": export_id})
                failed.append(record["messageId"])
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
