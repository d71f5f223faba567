"""``/opt-outs``: the stage's opt-out list (``optouts.py``) read, added to and taken from through the API.

AWS keeps lists of its own, and the routes keep them in step:
- End User Messaging (a stage whose identity has two-way on: ``OPT_OUT_LIST_NAME``): the identity's
  opt-out list, which AWS fills itself from STOP replies. ``PUT`` adds the number to it
  (``PutOptedOutNumber``), ``DELETE`` removes it (``DeleteOptedOutNumber``: once every 30 days per
  number), and ``GET`` reads it (``DescribeOptedOutNumbers``).
- SNS (``SMS_PROVIDER=sns``): the account's list, filled from STOP replies to SNS's numbers. SNS has
  no call that adds a number, so on an SNS stage ``PUT`` puts it on the app's list only, and the app
  refuses the sends itself. ``DELETE`` opts the number back in (``OptInPhoneNumber``: once every 30
  days) when SNS has it opted out (``CheckIfPhoneNumberIsOptedOut``); ``GET /opt-outs`` lists it
  (``ListPhoneNumbersOptedOut``).

An opt-in through the API is kept per number (``schema.OPT_INS``, ``lastOptInAt``): a second one
within 30 days is 409 ``OptInTooSoon``, naming the date, as AWS would refuse it.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from datetime import datetime, timezone

import phonenumbers
from botocore.exceptions import BotoCoreError, ClientError

from ..core import aws, schema, store
from ..core.errors import Conflict, InvalidRequest, NotConfigured, NotFound, aws_errors, from_aws
from ..core.log import logger, mask
from ..core.settings import Settings
from .optouts import API, OPT_IN_INTERVAL, RECIPIENT, add, history_expiry, key, opted_out_among, stored

MAX_NUMBER_LENGTH = 64
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def configured(settings: Settings) -> Settings:
    if not settings.webhooks_table:
        raise NotConfigured("OptOutsNotConfigured", "This stage has no settings table (WEBHOOKS_TABLE) to keep its "
                            "opt-out list in.")
    return settings


def _provider(call, **params) -> dict:
    """An End User Messaging or SNS call, its errors mapped by ``errors.from_aws``."""
    try:
        return call(**params)
    except (ClientError, BotoCoreError) as exc:
        raise from_aws(exc) from None


def number_of(raw) -> str:
    """The number a path names, in E.164: ``+`` then digits (``%2B`` for the ``+`` in a URL), a number
    that exists (phonenumbers). Anything else is 400 ``InvalidPhoneNumber``."""
    text = urllib.parse.unquote(raw) if isinstance(raw, str) else ""
    invalid = InvalidRequest("InvalidPhoneNumber", "The number must be a valid phone number in E.164 form, "
                             "such as +14155550100 (in a URL, the + as %2B).", field="number")
    if not text.startswith("+") or len(text) > MAX_NUMBER_LENGTH or _CONTROL.search(text):
        raise invalid
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise invalid from None
    if not phonenumbers.is_valid_number(parsed):
        raise invalid
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def public(item: dict) -> dict:
    return {"number": item["number"], "optedOutAt": item.get("optedOutAt"), "source": item.get("source") or RECIPIENT}


def _too_soon(last: str, by: str) -> Conflict:
    last_at = datetime.fromisoformat(last.replace("Z", "+00:00"))
    allowed = last_at + OPT_IN_INTERVAL
    next_at = store.now_iso(max(allowed, datetime.now(timezone.utc)))
    wait = max(1, int((allowed - datetime.now(timezone.utc)).total_seconds()))
    return Conflict("OptInTooSoon", f"This number was opted in through the API at {last}; {by} allows one opt-in "
                                    f"per number every 30 days, so the next can be at {next_at} or later.",
                    retry_after=wait)


def _eum_entry(settings: Settings, number: str) -> dict | None:
    """The number on End User Messaging's opt-out list, or None."""
    client = aws.client("pinpoint-sms-voice-v2")
    try:
        found = client.describe_opted_out_numbers(OptOutListName=settings.opt_out_list_name,
                                                  OptedOutNumbers=[number]).get("OptedOutNumbers") or []
    except client.exceptions.ResourceNotFoundException as missing:
        if missing.response.get("ResourceType") == "opted-out-number":
            return None
        raise from_aws(missing) from None
    except (ClientError, BotoCoreError) as exc:
        raise from_aws(exc) from None
    return _from_eum(found[0]) if found else None


