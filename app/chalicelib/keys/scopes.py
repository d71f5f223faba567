"""Which routes each scope opens: the one table the authorizer's policy, the routes' own check, the OpenAPI
document and the console follow (``tests/test_keys.py``, ``tests/test_openapi.py`` and ``tests/test_console.py`` hold them to it).

Every protected route needs exactly one scope. ``GET /keys/current`` (the calling key itself) is open to any
valid key; ``GET /health``, ``/``, ``/favicon.ico`` and ``/openapi.json`` need no key at all.
"""
from __future__ import annotations

SEND, READ = "messages:send", "messages:read"
TEMPLATES = "templates:manage"
OPT_OUTS_READ, OPT_OUTS_WRITE = "opt-outs:read", "opt-outs:write"
WEBHOOKS, KEYS = "webhooks:manage", "keys:manage"
SCOPES = (SEND, READ, TEMPLATES, OPT_OUTS_READ, OPT_OUTS_WRITE, WEBHOOKS, KEYS)

# (method, route) -> the scope it needs
ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/sms"): SEND, ("POST", "/mms"): SEND, ("POST", "/media"): SEND, ("POST", "/batches"): SEND,
    ("POST", "/messages/{message_id}/cancel"): SEND, ("POST", "/batches/{batch_id}/cancel"): SEND,
    ("GET", "/messages"): READ, ("GET", "/messages/{message_id}"): READ, ("GET", "/batches/{batch_id}"): READ,
    # A sender reads the templates it sends from; making and changing them is templates:manage.
    ("GET", "/templates"): SEND, ("GET", "/templates/{template_id}"): SEND,
    ("POST", "/templates"): TEMPLATES, ("PUT", "/templates/{template_id}"): TEMPLATES,
    ("DELETE", "/templates/{template_id}"): TEMPLATES,
    ("GET", "/opt-outs"): OPT_OUTS_READ, ("GET", "/opt-outs/{number}"): OPT_OUTS_READ,
    ("PUT", "/opt-outs/{number}"): OPT_OUTS_WRITE, ("DELETE", "/opt-outs/{number}"): OPT_OUTS_WRITE,
    ("POST", "/webhooks"): WEBHOOKS, ("GET", "/webhooks"): WEBHOOKS, ("GET", "/webhooks/{webhook_id}"): WEBHOOKS,
    ("DELETE", "/webhooks/{webhook_id}"): WEBHOOKS, ("POST", "/webhooks/{webhook_id}/rotate"): WEBHOOKS,
    ("GET", "/webhooks/{webhook_id}/deliveries"): WEBHOOKS,
    ("POST", "/keys"): KEYS, ("GET", "/keys"): KEYS, ("GET", "/keys/{key_id}"): KEYS,
    ("DELETE", "/keys/{key_id}"): KEYS,
    ("GET", "/reports/daily"): READ, ("POST", "/exports"): READ, ("GET", "/exports/{export_id}"): READ,
}
# Routes any valid key may call, whatever its scopes.
ANY_KEY = (("GET", "/keys/current"),)
OPEN = (("GET", "/health"), ("GET", "/"), ("GET", "/favicon.ico"), ("GET", "/openapi.json"))


def routes_of(scopes) -> list[tuple[str, str]]:
    """Every (method, route) the scopes open, the routes any key may call included."""
    granted = set(scopes)
    return [route for route, scope in ROUTES.items() if scope in granted] + list(ANY_KEY)


def resource_path(route: str) -> str:
    """A route as an execute-api resource: each ``{parameter}`` is ``*``, and no leading slash."""
    return "/".join("*" if part.startswith("{") else part for part in route.strip("/").split("/"))


def policy(method_arn: str, scopes) -> dict:
    """The IAM policy API Gateway caches for a key: ``execute-api:Invoke`` on exactly the routes its scopes
    open, in the API and stage of ``method_arn`` (``arn:aws:execute-api:<region>:<account>:<api>/<stage>/...``)."""
    prefix, _, rest = method_arn.partition(":execute-api:")
    region_account, _, path = rest.rpartition(":")
    api, stage = path.split("/")[:2]
    base = f"{prefix}:execute-api:{region_account}:{api}/{stage}"
    resources = sorted(f"{base}/{method}/{resource_path(route)}" for method, route in routes_of(scopes))
    return {"Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resources}]}
