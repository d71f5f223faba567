"""Sending's routes: one SMS or MMS, media uploads, messages and batches, and canceling scheduled ones.

The send path (``messages``, ``validation``) loads with the API function; each other route loads its own
module on its first call, so a cold start that sends loads no more than it needs."""
from __future__ import annotations

from chalice import Blueprint

from ..core import inputs
from ..core.settings import get_settings
from ..core.web import body, caller, located, once, query
from ..keys.routing import protected
# The send path, loaded with the API (a send from a template included); the other routes load their modules.
from . import messages, templated, validation

routes = Blueprint(__name__)


def _send(channel):
    who = caller(routes)

    def handler():
        message = templated.message(channel, body(routes), get_settings())._replace(key_id=who.key_id, test=who.test)
        return 202, messages.send(message), {}

    return located(routes, once(routes, channel, handler), "/messages/{id}")


@protected(routes, "POST", "/sms", fields=validation.SMS_FIELDS)
def send_sms():
    return _send("sms")


@protected(routes, "POST", "/mms", fields=validation.MMS_FIELDS)
def send_mms():
    return _send("mms")


@protected(routes, "POST", "/media", fields=validation.MEDIA_FIELDS)
def create_media_upload():
    from . import media

    def handler():
        content_type, size = validation.media_request(body(routes))
        return 201, media.create_upload(get_settings(), content_type=content_type, size=size), {}

    return once(routes, "media", handler)


@protected(routes, "GET", "/messages/{message_id}")
def get_message(message_id):
    return 200, messages.get(message_id, test=caller(routes).test), {}


@protected(routes, "GET", "/messages")
def list_messages():
    from ..core import pages

    asked = query(routes)
    return 200, pages.listing(inputs.limit(asked.get("limit")), asked.get("next"), asked.get("direction"),
                              test=caller(routes).test, status=asked.get("status")), {}


@protected(routes, "POST", "/messages/{message_id}/cancel")
def cancel_message(message_id):
    def handler():
        return 200, messages.cancel(message_id, test=caller(routes).test), {}

    return once(routes, "cancel", handler)


@protected(routes, "POST", "/batches", fields=validation.BATCH_FIELDS)
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
