"""How a capability's blueprint declares a protected route: ``@protected(routes, "POST", "/sms")``. The route
gets the authorizer (API Gateway runs it first) and the scope ``scopes.ROUTES`` gives it, so the table is the
one place a route's scope is written; a route the table lacks fails at import.

``gate`` holds Chalice's built-in authorizer, ``bearer``: its name is the stack's ``Bearer`` function and the
OpenAPI document's security scheme. Chalice's local server runs it; deployed, the stack points that function's
handler at ``authorizer.handler``, the same check without Chalice, so the API's own cold start loads no check."""
from __future__ import annotations

from chalice import Blueprint

from ..core.web import ANY_BODY, ANY_KEY, handled
from .scopes import ANY_KEY as ANY_KEY_ROUTES
from .scopes import ROUTES

# How long API Gateway keeps the authorizer's answer for a key: a revocation holds within this.
CACHE_SECONDS = 60
gate = Blueprint(__name__)


@gate.authorizer(ttl_seconds=CACHE_SECONDS)
def bearer(auth_request):
    from . import authorizer

    return authorizer.check(auth_request.token, auth_request.method_arn)


def protected(routes, method: str, path: str, *, fields: frozenset = frozenset(), params: tuple = ()):
    """Register the decorated view as ``method path`` on ``routes``, behind the authorizer and the route's scope.
    ``fields``: the members its JSON body may have, ``params`` its query parameters (any other is 400
    ``UnknownField``; /openapi.json lists the same: tests/test_openapi.py). A POST or PUT takes its body whatever
    its Content-Type says."""
    scope = ANY_KEY if (method, path) in ANY_KEY_ROUTES else ROUTES[(method, path)]
    options = {"content_types": ANY_BODY} if method in ("POST", "PUT") else {}

    def decorate(view):
        return routes.route(path, methods=[method], authorizer=bearer, **options)(
            handled(routes, scope, frozenset(fields), frozenset(params))(view))

    return decorate
