"""The stage's send schedule (``chalicelib.pacing``): its UpdateItem calls against botocore's model,
its windows against moto (never overlapping, never above maxMps, the whole rate for one instance,
nothing taken by a refusal), and the batch worker on the local stack reaching the stage's MPS
with a small backlog on one instance."""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber

from .conftest import REGION, post
from .localhttp import HANG_GUARD

TABLE_KEY = {"id": {"S": "pacer#0"}}


def schedule_on(max_mps, clock, sleep=None, *, record=None, seed=0):
    """A schedule on the test table's items, on the given clock; ``record`` collects each grant as
    (item, window start, window end, parts-seconds)."""
    from chalicelib.sending import pacing
    from chalicelib.core.settings import get_settings

    items = pacing.DynamoItems(get_settings().idempotency_table)
    if record is not None:
        update = items.update

        def recorded(item, fresh, now, latest, seconds):
            granted, old = update(item, fresh, now, latest, seconds)
            if granted:
                begin = now if fresh else old
                record.append((item, begin, begin + seconds))
            return granted, old

        items.update = recorded
    return pacing.Schedule(max_mps, items, clock=clock, sleep=sleep or (lambda s: None), rng=random.Random(seed))


def next_at(item=0):
    from chalicelib.core.settings import get_settings

    found = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=get_settings().idempotency_table, Key={"id": {"S": f"pacer#{item}"}}, ConsistentRead=True)
    return float(found["Item"]["nextAt"]["N"]) if "Item" in found else None


# -- the calls, against botocore's model ----------------------------------------------------------

def test_each_claim_is_one_update_item_that_botocore_accepts(settings_env):
    settings_env(MEDIA_BUCKET="b", MESSAGES_TABLE="m", IDEMPOTENCY_TABLE="idem")
    from chalicelib.core import aws
    from chalicelib.sending import pacing

    items = pacing.DynamoItems("idem")
    common = {"TableName": "idem", "Key": TABLE_KEY, "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
              "ExpressionAttributeNames": {"#at": "nextAt", "#ttl": "expiration"}}
    with Stubber(aws.client("dynamodb")) as stub:
        stub.add_response("update_item", {}, {
            **common, "UpdateExpression": "SET #at = :next, #ttl = :ttl",
            "ConditionExpression": "attribute_not_exists(#at) OR #at <= :now",
            "ExpressionAttributeValues": {":now": {"N": "100.000000"}, ":next": {"N": "100.500000"},
                                          ":ttl": {"N": "3700"}}})
        stub.add_response("update_item", {"Attributes": {"nextAt": {"N": "100.5"}}}, {
            **common, "UpdateExpression": "SET #at = #at + :seconds, #ttl = :ttl",
            "ConditionExpression": "#at BETWEEN :now AND :latest", "ReturnValues": "UPDATED_OLD",
            "ExpressionAttributeValues": {":now": {"N": "100.100000"}, ":seconds": {"N": "0.500000"},
                                          ":latest": {"N": "100.350000"}, ":ttl": {"N": "3700"}}})
        stub.add_client_error("update_item", service_error_code="ConditionalCheckFailedException",
                              http_status_code=400, expected_params={**common, "UpdateExpression": ANY,
                                                                     "ConditionExpression": ANY,
                                                                     "ExpressionAttributeValues": ANY},
                              modeled_fields={"Item": {"id": TABLE_KEY["id"], "nextAt": {"N": "101.25"}}})
        assert items.update(0, True, 100.0, 100.25, 0.5) == (True, None)
        assert items.update(0, False, 100.1, 100.35, 0.5) == (True, 100.5)  # the window starts at the old nextAt
        assert items.update(0, True, 100.2, 100.45, 0.5) == (False, 101.25)  # refused: says the item's nextAt
        stub.assert_no_pending_responses()


# -- the schedule, against moto -----------------------------------------------------------------

def test_the_in_memory_items_agree_with_the_table(aws_env):
    """The simulation (bench/scale.py) runs MemoryItems: the same claims give the same answers and
    leave the same nextAt as the DynamoDB conditions do."""
    from chalicelib.sending import pacing
    from chalicelib.core.settings import get_settings

    table, memory = pacing.DynamoItems(get_settings().idempotency_table), pacing.MemoryItems()
    rng = random.Random(7)
    now, outcomes = 1_000.0, set()
    for _ in range(150):
        now += rng.choice([0.0, 0.01, 0.05, 0.2, 0.6])
        item, fresh, seconds = rng.randrange(2), rng.random() < 0.5, rng.choice([0.01, 0.1, 0.3])
        latest = now + rng.choice([0.0, 0.25])
        granted, old = table.update(item, fresh, now, latest, seconds)
        expected_granted, expected_old = memory.update(item, fresh, now, latest, seconds)
        assert granted == expected_granted
        if not (granted and fresh):  # a fresh grant returns nothing (the window starts now)
            assert old == pytest.approx(expected_old, abs=1e-6) if expected_old is not None else old is None
        assert next_at(item) == pytest.approx(memory.next_at.get(item), abs=1e-5)
        outcomes.add((fresh, granted))
    assert outcomes == {(True, True), (True, False), (False, True), (False, False)}  # every case ran


