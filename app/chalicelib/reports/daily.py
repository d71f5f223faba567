"""``GET /reports/daily``: the daily figures of a range of UTC days, summed from their counters.

A range is ``from`` and ``to`` (YYYY-MM-DD, both included), at most ``schema.REPORT_DAYS`` days; the default
is the last ``DEFAULT_DAYS`` days, today (UTC) included. Reading a range is a bounded number of items,
whatever the traffic: ``schema.REPORT_SHARDS`` per channel per day (``items_for``), read by BatchGetItem.

Every day of the range is in the answer, zeros included; money is added as decimals and answered as a JSON
number rounded to a millionth of a dollar. A test key's messages are never counted, so its report is all
zeros (read from nothing): the shape is the same, so a CI run can exercise it.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache

from ..core import schema, store
from ..core.caller import Caller
from ..core.errors import InvalidRequest, NotConfigured, aws_errors
from ..core.settings import Settings
from . import figures

DEFAULT_DAYS = 7
MAX_DAYS = schema.REPORT_DAYS
MONEY = Decimal("0.000001")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
BATCH_KEYS = 100  # BatchGetItem takes at most 100 keys


def configured(settings: Settings) -> Settings:
    if not settings.reports_table:
        raise NotConfigured("ReportsNotConfigured", "This stage has no reports table (REPORTS_TABLE).")
    return settings


def today_utc() -> date:
    return datetime.now(timezone.utc).date()


def _day(raw, name: str) -> date:
    try:
        if isinstance(raw, str) and _DAY.fullmatch(raw):
            return date.fromisoformat(raw)
    except ValueError:
        pass
    raise InvalidRequest("InvalidRange", f"'{name}' must be a UTC day, YYYY-MM-DD.", field=name)


def parse_range(raw_from, raw_to, *, today: date | None = None, required: bool = False) -> tuple[date, date]:
    """(first day, last day) of ``from`` and ``to``: 400 ``InvalidRange`` for a day that is not YYYY-MM-DD, a
    ``from`` after ``to``, or more than ``MAX_DAYS`` days. Without ``required``, ``to`` defaults to today
    and ``from`` to ``DEFAULT_DAYS`` days up to ``to``."""
    if required:
        for raw, name in ((raw_from, "from"), (raw_to, "to")):
            if raw is None:
                raise InvalidRequest("MissingField", f"'{name}' is required: a UTC day, YYYY-MM-DD.", field=name)
    last = _day(raw_to, "to") if raw_to is not None else (today or today_utc())
    first = _day(raw_from, "from") if raw_from is not None else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidRequest("InvalidRange", "'from' must not come after 'to'.", field="from")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidRequest("InvalidRange", f"A range holds at most {MAX_DAYS} days.", field="from")
    return first, last


def days_of(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def items_for(days: int) -> int:
    """How many counter items a report of ``days`` days reads, whatever the traffic."""
    return days * schema.REPORT_SHARDS * len(figures.CHANNELS)


def zero() -> dict:
    return {**{name: 0 for name in figures.COUNTS}, figures.COST: Decimal(0), "failuresByCode": {}}


def _add(into: dict, item: dict) -> None:
    """Add one counter item (DynamoDB JSON) to a channel's sums."""
    for name, value in item.items():
        amount = value.get("N") if isinstance(value, dict) else None
        if amount is None:
            continue
        if name in figures.COUNTS:
            into[name] += int(Decimal(amount))
        elif name == figures.COST:
            into[figures.COST] += Decimal(amount)
        elif name.startswith(figures.FAILURE):
            code = name[len(figures.FAILURE):]
            into["failuresByCode"][code] = into["failuresByCode"].get(code, 0) + int(Decimal(amount))


def shown(sums: dict) -> dict:
    """A channel's sums as the API answers them: money a JSON number, codes commonest first, zeros left out."""
    codes = sorted(((code, n) for code, n in sums["failuresByCode"].items() if n), key=lambda c: (-c[1], c[0]))
    return {**{name: sums[name] for name in figures.COUNTS},
            figures.COST: float(sums[figures.COST].quantize(MONEY)), "failuresByCode": dict(codes)}


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="report")


def read(table: str, days: list[str]) -> list[dict]:
    """Every counter item of these days that exists (eventually consistent: a count lands within a second)."""
    keys = [{schema.REPORTS_KEY: {"S": f"{schema.REPORTS_DAILY}{day}#{shard}"}, schema.REPORTS_SORT: {"S": channel}}
            for day in days for shard in range(schema.REPORT_SHARDS) for channel in figures.CHANNELS]
    groups = [keys[i:i + BATCH_KEYS] for i in range(0, len(keys), BATCH_KEYS)]
    return [item for found in _pool().map(lambda group: store.batch_get(table, group), groups) for item in found]


def figures_of(items: list[dict], days: list[str]) -> dict[tuple[str, str], dict]:
    sums = {(day, channel): zero() for day in days for channel in figures.CHANNELS}
    for item in items:
        pk, channel = item[schema.REPORTS_KEY]["S"], item[schema.REPORTS_SORT]["S"]
        day = pk[len(schema.REPORTS_DAILY):].split("#")[0]
        if (day, channel) in sums:
            _add(sums[(day, channel)], item)
    return sums


@aws_errors("read the report")
def report(raw_from, raw_to, caller: Caller, settings: Settings, *, today: date | None = None) -> dict:
    """``GET /reports/daily``: ``{"from", "to", "days": [{"date", "sms", "mms"}], "totals": {"sms", "mms"},
    "spendLimitUsd"}``."""
    first, last = parse_range(raw_from, raw_to, today=today)
    configured(settings)
    days = days_of(first, last)
    items = [] if caller.test else read(settings.reports_table, days)
    sums = figures_of(items, days)
    totals = {channel: zero() for channel in figures.CHANNELS}
    answer_days = []
    for day in days:
        answer_days.append({"date": day, **{channel: shown(sums[(day, channel)]) for channel in figures.CHANNELS}})
        for channel in figures.CHANNELS:
            total, one = totals[channel], sums[(day, channel)]
            for name in figures.COUNTS:
                total[name] += one[name]
            total[figures.COST] += one[figures.COST]
            for code, n in one["failuresByCode"].items():
                total["failuresByCode"][code] = total["failuresByCode"].get(code, 0) + n
    return {"from": first.isoformat(), "to": last.isoformat(), "days": answer_days,
            "totals": {channel: shown(totals[channel]) for channel in figures.CHANNELS},
            "spendLimitUsd": settings.monthly_spend_limit_usd}
