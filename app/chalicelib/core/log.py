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


def _line(level: str, function: str, lineno: int, message: str, created: float, msecs: float, extra,
          error: dict | None = None) -> str:
    """One log line: the fixed keys first, then ``extra`` (a mapping, or key and value pairs), then ``error``;
    keys whose value is None are left out."""
    line = {"level": level, "location": f"{function}:{lineno}", "message": message,
            "timestamp": f"{_second(int(created))},{int(msecs):03d}+0000", "service": SERVICE}
    trace = os.environ.get("_X_AMZN_TRACE_ID")  # Lambda sets it per invocation when tracing is on
    if trace:
        line["xray_trace_id"] = trace.split(";")[0].replace("Root=", "")
    line.update(extra)
    if error:
        line.update(error)
    return _LINE.encode({k: v for k, v in line.items() if v is not None})


class JsonFormatter(logging.Formatter):
    """A record as one JSON object (``_line``): its ``extra`` keys are those a record does not have by itself."""

    def format(self, record: logging.LogRecord) -> str:
        error = None
        if record.exc_info and record.exc_info[1] is not None:
            error = {"exception": self.formatException(record.exc_info),
                     "exception_name": type(record.exc_info[1]).__name__}
        return _line(record.levelname, record.funcName, record.lineno, record.getMessage(), record.created,
                     record.msecs, ((k, v) for k, v in vars(record).items() if k not in _STANDARD), error)


class _AppLogger(logging.Logger):
    """The app's logger: a line with neither arguments nor an exception, as every send writes, goes straight from
    the call to the app's own handler when that handler is the logger's only one, as ``_logger`` sets it up. It is
    the line ``JsonFormatter`` writes for the record the standard path would make (``tests/test_log_format.py``
    holds the two to each other), without the record: the standard path makes a ``LogRecord`` of some twenty
    attributes, finds its caller by walking the stack, filters it and formats it, about 60 µs of a send's CPU
    between botocore's calls (``make bench``). Anything else takes the standard path: arguments, an exception or
    a stack, an ``extra`` key a record has already (which it refuses), another handler or filter (as tests add),
    or a handler whose level is above the line's."""

    direct: logging.StreamHandler | None = None  # the handler _logger made, the one written to directly
    mask: logging.Filter | None = None

    def _log(self, level, msg, args, exc_info=None, extra=None, stack_info=False, stacklevel=1):
        handler = self.direct
        if (args or exc_info or stack_info or stacklevel != 1 or handler is None or self.disabled
                or self.propagate or not isinstance(msg, str) or self.handlers != [handler]
                or self.filters != [self.mask] or handler.filters or level < handler.level
                or (extra and not _STANDARD.isdisjoint(extra))):
            # The standard path, which finds the caller one frame further out (this method is not logging's).
            super()._log(level, msg, args, exc_info, extra, stack_info, stacklevel + 1)
            return
        caller = sys._getframe(1)
        while caller.f_code.co_filename == logging.__file__:  # logger.info and the like
            caller = caller.f_back
        now = time.time()
        try:
            text = _line(logging.getLevelName(level), caller.f_code.co_name, caller.f_lineno, scrub(msg), now,
                         (now - int(now)) * 1000, extra or ()) + handler.terminator
            with handler.lock:
                handler.stream.write(text)
                handler.flush()
        except RecursionError:
            raise
        except Exception:  # the standard path tries again, and reports a failure as logging does, to stderr
            super()._log(level, msg, args, exc_info, extra, stack_info, stacklevel + 1)


def _logger() -> logging.Logger:
    made = logging.getLogger(SERVICE)
    made.__class__ = _AppLogger  # the same logger (tests may hold it already), with the direct path
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    made.addHandler(handler)
    made.setLevel(os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO").upper())
    made.mask = _MaskNumbers()
    made.addFilter(made.mask)
    made.direct = handler
    made.propagate = False  # Lambda's runtime puts a handler on the root logger: each line prints once, as JSON
    return made


logger = _logger()
