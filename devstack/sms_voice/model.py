"""End User Messaging's API front door, played with botocore's own service model of ``pinpoint-sms-voice-v2``.

Every call is checked against the model: the operation must exist, and its input must pass botocore's
parameter validation plus the model's lengths, patterns and enums (``validate``; botocore's own validator
checks types, required members and some minimums only). A refused call answers as AWS's JSON protocol does,
``__type``, ``message`` and the exception's fields (``ApiError``). The Describe operations of every area page
with ``MaxResults`` / ``NextToken`` (``one_page``), filter with ``Filters`` (``matches``), and answer only the
members the model's output shapes have (``only``).
"""
from __future__ import annotations

import base64
import re

import botocore.session
from botocore.validate import ParamValidator

SERVICE = "pinpoint-sms-voice-v2"
TARGET_PREFIX = "PinpointSMSVoiceV2."
MODEL = botocore.session.get_session().get_service_model(SERVICE)


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
        op = MODEL.operation_model(operation)
    except Exception:
        raise ApiError("ValidationException", f"Unknown operation {operation}", Reason="UNKNOWN_OPERATION") from None
    report = ParamValidator().validate(params, op.input_shape)
    problems = [report.generate_report()] if report.has_errors() else []
    problems += constraint_problems(params, op.input_shape)
    if problems:
        raise ApiError("ValidationException", "; ".join(problems), Reason="FIELD_VALIDATION_FAILED",
                       Fields=[{"Name": p.split(":")[0], "Message": p} for p in problems])
    return op


def e164(number: str) -> str:
    return number if number.startswith("+") else "+" + number


def _filter_field(name: str) -> str:
    """The member a Describe filter names: ``two-way-enabled`` -> ``TwoWayEnabled``."""
    return {"number-capability": "NumberCapabilities"}.get(name) or "".join(p.capitalize() for p in name.split("-"))


def matches(entry: dict, filters: list[dict]) -> bool:
    for condition in filters or []:
        value = entry.get(_filter_field(condition["Name"]))
        have = value if isinstance(value, list) else [value]
        have = [str(v).lower() if isinstance(v, bool) else str(v) for v in have if v is not None]
        if not set(have) & set(condition["Values"]):
            return False
    return True


def only(entry: dict, shape: str) -> dict:
    """``entry`` without the members the model's ``shape`` does not have (the stand-in's own bookkeeping)."""
    return {k: v for k, v in entry.items() if k in MODEL.shape_for(shape).members}


def one_page(items: list, p: dict) -> tuple[list, dict]:
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
