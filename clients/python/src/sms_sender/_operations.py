"""Every operation of the API, written once for both clients.

An operation is a method whose signature is the request: ``@operation(operationId, METHOD, route, query=...)``
over a typed signature and a docstring, with no body. Its parameters become the request by name: those the
route names fill the path, those in ``query`` the query string, ``idempotency_key`` the header, and every other
one a member of the JSON body, in camelCase (``sender_id`` -> ``senderId``; None is left out). The return
annotation is what the answer is decoded into. So adding an operation is adding one such method; the contract
test (``tests/test_client_contract.py``) holds every one to ``/openapi.json``.

On a ``Client`` the method returns its result; on an ``AsyncClient`` it returns an awaitable of it.
"""
# mypy: disable-error-code="empty-body"
from __future__ import annotations

import functools
import inspect
import re
import typing
from typing import (Any, AsyncIterator, Callable, Concatenate, Coroutine, Generic, Iterator, Literal, Mapping,
                    ParamSpec, Sequence, TypeVar, overload)
from urllib.parse import quote

from ._core import Call, Core, json_value, query_value
from .models import (BatchAccepted, BatchItem, BatchProgress, DailyReport, Export, Health, Key, KeyWithSecret,
                     MediaUpload, Message, OptOut, Page, Template, Webhook, WebhookDelivery, WebhookWithSecret)

P = ParamSpec("P")
T = TypeVar("T")

OPERATIONS: dict[str, "Operation[Any, Any]"] = {}


class SyncBase:
    """A client whose operations answer at once (``Client``)."""

    _core: Core

    def _execute(self, call: Call) -> Any:
        raise NotImplementedError

    def _paginate(self, page: Callable[[str | None], Call], start: str | None) -> Any:
        raise NotImplementedError


