"""The API's resources as frozen dataclasses, one per schema of ``/openapi.json``.

Why dataclasses and not TypedDicts: an answer is read far more often than it is written, and a dataclass gives
attribute access, a readable ``repr``, immutability and one place that turns JSON into Python (``from_json``).
Every model keeps the JSON exactly as the API answered it in ``raw`` (``to_dict()``), so a member this client
does not know yet (a newer server) is never lost, and ``sms ... --json`` prints what the API said.
What the caller writes (a batch item) is a ``TypedDict``: a plain dict, checked by a type checker.

Field names are the JSON names in snake_case (``providerMessageId`` -> ``provider_message_id``; ``from`` ->
``from_``). Times stay the ISO 8601 strings the API sends.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, Generic, Literal, TypedDict, TypeVar, Union

T = TypeVar("T")

# Statuses after which a message never changes (GET /messages/{id}).
FINAL_STATUSES = frozenset({"delivered", "failed", "unknown", "validated", "received", "canceled"})
Status = Literal["scheduled", "queued", "sent", "delivered", "failed", "unknown", "validated", "received",
                 "canceled"]


def json_name(field: dataclasses.Field) -> str:
    """The JSON member a dataclass field reads: its metadata's ``json``, else its name in camelCase."""
    if "json" in field.metadata:
        return field.metadata["json"]
    head, *rest = field.name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _raw() -> Any:
    return dataclasses.field(default_factory=dict, repr=False, compare=False, metadata={"raw": True})


class Model:
    """Base of every resource: ``from_json`` builds one, ``to_dict`` gives back the JSON as answered."""

    raw: dict[str, Any]
    SCHEMA: ClassVar[str | None] = None  # the components/schemas name in /openapi.json

    @classmethod
    def from_json(cls: type[T], data: Any) -> T:
        return decode(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)


def model_fields(cls: type) -> dict[str, dataclasses.Field]:
    """The JSON name of each field of a model (``raw`` aside)."""
    return {json_name(f): f for f in dataclasses.fields(cls) if not f.metadata.get("raw")}


_HINTS: dict[type, dict[str, Any]] = {}


def decode(tp: Any, data: Any) -> Any:
    """JSON ``data`` as the Python type ``tp``: a model, ``list[X]``, ``dict[str, X]``, ``X | None``, a scalar.
    A list type reads an object with one list member too (``{"webhooks": [...]}``)."""
    if tp is Any or tp is None or tp is type(None):
        return data if tp is not type(None) else None
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        if data is None:
            return None
        arms = [arm for arm in typing.get_args(tp) if arm is not type(None)]
        return decode(arms[0], data) if len(arms) == 1 else data
    if origin is Literal:
        return data
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(data, dict):
            lists = [value for value in data.values() if isinstance(value, list)]
            data = lists[0] if len(lists) == 1 else data
        return [decode(item, value) for value in data] if isinstance(data, list) else data
    if origin is dict:
        _, item = typing.get_args(tp)
        return {key: decode(item, value) for key, value in data.items()} if isinstance(data, dict) else data
    cls = origin or tp
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        if not isinstance(data, dict):
            return data
        if origin is Page:
            (item,) = typing.get_args(tp)
            members = [key for key, value in data.items() if key != "next" and isinstance(value, list)]
            return Page(items=[decode(item, value) for value in (data[members[0]] if members else [])],
                        next=data.get("next"), raw=data)
        hints = _HINTS.get(cls)
        if hints is None:
            hints = _HINTS[cls] = typing.get_type_hints(cls)
        values = {f.name: decode(hints[f.name], data.get(name)) for name, f in model_fields(cls).items()}
        return cls(**values, raw=data)  # type: ignore[call-arg]
    return data


@dataclasses.dataclass(frozen=True)
class ErrorDetail(Model):
    """Why a message failed (``Message.error``, a batch's ``rejected``)."""

    SCHEMA: ClassVar[str | None] = "MessageError"
    code: str
    message: str
    field: str | None = None
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class Message(Model):
    """One message and its status: one the API sent (``direction`` outbound), or a reply (inbound)."""

    SCHEMA: ClassVar[str | None] = "Message"
    id: str
    direction: str
    channel: str
    from_: str | None
    to: str
    body: str | None
    media_url: str | None
    status: str
    provider_message_id: str | None
    segments: int
    encoding: str | None
    price_usd: float | None
    error: ErrorDetail | None
    provider_response: str | None
    dry_run: bool
    created_at: str
    updated_at: str
    received_at: str | None
    in_reply_to: str | None
    key_id: str | None
    test: bool
    validity_period: int | None
    valid_until: str | None
    max_price_usd: str | None
    template_id: str | None
    template_version: int | None
    send_at: str | None
    raw: dict[str, Any] = _raw()

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclasses.dataclass(frozen=True)
class Page(Model, Generic[T]):
    """One page of a listing: its ``items`` (``messages``, ``optOuts``, ...) and the ``next`` token (None: the last
    page). ``Client.iter_*`` walk every page."""

    items: list[T]
    next: str | None
    raw: dict[str, Any] = _raw()

    def __iter__(self) -> typing.Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclasses.dataclass(frozen=True)
