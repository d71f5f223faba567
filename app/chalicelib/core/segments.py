"""How many SMS parts a body takes, and in which encoding.

GSM-7 fits 160 septets in one part and 153 per part once split (the rest is the
concatenation header); characters from the extension table take two septets and are never
split across parts. Anything outside GSM-7 goes as UCS-2: 70 code units in one part, 67 per
part once split, and a surrogate pair is never split.
"""
from __future__ import annotations

from typing import NamedTuple

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION

GSM7 = "GSM-7"
UCS2 = "UCS-2"


class Segmentation(NamedTuple):
    encoding: str
    segments: int


def _pack(units: list[int], single: int, multi: int) -> int:
    """Count parts for a body given each character's size in units, never splitting a character."""
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for size in units:
        if used + size > multi:
            parts, used = parts + 1, 0
        used += size
    return parts


def _parts(length: int, single: int, multi: int) -> int:
    """``_pack`` for a body whose every character takes one unit."""
    return 1 if length <= single else -(-length // multi)


def segment(body: str) -> Segmentation:
    if not body:
        return Segmentation(GSM7, 1)
    if GSM7_ALL.issuperset(body):
        if GSM7_EXTENSION.isdisjoint(body):
            return Segmentation(GSM7, _parts(len(body), 160, 153))
        units = [2 if ch in GSM7_EXTENSION else 1 for ch in body]
        return Segmentation(GSM7, _pack(units, 160, 153))
    if max(body) <= "\uffff":  # no character outside the Basic Multilingual Plane: one UCS-2 unit each
        return Segmentation(UCS2, _parts(len(body), 70, 67))
    units = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
    return Segmentation(UCS2, _pack(units, 70, 67))
