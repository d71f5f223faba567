"""The API's OpenAPI 3.1 document, ``openapi.json`` beside this file (Chalice packages everything
under chalicelib/). Read and parsed once at import, so a broken file fails the cold start and the
tests rather than a request; ``GET /openapi.json`` serves ``BODY``. tests/test_openapi.py holds the
document and the code to each other, in both directions."""
from __future__ import annotations

import json
from pathlib import Path

PATH = Path(__file__).with_name("openapi.json")
DOCUMENT: dict = json.loads(PATH.read_text(encoding="utf-8"))
BODY: str = json.dumps(DOCUMENT, separators=(",", ":"), ensure_ascii=False)
