"""The webhook endpoints' routes. Each loads ``manage`` on its first call: not part of a send's cold start."""
from __future__ import annotations

from chalice import Blueprint

from ..core import inputs
from ..core.settings import get_settings
from ..core.web import body, located, once, query
from ..keys.routing import protected

routes = Blueprint(__name__)


@protected(routes, "POST", "/webhooks", fields=frozenset({"url", "events"}))
def create_webhook():
    from . import manage

    made = {}  # the secret, when this request made it (a replay of the first answer shows it again)

    def handler():
        resource, made["secret"] = manage.create(body(routes), get_settings())
        return 201, resource, {}

    status, answer, headers = located(routes, once(routes, "webhooks", handler), "/webhooks/{id}")
    return status, manage.with_secret(answer, made.get("secret"), get_settings()), headers


@protected(routes, "GET", "/webhooks")
def list_webhooks():
    from . import manage

    return 200, manage.listing(get_settings()), {}


@protected(routes, "GET", "/webhooks/{webhook_id}")
def get_webhook(webhook_id):
    from . import manage

    return 200, manage.get(webhook_id, get_settings()), {}


@protected(routes, "DELETE", "/webhooks/{webhook_id}")
def delete_webhook(webhook_id):
    from . import manage

    manage.delete(webhook_id, get_settings())
    return 204, None, {}


@protected(routes, "POST", "/webhooks/{webhook_id}/rotate")
def rotate_webhook_secret(webhook_id):
    from . import manage

    made = {}

    def handler():
        resource, made["secret"] = manage.rotate(webhook_id, get_settings())
        return 200, resource, {}

    status, answer, headers = once(routes, f"webhooks/{webhook_id}/rotate", handler)
    return status, manage.with_secret(answer, made.get("secret"), get_settings()), headers


@protected(routes, "GET", "/webhooks/{webhook_id}/deliveries", params=("limit",))
def list_webhook_deliveries(webhook_id):
    from . import manage

    limit = inputs.limit(query(routes).get("limit"), default=manage.DELIVERIES_LIMIT)
    return 200, manage.deliveries(webhook_id, limit, get_settings()), {}