def _from_eum(entry: dict) -> dict:
    number = entry["OptedOutNumber"]
    stamp = entry.get("OptedOutTimestamp")
    return {"number": number if number.startswith("+") else "+" + number,
            "optedOutAt": store.now_iso(stamp) if isinstance(stamp, datetime) else None,
            "source": RECIPIENT if entry.get("EndUserOptedOut") else API}


def _sns_opted_out(number: str) -> bool:
    return bool(_provider(aws.client("sns").check_if_phone_number_is_opted_out, phoneNumber=number)["isOptedOut"])


@aws_errors("read the opt-out list")
def get(raw_number: str, settings: Settings) -> dict:
    """``GET /opt-outs/{number}``: the app's entry, else End User Messaging's, else SNS's (which has
    no date)."""
    number = number_of(raw_number)
    configured(settings)
    ours = stored(settings, schema.OPT_OUTS, number)
    if ours is not None:
        return public(ours)
    if settings.opt_out_list_name and (entry := _eum_entry(settings, number)) is not None:
        return entry
    if settings.sms_provider == "sns" and _sns_opted_out(number):
        return {"number": number, "optedOutAt": None, "source": RECIPIENT}
    raise NotFound("OptOutNotFound", "This number is not on the stage's opt-out list.")


@aws_errors("update the opt-out list")
def put(raw_number: str, settings: Settings) -> tuple[int, dict]:
    """``PUT /opt-outs/{number}``: 201 with the new entry, or 200 with the one already there."""
    number = number_of(raw_number)
    configured(settings)
    ours = stored(settings, schema.OPT_OUTS, number)
    if ours is not None:
        return 200, public(ours)
    at, source = store.now_iso(), API
    if settings.opt_out_list_name:
        answer = _provider(aws.client("pinpoint-sms-voice-v2").put_opted_out_number,
                           OptOutListName=settings.opt_out_list_name, OptedOutNumber=number)
        aws_entry = _from_eum({**answer, "OptedOutNumber": number})
        at, source = aws_entry["optedOutAt"] or at, aws_entry["source"]
    entry, added = add(settings, number, at, source)
    logger.info("opt-out added" if added else "opt-out already there", extra={"number": mask(number)})
    return (201 if added else 200), public(entry)


@aws_errors("update the opt-out list")
def delete(raw_number: str, settings: Settings) -> None:
    """``DELETE /opt-outs/{number}``: opt the number back in, on the app's list and on AWS's. Once
    every 30 days per number (409 ``OptInTooSoon``); 404 ``OptOutNotFound`` when no list has it."""
    number = number_of(raw_number)
    configured(settings)
    client, table = aws.client("dynamodb"), settings.webhooks_table
    history = stored(settings, schema.OPT_INS, number) or {}
    previous = history.get("lastOptInAt")
    now = store.now_iso()
    if previous and datetime.fromisoformat(previous.replace("Z", "+00:00")) + OPT_IN_INTERVAL > \
            datetime.now(timezone.utc):
        raise _too_soon(previous, "AWS")
    # Claim this opt-in first (so two at once cannot both pass), and give the claim back if nothing
    # was opted in after all.
    condition, values = "attribute_not_exists(#last)", {":now": {"S": now}, ":ttl": {"N": str(history_expiry())}}
    if previous:
        condition, values[":previous"] = "#last = :previous", {"S": previous}
    try:
        client.update_item(TableName=table, Key=key(schema.OPT_INS, number),
                           UpdateExpression="SET #last = :now, #ttl = :ttl", ConditionExpression=condition,
                           ExpressionAttributeNames={"#last": "lastOptInAt", "#ttl": schema.WEBHOOKS_TTL},
                           ExpressionAttributeValues=values)
    except client.exceptions.ConditionalCheckFailedException:
        raise _too_soon(now, "AWS") from None  # another opt-in of this number just now
    try:
        found = _opt_in_at_aws(number, settings)
        ours = client.delete_item(TableName=table, Key=key(schema.OPT_OUTS, number),
                                  ReturnValues="ALL_OLD").get("Attributes")
        if not (found or ours):
            raise NotFound("OptOutNotFound", "This number is not on the stage's opt-out list.")
    except BaseException:
        _give_back(settings, number, now, previous)
        raise
    logger.info("opted back in", extra={"number": mask(number)})


