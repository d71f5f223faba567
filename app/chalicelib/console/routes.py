"""The open routes (no key): the console page and its icon, the HTTP contract, and liveness."""
from __future__ import annotations

from chalice import Blueprint, Response

from ..core.web import handled

routes = Blueprint(__name__)


@routes.route("/health", methods=["GET"])
@handled(routes)
def health():
    return 200, {"status": "ok"}, {}


@routes.route("/", methods=["GET"])
def index():
    from . import page  # read from its files on the first call: not part of a send's cold start

    return Response(body=page.PAGE, status_code=200, headers={"Content-Type": "text/html; charset=utf-8"})


@routes.route("/favicon.ico", methods=["GET"])
def favicon():
    """Open like the console: a browser or a tool asking for the icon gets 204, not a 403."""
    return Response(body="", status_code=204, headers={"Cache-Control": "max-age=86400"})


@routes.route("/openapi.json", methods=["GET"])
def openapi_document():
    """The HTTP contract (OpenAPI 3.1), open like /health: chalicelib/openapi.json, read on the first call."""
    from .. import openapi

    return Response(body=openapi.BODY, status_code=200, headers={"Content-Type": "application/json"})