def test_one_instance_alone_gets_the_whole_rate(aws_env):
    """Ten one-part claims at 10 MPS from one instance: back-to-back windows a tenth of a second
    apart, where a per-instance share (MPS 10 over 2 instances) would space them 0.2 s."""
    now = [5_000.0]
    sends = []
    schedule = schedule_on(10, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    for _ in range(10):
        assert schedule.acquire(1)
        sends.append(now[0])
        now[0] += 0.02  # the send itself
    gaps = [b - a for a, b in zip(sends, sends[1:])]
    assert gaps == pytest.approx([0.1] * 9, abs=1e-5)


def test_a_refused_claim_takes_nothing_and_says_when_to_ask_again(aws_env):
    from chalicelib.sending import pacing

    now = [2_000.0]
    first = schedule_on(4, clock=lambda: now[0])
    for _ in range(2):  # book the one item 0.5 s ahead: two 1-part windows of 0.25 s
        assert first.reserve(1).granted
    assert not first.reserve(1).granted  # a third would start more than MAX_AHEAD from now
    booked = next_at()
    assert booked == pytest.approx(2_000.5)
    other = schedule_on(4, clock=lambda: now[0])  # another instance: knows nothing of the item
    slot = other.reserve(1)
    # Ask again once the item takes claims (MAX_AHEAD before its nextAt), and before the window.
    assert not slot.granted and booked - pacing.MAX_AHEAD <= slot.at <= booked
    assert next_at() == booked  # the refusal moved nothing
    assert other.reserve(1, deadline=now[0] + 0.4) is None  # its window could not start by the deadline
    assert next_at() == booked
    now[0] = slot.at
    granted = other.reserve(1)
    assert granted.granted and granted.at == pytest.approx(booked)


def test_concurrent_instances_never_overlap_and_never_exceed_the_rate(aws_env):
    """Eight instances (threads, each with its own handle and random start) claim windows on a stage
    of 150 MPS (two items of 75 parts a second), sleeping until each window as the worker does."""
    from chalicelib.sending import pacing

    mps, windows, lock = 150, [], threading.Lock()

    def instance(seed):
        rng = random.Random(seed)
        schedule = schedule_on(mps, time.time, time.sleep, record=windows, seed=seed)
        update = schedule.items.update

        def atomic(*args):  # DynamoDB applies each conditional write atomically; moto in-process does not
            with lock:
                return update(*args)

        schedule.items.update = atomic
        for _ in range(15):
            assert schedule.acquire(rng.choice([1, 1, 1, 2, 3]))

    threads = [threading.Thread(target=instance, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HANG_GUARD)
    assert not any(thread.is_alive() for thread in threads), f"an instance still claiming after {HANG_GUARD:.0f} s"
    assert len(windows) == 8 * 15
    for item in range(pacing.items_for(mps)):
        mine = sorted((begin, end) for i, begin, end in windows if i == item)
        assert all(b[0] >= a[1] - 1e-5 for a, b in zip(mine, mine[1:])), "two windows overlap on one item"
    # Over any stretch of time, the parts whose windows start in it stay within the rate, plus one
    # window's worth per item.
    rate_per_item = mps / pacing.items_for(mps)
    starts = sorted((begin, (end - begin) * rate_per_item) for _, begin, end in windows)
    for i, (begin, _) in enumerate(starts):
        for span in (0.1, 0.5, 1.0):
            parts = sum(p for t, p in starts[i:] if t < begin + span)
            assert parts <= mps * span + pacing.items_for(mps) * 3 + 1e-6


# -- the worker ----------------------------------------------------------------------------------

def test_one_instance_sends_several_messages_of_its_batch_at_once_and_each_once(client):
    """A stage of 100 MPS: one instance alone must send 5 at a time to reach it (one sender sends
    about 20 parts a second). Each message still goes out exactly once, redelivery included."""
    from chalicelib.sending import worker
    from chalicelib.sending.pacing import TokenBucket
    from chalicelib.core.settings import get_settings
    from moto.sns.models import sns_backends

    from .test_batches import as_event, queued_messages

    assert [worker.senders_for(m) for m in (3, 20, 50, 100, 1000)] == [1, 1, 3, 5, 5]
    post(client, "/batches", {"messages": [{"to": f"+1415555012{i}", "body": f"at once {i}"} for i in range(8)]})
    event = as_event(queued_messages())

    senders = worker.senders_for(100)

    class Watched(TokenBucket):
        """A local bucket that notes how many messages wait for their window at the same time. The first
        ones wait until ``senders`` of them wait together (then the windows open): a worker that sent fewer
        at once would never get there, and would only go on after the hang guard, having shown fewer."""

        def __init__(self):
            super().__init__(1000)
            self.waiting = self.most = 0
            self.guard, self.together = threading.Lock(), threading.Event()

        def acquire(self, parts, deadline=None):
            with self.guard:
                self.waiting += 1
                self.most = max(self.most, self.waiting)
                if self.waiting == senders:
                    self.together.set()
            self.together.wait(HANG_GUARD)
            with self.guard:
                self.waiting -= 1
            return super().acquire(parts, deadline)

    pacer = Watched()
    assert worker.handle(event, settings=get_settings(), pacer=pacer, senders=senders) == {"batchItemFailures": []}
    assert worker.handle(event, settings=get_settings(), pacer=pacer, senders=senders) == {"batchItemFailures": []}
    assert pacer.most == senders
    published = sns_backends["123456789012"][REGION].sms_messages
    sent = Counter(m[1] for m in published.values() if m[1].startswith("at once "))
    assert sorted(sent) == [f"at once {i}" for i in range(8)] and set(sent.values()) == {1}


# -- the worker, end to end on the local stack ----------------------------------------------------

SMALL_MPS = 3


@pytest.fixture
def stack():
    from devstack.server import LocalStack
    from chalicelib.sending import worker

    # The stack gives a stage of 3 MPS two worker instances (its event source's maximum concurrency);
    # today's share per instance would be 1.5 MPS.
    concurrency = worker.instances_for(SMALL_MPS)
    with LocalStack(app_port=0, aws_port=0, visibility_timeout=10, function_timeout=10, receipt_delay=0.3,
                    settings={"MAX_MPS": str(SMALL_MPS), "WORKER_CONCURRENCY": str(concurrency)}) as running:
        yield running


def test_a_small_batch_goes_out_at_the_stages_mps_with_no_throttle(api, stack):
    """Ten one-part messages on a stage of 3 MPS with two worker instances: whichever instance sends one, it
    takes a window of 1/3 s on the stage's one schedule, the whole rate (a per-instance share, 1.5 MPS,
    would make it 2/3 s: 6 s for the ten instead of 3). The windows never overlap, no send reaches the
    provider before its window, and the provider (the emulator, enforcing 3 MPS) throttles nothing.
    Shown by the schedule's own windows and the order of events, not by how many seconds the batch took
    on this machine (a busy machine only spaces the sends further apart)."""
    from .localhttp import Http, wait_for

    windows, lock = [], threading.Lock()
    for schedule in stack.queue_runner.buckets:  # each instance's handle on the schedule: watched, unchanged
        update = schedule.items.update

        def watched(item, fresh, now, latest, seconds, update=update):
            granted, old = update(item, fresh, now, latest, seconds)
            if granted:
                begin = now if fresh else old
                with lock:
                    windows.append((begin, begin + seconds))
            return granted, old

        schedule.items.update = watched
    aws = Http(stack.aws_url)
    aws.call("POST", "/_limits", {"mps": SMALL_MPS})
    items = [{"to": f"+1206555{2000 + i:04d}", "body": f"small #{i}"} for i in range(10)]
    status, _, accepted = api.call("POST", "/batches", {"messages": items})
    assert status == 202 and accepted["accepted"] == 10
    assert wait_for(lambda: api.call("GET", f"/batches/{accepted['id']}")[2]["done"], every=0.5), \
        "the batch did not finish"
    sent = sorted(datetime.fromisoformat(e["at"].replace("Z", "+00:00")).timestamp()
                  for e in aws.call("GET", "/_outbox")[2] if (e["body"] or "").startswith("small #"))
    assert len(sent) == 10
    assert aws.call("GET", "/_limits")[2]["throttled"] == 0
    # A window per message at least (a message another instance took over meanwhile may cost one more).
    windows.sort()
    assert len(windows) >= 10
    assert all(end - begin == pytest.approx(1 / SMALL_MPS, abs=1e-5) for begin, end in windows), windows
    assert all(b[0] >= a[1] - 1e-5 for a, b in zip(windows, windows[1:])), "two windows overlap"
    # The k-th send reached the provider no earlier than the k-th window began (the emulator stamps a send
    # on arrival, to the millisecond, on this machine's clock).
    assert all(arrived >= begin - 1e-3 for arrived, (begin, _) in zip(sent, windows)), (sent, windows)
    aws.call("DELETE", "/_limits")
