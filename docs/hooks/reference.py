"""MkDocs hook: the API reference page, written from the OpenAPI document the app serves
(``app/chalicelib/openapi.json``) at every build, so the reference cannot drift from the contract.

``reference/api.md`` in the docs folder holds only a marker line; this hook replaces it with one section per
tag: each operation's method and path, the scope its key needs, its parameters, its request body's fields and
its answers (with each error status's codes), then every webhook event the API POSTs, then the schemas.
"""
from __future__ import annotations

import json
from pathlib import Path

DOCUMENT = Path(__file__).resolve().parents[2] / "app" / "chalicelib" / "openapi.json"
MARKER = "<!-- the API reference, written from app/chalicelib/openapi.json by docs/hooks/reference.py -->"
METHODS = ("get", "post", "put", "delete", "patch")


def _ref_name(node: dict) -> str | None:
    ref = node.get("$ref") if isinstance(node, dict) else None
    return ref.rsplit("/", 1)[-1] if ref else None


def _deref(doc: dict, node):
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def _cell(text) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ").strip()


def _type(doc: dict, schema: dict) -> str:
    name = _ref_name(schema)
    if name:
        return f"[`{name}`](#schema-{name.lower()})"
    schema = _deref(doc, schema)
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "")
    kinds = kind if isinstance(kind, list) else [kind]
    if "array" in kinds and "items" in schema:
        return "array of " + _type(doc, schema["items"])
    for combo in ("anyOf", "oneOf", "allOf"):
        if combo in schema:
            return f" {'or' if combo != 'allOf' else 'and'} ".join(_type(doc, part) for part in schema[combo])
    return " or ".join(f"`{k}`" for k in kinds if k) or "any"


def _limits(schema: dict) -> str:
    found = [f"{label} {schema[key]}" for key, label in (
        ("minLength", "min length"), ("maxLength", "max length"), ("minimum", "min"), ("maximum", "max"),
        ("minItems", "min items"), ("maxItems", "max items"), ("pattern", "pattern"), ("default", "default"))
        if key in schema]
    return "; ".join(f"`{f}`" if f.startswith("pattern") else f for f in found)


def _narrowed(part: dict, prefix: str = "") -> list[str]:
    """What an ``allOf`` part pins, as ``name`` ``value`` pairs: ``type`` ``message.sent``, ``data.status`` ``sent``."""
    found = []
    for name, prop in part.get("properties", {}).items():
        if "const" in prop:
            found.append(f"`{prefix}{name}` `{prop['const']}`")
        elif "enum" in prop:
            found.append(f"`{prefix}{name}` one of " + ", ".join(f"`{v}`" for v in prop["enum"]))
        found += _narrowed(prop, f"{prefix}{name}.")
    return found


def _fields(doc: dict, schema: dict) -> list[str]:
    schema = _deref(doc, schema)
    properties = schema.get("properties", {})
    if not properties and "allOf" in schema:  # a schema that narrows another: name it, and what it pins
        bases = [_schema_link(_ref_name(part)) for part in schema["allOf"] if _ref_name(part)]
        pinned = [pair for part in schema["allOf"] if not _ref_name(part) for pair in _narrowed(part)]
        return ["As " + ", ".join(bases) + (", with " + ", ".join(pinned) if pinned else "") + "."]
    if not properties:
        return []
    required = set(schema.get("required", []))
    rows = ["| field | type | required | limits | |", "|---|---|---|---|---|"]
    for name, prop in properties.items():
        resolved = _deref(doc, prop)
        rows.append(f"| `{name}` | {_type(doc, prop)} | {'yes' if name in required else ''} | "
                    f"{_cell(_limits(resolved))} | {_cell(resolved.get('description'))} |")
    if schema.get("additionalProperties") is False:
        rows.append("")
        rows.append("Any other member is 400 `UnknownField`.")
    return rows


def _codes(doc: dict, schema) -> list[str]:
    schema = _deref(doc, schema)
    found: list[str] = []
    for combo in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(combo, []):
            found += _codes(doc, part)
    code = _deref(doc, _deref(doc, schema.get("properties", {}).get("error", {})).get("properties", {}).get("code", {}))
    return found + list(code.get("enum", [])) + ([code["const"]] if "const" in code else [])


