"""The one place that loads the Chalice app.

The repository root has ``app.py`` (the CDK entry point) and ``app/`` (the Chalice project), so
``import app`` is ambiguous. Everything that needs the Chalice app (tests, the local stack,
benchmarks) calls ``load()`` here: it puts ``app/`` first on ``sys.path`` for ``chalicelib`` and
loads ``app/app.py`` by path under the module name ``sender_app``.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "app"
MODULE = "sender_app"


def _path() -> None:
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))


def load():
    """Return the Chalice app module (``module.app`` is the Chalice object)."""
    _path()
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    spec = importlib.util.spec_from_file_location(MODULE, APP_DIR / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    spec.loader.exec_module(module)
    return module


_path()
