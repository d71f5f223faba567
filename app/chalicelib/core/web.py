"""The HTTP edge: domain errors to status codes (in this one place), JSON responses, request
parsing helpers and the wrapper every route goes through."""
from __future__ import annotations

import functools
import json
import re
import uuid

import chalice.app
from chalice import Response
from chalice.app import handle_extra_types

from . import aws, errors, idempotency, inputs
from .caller import Caller
from .log import logger

STATUS = (
    (errors.InvalidRequest, 400),
    (errors.Unauthenticated, 401),
    (errors.NotAllowed, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.Unprocessable, 422),
    (errors.Throttled, 429),
    (errors.ProviderFailure, 502),
    (errors.NotConfigured, 503),
    (errors.Unavailable, 503),
)


def status_for(err: errors.MessagingError) -> int:
    for kind, status in STATUS:
        if isinstance(err, kind):
            return status
    return 500


# A header value holds visible ASCII and spaces only; anything else is percent-encoded, so no value (a
# Location built from a path, say) can ever end a header line or start another.
_NOT_HEADER_SAFE = re.compile(r"[^\x20-\x7e]")


def _header_value(value) -> str:
    text = str(value)
    if not _NOT_HEADER_SAFE.search(text):
        return text
    return _NOT_HEADER_SAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8", "replace")), text)


# Made once: json.dumps builds an encoder on every call given options.
_COMPACT = json.JSONEncoder(separators=(",", ":"), default=str)


def to_json(value) -> str:
    """A JSON answer's body: compact, ending in a newline (so that curl's prompt starts a line of its own)."""
    return _COMPACT.encode(value) + "\n"


def json_response(status: int, body, headers: dict | None = None) -> Response:
    if status == 204:  # No Content: no body, so no type either
        return Response(body="", status_code=204,
                        headers={name: _header_value(value) for name, value in (headers or {}).items()})
    return Response(
        body=to_json(body),
        status_code=status,
        headers={"Content-Type": "application/json",
                 **{name: _header_value(value) for name, value in (headers or {}).items()}},
    )


