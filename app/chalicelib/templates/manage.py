"""``/templates``: create a template, read it (any version), list them, make a new version, archive one; and
``for_send``, the version a send renders.

- A template is ``{"name", "body", "channel": "sms"|"mms", "mediaUrl"}`` (an MMS template names its media, an
  SMS template none). Its body follows the placeholder rules (``render``) and a message body's rules
  (``core.text``): at most 1,600 characters, no control characters but tab and line breaks, something visible.
- ``PUT`` makes version ``latest + 1``, of the same channel, unless it changes nothing (then it answers the latest:
  a PUT sent twice makes one version). Versions are kept, and ``?version=N`` reads one.
- ``DELETE`` archives: the template still reads (with ``archivedAt``) and lists, and the messages sent from it keep
  what they were sent with, but no new send may use it (404 ``TemplateNotFound``), nor may a new version.
- Templates belong to the stage: live and test keys share them (a test key's sends of one reach no provider).
"""
from __future__ import annotations

import re
import uuid
from typing import NamedTuple

from ..core import inputs, pages, schema
from ..core.errors import InvalidRequest, NotConfigured, NotFound, Unavailable, aws_errors
from ..core.log import logger
from ..core.settings import Settings
from ..core.store import now_iso
from ..core.text import check_size_and_characters, visible
from . import render, store

MAX_NAME = 100
CHANNELS = ("sms", "mms")
# SendMediaMessage takes media URLs of at most 2048 characters (as sending.validation.MEDIA_URL_MAX).
MEDIA_URL_MAX = 2048
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# The template resource, in the order the API shows it.
FIELDS = ("id", "name", "body", "channel", "mediaUrl", "version", "placeholders", "createdAt", "updatedAt",
          "archivedAt")
# Versions a PUT tries to write before giving up, when other PUTs keep writing one first.
WRITE_ATTEMPTS = 5


class Template(NamedTuple):
    """The version of a template a send renders."""
    id: str
    version: int
    channel: str
    body: str
    media_url: str | None


def configured(settings: Settings) -> str:
    if not settings.templates_table:
        raise NotConfigured("TemplatesNotConfigured", "This stage has no templates table (TEMPLATES_TABLE).")
    return settings.templates_table


def not_found(template_id, why: str = "") -> NotFound:
    shown = template_id if isinstance(template_id, str) and len(template_id) <= 64 else "this id"
    return NotFound("TemplateNotFound", f"No template {shown}{why}.", field="templateId")


def public(item: dict, head: dict | None = None) -> dict:
    """A head (the latest version) or a version item (``head``: its template's head, for ``archivedAt``)."""
    head = head or item
    shown = {name: item.get(name) for name in FIELDS}
    shown["version"] = item["latest"] if item[schema.TEMPLATES_SORT] == schema.TEMPLATE_HEAD else item["version"]
    shown["placeholders"] = list(item.get("placeholders") or [])
    shown["archivedAt"] = head.get("archivedAt")
    return shown


# -- a template's fields ------------------------------------------------------------------------------------------
def _body(data: dict) -> tuple[str, list[str]]:
    body = data.get("body")
    if body is None:
        raise InvalidRequest("MissingField", "'body' is required: the message, with ((placeholders)).", field="body")
    if not isinstance(body, str):
        raise InvalidRequest("InvalidTemplate", "'body' must be a string.", field="body")
    if not visible(body):
        raise InvalidRequest("InvalidTemplate", "'body' is empty (it has no visible character).", field="body")
    check_size_and_characters(body)
    return body, render.names(body)


def _channel(data: dict, default: str) -> str:
    channel = data.get("channel")
    if channel is None:
        return default
    if channel not in CHANNELS:
        raise InvalidRequest("InvalidChannel", "'channel' must be 'sms' or 'mms'.", field="channel")
    return channel


def _media_url(data: dict, channel: str, settings: Settings) -> str | None:
    """An MMS template's media: ``s3://<the stage's media bucket>/<key>``. Each send checks it again, with the
    object itself (``HeadObject``: there, of a type and size MMS takes), as for a ``mediaUrl`` sent directly."""
    url = data.get("mediaUrl")
    if channel == "sms":
        if url is not None:
            raise InvalidRequest("InvalidMediaUrl", "An SMS template has no media: leave 'mediaUrl' out, or make an "
                                 "MMS template (\"channel\": \"mms\").", field="mediaUrl")
        return None
    if url is None or url == "":
        raise InvalidRequest("MissingField", "'mediaUrl' is required for an MMS template.", field="mediaUrl")
    prefix = f"s3://{settings.media_bucket}/"
    if not isinstance(url, str) or not url.startswith(prefix) or len(url) == len(prefix) \
            or len(url) > MEDIA_URL_MAX or _CONTROL.search(url):
        raise InvalidRequest("InvalidMediaUrl", f"'mediaUrl' must be {prefix}<key> (at most {MEDIA_URL_MAX} "
                             "characters, no control characters), an object in this stage's media bucket.",
                             field="mediaUrl")
    return url