class AsyncBase:
    """A client whose operations answer awaitables (``AsyncClient``)."""

    _core: Core

    def _execute(self, call: Call) -> Any:
        raise NotImplementedError

    def _paginate(self, page: Callable[[str | None], Call], start: str | None) -> Any:
        raise NotImplementedError


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class Operation(Generic[P, T]):
    """One API operation: ``operation_id``, ``method``, ``route``, and the method whose signature is its
    request (see the module's docstring)."""

    def __init__(self, fn: Callable[..., Any], operation_id: str, method: str, route: str,
                 query: Sequence[str]):
        self.fn, self.operation_id, self.method, self.route = fn, operation_id, method, route
        self.signature = inspect.signature(fn)
        names = [name for name in self.signature.parameters if name != "self"]
        self.path_params = tuple(re.findall(r"{(\w+)}", route))
        self.query_params = tuple(query)
        unknown = set(self.path_params + self.query_params) - set(names)
        if unknown:
            raise TypeError(f"{fn.__name__}: no parameter for {sorted(unknown)}")
        self.body_params = tuple(name for name in names if name not in self.path_params
                                 and name not in self.query_params and name != "idempotency_key")
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    @functools.cached_property
    def returns(self) -> Any:
        """The type the answer is decoded into (the method's return annotation)."""
        return typing.get_type_hints(self.fn)["return"]

    @property
    def body_fields(self) -> tuple[str, ...]:
        """The JSON members the method can send."""
        return tuple(_camel(name) for name in self.body_params)

    @property
    def query_fields(self) -> tuple[str, ...]:
        return tuple(_camel(name) for name in self.query_params)

    def call(self, instance: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Call:
        bound = self.signature.bind(instance, *args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        values.pop("self", None)
        for name in self.path_params:
            if values.get(name) in (None, ""):
                raise ValueError(f"{self.fn.__name__}: {name} is required")
        path = self.route.format(**{name: quote(str(values[name]), safe="") for name in self.path_params})
        query = [(_camel(name), query_value(values[name])) for name in self.query_params
                 if values.get(name) is not None]
        body = {_camel(name): json_value(values[name]) for name in self.body_params if values.get(name) is not None}
        return Call(self.operation_id, self.method, path, query, body if self.body_params else None, self.returns,
                    Core.idempotency_key(values.get("idempotency_key"), self.method))

    @overload
    def __get__(self, instance: None, owner: Any) -> "Operation[P, T]": ...

    @overload
    def __get__(self, instance: SyncBase, owner: Any) -> Callable[P, T]: ...

    @overload
    def __get__(self, instance: AsyncBase, owner: Any) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, instance: Any, owner: Any) -> Any:
        if instance is None:
            return self

        @functools.wraps(self.fn)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return instance._execute(self.call(instance, args, kwargs))

        return bound


def operation(operation_id: str, method: str, route: str, *, query: Sequence[str] = ()
              ) -> Callable[[Callable[Concatenate[Any, P], T]], Operation[P, T]]:
    def register(fn: Callable[Concatenate[Any, P], T]) -> Operation[P, T]:
        if operation_id in OPERATIONS:
            raise TypeError(f"{operation_id} has two methods")
        made: Operation[P, T] = Operation(fn, operation_id, method, route, query)
        OPERATIONS[operation_id] = made
        return made

    return register


class Paged(Generic[P, T]):
    """Every item of a listing, page after page, following ``next``: an iterator (``AsyncClient``: an async
    iterator) that asks for the next page only when the items of this one are used up."""

    def __init__(self, listing: "Operation[P, Page[T]]"):
        self.listing = listing
        functools.update_wrapper(self, listing.fn)  # type: ignore[arg-type]

    @overload
    def __get__(self, instance: None, owner: Any) -> "Paged[P, T]": ...

    @overload
    def __get__(self, instance: SyncBase, owner: Any) -> Callable[P, Iterator[T]]: ...

    @overload
    def __get__(self, instance: AsyncBase, owner: Any) -> Callable[P, AsyncIterator[T]]: ...

    def __get__(self, instance: Any, owner: Any) -> Any:
        if instance is None:
            return self

        def bound(*args: Any, **kwargs: Any) -> Any:
            start = kwargs.pop("next", None)
            return instance._paginate(
                lambda token: self.listing.call(instance, args, {**kwargs, "next": token}), start)

        bound.__doc__ = f"Every item of ``{self.listing.fn.__name__}``, following ``next`` page after page."
        return bound


def paged(listing: "Operation[P, Page[T]]") -> Paged[P, T]:
    return Paged(listing)


Direction = Literal["outbound", "inbound"]
Scope = Literal["messages:send", "messages:read", "opt-outs:read", "opt-outs:write", "webhooks:manage",
                "keys:manage", "templates:manage"]
EventType = Literal["message.sent", "message.delivered", "message.failed", "message.unknown", "message.received",
                    "message.scheduled", "message.canceled"]
Personalisation = Mapping[str, "str | int | float"]
When = Any  # an ISO 8601 string with its offset or Z, or an aware datetime


class Api:
    """The operations of the API. ``Client`` and ``AsyncClient`` both have them all."""

    # -- open routes --------------------------------------------------------------------------------------------
    @operation("getHealth", "GET", "/health")
    def health(self) -> Health:
        """Liveness: ``Health(status="ok")``."""

    @operation("getOpenApi", "GET", "/openapi.json")
    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of the API."""

    @operation("getConsole", "GET", "/")
    def console(self) -> str:
        """The send console's web page (HTML)."""

    @operation("getFavicon", "GET", "/favicon.ico")
    def favicon(self) -> None:
        """The console's icon (there is none: 204)."""

    # -- sending ------------------------------------------------------------------------------------------------
    @operation("sendSms", "POST", "/sms")
    def send_sms(self, to: str, body: str | None = None, *, country: str | None = None,
                 type: Literal["transactional", "promotional"] | None = None, sender_id: str | None = None,
                 dry_run: bool | None = None, template_id: str | None = None, template_version: int | None = None,
                 personalisation: Personalisation | None = None, send_at: When | None = None,
                 validity_period: int | None = None, max_price_usd: str | None = None,
                 idempotency_key: str | None = None) -> Message:
        """Send one SMS: ``to`` in E.164 (or a national number with ``country``) and ``body``, or a template
        (``template_id`` and ``personalisation``). ``send_at`` schedules it; ``dry_run`` validates it with End
        User Messaging and sends nothing. The message resource comes back (status ``sent``, ``queued``,
        ``scheduled`` or ``validated``)."""

    @operation("sendMms", "POST", "/mms")
    def send_mms(self, to: str, media_url: str | None = None, body: str | None = None, *,
                 country: str | None = None, dry_run: bool | None = None, template_id: str | None = None,
                 template_version: int | None = None, personalisation: Personalisation | None = None,
                 send_at: When | None = None, validity_period: int | None = None, max_price_usd: str | None = None,
                 idempotency_key: str | None = None) -> Message:
        """Send one MMS with ``media_url`` (``s3://`` as ``create_media_upload`` gave it; ``upload_media`` does
        both steps from a file)."""

    @operation("createMediaUpload", "POST", "/media")
    def create_media_upload(self, content_type: str, size: int, *, idempotency_key: str | None = None
                            ) -> MediaUpload:
        """A presigned S3 upload for MMS media of ``content_type`` and ``size`` bytes."""

    @operation("getMessage", "GET", "/messages/{message_id}")
    def get_message(self, message_id: str) -> Message:
        """One message and its status."""

    @operation("listMessages", "GET", "/messages", query=("limit", "next", "direction", "status"))
    def list_messages(self, *, limit: int | None = None, next: str | None = None,
                      direction: Direction | None = None, status: str | None = None) -> Page[Message]:
        """One page of messages, newest first (``iter_messages`` walks them all)."""

    iter_messages = paged(list_messages)

    @operation("cancelMessage", "POST", "/messages/{message_id}/cancel")
    def cancel_message(self, message_id: str, *, idempotency_key: str | None = None) -> Message:
        """Cancel a scheduled message: it ends ``canceled`` (409 ``NotCancelable`` once it is no longer
        scheduled)."""

    @operation("createBatch", "POST", "/batches")
    def create_batch(self, messages: Sequence[BatchItem | Mapping[str, Any]], *, template_id: str | None = None,
                     template_version: int | None = None, send_at: When | None = None,
                     validity_period: int | None = None, max_price_usd: str | None = None,
                     idempotency_key: str | None = None) -> BatchAccepted:
        """Up to 1,000 messages through the queue; the invalid ones come back in ``rejected``."""

    @operation("getBatch", "GET", "/batches/{batch_id}")
    def get_batch(self, batch_id: str) -> BatchProgress:
        """A batch's progress: counts per status, and ``done``."""

    @operation("cancelBatch", "POST", "/batches/{batch_id}/cancel")
    def cancel_batch(self, batch_id: str, *, idempotency_key: str | None = None) -> BatchProgress:
        """Cancel what is still scheduled of a batch; its progress comes back."""

    # -- templates ----------------------------------------------------------------------------------------------
    @operation("createTemplate", "POST", "/templates")
    def create_template(self, name: str, body: str, *, channel: Literal["sms", "mms"] | None = None,
                        media_url: str | None = None, idempotency_key: str | None = None) -> Template:
        """A template, version 1; placeholders are ``((name))``."""

    @operation("listTemplates", "GET", "/templates", query=("limit", "next"))
    def list_templates(self, *, limit: int | None = None, next: str | None = None) -> Page[Template]:
        """One page of templates."""

    iter_templates = paged(list_templates)

    @operation("getTemplate", "GET", "/templates/{template_id}", query=("version",))
    def get_template(self, template_id: str, *, version: int | None = None) -> Template:
        """A template's latest version, or ``version``."""

    @operation("replaceTemplate", "PUT", "/templates/{template_id}")
    def replace_template(self, template_id: str, name: str, body: str, *,
                         channel: Literal["sms", "mms"] | None = None, media_url: str | None = None) -> Template:
        """The template's next version: the whole template, as ``create_template`` takes it (a template keeps its
        channel). One that changes nothing makes no new version."""

    @operation("archiveTemplate", "DELETE", "/templates/{template_id}")
    def archive_template(self, template_id: str) -> None:
        """Archive the template: no new sends from it; messages keep what they were sent with."""

    # -- opt-outs -----------------------------------------------------------------------------------------------
    @operation("listOptOuts", "GET", "/opt-outs", query=("limit", "next"))
    def list_opt_outs(self, *, limit: int | None = None, next: str | None = None) -> Page[OptOut]:
        """One page of the stage's opt-out list (``iter_opt_outs`` walks it all)."""

    iter_opt_outs = paged(list_opt_outs)

    @operation("getOptOut", "GET", "/opt-outs/{number}")
    def get_opt_out(self, number: str) -> OptOut:
        """Whether ``number`` (E.164) is opted out: its entry, or ``NotFoundError`` (``OptOutNotFound``)."""

    @operation("putOptOut", "PUT", "/opt-outs/{number}")
    def put_opt_out(self, number: str) -> OptOut:
        """Opt ``number`` out."""

    @operation("deleteOptOut", "DELETE", "/opt-outs/{number}")
    def delete_opt_out(self, number: str) -> None:
        """Opt ``number`` back in (once in 30 days: ``ConflictError`` ``OptInTooSoon``)."""

    # -- webhooks -----------------------------------------------------------------------------------------------
    @operation("createWebhook", "POST", "/webhooks")
    def create_webhook(self, url: str, events: Sequence[EventType] | None = None, *,
                       idempotency_key: str | None = None) -> WebhookWithSecret:
        """Register an endpoint; its ``secret`` is in this answer only (``verify_webhook`` takes it)."""

    @operation("listWebhooks", "GET", "/webhooks")
    def list_webhooks(self) -> list[Webhook]:
        """The stage's endpoints, oldest first."""

    @operation("getWebhook", "GET", "/webhooks/{webhook_id}")
    def get_webhook(self, webhook_id: str) -> Webhook:
        """One endpoint."""

    @operation("deleteWebhook", "DELETE", "/webhooks/{webhook_id}")
    def delete_webhook(self, webhook_id: str) -> None:
        """Delete an endpoint: nothing more is delivered to it."""

    @operation("rotateWebhookSecret", "POST", "/webhooks/{webhook_id}/rotate")
    def rotate_webhook_secret(self, webhook_id: str, *, idempotency_key: str | None = None
                              ) -> WebhookWithSecret:
        """A new secret; the old one keeps signing for 24 hours."""

    @operation("listWebhookDeliveries", "GET", "/webhooks/{webhook_id}/deliveries", query=("limit",))
    def list_webhook_deliveries(self, webhook_id: str, *, limit: int | None = None) -> list[WebhookDelivery]:
        """Recent delivery attempts, newest first."""

    # -- keys -----------------------------------------------------------------------------------------------
    @operation("createKey", "POST", "/keys")
    def create_key(self, name: str, scopes: Sequence[Scope], *, test: bool | None = None,
                   expires_at: When | None = None, idempotency_key: str | None = None) -> KeyWithSecret:
        """Make a key; ``key`` is in this answer only (None if this answer is a replay)."""

    @operation("listKeys", "GET", "/keys")
    def list_keys(self) -> list[Key]:
        """The stage's keys, never a secret."""

    @operation("getCurrentKey", "GET", "/keys/current")
    def get_current_key(self) -> Key:
        """The key this client uses."""

    @operation("getKey", "GET", "/keys/{key_id}")
    def get_key(self, key_id: str) -> Key:
        """One key."""

    @operation("revokeKey", "DELETE", "/keys/{key_id}")
    def revoke_key(self, key_id: str) -> None:
        """Revoke a key (within a minute deployed: API Gateway caches the check)."""

    # -- reports --------------------------------------------------------------------------------------------
    @operation("getDailyReport", "GET", "/reports/daily", query=("from_", "to"))
    def daily_report(self, *, from_: When | None = None, to: When | None = None) -> DailyReport:
        """Per UTC day and channel: accepted, delivered, failed, unknown, pending, received, segments, cost
        (default: the last 7 days)."""

    @operation("createExport", "POST", "/exports")
    def create_export(self, from_: When, to: When, *, direction: Direction | None = None,
                      status: str | None = None, idempotency_key: str | None = None) -> Export:
        """Start a CSV export of the messages of a range of days (``wait_for_export`` waits for it)."""

    @operation("getExport", "GET", "/exports/{export_id}")
    def get_export(self, export_id: str) -> Export:
        """An export: ``running``, ``ready`` with ``url``, or ``failed``."""
