"""A log line is one JSON object with the keys Powertools' Logger writes (``chalicelib.core.log``): ``level``,
``location``, ``message``, ``timestamp``, ``service``, ``xray_trace_id`` when Lambda traces, then the ``extra``
keys, and ``exception`` and ``exception_name``; a key whose value is None is left out."""
from __future__ import annotations

import io
import json
import logging
import time
from decimal import Decimal

import pytest

from chalicelib.core import log


@pytest.fixture
def lines(monkeypatch):
    """What the app's logger writes, line by line (at INFO, as deployed)."""
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(log.JsonFormatter())
    saved = log.logger.handlers, log.logger.level
    log.logger.handlers = [handler]
    log.logger.setLevel("INFO")
    yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    log.logger.handlers, _ = saved
    log.logger.setLevel(saved[1])


def test_a_line_holds_the_fixed_keys_then_the_extra_ones_and_leaves_out_none(lines):
    before = time.time()
    log.logger.info("sent", extra={"messageId": "m-1", "providerMessageId": None, "segments": 2,
                                   "body": "Grüße ✓", "price": Decimal("0.00645")})
    (line,) = lines()
    assert list(line)[:5] == ["level", "location", "message", "timestamp", "service"]
    assert line["level"] == "INFO" and line["message"] == "sent" and line["service"] == "sms-sender"
    assert line["location"].startswith("test_a_line_holds_the_fixed_keys_then_the_extra_ones_and_leaves_out_none:")
    assert list(line)[5:] == ["messageId", "segments", "body", "price"]  # in the order given, None left out
    assert line["segments"] == 2 and line["body"] == "Grüße ✓" and line["price"] == "0.00645"  # str() of what JSON lacks
    stamp = time.strptime(line["timestamp"][:19], "%Y-%m-%d %H:%M:%S")
    assert line["timestamp"][19:].startswith(",") and line["timestamp"].endswith("+0000")
    assert int(before) - 1 <= time.mktime(stamp) - time.timezone <= time.time() + 1


def test_lines_of_one_second_and_of_the_next_each_carry_their_own_time(lines, monkeypatch):
    for at in (1765000000.125, 1765000000.875, 1765000001.0625, 1765003600.5):  # binary fractions: exact
        monkeypatch.setattr(time, "time", lambda at=at: at)
        monkeypatch.setattr(time, "time_ns", lambda at=at: int(at * 1e9))
        log.logger.info("tick")
    assert [line["timestamp"] for line in lines()] == [
        "2025-12-06 05:46:40,125+0000", "2025-12-06 05:46:40,875+0000", "2025-12-06 05:46:41,062+0000",
        "2025-12-06 06:46:40,500+0000"]


def test_a_traced_line_names_its_trace_and_an_exception_its_text_and_name(lines, monkeypatch):
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    try:
        raise KeyError("no such thing")
    except KeyError:
        log.logger.exception("failed")
    (line,) = lines()
    assert line["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert line["exception_name"] == "KeyError" and "no such thing" in line["exception"]
    assert list(line).index("xray_trace_id") == 5
