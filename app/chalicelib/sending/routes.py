"""Sending's routes: one SMS or MMS, media uploads, messages and batches, and canceling scheduled ones.

Each route loads what it runs on its first call: the API function's cold start registers the routes and loads
none of the send path (``messages``, ``validation``, the phone number library), which comes with the first send.
``make bench`` times both: ``cold import api``, and ``cold import api + first send``."""
from __future__ import annotations

from chalice import Blueprint

from ..core import inputs
from ..core.settings import get_settings
from ..core.web import body, caller, located, once, query
from ..keys.routing import protected
from .fields import BATCH_FIELDS, MEDIA_FIELDS, MMS_FIELDS, SMS_FIELDS

routes = Blueprint(__name__)


def _send(channel):
    from . import messages, templated

    who = caller(routes)

    def handler():
        message = templated.message(channel, body(routes), get_settings())._replace(key_id=who.key_id, test=who.test)
        return 202, messages.send(message), {}

    return located(routes, once(routes, channel, handler), "/messages/{id}")


@protected(routes, "POST", "/sms", fields=SMS_FIELDS)
def send_sms():
    return _send("sms")


@protected(routes, "POST", "/mms", fields=MMS_FIELDS)
def send_mms():
    return _send("mms")


@protected(routes, "POST", "/media", fields=MEDIA_FIELDS)
def create_media_upload():
    from . import media, validation

    def handler():
        content_type, size = validation.media_request(body(routes))
        return 201, media.create_upload(get_settings(), content_type=content_type, size=size), {}

    return once(routes, "media", handler)


@protected(routes, "GET", "/messages/{message_id}")
def get_message(message_id):
    from . import messages

    return 200, messages.get(message_id, test=caller(routes).test), {}


@protected(routes, "GET", "/messages", params=("limit", "next", "direction", "status"))
def list_messages():
    from ..core import pages

    asked = query(routes)
    return 200, pages.listing(inputs.limit(asked.get("limit")), asked.get("next"), asked.get("direction"),
                              test=caller(routes).test, status=asked.get("status")), {}


@protected(routes, "POST", "/messages/{message_id}/cancel")
def cancel_message(message_id):
    from . import messages

    def handler():
        return 200, messages.cancel(message_id, test=caller(routes).test), {}

    return once(routes, "cancel", handler)


@protected(routes, "POST", "/batches", fields=BATCH_FIELDS)
def create_batch():
    from . import batches

    def handler():
        return 202, batches.submit(body(routes), get_settings(), caller(routes)), {}

    return located(routes, once(routes, "batches", handler), "/batches/{id}")


@protected(routes, "GET", "/batches/{batch_id}")
def get_batch(batch_id):
    from . import batches

    return 200, batches.progress(batch_id, test=caller(routes).test), {}


@protected(routes, "POST", "/batches/{batch_id}/cancel")
def cancel_batch(batch_id):
    from . import batches

    def handler():
        return 200, batches.cancel(batch_id, test=caller(routes).test), {}

    return once(routes, "cancel-batch", handler)
