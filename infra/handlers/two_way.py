"""Two-way messaging on the stage's End User Messaging phone number or pool: a CloudFormation custom
resource (the CDK Provider framework calls ``on_event``; ``infra/two_way.py`` deploys it). Plain boto3.

- Create and Update turn two-way on for the identity (``UpdatePhoneNumber``, or ``UpdatePool`` for a
  pool), pointing it at the stack's inbound topic, with End User Messaging answering HELP and STOP
  itself (``SelfManagedOptOutsEnabled`` false), and set the stage's keywords (``PutKeyword``).
- The identity's opt-out list is never changed, on Create, Update or Delete: End User Messaging refuses
  sends to the numbers on the list associated with the sender, and a number starts on ``Default``
  (tests/aws_docs/sms-voice-opt-outs.json), so moving it to another list would forget every STOP it
  holds, and moving it back on Delete would forget every STOP gathered meanwhile. ``Data`` names the
  list (``OptOutListName``): the app reads and writes that one.
- A ``TwoWayChannelRole`` already on the identity would be the role End User Messaging publishes as, and
  it cannot reach the stack's topic or key: such an identity gets the stack's own channel role
  (``ChannelRoleArn``) instead, and its own back on Delete. The role cannot be cleared (the model's
  ``IamRoleArn`` is at least 20 characters), so an identity without one is given none, and End User
  Messaging publishes as its service principal, which the topic's policy lets in. Without a
  ``ChannelRoleArn`` such an identity is refused, naming its role.
- AWS's pages disagree on whether ``PutKeyword`` may change HELP and STOP. A refusal of either does not
  fail the deploy: ``Data`` ``KeywordsNotSet`` says which answer End User Messaging kept (the stack
  outputs it; preflight and smoke report it). Any other keyword's refusal fails as before.
- Two-way exists in some countries and Regions only; End User Messaging's refusal
  (``TWO_WAY_NOT_SUPPORTED_IN_COUNTRY`` or ``_IN_REGION``) fails the deploy naming the fix,
  ``"twoWay": false``.
- Delete puts back what the identity had before: the two-way fields and the answer of every keyword
  the stack set (``DeleteKeyword`` for the ones it added; HELP and STOP, which AWS keeps on every
  identity, get their earlier answers back). An identity that is gone is not an error.

The number is not the stack's, so its earlier settings travel in the PhysicalResourceId, the only
state CloudFormation hands back on Delete: compact JSON (``record``), zlib-compressed when it would
not fit, always under CloudFormation's 1 KB. It is fixed when the resource is created, so an Update
on the same identity keeps the same id (a new id would make CloudFormation delete the old one, which
would turn two-way off). A new identity gets a new id, and CloudFormation's Delete of the old id puts
the old identity back.

Resource properties: ``Identity`` (a PhoneNumberId or PoolId, or its ARN), ``TopicArn``, ``ChannelRoleArn``,
``Stage``, ``Keywords`` (``[{"Keyword", "Message", "Action"}]``). ``Data``: ``OptOutListName`` (the identity's
list), ``KeywordsNotSet`` ("none", or which answers End User Messaging kept, and why), and ``PhoneNumber``
(E.164) for a phone number. Logs name identities, roles and keywords, never a phone number or an answer.
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
# How End User Messaging may refuse to change HELP or STOP: undocumented, so the two error codes of
# PutKeyword that describe a request refused as it stands (the model's ValidationException and
# ConflictException; AccessDenied, NotFound and throttling still fail the deploy).
KEYWORD_REFUSALS = ("ValidationException", "ConflictException")
REFUSED = "End User Messaging refused PutKeyword"  # in KeywordsNotSet; preflight and smoke look for it
NOT_SUPPORTED = {"TWO_WAY_NOT_SUPPORTED_IN_COUNTRY": "the identity's country",
                 "TWO_WAY_NOT_SUPPORTED_IN_REGION": "this AWS Region"}
VERSION = 2

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


def code_of(err: ClientError) -> tuple[str, str | None]:
    """The error's code and, where the model has one, its ``Reason``."""
    return err.response["Error"]["Code"], err.response.get("Reason")


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


