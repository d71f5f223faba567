"""API Gateway's own answers, in the contract's error body: the gateway responses the stack configures
(``infra/api.py``) and the local stack plays (``devstack/gateway.py``). The app's functions never load this.

API Gateway answers these before any route runs, so they cannot name what only the app knows: a refused
scope names the method and route instead of the scope. No template uses ``$context.error.message``: for an
unknown path with an ``Authorization`` header, API Gateway's own message quotes the header, key and all.
"""
from __future__ import annotations

import json
from typing import NamedTuple

# Where API Gateway answers, the ``$context`` variables its templates may use (never caller input but the
# method and the route's own template).
ROUTE = "$context.httpMethod $context.resourcePath"


class Answer(NamedTuple):
    """One gateway response. ``status`` 0: API Gateway's own status stays."""
    status: int
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()

    def body(self, **variables) -> str:
        """The body, ending in a newline like the app's (``web.to_json``); ``variables`` fill the ``$context``
        placeholders the way API Gateway does. A gateway response's template gets simple variable substitution
        only, no VTL (tests/aws_docs/api-gateway-gateway-response-templates.json): its newline stays."""
        message = self.message
        for name, value in variables.items():
            message = message.replace(f"$context.{name}", value)
        return json.dumps({"error": {"code": self.code, "message": message}}, separators=(",", ":")) + "\n"


UNAUTHORIZED = Answer(401, "Unauthorized", "A valid API key is required: send it as 'Authorization: Bearer <key>'.",
                      (("WWW-Authenticate", "Bearer"),))
# API Gateway's answer names no scope (it does not know which the route needs): the method and route instead.
ACCESS_DENIED = Answer(403, "InsufficientScope", f"This key's scopes do not allow {ROUTE}.")
ROUTE_NOT_FOUND = Answer(404, "RouteNotFound", "This API has no route for this method and path.")
THROTTLED = Answer(429, "Throttled", "Too many requests for this stage's throttle; retry after Retry-After seconds.",
                   (("Retry-After", "1"),))
KEY_CHECK_FAILED = Answer(503, "Unavailable", "The API key could not be checked just now; retry shortly.",
                          (("Retry-After", "1"),))

# API Gateway's response types (AWS::ApiGateway::GatewayResponse ResponseType) and their answers. The two
# defaults keep API Gateway's status and say only which kind of refusal it was.
RESPONSES: dict[str, Answer] = {
    "UNAUTHORIZED": UNAUTHORIZED,
    "ACCESS_DENIED": ACCESS_DENIED,
    "MISSING_AUTHENTICATION_TOKEN": ROUTE_NOT_FOUND,
    "THROTTLED": THROTTLED,
    "AUTHORIZER_FAILURE": KEY_CHECK_FAILED,
    "AUTHORIZER_CONFIGURATION_ERROR": KEY_CHECK_FAILED,
    "DEFAULT_4XX": Answer(0, "RequestRefused", "API Gateway refused the request ($context.error.responseType)."),
    "DEFAULT_5XX": Answer(0, "GatewayError", "API Gateway failed ($context.error.responseType); retry shortly."),
}
