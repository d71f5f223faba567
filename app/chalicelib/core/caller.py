"""Who made a request: the key the authorizer let through (its id, its scopes, whether it is a test key).
The routes read it from the request (``web.caller``) and hand it to the services that record or check it."""
from __future__ import annotations

from typing import NamedTuple


class Caller(NamedTuple):
    key_id: str
    scopes: frozenset
    test: bool