def two_way_settings(identity: str, info: dict, props: dict) -> dict:
    """What turns two-way on: the stack's topic, AWS-managed HELP and STOP, and, where the identity has
    a channel role of its own, the stack's (refused without one). Never an opt-out list."""
    settings = {"TwoWayEnabled": True, "TwoWayChannelArn": props["TopicArn"], "SelfManagedOptOutsEnabled": False}
    theirs, ours = info.get("TwoWayChannelRole"), props.get("ChannelRoleArn")
    if theirs and not ours:
        raise TwoWayError(f"{identity} has TwoWayChannelRole {theirs}: End User Messaging would publish replies as "
                          f"that role, which cannot reach this stack's topic or its key, and every reply would be "
                          f"lost; pass ChannelRoleArn, a role that may (infra/two_way.py does)")
    if theirs:
        logger.info("%s has its own channel role %s: the stack's %s replaces it while the stack lives",
                    identity, theirs, ours)
        settings["TwoWayChannelRole"] = ours
    return settings


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


def carriers_answer(props: dict, info: dict) -> list[str]:
    """On a US toll-free number the carriers manage opt-outs: STOP's answer cannot be changed and no
    opt-out keyword can be added, so the stack leaves those alone."""
    if not (info.get("NumberType") == "TOLL_FREE" and info.get("IsoCountryCode") == "US"):
        return []
    return [k["Keyword"].upper() for k in props.get("Keywords", [])
            if k["Keyword"].upper() == "STOP" or k["Action"] == "OPT_OUT"]


def wanted(props: dict, info: dict) -> list[tuple[str, str, str]]:
    """The keywords to set: (KEYWORD, message, action), less those the carriers answer."""
    carrier = carriers_answer(props, info)
    return [(k["Keyword"].upper(), k["Message"], k["Action"]) for k in props.get("Keywords", [])
            if k["Keyword"].upper() not in carrier]


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
    """The identity's earlier settings as a PhysicalResourceId: the two-way fields the stack changes
    (``e``: enabled, topic, self-managed opt-outs, channel role; never the opt-out list, which it leaves
    alone) and every keyword it has. Where all of its keywords do not fit, only the ones this stack
    sets are kept (``t``)."""
    earlier = [info.get("TwoWayEnabled", False), info.get("TwoWayChannelArn"),
               info.get("SelfManagedOptOutsEnabled", False), info.get("TwoWayChannelRole")]
    if earlier[1] == props["TopicArn"]:
        # It already points at this stack's topic (a rolled-back update taking it back): what it had
        # before is not known, so Delete will turn two-way off (and cannot clear the stack's role).
        earlier = [False, None, earlier[2], None if earlier[3] == props.get("ChannelRoleArn") else earlier[3]]
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

def turn_on(sms, identity: str, settings: dict, props: dict) -> None:
    """Two-way on; where End User Messaging has none for the identity's country or this Region, a
    refusal that names the fix."""
    try:
        update_identity(sms, identity, settings)
    except ClientError as err:
        code, reason = code_of(err)
        if code == "ValidationException" and reason in NOT_SUPPORTED:
            raise TwoWayError(f"End User Messaging has no two-way SMS for {identity} in {NOT_SUPPORTED[reason]} "
                              f"({reason}): set \"twoWay\": false in context.stages.{props.get('Stage', '<stage>')} "
                              f"of cdk.json to deploy without replies, or use a number or pool where two-way is "
                              f"offered (make preflight checks the country and the Region)") from err
        raise