def _shown(name: str) -> bool:
    """Whether a schema gets a section of its own: the per-status error bodies do not (each answer lists its
    codes instead), so no link may point at them."""
    return not (name.startswith("Error") and name != "ErrorDetail")


def _schema_link(name: str) -> str:
    return f"[`{name}`](#schema-{name.lower()})"


def _operation(doc: dict, heading: str, op: dict, *, key: bool = True) -> list[str]:
    """One operation: a route of the API, or (``key=False``) a webhook event the API sends."""
    out = [f"### {heading}", "", f"**{op.get('summary', '')}** (`{op['operationId']}`)", ""]
    if key:
        security = op.get("security", doc.get("security", []))
        scopes = [s for entry in security for s in entry.get("bearer", [])]
        out += ["Key: none (open)." if security == [] else
                f"Key: a key with the scope `{scopes[0]}`." if scopes else "Key: any valid key.", ""]
    if op.get("description"):
        out += [op["description"], ""]
    parameters = [_deref(doc, p) for p in op.get("parameters", [])]
    if parameters:
        out += ["| parameter | in | type | required | |", "|---|---|---|---|---|"]
        out += [f"| `{p['name']}` | {p['in']} | {_type(doc, p.get('schema', {}))} | "
                f"{'yes' if p.get('required') else ''} | {_cell(p.get('description'))} |" for p in parameters]
        out.append("")
    body = op.get("requestBody")
    if body:
        schema = body["content"]["application/json"]["schema"]
        name = _ref_name(schema)
        out += ["Request body" + (f" ({_schema_link(name)})" if name and _shown(name) else "") + ":", ""]
        out += _fields(doc, schema) + [""]
    out += ["| answer | |", "|---|---|"]
    for status, response in op.get("responses", {}).items():
        response = _deref(doc, response)
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        name = _ref_name(schema)
        codes = _codes(doc, schema) if str(status)[0] in "45" else []
        text = _cell(response.get("description"))
        if codes:
            text += " Codes: " + ", ".join(f"`{c}`" for c in codes) + "."
        elif name and _shown(name):
            text += " " + _schema_link(name)
        out.append(f"| {status} | {text} |")
    out.append("")
    return out


def render(doc: dict) -> str:
    out: list[str] = [f"{doc['info'].get('summary', '')}", "", doc["info"].get("description", ""), ""]
    scheme = doc.get("components", {}).get("securitySchemes", {}).get("bearer", {})
    if scheme:
        out += ["## Authentication", "", scheme.get("description", ""), ""]
    operations = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()
                  if method in METHODS]
    known = {tag["name"] for tag in doc.get("tags", [])}
    groups = [(tag, [o for o in operations if tag["name"] in o[2].get("tags", [])]) for tag in doc.get("tags", [])]
    # An operation under no tag the document lists still gets its section.
    groups.append(({"name": "other", "description": "Operations under no tag the document lists."},
                   [o for o in operations if not known & set(o[2].get("tags", []))]))
    for tag, mine in groups:
        if not mine:
            continue
        out += [f"## {tag['name'].capitalize()}", "", tag.get("description", ""), ""]
        for path, method, op in mine:
            out += _operation(doc, f"`{method.upper()} {path}`", op)
    events = [(name, op) for name, item in doc.get("webhooks", {}).items() for method, op in item.items()
              if method in METHODS]
    if events:
        out += ["## Webhook events", "",
                "What the API POSTs to a registered endpoint (see [Webhooks](../guides/webhooks.md)).", ""]
        for name, op in events:
            out += _operation(doc, f"`{name}`", op, key=False)
    out += ["## Schemas", ""]
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        if not _shown(name):
            continue
        out += [f'### {name} {{ #schema-{name.lower()} }}', "", _cell(schema.get("description")), ""]
        out += _fields(doc, schema) + [""]
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render(json.loads(DOCUMENT.read_text(encoding="utf-8"))))
