"""Sending's routes: one SMS or MMS, media uploads, messages and batches.

The send path (``messages``, ``validation``) loads with the API function; each other route loads its own
module on its first call, so a cold start that sends loads no more than it needs."""
from __future__ import annotations

from chalice import Blueprint

from ..core import inputs
from ..core.settings import get_settings
from ..core.web import ANY_BODY, PROTECTED, body, handled, located, once, query
from . import messages, validation  # the send path, loaded with the API; the other routes load their modules

routes = Blueprint(__name__)


def _send(route, parse):
    def handler():
        return 202, messages.send(parse(body(routes), get_settings())), {}

    return located(routes, once(routes, route, handler), "/messages/{id}")


@routes.route("/sms", methods=["POST"], content_types=ANY_BODY, **PROTECTED)
@handled(routes)
def send_sms():
    return _send("sms", validation.sms)


@routes.route("/mms", methods=["POST"], content_types=ANY_BODY, **PROTECTED)
@handled(routes)
def send_mms():
    return _send("mms", validation.mms)


@routes.route("/media", methods=["POST"], content_types=ANY_BODY, **PROTECTED)
@handled(routes)
def create_media_upload():
    from . import media

    def handler():
        content_type, size = validation.media_request(body(routes))
        return 201, media.create_upload(get_settings(), content_type=content_type, size=size), {}

    return once(routes, "media", handler)


@routes.route("/messages/{message_id}", methods=["GET"], **PROTECTED)
@handled(routes)
def get_message(message_id):
    return 200, messages.get(message_id), {}


@routes.route("/messages", methods=["GET"], **PROTECTED)
@handled(routes)
def list_messages():
    from ..core import pages

    asked = query(routes)
    return 200, pages.listing(inputs.limit(asked.get("limit")), asked.get("next"), asked.get("direction")), {}


@routes.route("/batches", methods=["POST"], content_types=ANY_BODY, **PROTECTED)
@handled(routes)
def create_batch():
    from . import batches

    def handler():
        return 202, batches.submit(body(routes), get_settings()), {}

    return located(routes, once(routes, "batches", handler), "/batches/{id}")


@routes.route("/batches/{batch_id}", methods=["GET"], **PROTECTED)
@handled(routes)
def get_batch(batch_id):
    from . import batches

    return 200, batches.progress(batch_id), {}