def put_keyword(sms, identity: str, keyword: str, message: str, action: str) -> str | None:
    """One ``PutKeyword``. HELP and STOP are every identity's, and whether it may change them AWS's pages
    disagree: a refusal of either is returned (what End User Messaging kept), not raised."""
    try:
        sms.put_keyword(OriginationIdentity=identity, Keyword=keyword, KeywordMessage=message, KeywordAction=action)
    except ClientError as err:
        code, reason = code_of(err)
        if keyword not in PROTECTED or code not in KEYWORD_REFUSALS:
            raise
        logger.warning("End User Messaging refused %s on %s (%s %s): it keeps its own answer", keyword, identity,
                       code, reason or "")
        return f"{keyword}: {REFUSED} ({code}{' ' + reason if reason else ''}) and keeps its own answer"
    return None


def apply(sms, identity: str, settings: dict, props: dict, keywords: list) -> list[str]:
    """Two-way on and the keywords set; what End User Messaging kept of HELP and STOP."""
    turn_on(sms, identity, settings, props)
    kept = [note for keyword, message, action in keywords
            if (note := put_keyword(sms, identity, keyword, message, action))]
    logger.info("two-way on for %s; keywords set: %s", identity, ", ".join(k for k, _, _ in keywords) or "none")
    return kept


def respond(physical_id: str, info: dict, props: dict, kept: list[str]) -> dict:
    """``OptOutListName``: the identity's own list, where End User Messaging puts whoever texts STOP
    (the app reads and writes it). ``KeywordsNotSet``: which stage answers the identity does not give,
    and why ("none" when it gives them all: an output is never empty).

    The number is the stage's own (recipients see it), and goes to the app by ``Fn::GetAtt``. No
    ``NoEcho``: it masks values "retrieved by using the Fn::GetAtt function", and a masked number would
    make the inbound function refuse every reply. The Provider framework logs nothing below FATAL."""
    notes = kept + [f"{keyword}: the carriers answer it on a US toll-free number" for keyword in
                    carriers_answer(props, info)]
    data = {"OptOutListName": info["OptOutListName"], "KeywordsNotSet": "; ".join(notes) or "none"}
    if info.get("PhoneNumber"):
        data["PhoneNumber"] = info["PhoneNumber"]
    return {"PhysicalResourceId": physical_id, "Data": data}


def create(sms, props: dict) -> dict:
    identity = props["Identity"]
    info = describe_to_change(sms, identity)
    settings = two_way_settings(identity, info, props)
    keywords = wanted(props, info)
    physical_id = record_of(identity, info, props, keywords_on(sms, identity), keywords)
    kept = apply(sms, identity, settings, props, keywords)
    return respond(physical_id, info, props, kept)


def update(sms, props: dict, old: dict, physical_id: str) -> dict:
    identity = props["Identity"]
    try:
        record = decode(physical_id)
    except ValueError:
        return create(sms, props)
    if not same_identity(identity, record["i"]):
        return create(sms, props)  # a new id; CloudFormation's Delete of the old one puts the old identity back
    info = describe_to_change(sms, identity)
    settings = two_way_settings(identity, info, props)
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
    kept = apply(sms, identity, settings, props, keywords)
    return respond(physical_id, info, props, kept)


def restore_keyword(sms, identity: str, keyword: str, record: dict) -> None:
    earlier = record["k"].get(keyword)
    if earlier:
        put_keyword(sms, identity, keyword, earlier[0], earlier[1])
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
    enabled, channel, self_managed, role = record["e"]
    settings = {"TwoWayEnabled": enabled, "SelfManagedOptOutsEnabled": self_managed}
    if channel:
        settings["TwoWayChannelArn"] = channel
    if role:
        settings["TwoWayChannelRole"] = role
    try:
        update_identity(sms, identity, settings)
    except ClientError as err:
        if gone(err):
            logger.info("%s is gone: nothing to put back", identity)
            return done
        raise
    for keyword, _, _ in wanted(props, info):
        restore_keyword(sms, identity, keyword, record)
    logger.info("%s has its earlier two-way settings back", identity)
    return done
