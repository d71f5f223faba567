"""The stage's opt-out list: who asked to get no more messages, checked before every send.

The app keeps its own list in the stage's settings table (the webhooks table, ``schema.OPT_OUTS``):
a number goes on it when the recipient replies with an opt-out keyword (``inbound.py``), when
``PUT /opt-outs/{number}`` puts it there (``optout_routes.py``), or when the provider refuses a send as
opted out. Every send checks it with one GetItem (a batch with BatchGetItem), before anything is
recorded or sent: no provider call per send.
"""

from __future__ import annotations

import time
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError

from ..core import aws, schema, store
from ..core.errors import Conflict
from ..core.log import logger, mask
from ..core.settings import Settings

OPTED_OUT = "RecipientOptedOut"
RECIPIENT, API = "recipient", "api"
OPT_OUT, OPT_IN = "opt-out", "opt-in"
OPT_IN_INTERVAL = timedelta(days=30)
# The opt-in history outlives the 30 days it is needed for by a day.
HISTORY_DAYS = 31


def opted_out_error() -> Conflict:
    return Conflict("RecipientOptedOut", "The recipient has opted out of messages from this stage (GET /opt-outs/{number}); "
                               "nothing was sent.", field="to")


# -- the app's list --------------------------------------------------------------------------------

def key(partition: str, number: str) -> dict:
    return {schema.WEBHOOKS_KEY: {"S": partition}, schema.WEBHOOKS_SORT: {"S": number}}


def stored(settings: Settings, partition: str, number: str) -> dict | None:
    item = aws.client("dynamodb").get_item(TableName=settings.webhooks_table, Key=key(partition, number),
                                           ConsistentRead=True).get("Item")
    return store.from_item(item) if item else None


def is_opted_out(number: str, settings: Settings) -> bool:
    """One GetItem: whether the number is on the app's list (a stage without the table has none)."""
    return bool(settings.webhooks_table) and stored(settings, schema.OPT_OUTS, number) is not None


def refuse_opted_out(number: str, settings: Settings) -> None:
    """Raise 409 ``RecipientOptedOut`` for a number on the app's list (DynamoDB's errors go up)."""
    if is_opted_out(number, settings):
        raise opted_out_error()


def opted_out_among(numbers, settings: Settings) -> set[str]:
    """Which of ``numbers`` are on the app's list (BatchGetItem, 100 keys a call)."""
    numbers = sorted(set(numbers))
    if not numbers or not settings.webhooks_table:
        return set()
    items = store.batch_get(settings.webhooks_table, [key(schema.OPT_OUTS, n) for n in numbers],
                            ConsistentRead=True, ProjectionExpression="#sk",
                            ExpressionAttributeNames={"#sk": schema.WEBHOOKS_SORT})
    return {item[schema.WEBHOOKS_SORT]["S"] for item in items}


def add(settings: Settings, number: str, at: str, source: str) -> tuple[dict, bool]:
    """Put the number on the app's list, keeping the first time and source if it is there already.
    Returns (the entry, whether this call added it)."""
    old = aws.client("dynamodb").update_item(
        TableName=settings.webhooks_table, Key=key(schema.OPT_OUTS, number),
        UpdateExpression="SET #number = :number, #at = if_not_exists(#at, :at), #source = if_not_exists(#source, :source)",
        ExpressionAttributeNames={"#number": "number", "#at": "optedOutAt", "#source": "source"},
        ExpressionAttributeValues={":number": {"S": number}, ":at": {"S": at}, ":source": {"S": source}},
        ReturnValues="ALL_OLD").get("Attributes")
    if old and "optedOutAt" in old:
        return store.from_item(old), False
    return {"number": number, "optedOutAt": at, "source": source}, True


def learn(number: str, settings: Settings) -> None:
    """The provider refused a send as opted out: the number goes on the app's list, so the next send
    is refused without asking the provider. Best effort: the refusal stands either way."""
    if not settings.webhooks_table:
        return
    try:
        _, added = add(settings, number, store.now_iso(), RECIPIENT)
        if added:
            logger.info("opt-out learned from the provider", extra={"to": mask(number)})
    except (ClientError, BotoCoreError) as exc:
        logger.warning("could not record the opt-out", extra={"to": mask(number), "reason": type(exc).__name__})


def history_expiry() -> int:
    return int(time.time()) + HISTORY_DAYS * 86400


def record_keyword(number: str, action: str, at: str, settings: Settings) -> bool:
    """A reply keyword at ``at`` (the reply's time): ``OPT_OUT`` puts the number on the app's list
    (``source: "recipient"``), ``OPT_IN`` takes it off. Replies come in any order, and more than once:
    a keyword older than (or as old as) the last one applied for this number changes nothing.
    Returns whether it was applied."""
    if not settings.webhooks_table:
        logger.warning("reply keyword not recorded: no settings table", extra={"from": mask(number)})
        return False
    table = settings.webhooks_table
    history = {"Update": {
        "TableName": table, "Key": key(schema.OPT_INS, number),
        "UpdateExpression": "SET #kw = :at, #ttl = :ttl",
        "ConditionExpression": "attribute_not_exists(#kw) OR #kw < :at",
        "ExpressionAttributeNames": {"#kw": "keywordAt", "#ttl": schema.WEBHOOKS_TTL},
        "ExpressionAttributeValues": {":at": {"S": at}, ":ttl": {"N": str(history_expiry())}}}}
    if action == OPT_OUT:
        change = {"Update": {
            "TableName": table, "Key": key(schema.OPT_OUTS, number),
            "UpdateExpression": "SET #number = :number, #at = if_not_exists(#at, :at), "
                                "#source = if_not_exists(#source, :source)",
            "ExpressionAttributeNames": {"#number": "number", "#at": "optedOutAt", "#source": "source"},
            "ExpressionAttributeValues": {":number": {"S": number}, ":at": {"S": at}, ":source": {"S": RECIPIENT}}}}
    else:
        change = {"Delete": {"TableName": table, "Key": key(schema.OPT_OUTS, number)}}
    client = aws.client("dynamodb")
    try:
        client.transact_write_items(TransactItems=[history, change])
    except client.exceptions.TransactionCanceledException as cancelled:
        reasons = cancelled.response.get("CancellationReasons") or []
        if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
            return False  # a later (or this same) keyword was applied already
        raise
    logger.info("reply keyword applied", extra={"from": mask(number), "action": action})
    return True
