"""One structured logger for the whole app: a JSON object a line on stdout, with the keys Powertools' Logger
writes (``level``, ``location``, ``message``, ``timestamp``, ``service``, ``xray_trace_id`` on Lambda, the
``extra`` keys, ``exception`` and ``exception_name``). It is the standard library's ``logging``: importing
Powertools for it cost every function's cold start about 6 ms (``make bench``). ``POWERTOOLS_LOG_LEVEL``
sets the level (default INFO), as it did.

Phone numbers never reach a log line: call sites log ``mask(number)``, and a filter masks any E.164
number that slips into a message or an exception text anyway.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from functools import lru_cache

SERVICE = "sms-sender"


def mask(number: str | None) -> str:
    """'+14155550100' -> '+1*******00': enough to tell numbers apart in logs, never the whole number."""
    if not number:
        return ""
    digits = number.lstrip("+")
    if len(digits) <= 4:
        return "*" * len(number)
    return "+" + digits[:1] + "*" * (len(digits) - 3) + digits[-2:]


_E164 = re.compile(r"\+\d{6,15}")


def scrub(text: str) -> str:
    """Mask anything in free text that looks like an E.164 number (the only form the app handles)."""
    return _E164.sub(lambda m: mask(m.group()), text)


class _MaskNumbers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        if record.args:
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            exc.args = tuple(scrub(a) if isinstance(a, str) else a for a in exc.args)
            record.exc_text = None
        return True


# What every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


# Made once: json.dumps builds an encoder on every call given options, and a send writes a line.
_LINE = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":"))


@lru_cache(maxsize=4)
def _second(whole: int) -> str:
    """A log line's timestamp up to its second (the lines of one second share it)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole))


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: the fixed keys first, then the ``extra`` ones; keys whose value is None
    are left out."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"level": record.levelname, "location": f"{record.funcName}:{record.lineno}",
                "message": record.getMessage(),
                "timestamp": f"{_second(int(record.created))},{int(record.msecs):03d}+0000",
                "service": SERVICE}
        trace = os.environ.get("_X_AMZN_TRACE_ID")  # Lambda sets it per invocation when tracing is on
        if trace:
            line["xray_trace_id"] = trace.split(";")[0].replace("Root=", "")
        for key, value in vars(record).items():
            if key not in _STANDARD:
                line[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            line["exception"] = self.formatException(record.exc_info)
            line["exception_name"] = type(record.exc_info[1]).__name__
        return _LINE.encode({k: v for k, v in line.items() if v is not None})


def _logger() -> logging.Logger:
    made = logging.getLogger(SERVICE)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    made.addHandler(handler)
    made.setLevel(os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO").upper())
    made.addFilter(_MaskNumbers())
    made.propagate = False  # Lambda's runtime puts a handler on the root logger: each line prints once, as JSON
    return made


logger = _logger()
