"""What a message body may hold, whoever writes it: a caller's ``body``, a template's, or the body a template
renders to. ``sending.validation`` checks sends with these rules, ``templates`` checks a template's source."""
from __future__ import annotations

import re
import unicodedata

from .errors import InvalidRequest

# End User Messaging's MessageBody takes at most 1600 characters (SendTextMessage, SendMediaMessage).
MAX_BODY = 1600
# Characters a message body may not hold: C0 controls but tab, line feed and carriage return; DEL; C1 controls.
# No handset shows them, and some carrier systems cut a message at a NUL.
BODY_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Letters that render as blank space though Unicode files them as letters or symbols (Hangul fillers,
# the blank Braille pattern): a body of only these is as empty as one of spaces.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Unicode categories that never show: separators, controls, format characters (zero-width spaces and joiners,
# byte order marks, direction marks), surrogates.
_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs"})


def visible(text: str) -> bool:
    """Whether any character would show: not a space or separator, not a control or format character
    (zero-width spaces and joiners, byte order marks, ...), not a blank filler letter."""
    return any(not (char.isspace() or char in _BLANK_LETTERS or unicodedata.category(char) in _INVISIBLE)
               for char in text)


def check_size_and_characters(body: str) -> None:
    """400 ``BodyTooLong`` over ``MAX_BODY`` characters, 400 ``InvalidBody`` for a control character."""
    if len(body) > MAX_BODY:
        raise InvalidRequest("BodyTooLong", f"'body' may be at most {MAX_BODY} characters; it has {len(body)}.",
                             field="body")
    if BODY_CONTROL.search(body):
        raise InvalidRequest("InvalidBody", "'body' holds control characters; only tab, line feed and carriage "
                             "return are allowed.", field="body")
