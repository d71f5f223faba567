"""One structured logger (Powertools) for the whole app. Phone numbers never reach a log line:
call sites log ``phone.mask(number)``, and a filter masks any E.164 number that slips into a
message or an exception text anyway."""
from __future__ import annotations

import logging

from aws_lambda_powertools import Logger

from .phone import scrub


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


logger = Logger(service="sms-sender")
logger.addFilter(_MaskNumbers())