def _content(data: dict, settings: Settings, *, channel: str) -> dict:
    name = inputs.name(data, MAX_NAME, "say what the template is for")
    body, placeholders = _body(data)
    return {"name": name, "body": body, "channel": channel, "mediaUrl": _media_url(data, channel, settings),
            "placeholders": placeholders}


def _head(table: str, template_id: str) -> dict:
    head = store.get(table, template_id) if template_id.startswith(schema.TEMPLATE_ID_PREFIX) else None
    if head is None:
        raise not_found(template_id)
    return head


# -- the routes' services -----------------------------------------------------------------------------------------
@aws_errors("store the template")
def create(data: dict, settings: Settings) -> dict:
    """``POST /templates``: version 1 of a new template."""
    table = configured(settings)
    content = _content(data, settings, channel=_channel(data, "sms"))
    template_id = schema.TEMPLATE_ID_PREFIX + uuid.uuid4().hex
    head = store.create(table, template_id, content, now_iso())
    logger.info("template created", extra={"templateId": template_id, "channel": content["channel"],
                                           "placeholders": len(content["placeholders"])})
    return public(head)


@aws_errors("store the template's new version")
def replace(template_id: str, data: dict, settings: Settings) -> dict:
    """``PUT /templates/{id}``: the next version, of the template's own channel."""
    table = configured(settings)
    for _attempt in range(WRITE_ATTEMPTS):
        head = _head(table, template_id)
        if head.get("archivedAt"):
            raise not_found(template_id, " (it is archived: make a new template)")
        if _channel(data, head["channel"]) != head["channel"]:
            raise InvalidRequest("InvalidChannel", f"This template is {head['channel'].upper()}: a template keeps its "
                                 "channel (make a new template for the other).", field="channel")
        content = _content(data, settings, channel=head["channel"])
        if all(head.get(field) == content[field] for field in store.CONTENT):
            return public(head)  # nothing changed (a PUT sent again): no new version
        updated = store.add_version(table, head, content, now_iso())
        if updated is not None:
            logger.info("template version made", extra={"templateId": template_id, "version": updated["latest"]})
            return public(updated)
    raise Unavailable("Other changes to this template kept coming first; nothing was changed. Retry.")


@aws_errors("read the template")
def get(template_id: str, settings: Settings, version=None) -> dict:
    """``GET /templates/{id}``: the latest version, or ``?version=N``."""
    table = configured(settings)
    wanted = inputs.template_version(version, "version")
    head = _head(table, template_id)
    if wanted is None or wanted == head["latest"]:
        return public(head)
    item = store.get(table, template_id, wanted) if wanted < head["latest"] else None
    if item is None:
        raise NotFound("TemplateNotFound", f"Template {template_id} has no version {wanted}; its latest is "
                       f"{head['latest']}.", field="version")
    return public(item, head)


@aws_errors("list the templates")
def listing(limit: int, token: str | None, settings: Settings) -> dict:
    """``GET /templates``: newest first, archived ones too (with ``archivedAt``), paged as ``GET /messages``."""
    table = configured(settings)
    heads, last = store.page(table, limit, pages.before(token) if token else None)
    return {"templates": [public(head) for head in heads], "next": pages.next_token(last) if last else None}


@aws_errors("archive the template")
def archive(template_id: str, settings: Settings) -> None:
    """``DELETE /templates/{id}``: archived (again: nothing changes)."""
    table = configured(settings)
    if not template_id.startswith(schema.TEMPLATE_ID_PREFIX) or not store.archive(table, template_id, now_iso()):
        raise not_found(template_id)
    logger.info("template archived", extra={"templateId": template_id})


@aws_errors("read the template")
def for_send(template_id, version, settings: Settings) -> Template:
    """The version of a template a send renders: ``version`` (``templateVersion``), or the latest. 404
    ``TemplateNotFound`` for an id that names no template, an archived one, or a version it does not have."""
    table = configured(settings)
    if not isinstance(template_id, str) or not template_id.startswith(schema.TEMPLATE_ID_PREFIX) \
            or len(template_id) > 64:
        raise not_found(template_id)
    head = store.get(table, template_id)
    if head is None:
        raise not_found(template_id)
    if head.get("archivedAt"):
        raise not_found(template_id, f" to send: it was archived at {head['archivedAt']}")
    item = head
    if version is not None and version != head["latest"]:
        item = store.get(table, template_id, version) if version < head["latest"] else None
        if item is None:
            raise NotFound("TemplateNotFound", f"Template {template_id} has no version {version}; its latest is "
                           f"{head['latest']}.", field="templateVersion")
    return Template(template_id, version or head["latest"], item["channel"], item["body"], item.get("mediaUrl"))
