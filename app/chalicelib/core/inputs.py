"""What every request is read through before a route runs: the JSON body (I-JSON, size and depth limits),
the ``Idempotency-Key`` header, ids in the path, and ``?limit=``. Each refusal is one clear 4xx."""
from __future__ import annotations

import json
import re

from .errors import InvalidRequest, NotFound

# The largest request body the API reads. API Gateway takes up to 10 MB, but Lambda takes at most 6 MB per
# invocation, event envelope included; a full batch of 1,000 messages of 1,600 ASCII characters is about 1.7 MB.
MAX_REQUEST_BYTES = 5 * 1024 * 1024
# How deeply a request body may nest. The deepest valid one is a batch: {"messages": [{...}]} (3 levels).
MAX_JSON_DEPTH = 32
SURROGATE = re.compile("[\ud800-\udfff]")
# Idempotency-Key: at most this long (Powertools keeps it in one DynamoDB key).
MAX_KEY_LENGTH = 255
# Idempotency-Key: printable ASCII (the IETF draft makes it a Structured Field string), at least one non-space.
_IDEMPOTENCY_KEY = re.compile(rf"(?=.*[\x21-\x7e])[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}", re.DOTALL)
# Ids the API hands out: message ids are UUIDs, batch ids "batch-" and a UUID. Anything else cannot name one
# of ours, and is answered 404 without a look-up.
_RESOURCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def _invalid_json(message: str) -> InvalidRequest:
    return InvalidRequest("InvalidJson", message)


def _members(pairs: list) -> dict:
    """``object_pairs_hook``: I-JSON (RFC 7493) objects have unique member names made of valid Unicode.
    A repeated name is refused rather than resolved, so that no two readers of the body disagree on it."""
    data = dict(pairs)
    if len(data) != len(pairs):
        raise _invalid_json("The request body repeats a member name in one object.")
    for name in data:
        if not name.isascii() and SURROGATE.search(name):
            raise _invalid_json("The request body holds an invalid Unicode escape (a lone surrogate).")
    return data


def _no_constant(name: str):
    raise _invalid_json(f"The request body is not valid JSON ({name} is not a JSON number).")


# The body's reader, made once: json.loads builds a decoder (and its scanner) on every call given a hook.
_DECODER = json.JSONDecoder(object_pairs_hook=_members, parse_constant=_no_constant)


def _check_tree(data) -> None:
    """Depth and lone surrogates, without recursion (the tree may be as deep as the parser allowed)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise _invalid_json(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")
        for child in (node.values() if isinstance(node, dict) else node):
            if isinstance(child, str):
                if not child.isascii() and SURROGATE.search(child):
                    raise _invalid_json("The request body holds an invalid Unicode escape (a lone surrogate).")
            elif isinstance(child, (dict, list)):
                stack.append((child, depth + 1))


def parse_json(raw) -> dict:
    """The request body as a JSON object, or a 400 that says what is wrong with it.

    The body must be UTF-8 (a leading byte order mark is ignored), at most ``MAX_REQUEST_BYTES``, and I-JSON
    (RFC 7493): no invalid Unicode (lone surrogates, raw or escaped), no repeated member names, no NaN or
    Infinity. It may nest at most ``MAX_JSON_DEPTH`` levels."""
    if raw in (None, b"", ""):
        raise _invalid_json("The request body must be a JSON object.")
    if len(raw) > MAX_REQUEST_BYTES:
        raise InvalidRequest("RequestTooLarge", f"The request body may be at most {MAX_REQUEST_BYTES} bytes; "
                             "send a large batch as several.")
    if isinstance(raw, (bytes, bytearray)):
        try:
            text = bytes(raw).decode("utf-8-sig")  # strict: refuses invalid bytes and encoded surrogates
        except UnicodeDecodeError:
            raise _invalid_json("The request body is not valid UTF-8.") from None
    else:
        text = raw
    try:
        data = _DECODER.decode(text)
    except RecursionError:
        raise _invalid_json(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.") from None
    except ValueError:
        raise _invalid_json("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise _invalid_json("The request body must be a JSON object.")
    _check_tree(data)
    return data


def idempotency_key(value) -> str | None:
    """The ``Idempotency-Key`` header: absent, or 1 to 255 printable ASCII characters, not all spaces.
    Control characters (a header can hold none) and non-ASCII are refused, whatever the transport let through."""
    if value is None:
        return None
    if not isinstance(value, str) or not _IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidRequest("InvalidIdempotencyKey", f"'Idempotency-Key' must be 1 to {MAX_KEY_LENGTH} printable "
                             "ASCII characters.", field="Idempotency-Key")
    return value


def resource_id(value, code: str, noun: str) -> str:
    """A path's id: one the API could have handed out, else 404 ``code`` before any look-up."""
    if not isinstance(value, str) or not _RESOURCE_ID.fullmatch(value):
        raise NotFound(code, f"No {noun} with this id.")
    return value


def only(data, fields: frozenset, *, where: str = "", kind: str = "field") -> dict:
    """``data``, if it holds no member but ``fields``: else 400 ``UnknownField`` naming the first other one. A
    typo must not be ignored: ``"dryrun": true`` would send the message for real, and ``?limt=5`` would list 20.
    ``kind``: what the members are (``field`` of the body, ``query parameter``)."""
    for name in data:
        if name not in fields:
            shown = name if len(name) <= 40 else name[:40] + "..."
            nothing = "body" if kind == "field" else f"{kind}s"
            known = ", ".join(sorted(fields)) if fields else f"none: it takes no {nothing}"
            raise InvalidRequest("UnknownField", f"{where}{shown!r} is not a {kind} of this request; the {kind}s "
                                 f"are {known}.", field=shown)
    return data


def limit(raw, default: int = 20, maximum: int = 100) -> int:
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,4}", raw) or not 1 <= int(raw) <= maximum:
        raise InvalidRequest("InvalidLimit", f"'limit' must be a whole number from 1 to {maximum}.", field="limit")
    return int(raw)


def template_version(raw, field: str = "templateVersion") -> int | None:
    """A version asked for (``templateVersion``, or the query's ``version``, a string): absent, or a whole number
    from 1; else 400 ``InvalidTemplateVersion``."""
    if raw is None:
        return None
    if field == "version" and isinstance(raw, str) and re.fullmatch(r"[0-9]{1,9}", raw):
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise InvalidRequest("InvalidTemplateVersion", f"'{field}' must be a whole number from 1.", field=field)
    return raw


def name(data: dict, maximum: int, purpose: str) -> str:
    """A resource's ``name`` (a key's, a template's): required, 1 to ``maximum`` printable characters, something
    visible; kept without its outer spaces. ``purpose`` ends the 400 that asks for it: "say what the key is for"."""
    given = data.get("name")
    if given is None or given == "":
        raise InvalidRequest("MissingField", f"'name' is required: {purpose}.", field="name")
    if not isinstance(given, str) or len(given) > maximum or not given.strip() or not given.isprintable():
        raise InvalidRequest("InvalidName", f"'name' must be 1 to {maximum} printable characters.", field="name")
    return given.strip()