def error_response(err: errors.MessagingError) -> Response:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after else {}
    if isinstance(err, errors.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    body = {"error": err.as_dict()}
    if err.message_id:
        body["error"]["messageId"] = err.message_id
    return json_response(status_for(err), body, headers)


# What the function keeps for itself after its last AWS call: the answer, and Lambda handing it over.
ANSWER_SECONDS = 1.0


def time_to_answer(app) -> float | None:
    """Seconds the route's AWS calls may take: what is left of the function's time, less ``ANSWER_SECONDS``
    (None where no Lambda context tells: then no deadline)."""
    context = getattr(app, "lambda_context", None)
    if not hasattr(context, "get_remaining_time_in_millis"):
        return None
    return context.get_remaining_time_in_millis() / 1000.0 - ANSWER_SECONDS


def request_id(app) -> str:
    return getattr(app.lambda_context, "aws_request_id", None) or str(uuid.uuid4())


# Path parameters that name one of our resources, and the 404 a malformed one gets (without a look-up).
RESOURCE_IDS = {"message_id": ("MessageNotFound", "message"), "batch_id": ("BatchNotFound", "batch"),
                "webhook_id": ("WebhookNotFound", "webhook"), "template_id": ("TemplateNotFound", "template")}
BODY_METHODS = ("POST", "PUT", "PATCH")


def screen(request, path_parameters: dict) -> None:
    """What every route gets checked for before it runs, so that no hostile request reaches the idempotency
    layer or AWS: ids in the path that cannot be ours (404), the ``Idempotency-Key`` header (400
    ``InvalidIdempotencyKey``), and a request body that is not a JSON object the API can read (400
    ``InvalidJson`` / ``RequestTooLarge``: invalid UTF-8 or Unicode, too deep, too large). Every request body of
    this API is JSON; an empty one is left to the route, which says what it needs."""
    for name, value in path_parameters.items():
        if name in RESOURCE_IDS:
            inputs.resource_id(value, *RESOURCE_IDS[name])
    if request is None or request.method not in BODY_METHODS:
        return
    inputs.idempotency_key(request.headers.get("idempotency-key"))
    try:
        raw = request.raw_body
    except UnicodeError:  # a body API Gateway could only hand over as text with lone surrogates
        raise errors.InvalidRequest("InvalidJson", "The request body is not valid UTF-8.") from None
    if raw:
        request.screened_body = inputs.parse_json(raw)  # the route reads it through json_body()


def json_body(request) -> dict:
    """The request's JSON object, as ``screen`` parsed it: parsed once per request."""
    parsed = getattr(request, "screened_body", None)
    return parsed if parsed is not None else inputs.parse_json(request.raw_body)


def answer(app, view, args: tuple, kwargs: dict, scope: str | None = None,
           fields: frozenset = frozenset(), params: frozenset | None = None) -> Response:
    """What every route goes through (``handled``): the caller's key checked for the route's ``scope``,
    the request screened, the view run; it returns (status, body, headers), errors become the contract's
    error body, and anything unexpected becomes a 500 with a request id, never a stack trace. ``params``: the
    query parameters the route takes (any other is 400 ``UnknownField``); None takes any."""
    try:
        request = getattr(app, "current_request", None)
        if scope is not None:
            require(request, scope)
        if params is not None and request is not None and request.query_params:
            inputs.only(request.query_params, params, kind="query parameter")
        screen(request, kwargs)
        parsed = getattr(request, "screened_body", None)
        if parsed is not None:  # a body member the route does not define is refused, whatever the route
            inputs.only(parsed, fields)
        with aws.deadline(time_to_answer(app)):
            status, body, headers = view(*args, **kwargs)
        return json_response(status, body, headers)
    except errors.MessagingError as err:
        return error_response(err)
    except Exception:
        rid = request_id(app)
        logger.exception("unhandled error", extra={"requestId": rid})
        return json_response(500, {"error": {"code": "InternalError",
                                             "message": "An unexpected error occurred.",
                                             "requestId": rid}})


# Chalice answers some requests itself, before any route runs, with a body of its own ({"Code",
# "Message"}): a method the route lacks (405, under Chalice local; deployed, API Gateway answers those)
# and a Content-Type the route does not take (415). ``contract_errors`` gives them the contract's error
# body, with these codes.
CHALICE_ERRORS = {"MethodNotAllowedError": (405, "MethodNotAllowed"),
                  "UnsupportedMediaType": (415, "UnsupportedMediaType")}


def contract_errors(response: Response) -> Response:
    """An HTTP middleware's work, on every answer of every route: Chalice's own error bodies become
    ``{"error": {"code", "message"}}``, and every JSON body ends in a newline as ``to_json`` writes it, also
    one a route built itself (``/openapi.json``) or left to Chalice to serialize (a dict)."""
    body = response.body
    if isinstance(body, dict) and set(body) == {"Code", "Message"} and body["Code"] in CHALICE_ERRORS:
        _status, code = CHALICE_ERRORS[body["Code"]]
        message = str(body["Message"])
        if code == "UnsupportedMediaType":  # Chalice's words name the type, not the ones the route takes
            message = f"{message.rstrip(': ')}. The body is JSON: send it as {', '.join(ANY_BODY)}."
        response.body = to_json({"error": {"code": code, "message": message}})
        response.headers["Content-Type"] = "application/json"
    elif _is_json(response):
        if isinstance(body, str) and body and not body.endswith("\n"):
            response.body = body + "\n"
        elif not isinstance(body, (str, bytes)):  # serialized as Chalice would (Response.to_dict), and the newline
            response.body = json.dumps(body, separators=(",", ":"), default=handle_extra_types) + "\n"
    return response


_CHALICE_MATCHES = chalice.app._matches_content_type


@functools.lru_cache(maxsize=256)
def _matched_content_type(content_type: str, valid: tuple[str, ...]) -> bool:
    return _CHALICE_MATCHES(content_type, list(valid))


def _remembered_content_type_match(content_type: str, valid_content_types: list[str]) -> bool:
    return _matched_content_type(content_type, tuple(valid_content_types))


def remember_content_type_checks() -> None:
    """Have Chalice ask its own content-type check once per distinct question. On every request Chalice checks
    the request's Content-Type against the route's types, then the answer's against the API's binary types twice
    (``_matches_content_type``), lowercasing all twenty of those types and splitting the header with a regular
    expression each time: about a tenth of the app's own work in a send (``make bench``'s per-send row). Its
    answer depends only on its two arguments (a header and a list of types), so it is kept per pair, the list
    read afresh every time; at most 256 pairs, since a header comes from the caller. ``tests/test_shortcuts.py``
    holds it to Chalice's own answers."""
    chalice.app._matches_content_type = _remembered_content_type_match


def _is_json(response: Response) -> bool:
    """Chalice answers ``application/json`` where no Content-Type is set."""
    types = [value for name, value in response.headers.items() if name.lower() == "content-type"]
    return not types or str(types[0]).split(";")[0].strip().lower() == "application/json"


# -- what the routes share (each capability's ``routes.py`` is a Chalice blueprint of its routes) ---------------
# Send routes accept any body type: the body is parsed as JSON whatever curl labels it.
ANY_BODY = ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/octet-stream"]


def handled(routes, scope: str | None = None, fields: frozenset = frozenset(), params: frozenset | None = None):
    """Decorator for a route of the blueprint ``routes``: see ``answer``. ``scope``: the one scope the route
    needs (``keys.scopes``), or ``ANY_KEY``; None for an open route. ``fields``: the members its JSON body may
    have (none: any member is 400 ``UnknownField``). ``params``: the query parameters it takes (None: any)."""
    def decorate(view):
        @functools.wraps(view)
        def route(*args, **kwargs):
            return answer(routes, view, args, kwargs, scope, fields, params)

        route.scope, route.fields, route.params = scope, fields, params
        return route

    return decorate


# -- who called: the authorizer's answer, as API Gateway (and Chalice local) hands it to the route ---------------
ANY_KEY = "any key"


def caller_of(request) -> Caller | None:
    """The key the authorizer let through (``requestContext.authorizer``), or None. Read once per request: the
    scope check, the route and the idempotency layer each ask."""
    if request is None:
        return None
    known = getattr(request, "caller", _UNREAD)
    if known is _UNREAD:
        known = request.caller = _caller_in(request)
    return known


_UNREAD = object()


def _caller_in(request) -> Caller | None:
    context = (getattr(request, "context", None) or {}).get("authorizer") or {}
    key_id = context.get("keyId") or context.get("principalId")
    if not key_id:
        return None
    return Caller(str(key_id), frozenset(str(context.get("scopes") or "").split()),
                  str(context.get("test")).lower() == "true")


def caller(routes) -> Caller:
    found = caller_of(routes.current_request)
    if found is None:
        raise errors.Unauthenticated()
    return found


def require(request, scope: str) -> Caller:
    """The caller, if its key has ``scope``: else 401 (no key) or 403 ``InsufficientScope`` naming it. API
    Gateway's cached policy already keeps a key to its scopes' routes; this holds the routes to it too."""
    found = caller_of(request)
    if found is None:
        raise errors.Unauthenticated()
    if scope != ANY_KEY and scope not in found.scopes:
        context = getattr(request, "context", None) or {}
        route = f"{getattr(request, 'method', '')} {context.get('resourcePath', '')}".strip()
        raise errors.NotAllowed("InsufficientScope", f"This key lacks the scope {scope}, which {route} needs.")
    return found


def body(routes) -> dict:
    """The request's JSON object (parsed once per request)."""
    return json_body(routes.current_request)


def once(routes, route: str, handler):
    """A POST's work, at most once per ``Idempotency-Key`` and key (``idempotency.once``): two keys that
    happen to send the same ``Idempotency-Key`` never see each other's answers."""
    request = routes.current_request
    who = caller_of(request)
    scoped = f"{who.key_id} {route}" if who else route
    return idempotency.once(scoped, request.headers.get("idempotency-key"), request.raw_body, handler,
                            routes.lambda_context)


def located(routes, outcome: tuple, path: str) -> tuple:
    """A created resource's ``Location``, added to the outcome after the idempotency layer, so a replayed
    response points where the replaying caller reaches the API."""
    status, answer_body, headers = outcome
    return status, answer_body, {**headers, "Location": here(routes, path.format(id=answer_body["id"]))}


def here(routes, path: str) -> str:
    """``path`` (a route's own path, e.g. ``/messages/{id}``) as the caller of this request reaches it.

    Deployed, API Gateway's proxy event carries the path the caller used in ``requestContext.path``:
    ``/api/sms`` on the execute-api domain (stage included), ``/sms`` or ``/<base path>/sms`` on a
    custom domain. ``requestContext.resourcePath`` is the route (``/sms``). Whatever comes before
    the route's segments is the caller's prefix. Under Chalice local and its test client the two are
    the same, and the prefix is empty."""
    context = routes.current_request.context or {}
    used = [part for part in (context.get("path") or "").split("/") if part]
    route = [part for part in (context.get("resourcePath") or "").split("/") if part]
    prefix = used[:len(used) - len(route)] if len(used) > len(route) else []
    return "".join(f"/{part}" for part in prefix) + path


def query(routes) -> dict:
    return routes.current_request.query_params or {}
