"""Two-way messaging on the stage's End User Messaging phone number or pool: a CloudFormation custom
resource (the CDK Provider framework calls ``on_event``; ``infra/two_way.py`` deploys it). Plain boto3.

- Create and Update turn two-way on for the identity (``UpdatePhoneNumber``, or ``UpdatePool`` for a
  pool), pointing it at the stack's inbound topic and opt-out list, with End User Messaging answering
  HELP and STOP itself (``SelfManagedOptOutsEnabled`` false), and set the stage's keywords (``PutKeyword``).
  No ``TwoWayChannelRole`` is passed: End User Messaging publishes as its service principal, which the
  topic's policy lets in, so no ``iam:PassRole`` is needed.
- Delete puts back what the identity had before: the two-way fields and the answer of every keyword
  the stack set (``DeleteKeyword`` for the ones it added; HELP and STOP, which AWS keeps on every
  identity, get their earlier answers back). An identity that is gone is not an error.

The number is not the stack's, so its earlier settings travel in the PhysicalResourceId, the only
state CloudFormation hands back on Delete: compact JSON (``record``), zlib-compressed when it would
not fit, always under CloudFormation's 1 KB. It is fixed when the resource is created, so an Update
on the same identity keeps the same id (a new id would make CloudFormation delete the old one, which
would turn two-way off). A new identity gets a new id, and CloudFormation's Delete of the old id puts
the old identity back.

Resource properties: ``Identity`` (a PhoneNumberId or PoolId, or its ARN), ``TopicArn``,
``OptOutListName``, ``Keywords`` (``[{"Keyword", "Message", "Action"}]``). ``Data``: ``PhoneNumber``
(E.164) for a phone number. Logs name identities and keywords, never a phone number or an answer.
"""
from __future__ import annotations

import base64
import json
import logging
import zlib

import boto3
from botocore.exceptions import ClientError

MAX_ID_BYTES = 1024  # CloudFormation: "can be up to 1 KB in size"
PROTECTED = ("HELP", "STOP")  # every number and pool has them; DeleteKeyword refuses them
DEFAULT_OPT_OUT_LIST = "Default"  # the list an identity uses unless told otherwise
VERSION = 1

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)
_client = None


class TwoWayError(Exception):
    """A failure CloudFormation shows as the resource's reason."""


def client():
    global _client
    if _client is None:
        _client = boto3.client("pinpoint-sms-voice-v2")
    return _client


def on_event(event, context=None, sms=None):
    sms = sms or client()
    request, props = event["RequestType"], event["ResourceProperties"]
    if request == "Create":
        return create(sms, props)
    if request == "Update":
        return update(sms, props, event["OldResourceProperties"], event["PhysicalResourceId"])
    if request == "Delete":
        return delete(sms, props, event["PhysicalResourceId"])
    raise TwoWayError(f"unknown request type {request!r}")


# -- the identity --------------------------------------------------------------------------------

def is_pool(identity: str) -> bool:
    return identity.startswith("pool-") or ":pool/" in identity


def same_identity(a: str, b: str) -> bool:
    """An id and its ARN name the same identity (``phone-…`` is the ARN's last segment)."""
    return a.rsplit("/", 1)[-1] == b.rsplit("/", 1)[-1] and is_pool(a) == is_pool(b)


def gone(err: ClientError, kinds=("phone-number", "pool")) -> bool:
    return err.response["Error"]["Code"] == "ResourceNotFoundException" and err.response.get("ResourceType") in kinds


def describe(sms, identity: str) -> dict:
    if is_pool(identity):
        (info,) = sms.describe_pools(PoolIds=[identity])["Pools"]
    else:
        (info,) = sms.describe_phone_numbers(PhoneNumberIds=[identity])["PhoneNumbers"]
    return info


def in_a_pool(identity: str, info: dict) -> bool:
    """A phone number that belongs to a pool (a pool's own description names itself)."""
    return not is_pool(identity) and bool(info.get("PoolId"))


def describe_to_change(sms, identity: str) -> dict:
    """The identity, refused with a reason where its two-way settings cannot be changed."""
    try:
        info = describe(sms, identity)
    except ClientError as err:
        if gone(err):
            raise TwoWayError(f"originationIdentity {identity} is not in this account and region") from err
        raise
    if in_a_pool(identity, info):
        raise TwoWayError(f"{identity} belongs to pool {info['PoolId']}: End User Messaging takes a pooled number's "
                          f"two-way settings from its pool, and UpdatePhoneNumber refuses the number; set "
                          f"originationIdentity to {info['PoolId']}")
    return info


