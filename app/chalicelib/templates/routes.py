"""The templates' routes: ``templates:manage`` to create, change and archive one, ``messages:send`` to read them."""
from __future__ import annotations

from chalice import Blueprint

from ..core import inputs
from ..core.settings import get_settings
from ..core.web import body, located, once, query
from ..keys.routing import protected
from . import manage

routes = Blueprint(__name__)


@protected(routes, "POST", "/templates", fields=manage.REQUEST_FIELDS)
def create_template():
    def handler():
        return 201, manage.create(body(routes), get_settings()), {}

    return located(routes, once(routes, "templates", handler), "/templates/{id}")


@protected(routes, "GET", "/templates")
def list_templates():
    asked = query(routes)
    return 200, manage.listing(inputs.limit(asked.get("limit")), asked.get("next"), get_settings()), {}


@protected(routes, "GET", "/templates/{template_id}")
def get_template(template_id):
    return 200, manage.get(template_id, get_settings(), query(routes).get("version")), {}


@protected(routes, "PUT", "/templates/{template_id}", fields=manage.REQUEST_FIELDS)
def replace_template(template_id):
    return 200, manage.replace(template_id, body(routes), get_settings()), {}


@protected(routes, "DELETE", "/templates/{template_id}")
def archive_template(template_id):
    manage.archive(template_id, get_settings())
    return 204, None, {}
