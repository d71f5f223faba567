"""Where the Chalice project lives, and the one place that puts it on ``sys.path``.

The repository root has ``app.py`` (the CDK entry point) and ``app/`` (the Chalice project), so
``import app`` is ambiguous. Both the CDK stack (``infra/``) and the local stack (``devstack/``)
import ``chalicelib`` from ``app/``; they call ``add()`` here first, so neither depends on the other.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
APP_DIR = ROOT / "app"


def add() -> None:
    """Put ``app/`` first on ``sys.path`` (once), so ``import chalicelib`` finds the app's code."""
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))


add()
