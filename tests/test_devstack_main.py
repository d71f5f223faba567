"""``make dev``'s terminal (devstack/__main__.py): the schedule sweep, run every second locally, writes a line only
when it queued something, so the requests' lines are not buried under a line a second."""
from __future__ import annotations

import io
import logging

from chalicelib.core import log
from devstack.__main__ import APP_LOGGER, QuietSweeps


def test_a_sweep_that_did_nothing_writes_no_line_and_every_other_line_is_kept(monkeypatch):
    assert APP_LOGGER == log.SERVICE and logging.getLogger(APP_LOGGER) is log.logger
    stream = io.StringIO()
    quiet = QuietSweeps()
    monkeypatch.setattr(log.logger, "filters", [*log.logger.filters, quiet])
    for handler in log.logger.handlers:
        if isinstance(handler, logging.StreamHandler):  # the app's own (the tests' hygiene check has another)
            monkeypatch.setattr(handler, "stream", stream)
    cursor = "2026-12-06T21:00:00.000Z"
    log.logger.info("schedule sweep", extra={"enqueued": 0, "steps": 1, "cursor": cursor, "settled": 0})
    log.logger.info("schedule sweep", extra={"enqueued": 2, "steps": 1, "cursor": cursor, "settled": 0})
    log.logger.info("schedule sweep", extra={"enqueued": 0, "steps": 0, "cursor": cursor, "settled": 1})
    log.logger.info("sent", extra={"messageId": "m-1"})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and '"enqueued":2' in lines[0] and '"settled":1' in lines[1]
    assert '"message":"sent"' in lines[2]
