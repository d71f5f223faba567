"""The placeholder rules: a template's body names its placeholders as ``((name))``; a send fills them in.

- A name is letters, digits, spaces, ``_`` and ``-``, with at least one that is not a space. It is matched
  without regard to case or to spaces at its ends: ``((First name))``, ``(( first NAME ))`` and the
  personalisation key ``"first name"`` are one placeholder.
- A ``((`` opens a placeholder and the first ``))`` after it closes it. A ``((…))`` whose name is empty or holds
  any other character is ``InvalidTemplate``, naming it. A ``((`` never closed is text, and so are
  brackets beyond the two that open and close a placeholder: ``(((name)))`` renders ``(value)``.
- A value is a string or a number, put in as it is (a number as JSON writes it). Every placeholder needs one:
  ``MissingPersonalisation`` names every one that lacks a value. Keys the template does not use are ignored.
"""
from __future__ import annotations

import math
import re
from typing import NamedTuple

from ..core.errors import InvalidRequest

# "((" not followed by a third "(" (an extra one is text), then the shortest run up to the first "))".
_PLACEHOLDER = re.compile(r"\(\((?!\()(.*?)\)\)", re.DOTALL)
# Letters and digits (any script: ``\w`` is Unicode), "_", "-" and the space.
_NAME = re.compile(r"[\w -]+")
SHOWN_MAX = 40  # how much of a bad placeholder or a key an error message quotes


class Placeholder(NamedTuple):
    name: str  # as the template first writes it, without the spaces at its ends
    key: str  # what it matches: case folded, spaces at the ends dropped


def key_of(name: str) -> str:
    return name.strip().casefold()


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN_MAX else text[:SHOWN_MAX] + "..."


def placeholders(body: str) -> list[Placeholder]:
    """Each placeholder of ``body`` once, in order of first use; 400 ``InvalidTemplate`` naming the first bad one."""
    found: dict[str, Placeholder] = {}
    for match in _PLACEHOLDER.finditer(body):
        name = match.group(1)
        if not _NAME.fullmatch(name) or not name.strip():
            why = "is empty" if not name.strip() else "holds a character other than letters, digits, spaces, _ and -"
            raise InvalidRequest("InvalidTemplate", f"The placeholder {_shown(match.group(0))!r} {why}. A placeholder "
                                 "is ((name)), the name made of letters, digits, spaces, _ and -.", field="body")
        found.setdefault(key_of(name), Placeholder(name.strip(), key_of(name)))
    return list(found.values())


def names(body: str) -> list[str]:
    """The placeholders' names, as the template resource lists them."""
    return [placeholder.name for placeholder in placeholders(body)]


def values(personalisation) -> dict[str, str]:
    """``personalisation`` as text by placeholder key: an object of strings and numbers, else 400
    ``InvalidPersonalisation``. Two keys that match the same placeholder are refused: which one was meant?"""
    if personalisation is None:
        return {}
    if not isinstance(personalisation, dict):
        raise InvalidRequest("InvalidPersonalisation", "'personalisation' must be an object of placeholder names "
                             "and their values.", field="personalisation")
    found: dict[str, tuple[str, str]] = {}
    for given, value in personalisation.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) \
                or (isinstance(value, float) and not math.isfinite(value)):  # 1e400 parses as infinity
            raise InvalidRequest("InvalidPersonalisation", f"The value of {_shown(given)!r} in 'personalisation' "
                                 "must be a string or a number.", field="personalisation")
        key = key_of(given)
        if key in found:
            raise InvalidRequest("InvalidPersonalisation", f"'personalisation' gives {_shown(found[key][0])!r} and "
                                 f"{_shown(given)!r}, which name the same placeholder (names match without regard "
                                 "to case or to spaces at their ends).", field="personalisation")
        found[key] = (given, value if isinstance(value, str) else _number(value))
    return {key: text for key, (_given, text) in found.items()}


def _number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(value)  # repr: the shortest text that reads back


def render(body: str, personalisation) -> str:
    """``body`` with each placeholder replaced by its value; 400 ``MissingPersonalisation`` naming every
    placeholder without one (in order of first use)."""
    given = values(personalisation)
    missing = [p.name for p in placeholders(body) if p.key not in given]
    if missing:
        listed = ", ".join(repr(_shown(name)) for name in missing)
        raise InvalidRequest("MissingPersonalisation", f"'personalisation' has no value for {listed}.",
                             field="personalisation")
    return _PLACEHOLDER.sub(lambda match: given[key_of(match.group(1))], body)
