"""The templates' routes: ``templates:manage`` to create, change and archive one, ``messages:send`` to read them.

Each loads ``manage`` on its first call: not part of the API's cold start."""
from __future__ import annotations

from chalice import Blueprint

from ..core import inputs
from ..core.settings import get_settings
from ..core.web import body, located, once, query
from ..keys.routing import protected

routes = Blueprint(__name__)
REQUEST_FIELDS = frozenset({"name", "body", "channel", "mediaUrl"})  # POST /templates, PUT /templates/{id}


@protected(routes, "POST", "/templates", fields=REQUEST_FIELDS)
def create_template():
    from . import manage

    def handler():
        return 201, manage.create(body(routes), get_settings()), {}

    return located(routes, once(routes, "templates", handler), "/templates/{id}")


@protected(routes, "GET", "/templates", params=("limit", "next"))
def list_templates():
    from . import manage

    asked = query(routes)
    return 200, manage.listing(inputs.limit(asked.get("limit")), asked.get("next"), get_settings()), {}


@protected(routes, "GET", "/templates/{template_id}", params=("version",))
def get_template(template_id):
    from . import manage

    return 200, manage.get(template_id, get_settings(), query(routes).get("version")), {}


@protected(routes, "PUT", "/templates/{template_id}", fields=REQUEST_FIELDS)
def replace_template(template_id):
    from . import manage

    return 200, manage.replace(template_id, body(routes), get_settings()), {}


@protected(routes, "DELETE", "/templates/{template_id}")
def archive_template(template_id):
    from . import manage

    manage.archive(template_id, get_settings())
    return 204, None, {}
