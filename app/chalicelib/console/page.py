"""The send console served at GET /: a single page that calls the same JSON API.

The page lives in ``static/`` as files: ``console.html``, ``console.css``, and the script in parts
(``SCRIPTS``: the core, then one file per panel, then ``start.js``, which starts the page once every part is
defined), so an editor highlights them and a diff shows which panel changed. They are read once, at import,
and served as one response with the stylesheet and the script inlined (the parts joined in ``SCRIPTS``'
order, as one script): the page then needs no route but ``GET /``, and it loads the same wherever the API is
served (``/`` under ``make dev``, ``/api/`` or ``/api`` on API Gateway's execute-api domain, a base path on a
custom domain). The script makes every call relative to the page for the same reason. Chalice packages
everything under ``chalicelib/``, these files included.
"""
from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
STYLESHEET = '<link rel="stylesheet" href="console.css">'
SCRIPT = '<script src="console.js"></script>'
# The script's parts, in the order they run: each later part uses what the earlier ones define.
SCRIPTS = ("console.js", "templates.js", "batch.js", "dashboard.js", "start.js")


def _read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def inline(html: str, css: str, js: str) -> str:
    """``html`` with its stylesheet link and script tag replaced by the files' contents."""
    for tag in (STYLESHEET, SCRIPT):
        if html.count(tag) != 1:
            raise ValueError(f"console.html must hold {tag} exactly once")
    if "</style" in css.lower() or "</script" in js.lower():
        raise ValueError("console.css or console.js would close its own inline element")
    return html.replace(STYLESHEET, f"<style>\n{css}</style>").replace(SCRIPT, f"<script>\n{js}</script>")


def script() -> str:
    """The script's parts as one script, each headed by its file's name."""
    return "".join(f"// ---- {name} ----\n{_read(name)}" for name in SCRIPTS)


PAGE = inline(_read("console.html"), _read("console.css"), script())
