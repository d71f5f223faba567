"""The one place that loads the Chalice app.

The repository root has ``app.py`` (the CDK entry point) and ``app/`` (the Chalice project), so
``import app`` is ambiguous. Everything that needs the Chalice app (tests, the local stack,
benchmarks) calls ``load()`` here: it puts ``app/`` first on ``sys.path`` for ``chalicelib`` and
loads ``app/app.py`` by path under the module name ``sender_app``. (``apppath`` puts ``app/`` on the
path, for this and for the CDK stack.)
"""
from __future__ import annotations

import importlib.util
import sys

from apppath import APP_DIR, add

MODULE = "sender_app"


def load():
    """Return the Chalice app module (``module.app`` is the Chalice object)."""
    add()
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    spec = importlib.util.spec_from_file_location(MODULE, APP_DIR / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    spec.loader.exec_module(module)
    return module

