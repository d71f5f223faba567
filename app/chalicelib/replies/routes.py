"""The opt-out list's routes. Each loads ``optout_routes`` on its first call: not part of a send's cold start."""
from __future__ import annotations

from chalice import Blueprint

from ..core import inputs
from ..core.settings import get_settings
from ..core.web import query
from ..keys.routing import protected

routes = Blueprint(__name__)


@protected(routes, "GET", "/opt-outs", params=("limit", "next"))
def list_opt_outs():
    from . import optout_routes

    asked = query(routes)
    return 200, optout_routes.listing(inputs.limit(asked.get("limit")), asked.get("next"), get_settings()), {}


@protected(routes, "GET", "/opt-outs/{number}")
def get_opt_out(number):
    from . import optout_routes

    return 200, optout_routes.get(number, get_settings()), {}


@protected(routes, "PUT", "/opt-outs/{number}")
def put_opt_out(number):
    from . import optout_routes

    status, entry = optout_routes.put(number, get_settings())
    return status, entry, {}


@protected(routes, "DELETE", "/opt-outs/{number}")
def delete_opt_out(number):
    from . import optout_routes

    optout_routes.delete(number, get_settings())
    return 204, None, {}
