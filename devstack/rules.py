"""EventBridge's scheduled rule, played locally around the app's own function: ``RateRule`` invokes it every
``every`` seconds, as the stack's ``rate(1 minute)`` rule invokes the schedule sweep deployed.

Each run gets a Lambda context counting down from the function's timeout. A run that raises is counted in
``errors`` and logged (deployed, the function's errors metric and its alarm see it); the next run comes all
the same. Runs never overlap here: the next starts ``every`` seconds after the last one began, or at once if
it took longer.
"""
from __future__ import annotations

import logging
import time

from .invocation import Context
from .polling import Poller


class RateRule(Poller):
    def __init__(self, *, function, every: float, function_timeout: float = 60.0, name: str = "rate-rule"):
        super().__init__(name=name, function_timeout=function_timeout)
        self.function, self.every, self.name = function, every, name
        self.runs = self.errors = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.function({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}},
                              Context(self.function_timeout))
            except Exception:
                self.errors += 1
                logging.getLogger(__name__).exception("%s: the run failed; the next comes all the same", self.name)
            finally:
                self.runs += 1
            self._stop.wait(max(0.0, self.every - (time.monotonic() - began)))
