"""Sends from a template: ``templateId`` (optional ``templateVersion``, else the latest) and ``personalisation``
instead of ``body``, on ``POST /sms``, ``POST /mms`` and each batch item (or once for a whole batch).

The version is read once (for a batch, once per template and version) and rendered with the personalisation
(``templates.render``). The rendered body is then what a caller's own ``body`` would be: validated by the same
rules (``BodyTooLong`` over 1,600 characters), counted in segments, sent and stored; the message records the
template's id and version. An MMS template brings its ``mediaUrl``; a request's own ``mediaUrl`` replaces it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, NamedTuple

from ..core import inputs
from ..core.errors import InvalidRequest, MessagingError
from ..core.settings import Settings
from ..templates import render
from . import validation
from .validation import Outbound

if TYPE_CHECKING:
    from ..templates.manage import Template

PARSERS: dict[str, Callable[[dict, Settings], Outbound]] = {"sms": validation.sms, "mms": validation.mms}


class Asked(NamedTuple):
    """A template a request sends from: its id, and the version asked for (None: the latest)."""
    template_id: object
    version: int | None


def asked(data: dict, default: Asked | None = None) -> Asked | None:
    """The template ``data`` (a request, or a batch item under the batch's ``default``) sends from, or None for
    a send of its own ``body``. 400 for ``body`` with a template (``BodyAndTemplate``), a ``templateVersion`` or
    ``personalisation`` without one, and a ``personalisation`` that is not an object of strings and numbers."""
    template_id = data.get("templateId")
    version = inputs.template_version(data.get("templateVersion"))
    render.values(data.get("personalisation"))  # its shape, before anything is read
    if template_id is None:
        if version is not None:
            raise InvalidRequest("MissingField", "'templateVersion' goes with 'templateId'.", field="templateId")
        if default is None:
            if data.get("personalisation") is not None:
                raise InvalidRequest("MissingField", "'personalisation' fills in a template: give 'templateId' too.",
                                     field="templateId")
            return None
        chosen = default
    else:
        chosen = Asked(template_id, version)
    if data.get("body") is not None:
        raise InvalidRequest("BodyAndTemplate", "Give 'body' or 'templateId', not both: a template's body is "
                             "rendered from 'personalisation'.", field="templateId")
    return chosen


def fetch(chosen: Asked, settings: Settings) -> Template:
    """The version ``chosen`` names. The templates' services load on the first send from a template: a send of
    its own ``body`` never loads them."""
    from ..templates import manage

    return manage.for_send(chosen.template_id, chosen.version, settings)


def message(channel: str, data: dict, settings: Settings) -> Outbound:
    """``POST /sms`` or ``POST /mms``: the outbound message, from the request's ``body`` or its template."""
    chosen = asked(data)
    if chosen is None:
        return PARSERS[channel](data, settings)
    return rendered(channel, data, settings, fetch(chosen, settings))


def rendered(channel: str, data: dict, settings: Settings, template: Template) -> Outbound:
    """``data`` sent as ``channel`` with ``template`` rendered as its body. An error about that body names
    ``personalisation`` when the request gave one (its values made the body), else ``templateId``."""
    if template.channel != channel:
        route = "POST /mms, or \"channel\": \"mms\" in a batch" if template.channel == "mms" else \
            "POST /sms, or \"channel\": \"sms\" in a batch"
        raise InvalidRequest("InvalidChannel", f"Template {template.id} is an {template.channel.upper()} template: "
                             f"send it with {route}.", field="templateId")
    filled = {**data, "body": render.render(template.body, data.get("personalisation"))}
    if channel == "mms" and data.get("mediaUrl") is None:
        filled["mediaUrl"] = template.media_url
    try:
        outbound = PARSERS[channel](filled, settings)
    except MessagingError as err:
        if err.field == "body":
            err.field = "personalisation" if data.get("personalisation") else "templateId"
            err.message = f"Rendered from template {template.id} (version {template.version}): {err.message}"
            err.args = (err.message,)
        raise
    return outbound._replace(template_id=template.id, template_version=template.version)
