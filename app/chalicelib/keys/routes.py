"""The keys' routes (``keys:manage``), and ``GET /keys/current``, open to any valid key.

Each loads ``manage`` on its first call: not part of the API's cold start."""
from __future__ import annotations

from chalice import Blueprint

from ..core.settings import get_settings
from ..core.web import body, caller, located, once
from .routing import protected

routes = Blueprint(__name__)
REQUEST_FIELDS = frozenset({"name", "scopes", "test", "expiresAt"})  # POST /keys


@protected(routes, "POST", "/keys", fields=REQUEST_FIELDS)
def create_key():
    from . import manage

    made = {}  # the key, when this request made it; a replay of the first answer cannot show it again

    def handler():
        resource, made["key"] = manage.create(body(routes), caller(routes), get_settings())
        return 201, resource, {}

    status, answer, headers = located(routes, once(routes, "keys", handler), "/keys/{id}")
    return status, {**answer, "key": made.get("key")}, headers


@protected(routes, "GET", "/keys")
def list_keys():
    from . import manage

    return 200, manage.listing(get_settings()), {}


@protected(routes, "GET", "/keys/current")
def current_key():
    from . import manage

    return 200, manage.current(caller(routes), get_settings()), {}


@protected(routes, "GET", "/keys/{key_id}")
def get_key(key_id):
    from . import manage

    return 200, manage.get(key_id, get_settings()), {}


@protected(routes, "DELETE", "/keys/{key_id}")
def revoke_key(key_id):
    from . import manage

    manage.revoke(key_id, caller(routes), get_settings())
    return 204, None, {}
