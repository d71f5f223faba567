"""The session's log check (tests/conftest.py) itself: it finds a number a test used, in any form a
log line may carry it, and does not take a date for one."""
from .conftest import LogHygiene


def checker(*numbers: str) -> LogHygiene:
    check = LogHygiene()
    for number in numbers:
        check.note_number(number)
    return check


def test_a_number_the_tests_used_is_found_in_either_form():
    check = checker("+14255550123")
    assert check._numbers_in("sent to +14255550123") == ["4255550123"]
    assert check._numbers_in("sent to (425) 555-0123") == ["4255550123"]
    assert check._numbers_in("sent to ...0123") == []


def test_a_date_is_not_a_number():
    # A fuzzed `to` can be any digits, a date's among them; the report's query carries dates.
    check = checker("20261205")
    line = 'HTTP Request: GET http://127.0.0.1:1/reports/daily?from=2026-12-04&to=2026-12-05 "HTTP/1.1 200 OK"'
    assert check._numbers_in(line) == []
    assert check._numbers_in("sent to 2026 1205") == ["20261205"]