def update_identity(sms, identity: str, settings: dict) -> None:
    if is_pool(identity):
        sms.update_pool(PoolId=identity, **settings)
    else:
        sms.update_phone_number(PhoneNumberId=identity, **settings)


def keywords_on(sms, identity: str) -> dict[str, list[str]]:
    """Every keyword of the identity: KEYWORD -> [message, action] (keywords are case-insensitive)."""
    found, token = {}, None
    while True:
        page = sms.describe_keywords(OriginationIdentity=identity, MaxResults=100, **({"NextToken": token} if token else {}))
        for keyword in page.get("Keywords", []):
            found[keyword["Keyword"].upper()] = [keyword["KeywordMessage"], keyword["KeywordAction"]]
        token = page.get("NextToken")
        if not token:
            return found


def wanted(props: dict, info: dict) -> list[tuple[str, str, str]]:
    """The keywords to set: (KEYWORD, message, action). On a US toll-free number the carriers manage
    opt-outs: STOP's answer cannot be changed and no opt-out keyword can be added, so those are left out."""
    keywords = [(k["Keyword"].upper(), k["Message"], k["Action"]) for k in props.get("Keywords", [])]
    if info.get("NumberType") == "TOLL_FREE" and info.get("IsoCountryCode") == "US":
        carrier = [k for k, _, action in keywords if k == "STOP" or action == "OPT_OUT"]
        if carrier:
            logger.info("US toll-free number: the carriers answer %s; not set", ", ".join(carrier))
        keywords = [k for k in keywords if k[0] not in carrier]
    return keywords


# -- the record of earlier settings (the PhysicalResourceId) --------------------------------------

def encode(record: dict) -> str | None:
    text = json.dumps(record, separators=(",", ":"))
    if len(text) <= MAX_ID_BYTES:
        return text
    packed = "z:" + base64.b64encode(zlib.compress(text.encode(), 9)).decode()
    return packed if len(packed) <= MAX_ID_BYTES else None


def decode(physical_id: str) -> dict:
    """The record in a PhysicalResourceId; ValueError for anything else (a failed Create's marker)."""
    try:
        text = zlib.decompress(base64.b64decode(physical_id[2:])).decode() if physical_id.startswith("z:") \
            else physical_id
        record = json.loads(text)
    except (ValueError, zlib.error) as err:
        raise ValueError("not a two-way record") from err
    if not isinstance(record, dict) or record.get("v") != VERSION:
        raise ValueError("not a two-way record")
    return record


def record_of(identity: str, info: dict, props: dict, existing: dict, keywords: list) -> str:
    """The identity's earlier settings as a PhysicalResourceId: the four two-way fields (its
    ``TwoWayChannelRole`` is never changed, so it needs no keeping) and every keyword it has. Where
    all of its keywords do not fit, only the ones this stack sets are kept (``t``)."""
    earlier = [info.get("TwoWayEnabled", False), info.get("TwoWayChannelArn"),
               info.get("SelfManagedOptOutsEnabled", False), info.get("OptOutListName") or DEFAULT_OPT_OUT_LIST]
    if earlier[1] == props["TopicArn"]:
        # It already points at this stack's topic (a rolled-back update taking it back): what it had
        # before is not known, so Delete will turn two-way off and leave this stack's list.
        earlier = [False, None, earlier[2],
                   DEFAULT_OPT_OUT_LIST if earlier[3] == props["OptOutListName"] else earlier[3]]
    record = {"v": VERSION, "i": identity, "e": earlier, "k": existing}
    physical_id = encode(record)
    if physical_id is None:
        ours = {k for k, _, _ in keywords}
        physical_id = encode({**record, "k": {k: v for k, v in existing.items() if k in ours}, "t": 1})
    if physical_id is None:
        raise TwoWayError(f"{identity}'s earlier keyword answers do not fit in CloudFormation's 1 KB physical id, "
                          f"so deleting the stack could not put them back; shorten them or set fewer keywords")
    return physical_id


# -- the requests ---------------------------------------------------------------------------------

def apply(sms, identity: str, props: dict, keywords: list) -> None:
    update_identity(sms, identity, {"TwoWayEnabled": True, "TwoWayChannelArn": props["TopicArn"],
                                    "SelfManagedOptOutsEnabled": False, "OptOutListName": props["OptOutListName"]})
    for keyword, message, action in keywords:
        sms.put_keyword(OriginationIdentity=identity, Keyword=keyword, KeywordMessage=message, KeywordAction=action)
    logger.info("two-way on for %s; keywords set: %s", identity, ", ".join(k for k, _, _ in keywords) or "none")


