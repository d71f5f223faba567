"""What a key looks like: ``sk_live_`` or ``sk_test_``, the key's id, ``_``, 43 characters of randomness (256
bits, base62) and a 6-character checksum (CRC-32 of everything before it, base62).

The prefix says what it is, so a reader, a log scrubber and a secret scanner recognise one; the checksum
tells a real key from a look-alike (a typo, a truncated paste) without a table read, as GitHub's token
formats do. The id is safe to log and show. Only the SHA-256 of the whole key is kept; it is compared in
constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib

LIVE, TEST = "sk_live_", "sk_test_"
ID_PREFIX = "key_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
ID_CHARS, SECRET_CHARS, CHECK_CHARS = 16, 43, 6  # 62**43 > 2**256
_KEY = re.compile(rf"sk_(live|test)_([a-z2-7]{{{ID_CHARS}}})_([0-9A-Za-z]{{{SECRET_CHARS}}})([0-9A-Za-z]{{{CHECK_CHARS}}})")
# Shown in listings: enough to recognise a key, never enough to use it.
PREFIX_CHARS = len(LIVE) + ID_CHARS + 1 + 4
# Anything that looks like a key, for scrubbing text (log lines, error messages).
LOOKS_LIKE_A_KEY = re.compile(r"sk_(?:live|test)_[A-Za-z0-9_]{8,}")


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(text: str) -> str:
    return _base62(zlib.crc32(text.encode("ascii")), CHECK_CHARS)


def new_id() -> str:
    return ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_CHARS))


def new_key(key_id: str, *, test: bool) -> str:
    body = (TEST if test else LIVE) + key_id.removeprefix(ID_PREFIX) + "_" + \
        _base62(secrets.randbits(256), SECRET_CHARS)
    return body + _checksum(body)


def parse(key) -> tuple[str, bool] | None:
    """(the key's id, whether it is a test key), or None for anything that is not a well-formed key with a
    right checksum."""
    if not isinstance(key, str):
        return None
    found = _KEY.fullmatch(key)
    if not found or not hmac.compare_digest(_checksum(key[:-CHECK_CHARS]), found.group(4)):
        return None
    return ID_PREFIX + found.group(2), found.group(1) == "test"


def from_header(value) -> str | None:
    """The key in an ``Authorization: Bearer <key>`` header value, or None."""
    if not isinstance(value, str):
        return None
    scheme, _, key = value.strip().partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def matches(key: str, stored_digest) -> bool:
    return isinstance(stored_digest, str) and hmac.compare_digest(digest(key), stored_digest)


def prefix(key: str) -> str:
    return key[:PREFIX_CHARS] + "…"
