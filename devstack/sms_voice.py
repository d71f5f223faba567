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
"""
from __future__ import annotations

import json
import re
import threading
import uuid

import botocore.session
import phonenumbers
from botocore.validate import ParamValidator

from . import appload  # noqa: F401  (puts chalicelib on the path)
from chalicelib.media import MAX_BYTES  # the documented MMS limits, one table for app and stand-in

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

    # -- set-up used by the local stack -------------------------------------------------------
    def add_phone_number(self, number: str, capabilities=("SMS", "MMS")) -> dict:
        pid = "phone-" + uuid.uuid4().hex
        entry = {"PhoneNumberId": pid, "PhoneNumber": number,
                 "PhoneNumberArn": f"arn:aws:sms-voice:{self.region}:{self.account}:phone-number/{pid}",
                 "MessageType": "TRANSACTIONAL", "NumberCapabilities": list(capabilities), "Status": "ACTIVE"}
        self.phone_numbers[pid] = entry
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
                 "Status": "ACTIVE", "MessageType": "TRANSACTIONAL", "PhoneNumberIds": list(phone_number_ids)}
        self.pools[pool_id] = entry
        return entry

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

    def _identity(self, identity: str | None, destination: str, channel: str = "SMS") -> None:
        """Find the origination identity in any form the API takes; ResourceNotFoundException when
        there is none, ConflictException NUMBER_CAPABILITIES_MISMATCH when its numbers lack the channel."""
        if identity is None:
            return
        numbers = None
        for entry in self.phone_numbers.values():
            if identity in (entry["PhoneNumberId"], entry["PhoneNumberArn"], entry["PhoneNumber"]):
                numbers, kind = [entry], "phone-number"
        for entry in self.pools.values():
            if identity in (entry["PoolId"], entry["PoolArn"]):
                numbers, kind = [self.phone_numbers[n] for n in entry["PhoneNumberIds"]], "pool"
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
                return
            raise ApiError("ResourceNotFoundException", f"No origination identity {identity}", 404,
                           ResourceType=self._kind(identity), ResourceId=identity)
        if not any(channel in entry["NumberCapabilities"] for entry in numbers):
            raise ApiError("ConflictException", f"The origination identity cannot send {channel}", 400,
                           Reason="NUMBER_CAPABILITIES_MISMATCH", ResourceType=kind, ResourceId=identity)

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
        self._identity(p.get("OriginationIdentity"), p["DestinationPhoneNumber"], "SMS")
        self._configuration_set(p.get("ConfigurationSetName"))
        return self._accepted(p, "sms", None)

    def op_SendMediaMessage(self, p: dict) -> dict:
        self._identity(p["OriginationIdentity"], p["DestinationPhoneNumber"], "MMS")
        self._configuration_set(p.get("ConfigurationSetName"))
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
        return {"PhoneNumbers": list(self.phone_numbers.values())}


def respond(standin: SmsVoiceStandIn, target: str, raw: bytes) -> tuple[int, dict]:
    operation = target[len(TARGET_PREFIX):]
    try:
        params = json.loads(raw or b"{}")
        return 200, standin.handle(operation, params)
    except ApiError as err:
        return err.status, err.body()
    except ValueError:
        return 400, {"__type": "SerializationException", "message": "body is not JSON"}
