"""A stand-in for End User Messaging SMS (``pinpoint-sms-voice-v2``), which moto lacks.

Every call is checked against botocore's own service model of the API: the operation must
exist, and its input must pass botocore's parameter validation plus the model's lengths,
patterns and enums. Accepted sends go to the shared outbox, with the ``Context`` they carried
(End User Messaging echoes it in the ``context`` of every event of the message).

As the API reference has it:
- ``OriginationIdentity`` may be a PhoneNumber, PhoneNumberId, PhoneNumberArn, SenderId,
  SenderIdArn, PoolId or PoolArn. A sender id exists per country (``RequestSenderId``), so one
  given by name must exist for the destination's country.
- ``DryRun``: "the message is checked and validated, but isn't sent to the end recipient. You are
  not charged for using DryRun." A dry run is validated like any send and answers a MessageId,
  but reaches no outbox and makes no delivery events.

Two-way messaging and opt-outs (tests/aws_docs/sms-voice-opt-outs.json keeps the quotes):
- Every phone number and pool has an opt-out list (``Default`` until ``UpdatePhoneNumber`` /
  ``UpdatePool`` names another), two-way settings (``TwoWayEnabled``, ``TwoWayChannelArn``) and
  keywords: HELP and STOP from the start, which ``DeleteKeyword`` refuses to delete.
- A send to a number on the sending identity's opt-out list is refused with ``ConflictException``
  ``DESTINATION_PHONE_NUMBER_OPTED_OUT`` (dry runs too: they check the opt-out).
- ``DeleteOptedOutNumber``: "Each destination phone number can only be deleted once every 30 days."
  A second deletion within 30 days is ``ValidationException`` ``PHONE_NUMBER_CANNOT_BE_OPTED_IN``,
  the model's reason for a number that cannot be opted in.
- ``receive()`` is what End User Messaging does with a text a phone sends to one of the numbers:
  "When your number receives a message that begins with a keyword, AWS End User Messaging SMS
  responds with a customizable message"; keywords are case insensitive; the required opt-out
  keywords (ARRET, CANCEL, END, OPT-OUT, OPTOUT, QUIT, REMOVE, STOP, TD, UNSUBSCRIBE) opt the sender
  out. With ``SelfManagedOptOutsEnabled`` nothing is answered or listed: the owner does it.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid

import botocore.session
import phonenumbers
from botocore.validate import ParamValidator

from . import appload  # noqa: F401  (puts chalicelib on the path)
from chalicelib.sending.media import MAX_BYTES  # the documented MMS limits, one table for app and stand-in

SERVICE = "pinpoint-sms-voice-v2"
TARGET_PREFIX = "PinpointSMSVoiceV2."
_MODEL = botocore.session.get_session().get_service_model(SERVICE)


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, **fields):
        super().__init__(message)
        self.code, self.message, self.status, self.fields = code, message, status, fields

    def body(self) -> dict:
        return {"__type": self.code, "message": self.message, **self.fields}


def constraint_problems(value, shape, path: str = "") -> list[str]:
    """Lengths, patterns and enums a botocore model declares, everywhere in the value (botocore's
    own validator checks types, required members and some minimums only). Tests use it too."""
    problems = []
    meta, kind = shape.metadata, shape.type_name
    where = path or "(input)"
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                problems += constraint_problems(value[name], member, f"{path}.{name}" if path else name)
    elif kind == "list" and isinstance(value, list):
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"{where}: {len(value)} items, the model's minimum is {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{where}: {len(value)} items, the model's maximum is {meta['max']}")
        for i, item in enumerate(value):
            problems += constraint_problems(item, shape.member, f"{path}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"{where}: {len(value)} entries, the model's minimum is {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{where}: {len(value)} entries, the model's maximum is {meta['max']}")
        for key, item in value.items():
            problems += constraint_problems(key, shape.key, f"{path} key {key!r}")
            problems += constraint_problems(item, shape.value, f"{path}[{key!r}]")
    elif kind == "string" and isinstance(value, str):
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"{where}: {len(value)} characters, the model's minimum is {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{where}: {len(value)} characters, the model's maximum is {meta['max']}")
        if getattr(shape, "enum", None) and value not in shape.enum:
            problems.append(f"{where}: {value!r} is not one of {shape.enum}")
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            problems.append(f"{where}: {value!r} does not match the model's pattern {meta['pattern']}")
    elif kind in ("integer", "long") and isinstance(value, int):
        if "min" in meta and value < meta["min"]:
            problems.append(f"{where}: {value} is below the model's minimum {meta['min']}")
        if "max" in meta and value > meta["max"]:
            problems.append(f"{where}: {value} is above the model's maximum {meta['max']}")
    return problems


def validate(operation: str, params: dict):
    try:
        op = _MODEL.operation_model(operation)
    except Exception:
        raise ApiError("ValidationException", f"Unknown operation {operation}", Reason="UNKNOWN_OPERATION") from None
    report = ParamValidator().validate(params, op.input_shape)
    problems = [report.generate_report()] if report.has_errors() else []
    problems += constraint_problems(params, op.input_shape)
    if problems:
        raise ApiError("ValidationException", "; ".join(problems), Reason="FIELD_VALIDATION_FAILED",
                       Fields=[{"Name": p.split(":")[0], "Message": p} for p in problems])
    return op


# The keywords that opt a sender out wherever End User Messaging manages opt-outs (the user guide's
# "Required opt-out keywords"); they answer with STOP's message.
REQUIRED_OPT_OUT_KEYWORDS = ("ARRET", "CANCEL", "END", "OPT-OUT", "OPTOUT", "QUIT", "REMOVE", "STOP", "TD",
                             "UNSUBSCRIBE")
# What a new number answers before anyone sets its keywords (AWS's own default texts are not documented;
# the local stack sets the stage's with PutKeyword at once).
DEFAULT_KEYWORDS = {
    "HELP": ("This number sends automated messages. Reply STOP to opt out.", "AUTOMATIC_RESPONSE"),
    "STOP": ("You are opted out and will receive no more messages from this number.", "OPT_OUT"),
}
UNDELETABLE_KEYWORDS = ("HELP", "STOP")
OPT_IN_INTERVAL = 30 * 24 * 3600  # DeleteOptedOutNumber: once every 30 days per number
DEFAULT_OPT_OUT_LIST = "Default"
# Two-way fields UpdatePhoneNumber refuses on a number that belongs to a pool (the pool's own apply).
_POOL_MANAGED = ("TwoWayEnabled", "TwoWayChannelArn", "TwoWayChannelRole", "SelfManagedOptOutsEnabled",
                 "OptOutListName")


def _e164(number: str) -> str:
    return number if number.startswith("+") else "+" + number


def _filter_field(name: str) -> str:
    """The member a Describe filter names: ``two-way-enabled`` -> ``TwoWayEnabled``."""
    return {"number-capability": "NumberCapabilities"}.get(name) or "".join(p.capitalize() for p in name.split("-"))


def _matches(entry: dict, filters: list[dict]) -> bool:
    for condition in filters or []:
        value = entry.get(_filter_field(condition["Name"]))
        have = value if isinstance(value, list) else [value]
        have = [str(v).lower() if isinstance(v, bool) else str(v) for v in have if v is not None]
        if not set(have) & set(condition["Values"]):
            return False
    return True


def _only(entry: dict, shape: str) -> dict:
    """``entry`` without the members the model's ``shape`` does not have (the stand-in's own bookkeeping)."""
    return {k: v for k, v in entry.items() if k in _MODEL.shape_for(shape).members}


def _page(items: list, p: dict) -> tuple[list, dict]:
    """One page of ``items`` for ``MaxResults``/``NextToken``: (page, {"NextToken": ...} or {})."""
    start = 0
    if p.get("NextToken"):
        try:
            start = int(base64.urlsafe_b64decode(p["NextToken"].encode()).decode())
            if start < 0:
                raise ValueError(start)
        except (ValueError, UnicodeDecodeError):
            raise ApiError("ValidationException", "The NextToken is not valid", Reason="INVALID_NEXT_TOKEN") from None
    end = start + (p.get("MaxResults") or 100)  # the model's maximum; AWS does not document its default
    more = {"NextToken": base64.urlsafe_b64encode(str(end).encode()).decode()} if end < len(items) else {}
    return items[start:end], more


class SmsVoiceStandIn:
    """Holds the emulated account's identities and configuration sets; answers the API."""

    def __init__(self, *, region: str, account: str, record_send, read_media):
        self.region, self.account = region, account
        # (channel, to, body, media_url, provider_id, context=...) -> None
        self._record_send = record_send
        self._read_media = read_media  # (bucket, key) -> (content_type, size) | None
        self._lock = threading.Lock()
        self.phone_numbers: dict[str, dict] = {}
        self.sender_ids: dict[tuple[str, str], dict] = {}  # (SenderId, IsoCountryCode) -> information
        self.pools: dict[str, dict] = {}
        self.configuration_sets: dict[str, dict] = {}
        self.dry_runs = 0  # sends validated with DryRun: none reached the outbox
        self.identities: list[tuple[str, str | None]] = []  # (MessageId, OriginationIdentity) of each accepted send
        self.clock = time.time  # tests move it to play the 30 days of DeleteOptedOutNumber
        # name -> {"OptOutListName", "OptOutListArn", "CreatedTimestamp"} plus "numbers" (E.164 -> the
        # OptedOutNumberInformation) and "opted_in" (E.164 -> when DeleteOptedOutNumber last took it off)
        self.opt_out_lists: dict[str, dict] = {}
        self.keywords: dict[str, dict[str, dict]] = {}  # PhoneNumberId or PoolId -> KEYWORD -> KeywordInformation
        self._new_opt_out_list(DEFAULT_OPT_OUT_LIST)

    # -- set-up used by the local stack -------------------------------------------------------
    def _two_way_defaults(self) -> dict:
        """What a new number or pool has: two-way off, AWS-managed opt-outs on the Default list."""
        return {"TwoWayEnabled": False, "SelfManagedOptOutsEnabled": False, "OptOutListName": DEFAULT_OPT_OUT_LIST,
                "DeletionProtectionEnabled": False, "CreatedTimestamp": self.clock()}

    def add_phone_number(self, number: str, capabilities=("SMS", "MMS")) -> dict:
        pid = "phone-" + uuid.uuid4().hex
        entry = {"PhoneNumberId": pid, "PhoneNumber": number,
                 "PhoneNumberArn": f"arn:aws:sms-voice:{self.region}:{self.account}:phone-number/{pid}",
                 "MessageType": "TRANSACTIONAL", "NumberCapabilities": list(capabilities), "Status": "ACTIVE",
                 "IsoCountryCode": self._country(number) or "US", "NumberType": "LONG_CODE",
                 "MonthlyLeasingPrice": "1.00", "InternationalSendingEnabled": False, **self._two_way_defaults()}
        self.phone_numbers[pid] = entry
        self.keywords[pid] = self._default_keywords()
        return entry

    def add_sender_id(self, sender_id: str, country: str, message_types=("TRANSACTIONAL",)) -> dict:
        entry = {"SenderId": sender_id, "IsoCountryCode": country.upper(), "MessageTypes": list(message_types),
                 "SenderIdArn": f"arn:aws:sms-voice:{self.region}:{self.account}:sender-id/{sender_id}/"
                                f"{country.upper()}",
                 "MonthlyLeasingPrice": "0.00", "DeletionProtectionEnabled": False, "Registered": False}
        self.sender_ids[(sender_id, country.upper())] = entry
        return entry

    def add_pool(self, phone_number_ids: list[str]) -> dict:
        pool_id = "pool-" + uuid.uuid4().hex
        entry = {"PoolId": pool_id, "PoolArn": f"arn:aws:sms-voice:{self.region}:{self.account}:pool/{pool_id}",
                 "Status": "ACTIVE", "MessageType": "TRANSACTIONAL", "PhoneNumberIds": list(phone_number_ids),
                 "SharedRoutesEnabled": False, **self._two_way_defaults()}
        self.pools[pool_id] = entry
        self.keywords[pool_id] = self._default_keywords()
        for number_id in phone_number_ids:
            self.phone_numbers[number_id]["PoolId"] = pool_id
        return entry

    @staticmethod
    def _default_keywords() -> dict[str, dict]:
        return {k: {"Keyword": k, "KeywordMessage": m, "KeywordAction": a} for k, (m, a) in DEFAULT_KEYWORDS.items()}

    def _new_opt_out_list(self, name: str) -> dict:
        entry = {"OptOutListName": name, "CreatedTimestamp": self.clock(),
                 "OptOutListArn": f"arn:aws:sms-voice:{self.region}:{self.account}:opt-out-list/{name}",
                 "numbers": {}, "opted_in": {}}
        self.opt_out_lists[name] = entry
        return entry

    def _opt_out_list(self, name_or_arn: str) -> dict:
        for entry in self.opt_out_lists.values():
            if name_or_arn in (entry["OptOutListName"], entry["OptOutListArn"]):
                return entry
        raise ApiError("ResourceNotFoundException", f"No opt-out list {name_or_arn}", 404,
                       ResourceType="opt-out-list", ResourceId=name_or_arn)

    @staticmethod
    def _list_info(entry: dict) -> dict:
        return {k: entry[k] for k in ("OptOutListArn", "OptOutListName")}

    def _number_or_pool(self, identity: str, *, pools: bool = True) -> tuple[str, dict]:
        """A phone number (id or ARN) or, with ``pools``, a pool (id or ARN): ("phone-number" | "pool", entry)."""
        for entry in self.phone_numbers.values():
            if identity in (entry["PhoneNumberId"], entry["PhoneNumberArn"]):
                return "phone-number", entry
        for entry in self.pools.values() if pools else ():
            if identity in (entry["PoolId"], entry["PoolArn"]):
                return "pool", entry
        raise ApiError("ResourceNotFoundException", f"No phone number or pool {identity}", 404,
                       ResourceType=self._kind(identity), ResourceId=identity)

    def opted_out(self, list_name: str, number: str) -> bool:
        return _e164(number) in self._opt_out_list(list_name)["numbers"]

    @staticmethod
    def _country(destination: str) -> str:
        try:
            return phonenumbers.region_code_for_number(phonenumbers.parse(
                destination if destination.startswith("+") else "+" + destination)) or ""
        except phonenumbers.NumberParseException:
            raise ApiError("ValidationException", "The destination is not a phone number",
                           Reason="INVALID_PARAMETER") from None

    @staticmethod
    def _kind(identity: str) -> str:
        """The ResourceType an identity names: from an ARN's resource part, else from its form."""
        if identity.startswith("arn:"):
            return identity.split(":", 5)[-1].split("/", 1)[0]
        if identity.startswith("pool-"):
            return "pool"
        if identity.startswith(("phone-", "+")) or identity.isdigit():
            return "phone-number"
        return "sender-id"

    def _identity(self, identity: str | None, destination: str, channel: str = "SMS") -> dict | None:
        """Find the origination identity in any form the API takes; ResourceNotFoundException when
        there is none, ConflictException NUMBER_CAPABILITIES_MISMATCH when its numbers lack the channel.
        Returns the number or pool whose opt-out list applies (None for a sender id)."""
        if identity is None:
            return None
        numbers = None
        for entry in self.phone_numbers.values():
            if identity in (entry["PhoneNumberId"], entry["PhoneNumberArn"], entry["PhoneNumber"]):
                # a number in a pool goes by the pool's settings (its opt-out list among them)
                numbers, kind, owner = [entry], "phone-number", self.pools.get(entry.get("PoolId"), entry)
        for entry in self.pools.values():
            if identity in (entry["PoolId"], entry["PoolArn"]):
                numbers, kind, owner = [self.phone_numbers[n] for n in entry["PhoneNumberIds"]], "pool", entry
        if numbers is None:
            sender = None
            if identity.startswith("arn:"):
                sender = next((e for e in self.sender_ids.values() if e["SenderIdArn"] == identity), None)
            else:
                sender = self.sender_ids.get((identity, self._country(destination)))
            if sender is not None:
                if channel != "SMS":
                    raise ApiError("ConflictException", "A sender id sends SMS only", 400,
                                   Reason="NUMBER_CAPABILITIES_MISMATCH", ResourceType="sender-id",
                                   ResourceId=identity)
                return None
            raise ApiError("ResourceNotFoundException", f"No origination identity {identity}", 404,
                           ResourceType=self._kind(identity), ResourceId=identity)
        if not any(channel in entry["NumberCapabilities"] for entry in numbers):
            raise ApiError("ConflictException", f"The origination identity cannot send {channel}", 400,
                           Reason="NUMBER_CAPABILITIES_MISMATCH", ResourceType=kind, ResourceId=identity)
        return owner

    def _not_opted_out(self, owner: dict | None, destination: str) -> None:
        """End User Messaging "doesn't attempt to send the message" to a number on the opt-out list of
        the identity it goes from."""
        if owner is not None and self.opted_out(owner["OptOutListName"], destination):
            raise ApiError("ConflictException", "The destination phone number is opted out", 400,
                           Reason="DESTINATION_PHONE_NUMBER_OPTED_OUT", ResourceType="opted-out-number",
                           ResourceId=_e164(destination))

    def _configuration_set(self, name: str | None) -> None:
        if name is not None and name not in self.configuration_sets:
            raise ApiError("ResourceNotFoundException", f"No configuration set {name}", 404,
                           ResourceType="configuration-set", ResourceId=name)

    # -- operations ---------------------------------------------------------------------------
    def handle(self, operation: str, params: dict) -> dict:
        validate(operation, params)
        method = getattr(self, "op_" + operation, None)
        if method is None:
            raise ApiError("ValidationException", f"The local stand-in does not implement {operation}",
                           Reason="UNKNOWN_OPERATION")
        with self._lock:
            return method(params)

    def _accepted(self, p: dict, channel: str, media_url: str | None) -> dict:
        message_id = str(uuid.uuid4())
        self.identities.append((message_id, p.get("OriginationIdentity")))
        if p.get("DryRun"):
            self.dry_runs += 1  # validated, not sent: no outbox entry, no events
        else:
            self._record_send(channel, p["DestinationPhoneNumber"], p.get("MessageBody"), media_url, message_id,
                              context=p.get("Context"))
        return {"MessageId": message_id}

    def op_SendTextMessage(self, p: dict) -> dict:
        owner = self._identity(p.get("OriginationIdentity"), p["DestinationPhoneNumber"], "SMS")
        self._configuration_set(p.get("ConfigurationSetName"))
        self._not_opted_out(owner, p["DestinationPhoneNumber"])
        return self._accepted(p, "sms", None)

    def op_SendMediaMessage(self, p: dict) -> dict:
        owner = self._identity(p["OriginationIdentity"], p["DestinationPhoneNumber"], "MMS")
        self._configuration_set(p.get("ConfigurationSetName"))
        self._not_opted_out(owner, p["DestinationPhoneNumber"])
        url = p["MediaUrls"][0]
        match = re.fullmatch(r"s3://([^/]+)/(.+)", url)
        if not match:
            raise ApiError("ValidationException", f"MediaUrls must be s3://bucket/key, got {url}",
                           Reason="INVALID_PARAMETER")
        head = self._read_media(match.group(1), match.group(2))
        if head is None:
            raise ApiError("ValidationException", f"Cannot read {url}", Reason="RESOURCE_NOT_ACCESSIBLE")
        content_type, size = head
        if content_type not in MAX_BYTES:
            raise ApiError("ValidationException", f"{content_type} is not an MMS media type",
                           Reason="MEDIA_TYPE_NOT_SUPPORTED")
        if size > MAX_BYTES[content_type]:
            raise ApiError("ValidationException", f"{url} is too large for MMS", Reason="MAXIMUM_SIZE_EXCEEDED")
        return self._accepted(p, "mms", url)

    def op_RequestSenderId(self, p: dict) -> dict:
        key = (p["SenderId"], p["IsoCountryCode"].upper())
        if key in self.sender_ids:
            raise ApiError("ConflictException", f"{key[0]} exists for {key[1]}", Reason="RESOURCE_ALREADY_EXISTS")
        entry = self.add_sender_id(*key, message_types=p.get("MessageTypes") or ("TRANSACTIONAL",))
        return {**entry, "Tags": p.get("Tags") or []}

    def op_DescribeSenderIds(self, p: dict) -> dict:
        wanted = {(w["SenderId"], w["IsoCountryCode"].upper()) for w in p.get("SenderIds") or []}
        return {"SenderIds": [e for k, e in self.sender_ids.items() if not wanted or k in wanted]}

    def op_CreateConfigurationSet(self, p: dict) -> dict:
        name = p["ConfigurationSetName"]
        if name in self.configuration_sets:
            raise ApiError("ConflictException", f"{name} exists", Reason="RESOURCE_ALREADY_EXISTS")
        arn = f"arn:aws:sms-voice:{self.region}:{self.account}:configuration-set/{name}"
        self.configuration_sets[name] = {"ConfigurationSetName": name, "ConfigurationSetArn": arn,
                                         "EventDestinations": []}
        return {"ConfigurationSetName": name, "ConfigurationSetArn": arn}

    def op_DescribeConfigurationSets(self, p: dict) -> dict:
        names = p.get("ConfigurationSetNames") or list(self.configuration_sets)
        return {"ConfigurationSets": [self.configuration_sets[n] for n in names if n in self.configuration_sets]}

    def op_DescribePhoneNumbers(self, p: dict) -> dict:
        wanted = [self._number_or_pool(i, pools=False)[1] for i in p.get("PhoneNumberIds") or []]
        found = [e for e in wanted or self.phone_numbers.values() if _matches(e, p.get("Filters"))]
        page, more = _page(found, p)
        return {"PhoneNumbers": [_only(e, "PhoneNumberInformation") for e in page], **more}

    def op_DescribePools(self, p: dict) -> dict:
        wanted = [self._pool(i) for i in p.get("PoolIds") or []]
        found = [e for e in wanted or self.pools.values() if _matches(e, p.get("Filters"))]
        page, more = _page(found, p)
        return {"Pools": [_only(e, "PoolInformation") for e in page], **more}

    def _pool(self, identity: str) -> dict:
        kind, entry = self._number_or_pool(identity)
        if kind != "pool":
            raise ApiError("ResourceNotFoundException", f"No pool {identity}", 404, ResourceType="pool",
                           ResourceId=identity)
        return entry

    # -- two-way settings -----------------------------------------------------------------------
    def _update_two_way(self, entry: dict, p: dict) -> None:
        if "OptOutListName" in p:
            p = {**p, "OptOutListName": self._opt_out_list(p["OptOutListName"])["OptOutListName"]}
        enabled = p.get("TwoWayEnabled", entry["TwoWayEnabled"])
        if enabled and not p.get("TwoWayChannelArn", entry.get("TwoWayChannelArn")):
            raise ApiError("ValidationException", "Two-way needs a TwoWayChannelArn",
                           Reason="TWO_WAY_CHANNEL_NOT_PRESENT")
        for name in ("TwoWayEnabled", "TwoWayChannelArn", "TwoWayChannelRole", "SelfManagedOptOutsEnabled",
                     "OptOutListName", "DeletionProtectionEnabled", "InternationalSendingEnabled",
                     "SharedRoutesEnabled"):
            if name in p:
                entry[name] = p[name]

    def op_UpdatePhoneNumber(self, p: dict) -> dict:
        _, entry = self._number_or_pool(p["PhoneNumberId"], pools=False)
        pool = entry.get("PoolId")
        if pool and any(name in p for name in _POOL_MANAGED):
            raise ApiError("ConflictException", f"The phone number belongs to pool {pool}: update the pool", 400,
                           Reason="PHONE_NUMBER_ASSOCIATED_TO_POOL", ResourceType="phone-number",
                           ResourceId=p["PhoneNumberId"])
        self._update_two_way(entry, p)
        return _only(entry, "UpdatePhoneNumberResult")

    def op_UpdatePool(self, p: dict) -> dict:
        entry = self._pool(p["PoolId"])
        self._update_two_way(entry, p)
        return _only(entry, "UpdatePoolResult")

    # -- keywords -------------------------------------------------------------------------------
    def _keyword_owner(self, identity: str) -> tuple[dict, dict]:
        """(the number or pool, its keywords) for PutKeyword/DeleteKeyword/DescribeKeywords."""
        kind, entry = self._number_or_pool(identity)
        return entry, self.keywords[entry["PoolId"] if kind == "pool" else entry["PhoneNumberId"]]

    @staticmethod
    def _keyword_answer(entry: dict, identity: str, keyword: dict) -> dict:
        return {"OriginationIdentityArn": entry.get("PhoneNumberArn") or entry["PoolArn"], "OriginationIdentity": identity, **keyword}

    def op_PutKeyword(self, p: dict) -> dict:
        entry, keywords = self._keyword_owner(p["OriginationIdentity"])
        name = p["Keyword"].upper()  # "Keywords are case insensitive."
        action = p.get("KeywordAction") or keywords.get(name, {}).get("KeywordAction") or "AUTOMATIC_RESPONSE"
        keywords[name] = {"Keyword": name, "KeywordMessage": p["KeywordMessage"], "KeywordAction": action}
        return self._keyword_answer(entry, p["OriginationIdentity"], keywords[name])

    def op_DeleteKeyword(self, p: dict) -> dict:
        entry, keywords = self._keyword_owner(p["OriginationIdentity"])
        name = p["Keyword"].upper()
        if name in UNDELETABLE_KEYWORDS:
            raise ApiError("ConflictException", f"{name} is a required keyword and cannot be deleted", 400,
                           Reason="RESOURCE_DELETION_NOT_ALLOWED", ResourceType="keyword", ResourceId=name)
        if name not in keywords:
            raise ApiError("ResourceNotFoundException", f"No keyword {name}", 404, ResourceType="keyword",
                           ResourceId=name)
        return self._keyword_answer(entry, p["OriginationIdentity"], keywords.pop(name))

    def op_DescribeKeywords(self, p: dict) -> dict:
        entry, keywords = self._keyword_owner(p["OriginationIdentity"])
        wanted = [k.upper() for k in p.get("Keywords") or []]
        found = [keywords[k] for k in wanted or keywords if k in keywords and _matches(keywords[k], p.get("Filters"))]
        page, more = _page(found, p)
        arn = entry.get("PhoneNumberArn") or entry["PoolArn"]
        return {"OriginationIdentityArn": arn, "OriginationIdentity": p["OriginationIdentity"],
                "Keywords": [dict(k) for k in page], **more}

    # -- opt-out lists --------------------------------------------------------------------------
    def op_CreateOptOutList(self, p: dict) -> dict:
        name = p["OptOutListName"]
        if name in self.opt_out_lists:
            raise ApiError("ConflictException", f"{name} exists", 400, Reason="RESOURCE_ALREADY_EXISTS",
                           ResourceType="opt-out-list", ResourceId=name)
        entry = self._new_opt_out_list(name)
        return {**self._list_info(entry), "CreatedTimestamp": entry["CreatedTimestamp"], "Tags": p.get("Tags") or []}

    def op_DescribeOptOutLists(self, p: dict) -> dict:
        lists = [self._opt_out_list(n) for n in p.get("OptOutListNames") or []] or list(self.opt_out_lists.values())
        page, more = _page(lists, p)
        return {"OptOutLists": [{**self._list_info(e), "CreatedTimestamp": e["CreatedTimestamp"]} for e in page],
                **more}

    def op_DescribeOptedOutNumbers(self, p: dict) -> dict:
        entry = self._opt_out_list(p["OptOutListName"])
        numbers = entry["numbers"]
        wanted = [_e164(n) for n in p.get("OptedOutNumbers") or []]
        found = [numbers[n] for n in wanted or numbers if n in numbers and _matches(numbers[n], p.get("Filters"))]
        page, more = _page(found, p)
        return {**self._list_info(entry), "OptedOutNumbers": [dict(n) for n in page], **more}

    def _opt_out(self, entry: dict, number: str, *, end_user: bool) -> dict:
        number = _e164(number)
        if number not in entry["numbers"]:
            entry["numbers"][number] = {"OptedOutNumber": number, "OptedOutTimestamp": self.clock(),
                                        "EndUserOptedOut": end_user}
        return entry["numbers"][number]

    def op_PutOptedOutNumber(self, p: dict) -> dict:
        entry = self._opt_out_list(p["OptOutListName"])
        return {**self._list_info(entry), **self._opt_out(entry, p["OptedOutNumber"], end_user=False)}

    def op_DeleteOptedOutNumber(self, p: dict) -> dict:
        entry = self._opt_out_list(p["OptOutListName"])
        number = _e164(p["OptedOutNumber"])
        if number not in entry["numbers"]:
            raise ApiError("ResourceNotFoundException", "The number is not on the opt-out list", 404,
                           ResourceType="opted-out-number", ResourceId=number)
        now, last = self.clock(), entry["opted_in"].get(number)
        if last is not None and now - last < OPT_IN_INTERVAL:
            raise ApiError("ValidationException", "Each destination phone number can only be deleted once every "
                           "30 days", Reason="PHONE_NUMBER_CANNOT_BE_OPTED_IN")
        removed = entry["numbers"].pop(number)
        entry["opted_in"][number] = now
        return {**self._list_info(entry), **removed, "OptedOutTimestamp": now}

    # -- a text from a phone to one of the numbers ------------------------------------------------
    def receive(self, origination: str, destination: str, body: str) -> dict:
        """What End User Messaging does when ``origination`` texts ``body`` to the account's number
        ``destination``: applies the keyword the text begins with (opt-out, opt-in) unless opt-outs are
        self-managed, and says what to answer and where the text goes. Returns
        ``{"keyword": KEYWORD or None, "action", "answer": text or None, "channel": TwoWayChannelArn or None}``;
        ResourceNotFoundException when ``destination`` is none of the account's numbers."""
        with self._lock:
            number = next((e for e in self.phone_numbers.values() if e["PhoneNumber"] == _e164(destination)), None)
            if number is None:
                raise ApiError("ResourceNotFoundException", "No such phone number in this account", 404,
                               ResourceType="phone-number", ResourceId="(destination)")
            owner = self.pools[number["PoolId"]] if number.get("PoolId") else number
            keywords = self.keywords[owner.get("PoolId") or owner["PhoneNumberId"]]
            keyword, action, answer = self._keyword_of(body, keywords)
            if owner["SelfManagedOptOutsEnabled"]:
                answer = None  # the owner answers and keeps the list
            elif action == "OPT_OUT":
                self._opt_out(self._opt_out_list(owner["OptOutListName"]), origination, end_user=True)
            elif action == "OPT_IN":
                self._opt_out_list(owner["OptOutListName"])["numbers"].pop(_e164(origination), None)
            channel = owner.get("TwoWayChannelArn") if owner["TwoWayEnabled"] else None
            return {"keyword": keyword, "action": action, "answer": answer, "channel": channel}

    @staticmethod
    def _keyword_of(body: str, keywords: dict[str, dict]) -> tuple[str | None, str | None, str | None]:
        """The keyword ``body`` begins with (case insensitive, the longest one), its action and answer."""
        text = body.strip().upper()
        required = {k: {**keywords["STOP"], "Keyword": k, "KeywordAction": "OPT_OUT"} for k in REQUIRED_OPT_OUT_KEYWORDS}
        known = {**keywords, **required}  # the required opt-out keywords always opt out
        for name in sorted(known, key=len, reverse=True):
            if text == name or (text.startswith(name) and text[len(name)].isspace()):
                return name, known[name]["KeywordAction"], known[name]["KeywordMessage"]
        return None, None, None


def respond(standin: SmsVoiceStandIn, target: str, raw: bytes) -> tuple[int, dict]:
    operation = target[len(TARGET_PREFIX):]
    try:
        params = json.loads(raw or b"{}")
        return 200, standin.handle(operation, params)
    except ApiError as err:
        return err.status, err.body()
    except ValueError:
        return 400, {"__type": "SerializationException", "message": "body is not JSON"}