def _opt_in_at_aws(number: str, settings: Settings) -> bool:
    """Take the number off AWS's lists that have it; whether any had it."""
    found = False
    if settings.opt_out_list_name:
        client = aws.client("pinpoint-sms-voice-v2")
        try:
            client.delete_opted_out_number(OptOutListName=settings.opt_out_list_name, OptedOutNumber=number)
            found = True
        except client.exceptions.ResourceNotFoundException as missing:
            if missing.response.get("ResourceType") != "opted-out-number":
                raise from_aws(missing) from None
        except (ClientError, BotoCoreError) as exc:
            raise from_aws(exc) from None
    if settings.sms_provider == "sns" and _sns_opted_out(number):
        _provider(aws.client("sns").opt_in_phone_number, phoneNumber=number)
        found = True
    return found


def _give_back(settings: Settings, number: str, claimed: str, previous: str | None) -> None:
    """Undo this call's claim on the number's opt-in (only if it is still this call's)."""
    update = {"UpdateExpression": "SET #last = :previous", "ExpressionAttributeValues": {
        ":previous": {"S": previous}, ":claimed": {"S": claimed}}} if previous else {
        "UpdateExpression": "REMOVE #last", "ExpressionAttributeValues": {":claimed": {"S": claimed}}}
    try:
        aws.client("dynamodb").update_item(TableName=settings.webhooks_table, Key=key(schema.OPT_INS, number),
                                           ConditionExpression="#last = :claimed",
                                           ExpressionAttributeNames={"#last": "lastOptInAt"}, **update)
    except (ClientError, BotoCoreError) as exc:
        logger.warning("could not give back the opt-in claim", extra={"number": mask(number),
                                                                       "reason": type(exc).__name__})


# -- GET /opt-outs: the app's list, then the provider's entries the app's list lacks ----------------

_PHASES = ("app", "eum", "sns")
_MAX_CURSOR = 2048


def _phases(settings: Settings) -> tuple[str, ...]:
    """The lists ``GET /opt-outs`` reads, in order: the app's, the identity's End User Messaging list
    (two-way stages), SNS's account list (SNS stages; both on an SNS stage with a two-way number)."""
    return ("app",) + (("eum",) if settings.opt_out_list_name else ()) + (
        ("sns",) if settings.sms_provider == "sns" else ())


def _encode_token(phase: str, after: str | None, skip: int = 0) -> str:
    plain = json.dumps({"phase": phase, "after": after, "skip": skip}, separators=(",", ":"))
    return base64.urlsafe_b64encode(plain.encode()).decode().rstrip("=")


def _decode_token(token: str, phases: tuple[str, ...]) -> tuple[str, str | None, int]:
    try:
        plain = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        if not isinstance(plain, dict) or set(plain) != {"phase", "after", "skip"} or plain["phase"] not in phases:
            raise ValueError
        after, skip = plain["after"], plain["skip"]
        if after is not None and (not isinstance(after, str) or not after or len(after) > _MAX_CURSOR
                                  or not after.isprintable()):
            raise ValueError
        if not isinstance(skip, int) or isinstance(skip, bool) or not 0 <= skip <= 100:
            raise ValueError
        if after:
            after.encode("utf-8")  # no lone surrogate
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidRequest("InvalidNext", "'next' is not a token this API returned.", field="next") from None
    return plain["phase"], after, skip


