"""A log line is one JSON object with the keys Powertools' Logger writes (``chalicelib.core.log``): ``level``,
``location``, ``message``, ``timestamp``, ``service``, ``xray_trace_id`` when Lambda traces, then the ``extra``
keys, and ``exception`` and ``exception_name``; a key whose value is None is left out."""
from __future__ import annotations

import io
import json
import logging
import time
from decimal import Decimal

import hypothesis
import pytest
from hypothesis import strategies as st

from chalicelib.core import log

# The tracing header as the AWS X-Ray Developer Guide shows it ("Tracing header"), which Lambda hands a traced
# function in _X_AMZN_TRACE_ID (AWS Lambda Developer Guide, "Defined runtime environment variables").
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture
def logger_at(monkeypatch):
    """``at(level, handlers, stream=None)``: the app's logger at ``level`` with only ``handlers`` (the direct
    handler writing to ``stream``, if given) for the test; all of it put back afterwards."""
    saved = log.logger.level

    def at(level, handlers, stream=None):
        monkeypatch.setattr(log.logger, "handlers", handlers)
        if stream is not None:
            monkeypatch.setattr(log.logger.direct, "stream", stream)
        log.logger.setLevel(level)  # through setLevel: it clears the logger's cache of enabled levels

    yield at
    log.logger.setLevel(saved)


@pytest.fixture
def lines(monkeypatch, logger_at):
    """What the app's logger writes, line by line (at INFO, as deployed)."""
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(log.JsonFormatter())
    logger_at("INFO", [handler])
    return lambda: [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_holds_the_fixed_keys_then_the_extra_ones_and_leaves_out_none(lines):
    before = time.time()
    log.logger.info("sent", extra={"messageId": "m-1", "providerMessageId": None, "segments": 2,
                                   "body": "Grüße ✓", "price": Decimal("0.00645")})
    (line,) = lines()
    assert list(line)[:5] == ["level", "location", "message", "timestamp", "service"]
    assert line["level"] == "INFO" and line["message"] == "sent" and line["service"] == "sms-sender"
    assert line["location"].startswith("test_a_line_holds_the_fixed_keys_then_the_extra_ones_and_leaves_out_none:")
    assert list(line)[5:] == ["messageId", "segments", "body", "price"]  # in the order given, None left out
    assert line["segments"] == 2 and line["body"] == "Grüße ✓"
    assert line["price"] == "0.00645"  # str() of what JSON cannot hold
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
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE)
    try:
        raise KeyError("no such thing")
    except KeyError:
        log.logger.exception("failed")
    (line,) = lines()
    assert line["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert line["exception_name"] == "KeyError" and "no such thing" in line["exception"]
    assert list(line).index("xray_trace_id") == 5


# The direct path (``log._AppLogger``): the line the standard path writes, without its record.
KEYS = st.sampled_from(["messageId", "to", "segments", "code", "level", "service", "location", "note", "x"])
VALUES = st.none() | st.integers() | st.text(max_size=20) | st.booleans() | st.decimals(allow_nan=False) \
    | st.lists(st.integers(), max_size=3) | st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)
MESSAGES = st.text(max_size=40) | st.builds(lambda a, n: f"{a} to +1425555{n:04d}", st.text(max_size=10),
                                            st.integers(0, 9999))


@pytest.fixture
def both(monkeypatch, logger_at):
    """Say the same thing through the direct path and through the standard one (a filter on the handler that
    lets everything through turns the direct path off); the two lines."""
    out = io.StringIO()
    handler = log.logger.direct
    logger_at("DEBUG", [handler], out)  # as deployed (the session's log check adds a handler of its own)
    monkeypatch.setattr(time, "time", lambda: 1765000000.25)
    monkeypatch.setattr(time, "time_ns", lambda: 1765000000_250_000_000)
    formatted = []
    original = log.JsonFormatter.format
    monkeypatch.setattr(log.JsonFormatter, "format", lambda self, record: formatted.append(1) or original(self, record))

    def say(level, message, extra):
        lines = []
        for direct in (True, False):
            formatted.clear()
            if not direct:
                handler.addFilter(lambda record: True)
            try:
                log.logger.log(level, message, extra=extra)  # one line: the same location for both
            finally:
                handler.filters.clear()
            lines.append(out.getvalue())
            assert len(formatted) == (0 if direct else 1)  # the direct path made no record to format
            out.seek(0)
            out.truncate()
        return lines

    return say


@hypothesis.settings(max_examples=300, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]), MESSAGES,
                  st.dictionaries(KEYS, VALUES, max_size=5) | st.none(), st.booleans())
def test_the_direct_path_writes_the_line_the_standard_path_writes(both, monkeypatch, level, message, extra, traced):
    if traced:
        monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE)
    else:
        monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    direct, standard = both(level, message, extra)
    assert direct == standard and direct.endswith("\n") and direct.count("\n") == 1
    line = json.loads(direct)
    if "location" not in (extra or {}):  # an extra key takes the place of a fixed one, on either path
        assert line["location"].startswith("say:")
    assert "+1425555" not in line.get("message", "")


def test_a_line_the_direct_path_cannot_write_still_reaches_the_log(logger_at, capsys):
    class Broken(io.StringIO):
        def write(self, text):
            raise OSError("the pipe is gone")

    logger_at("INFO", [log.logger.direct], Broken())
    log.logger.warning("sent", extra={"messageId": "m-1"})  # no exception reaches the caller
    assert "the pipe is gone" in capsys.readouterr().err  # reported as logging reports a failed line