def respond(physical_id: str, info: dict) -> dict:
    """The number is the stage's own (recipients see it), and goes to the app by ``Fn::GetAtt``. No
    ``NoEcho``: it masks values "retrieved by using the Fn::GetAtt function", and a masked number would
    make the inbound function refuse every reply. The Provider framework logs nothing below FATAL."""
    return {"PhysicalResourceId": physical_id,
            "Data": {"PhoneNumber": info["PhoneNumber"]} if info.get("PhoneNumber") else {}}


def create(sms, props: dict) -> dict:
    identity = props["Identity"]
    info = describe_to_change(sms, identity)
    keywords = wanted(props, info)
    physical_id = record_of(identity, info, props, keywords_on(sms, identity), keywords)
    apply(sms, identity, props, keywords)
    return respond(physical_id, info)


def update(sms, props: dict, old: dict, physical_id: str) -> dict:
    identity = props["Identity"]
    try:
        record = decode(physical_id)
    except ValueError:
        return create(sms, props)
    if not same_identity(identity, record["i"]):
        return create(sms, props)  # a new id; CloudFormation's Delete of the old one puts the old identity back
    info = describe_to_change(sms, identity)
    keywords = wanted(props, info)
    now, before = {k for k, _, _ in keywords}, {k for k, _, _ in wanted(old, info)}
    # A keyword new to the stack that the identity already has, with an answer the record does not
    # hold (added by hand since, or left out of a record that had to be cut): deleting the stack could
    # not put it back.
    unknown = sorted((now - before - set(record["k"])) & set(keywords_on(sms, identity)))
    if unknown:
        raise TwoWayError(f"{identity} already has keyword(s) {', '.join(unknown)} with answers this stack did not "
                          f"set and has no copy of, so deleting the stack could not put them back: delete them "
                          f"from the identity first (aws pinpoint-sms-voice-v2 delete-keyword), or leave them out "
                          f"of keywords")
    for keyword in sorted(before - now):
        restore_keyword(sms, identity, keyword, record)
    apply(sms, identity, props, keywords)
    return respond(physical_id, info)


def restore_keyword(sms, identity: str, keyword: str, record: dict) -> None:
    earlier = record["k"].get(keyword)
    if earlier:
        sms.put_keyword(OriginationIdentity=identity, Keyword=keyword, KeywordMessage=earlier[0],
                        KeywordAction=earlier[1])
    elif keyword in PROTECTED:
        logger.info("%s on %s keeps this stack's answer: it had none the stack could keep", keyword, identity)
    else:
        try:
            sms.delete_keyword(OriginationIdentity=identity, Keyword=keyword)
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceNotFoundException":
                raise


def delete(sms, props: dict, physical_id: str) -> dict:
    done = {"PhysicalResourceId": physical_id}
    try:
        record = decode(physical_id)
    except ValueError:
        logger.info("nothing to put back: the physical id holds no record")
        return done
    identity = record["i"]
    try:
        info = describe(sms, identity)
    except ClientError as err:
        if gone(err):
            logger.info("%s is gone: nothing to put back", identity)
            return done
        raise
    if in_a_pool(identity, info):
        logger.info("%s has joined pool %s since: its two-way settings are the pool's", identity, info["PoolId"])
        return done
    enabled, channel, self_managed, opt_out_list = record["e"]
    settings = {"TwoWayEnabled": enabled, "SelfManagedOptOutsEnabled": self_managed, "OptOutListName": opt_out_list}
    if channel:
        settings["TwoWayChannelArn"] = channel
    try:
        update_identity(sms, identity, settings)
    except ClientError as err:
        if gone(err):
            logger.info("%s is gone: nothing to put back", identity)
            return done
        if not gone(err, ("opt-out-list",)):
            raise
        logger.info("%s's earlier opt-out list is gone: back to %s", identity, DEFAULT_OPT_OUT_LIST)
        update_identity(sms, identity, {**settings, "OptOutListName": DEFAULT_OPT_OUT_LIST})
    for keyword, _, _ in wanted(props, info):
        restore_keyword(sms, identity, keyword, record)
    logger.info("%s has its earlier two-way settings back", identity)
    return done
