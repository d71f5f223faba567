"""The reports' routes (``messages:read``). Each loads its module on its first call: not part of a send's cold
start."""
from __future__ import annotations

from chalice import Blueprint

from ..core.settings import get_settings
from ..core.web import body, caller, located, once, query
from ..keys.routing import protected

routes = Blueprint(__name__)

# POST /exports: the members its body may have.
EXPORT_FIELDS = frozenset({"from", "to", "direction", "status"})


@protected(routes, "GET", "/reports/daily", params=("from", "to"))
def daily_report():
    from . import daily

    asked = query(routes)
    return 200, daily.report(asked.get("from"), asked.get("to"), caller(routes), get_settings()), {}


@protected(routes, "POST", "/exports", fields=EXPORT_FIELDS)
def create_export():
    from . import exports

    def handler():
        return 202, exports.start(body(routes), caller(routes), get_settings()), {}

    return located(routes, once(routes, "exports", handler), "/exports/{id}")


@protected(routes, "GET", "/exports/{export_id}")
def get_export(export_id):
    from . import exports

    return 200, exports.get(export_id, caller(routes), get_settings()), {}
