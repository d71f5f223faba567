"""What Lambda hands a function on each invocation, for the local event sources (``queues``, ``streams``).

- ``Context`` plays the Lambda context object: an ``aws_request_id``, and ``get_remaining_time_in_millis()``
  counting down from the function's timeout (the batch worker and the webhook delivery stop taking new work
  when it runs low, as they do on Lambda).
- ``b64`` writes a binary value as Lambda's JSON events carry it: base64 text (botocore hands it over as
  bytes).
"""
from __future__ import annotations

import base64
import time
import uuid


class Context:
    def __init__(self, timeout_seconds: float):
        self.deadline = time.monotonic() + timeout_seconds
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def b64(value):
    return base64.b64encode(value).decode() if isinstance(value, (bytes, bytearray)) else value
