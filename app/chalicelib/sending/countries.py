"""End User Messaging SMS's own supported-country lists, from ``countries.json`` beside this module.

The data file copies AWS's published tables and names its sources (``SOURCE``) and the date it was read
(``RETRIEVED``). ``SMS`` holds every destination of the SMS table, ``SENDER_ID`` those where alphanumeric
sender IDs are supported (with or without registration), ``MMS`` those of the MMS table.
"""
from __future__ import annotations

import json
from pathlib import Path

_DATA = json.loads((Path(__file__).parent / "countries.json").read_text(encoding="utf-8"))

SOURCE: dict[str, str] = dict(_DATA["source"])
RETRIEVED: str = _DATA["retrieved"]
SMS: frozenset[str] = frozenset(_DATA["sms"])
MMS: frozenset[str] = frozenset(_DATA["mms"])
SENDER_ID: frozenset[str] = frozenset(_DATA["senderId"])
SENDER_ID_REGISTRATION_REQUIRED: frozenset[str] = frozenset(_DATA["senderIdRegistrationRequired"])


def sender_id_supported(country: str) -> bool:
    """Whether AWS's SMS table lists alphanumeric sender IDs for this ISO 3166-1 alpha-2 code."""
    return country.upper() in SENDER_ID