class Upload(Model):
    """A presigned S3 POST: every field as a form field, then the file as ``file``."""

    url: str
    fields: dict[str, str]
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class MediaUpload(Model):
    SCHEMA: ClassVar[str | None] = "MediaUpload"
    media_url: str
    upload: Upload
    expires_in: int
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class Rejected(Model):
    """A batch item that was not queued: its index in the request and the error a single send would give."""

    index: int
    error: ErrorDetail
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class BatchAccepted(Model):
    SCHEMA: ClassVar[str | None] = "BatchAccepted"
    id: str
    accepted: int
    rejected: list[Rejected]
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class BatchProgress(Model):
    """Counts per status; ``done`` once no accepted message is ``queued``, ``scheduled`` or ``sent``."""

    SCHEMA: ClassVar[str | None] = "BatchProgress"
    id: str
    created_at: str
    size: int
    rejected: int
    queued: int
    sent: int
    delivered: int
    failed: int
    unknown: int
    scheduled: int
    canceled: int
    done: bool
    raw: dict[str, Any] = _raw()

    def counts(self) -> dict[str, int]:
        """Every status count the API answered, by name."""
        return {key: value for key, value in self.raw.items()
                if isinstance(value, int) and not isinstance(value, bool) and key != "size"}


@dataclasses.dataclass(frozen=True)
class Health(Model):
    SCHEMA: ClassVar[str | None] = "Health"
    status: str
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class Webhook(Model):
    SCHEMA: ClassVar[str | None] = "Webhook"
    id: str
    url: str
    events: list[str]
    enabled: bool
    created_at: str
    disabled_reason: str | None
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True, repr=False)
class WebhookWithSecret(Model):
    """A webhook endpoint just made or rotated, with its ``whsec_`` secret (not shown by ``repr``)."""

    SCHEMA: ClassVar[str | None] = "WebhookWithSecret"
    id: str
    url: str
    events: list[str]
    enabled: bool
    created_at: str
    disabled_reason: str | None
    secret: str
    raw: dict[str, Any] = _raw()

    def __repr__(self) -> str:
        return f"WebhookWithSecret(id={self.id!r}, url={self.url!r}, events={self.events!r}, secret='whsec_…')"


@dataclasses.dataclass(frozen=True)
class WebhookDelivery(Model):
    SCHEMA: ClassVar[str | None] = "WebhookDelivery"
    event_id: str
    type: str
    attempt: int
    attempted_at: str
    outcome: str
    status: int | None
    error: str | None
    duration_ms: int
    next_attempt_at: str | None
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class WebhookEvent(Model):
    """The body of a webhook delivery: ``data`` is the message as ``GET /messages/{id}`` answers it, less
    ``body`` (so ``data.body`` is None)."""

    SCHEMA: ClassVar[str | None] = "WebhookEvent"
    type: str
    timestamp: str
    data: Message
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class OptOut(Model):
    SCHEMA: ClassVar[str | None] = "OptOut"
    number: str
    opted_out_at: str | None
    source: str
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class Key(Model):
    """An API key's record: never its secret."""

    SCHEMA: ClassVar[str | None] = "Key"
    id: str
    name: str
    scopes: list[str]
    test: bool
    prefix: str | None
    created_at: str | None
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True, repr=False)
class KeyWithSecret(Model):
    """A key just made, with the key itself (``key``; None on a replay of the same Idempotency-Key, since only
    its hash is kept). ``repr`` never shows it."""

    SCHEMA: ClassVar[str | None] = "KeyWithSecret"
    id: str
    name: str
    scopes: list[str]
    test: bool
    prefix: str | None
    created_at: str | None
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None
    key: str | None
    raw: dict[str, Any] = _raw()

    def __repr__(self) -> str:
        return f"KeyWithSecret(id={self.id!r}, name={self.name!r}, scopes={self.scopes!r}, key='sk_…')"


# -- templates and reports --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Template(Model):
    SCHEMA: ClassVar[str | None] = "Template"
    id: str
    name: str
    body: str
    channel: str
    media_url: str | None
    version: int
    placeholders: list[str]
    created_at: str
    updated_at: str
    archived_at: str | None
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class ChannelFigures(Model):
    """One channel's figures for a day (or the range's totals)."""

    accepted: int
    delivered: int
    failed: int
    unknown: int
    pending: int
    received: int
    segments: int
    cost_usd: float
    failures_by_code: dict[str, int]
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class ReportDay(Model):
    date: str
    sms: ChannelFigures
    mms: ChannelFigures
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class ReportTotals(Model):
    sms: ChannelFigures
    mms: ChannelFigures
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class DailyReport(Model):
    SCHEMA: ClassVar[str | None] = "DailyReport"
    from_: str
    to: str
    days: list[ReportDay]
    totals: ReportTotals
    spend_limit_usd: int | None
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class ExportFilter(Model):
    """What an export was asked to hold: ``direction`` and ``status``, None for all."""

    direction: str | None
    status: str | None
    raw: dict[str, Any] = _raw()


@dataclasses.dataclass(frozen=True)
class Export(Model):
    """A CSV export: ``running``, then ``ready`` (``rows``, a presigned ``url`` valid 15 minutes) or ``failed``."""

    SCHEMA: ClassVar[str | None] = "Export"
    id: str
    status: str
    from_: str
    to: str
    filter: ExportFilter
    rows: int
    url: str | None
    url_expires_in: int | None
    reason: str | None
    created_at: str
    updated_at: str
    expires_at: str | None
    raw: dict[str, Any] = _raw()


# -- what the caller writes -------------------------------------------------------------------------------------

class BatchItem(TypedDict, total=False):
    """One message of ``create_batch``: the fields of ``send_sms`` or ``send_mms``, by their JSON names."""

    to: str
    body: str
    channel: Literal["sms", "mms"]
    country: str
    type: Literal["transactional", "promotional"]
    senderId: str
    mediaUrl: str
    templateId: str
    templateVersion: int
    personalisation: dict[str, str | int | float]
    validityPeriod: int
    maxPriceUsd: str