@aws_errors("read the opt-out list")
def listing(limit: int, token: str | None, settings: Settings) -> dict:
    """``GET /opt-outs``: ``{"optOuts": [...], "next"}``. The app's list first (by number), then the
    entries of the provider's list it lacks (End User Messaging's, or on an SNS stage the account's).
    A page may hold fewer than ``limit`` entries; ``next`` is null once nothing is left."""
    configured(settings)
    phases = _phases(settings)
    phase, after, skip = _decode_token(token, phases) if token else ("app", None, 0)
    pages = {"app": _app_page, "eum": _eum_page, "sns": _sns_page}
    found: list[dict] = []
    while True:
        entries, cursor = pages[phase](settings, after, skip, limit - len(found))
        found += entries
        if cursor is not None:
            after, skip = cursor
        elif phase == phases[-1]:
            return {"optOuts": found, "next": None}
        else:  # this list is done: on to the next
            phase, after, skip = phases[phases.index(phase) + 1], None, 0
        if len(found) >= limit:
            return {"optOuts": found, "next": _encode_token(phase, after, skip)}


# Each reads one page of a list from a cursor (``after``: where the page starts, None for the first;
# ``skip``: entries of that page already listed) and returns (entries, at most ``limit``; the cursor
# of the rest, or None when the list is done).
Cursor = tuple[str | None, int]


def _app_page(settings: Settings, after: str | None, _skip: int, limit: int) -> tuple[list[dict], Cursor | None]:
    params = {"TableName": settings.webhooks_table, "KeyConditionExpression": "#pk = :pk", "Limit": limit,
              "ExpressionAttributeNames": {"#pk": schema.WEBHOOKS_KEY},
              "ExpressionAttributeValues": {":pk": {"S": schema.OPT_OUTS}}}
    if after:
        params["ExclusiveStartKey"] = key(schema.OPT_OUTS, after)
    response = aws.client("dynamodb").query(**params)
    last = response.get("LastEvaluatedKey")
    entries = [public(store.from_item(item)) for item in response.get("Items", [])]
    return entries, ((last[schema.WEBHOOKS_SORT]["S"], 0) if last else None)


def _eum_page(settings: Settings, after: str | None, _skip: int, limit: int) -> tuple[list[dict], Cursor | None]:
    params = {"OptOutListName": settings.opt_out_list_name, "MaxResults": max(1, min(limit, 100))}
    if after:
        params["NextToken"] = after
    answer = _provider(aws.client("pinpoint-sms-voice-v2").describe_opted_out_numbers, **params)
    entries = [_from_eum(e) for e in answer.get("OptedOutNumbers", [])]
    ours = opted_out_among([e["number"] for e in entries], settings)
    more = answer.get("NextToken")
    return [e for e in entries if e["number"] not in ours], ((more, 0) if more else None)


def _sns_page(settings: Settings, after: str | None, skip: int, limit: int) -> tuple[list[dict], Cursor | None]:
    """SNS pages hold up to 100 numbers, with no page size to ask for: a page may end mid-way."""
    answer = _provider(aws.client("sns").list_phone_numbers_opted_out, **({"nextToken": after} if after else {}))
    numbers = answer.get("phoneNumbers", [])[skip:]
    ours = opted_out_among(numbers, settings)
    entries = []
    for taken, number in enumerate(numbers, start=1):
        if number not in ours:
            entries.append({"number": number, "optedOutAt": None, "source": RECIPIENT})
        if len(entries) == limit and taken < len(numbers):
            return entries, (after, skip + taken)
    more = answer.get("nextToken")
    return entries, ((more, 0) if more else None)
