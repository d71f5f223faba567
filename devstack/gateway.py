"""What API Gateway does in front of the app, played around Chalice's local gateway (``make dev``, the tests'
HTTP servers and their Chalice test client all use it).

- The key check is the app's own authorizer (``chalicelib.keys.authorizer``), which Chalice local runs before
  the route, as API Gateway runs it deployed; its answer is cached per key for the authorizer's TTL, as API
  Gateway caches it, so a later request to another route is judged by the cached policy alone.
- Under ``make dev`` a request without a key acts as a live key with every scope (``require_keys`` off), so
  curl examples stay short; a request that carries a key is checked as deployed.
- API Gateway's own answers come in the contract's error body (``chalicelib.core.gateway``), and none echoes
  the ``Authorization`` header: Chalice local's answer for an unknown path quotes it, key and all. Here the
  refused scope can be named (the local gateway knows the route's scope), where API Gateway names the route.
"""
from __future__ import annotations

import threading
import time

from chalice.app import ChaliceAuthorizer
from chalice.local import (ForbiddenError, InvalidAuthorizerError, LocalGateway, LocalGatewayAuthorizer,
                           LocalGatewayException, NotAuthorizedError)

from . import appload  # noqa: F401  (puts chalicelib on the path)
from chalicelib.core import gateway as answers
from chalicelib.keys import scopes
from chalicelib.keys.authorizer import Unauthorized
from chalicelib.keys.manage import LOCAL_KEY_ID

# The authorizer context a request without a key gets under make dev.
LOCAL_CALLER = {"principalId": LOCAL_KEY_ID, "keyId": LOCAL_KEY_ID, "scopes": " ".join(scopes.SCOPES),
                "test": "false"}


class Refused(LocalGatewayException):
    """One of API Gateway's own answers, in the contract's shape."""

    def __init__(self, answer: answers.Answer, message: str | None = None, **variables):
        body = answer._replace(message=message).body() if message else answer.body(**variables)
        super().__init__({"Content-Type": "application/json", **dict(answer.headers)}, body.encode())
        self.CODE = answer.status


class KeyCheck(LocalGatewayAuthorizer):
    """Chalice local's authorizer run, with API Gateway's cache of its answer and make dev's keyless caller."""

    def __init__(self, app_object, *, require_keys: bool, clock=time.monotonic):
        super().__init__(app_object)
        self.require_keys, self.clock = require_keys, clock
        self._answers: dict[str, tuple[float, dict]] = {}  # Authorization header -> (until, the authorizer's answer)
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop every cached answer (API Gateway's console has a button for this)."""
        with self._lock:
            self._answers.clear()

    def authorize(self, raw_path, lambda_event, lambda_context):
        route_entry = self._route_for_event(lambda_event)
        authorizer = route_entry.authorizer if route_entry else None
        if not isinstance(authorizer, ChaliceAuthorizer):
            return lambda_event, lambda_context
        headers = lambda_event.get("headers") or {}
        header = headers.get("authorization")
        # Keyless is make dev's caller; a request with only the old x-api-key is refused as deployed (the stack
        # makes no API key any more: docs/guides/keys.md), so a client being moved off it fails here first.
        if header is None and not self.require_keys and "x-api-key" not in headers:
            lambda_event["requestContext"]["authorizer"] = dict(LOCAL_CALLER)
            return lambda_event, lambda_context
        arn = self._arn_builder.build_arn(lambda_event["requestContext"]["httpMethod"], raw_path)
        if header is None:
            raise NotAuthorizedError({}, b"")
        result = self._cached(header)
        if result is None:
            try:
                result = authorizer(self._prepare_authorizer_event(arn, lambda_event, lambda_context), lambda_context)
            except Unauthorized:
                raise NotAuthorizedError({}, b"") from None
            except Exception as failed:  # API Gateway: AUTHORIZER_FAILURE, a 5xx; nothing is cached
                raise InvalidAuthorizerError({}, str(type(failed).__name__).encode()) from None
            self._keep(header, result, authorizer.config.ttl_seconds or 300)
        if not self._check_can_invoke_view_function(arn, result):
            raise ForbiddenError({"x-amzn-ErrorType": "AccessDeniedException"}, b"")
        return self._update_lambda_event(lambda_event, {**result, "context": dict(result.get("context") or {})}), \
            lambda_context

    def _cached(self, header: str) -> dict | None:
        with self._lock:
            kept = self._answers.get(header)
            if kept and kept[0] > self.clock():
                return kept[1]
            self._answers.pop(header, None)
            return None

    def _keep(self, header: str, result: dict, ttl: float) -> None:
        with self._lock:
            if len(self._answers) > 10_000:
                self._answers.clear()
            self._answers[header] = (self.clock() + ttl, result)


class Gateway(LocalGateway):
    """Chalice's local gateway with API Gateway's key check and API Gateway's own answers."""

    def __init__(self, app_object, config, *, require_keys: bool = False, key_check: KeyCheck | None = None):
        super().__init__(app_object, config)
        self._authorizer = key_check or KeyCheck(app_object, require_keys=require_keys)

    @property
    def key_check(self) -> KeyCheck:
        return self._authorizer

    def handle_request(self, method, path, headers, body):
        try:
            return super().handle_request(method=method, path=path, headers=headers, body=body)
        except Refused:
            raise
        except NotAuthorizedError:
            raise Refused(answers.UNAUTHORIZED) from None
        except InvalidAuthorizerError:
            raise Refused(answers.KEY_CHECK_FAILED) from None
        except ForbiddenError as refused:
            if refused.headers.get("x-amzn-ErrorType") == "AccessDeniedException":
                raise Refused(answers.ACCESS_DENIED, _scope_message(method, path, self._app_object)) from None
            raise Refused(answers.ROUTE_NOT_FOUND) from None  # Chalice's "Missing Authentication Token"


def _scope_message(method: str, path: str, app_object) -> str | None:
    """The refused route's scope, named: the local gateway knows it (API Gateway names the route instead)."""
    from chalice.local import RouteMatcher

    try:
        matched = RouteMatcher(list(app_object.routes)).match_route(path.split("?")[0])
    except ValueError:
        return None
    route = matched.route
    scope = scopes.ROUTES.get((method.upper(), route))
    return f"This key lacks the scope {scope}, which {method.upper()} {route} needs." if scope else None
