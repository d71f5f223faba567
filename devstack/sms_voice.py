"""A stand-in for End User Messaging SMS (``pinpoint-sms-voice-v2``), which moto lacks.

Every call is checked against botocore's own service model of the API: the operation must
exist, and its input must pass botocore's parameter validation plus the model's lengths,
patterns and enums. Accepted sends go to the shared outbox.
"""
from __future__ import annotations

import json
import re
import threading
import uuid

import botocore.session
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


def _constraint_errors(value, shape, path: str) -> list[str]:
    """Lengths, patterns and enums from the model (botocore's validator checks types and minimums)."""
    problems = []
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                problems += _constraint_errors(value[name], member, f"{path}.{name}" if path else name)
    elif kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: at most {meta['max']} items")
        for i, item in enumerate(value):
            problems += _constraint_errors(item, shape.member, f"{path}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: at most {meta['max']} entries")
    elif kind == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: at most {meta['max']} characters")
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"{path}: at least {meta['min']} characters")
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: must be one of {', '.join(shape.enum)}")
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            problems.append(f"{path}: does not match {pattern}")
    elif kind == "integer" and isinstance(value, int):
        if "max" in meta and value > meta["max"]:
            problems.append(f"{path}: at most {meta['max']}")
        if "min" in meta and value < meta["min"]:
            problems.append(f"{path}: at least {meta['min']}")
    return problems


def validate(operation: str, params: dict):
    try:
        op = _MODEL.operation_model(operation)
    except Exception:
        raise ApiError("ValidationException", f"Unknown operation {operation}", Reason="UNKNOWN_OPERATION") from None
    report = ParamValidator().validate(params, op.input_shape)
    problems = [report.generate_report()] if report.has_errors() else []
    problems += _constraint_errors(params, op.input_shape, "")
    if problems:
        raise ApiError("ValidationException", "; ".join(problems), Reason="FIELD_VALIDATION_FAILED",
                       Fields=[{"Name": p.split(":")[0], "Message": p} for p in problems])
    return op


class SmsVoiceStandIn:
    """Holds the emulated account's identities and configuration sets; answers the API."""

    def __init__(self, *, region: str, account: str, record_send, read_media):
        self.region, self.account = region, account
        self._record_send = record_send  # (channel, to, body, media_url, provider_id) -> None
        self._read_media = read_media  # (bucket, key) -> (content_type, size) | None
        self._lock = threading.Lock()
        self.phone_numbers: dict[str, dict] = {}
        self.configuration_sets: dict[str, dict] = {}

    # -- set-up used by the local stack -------------------------------------------------------
    def add_phone_number(self, number: str) -> dict:
        pid = "phone-" + uuid.uuid4().hex
        entry = {"PhoneNumberId": pid, "PhoneNumber": number,
                 "PhoneNumberArn": f"arn:aws:sms-voice:{self.region}:{self.account}:phone-number/{pid}",
                 "MessageType": "TRANSACTIONAL", "NumberCapabilities": ["SMS", "MMS"], "Status": "ACTIVE"}
        self.phone_numbers[pid] = entry
        return entry

    def _identity(self, identity: str | None) -> None:
        if identity is None:
            return
        for entry in self.phone_numbers.values():
            if identity in (entry["PhoneNumberId"], entry["PhoneNumberArn"], entry["PhoneNumber"]):
                return
        raise ApiError("ResourceNotFoundException", f"No origination identity {identity}", 404,
                       ResourceType="phone-number", ResourceId=identity)

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

    def op_SendTextMessage(self, p: dict) -> dict:
        self._identity(p.get("OriginationIdentity"))
        self._configuration_set(p.get("ConfigurationSetName"))
        message_id = str(uuid.uuid4())
        self._record_send("sms", p["DestinationPhoneNumber"], p.get("MessageBody"), None, message_id)
        return {"MessageId": message_id}

    def op_SendMediaMessage(self, p: dict) -> dict:
        self._identity(p["OriginationIdentity"])
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
        message_id = str(uuid.uuid4())
        self._record_send("mms", p["DestinationPhoneNumber"], p.get("MessageBody"), url, message_id)
        return {"MessageId": message_id}

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
