"""The local app server answers every client of a loopback load test: bursts of 50 and 200 concurrent
connections all get an HTTP answer, none a reset (Chalice's own local server listens with a backlog of 5
and drops most of such a burst)."""
from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from devstack.server import LISTEN_BACKLOG, LocalStack

from .localhttp import HANG_GUARD, Http

US = "+14254147755"


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0) as running:
        yield running


def outbox(stack):
    return Http(stack.aws_url).call("GET", "/_outbox")[2]


def burst(stack, count, method, path, body=None, headers=None):
    """``count`` clients, each on its own new connection, released at once from a pool of ``count``
    threads. Returns, per client, (status, parsed body) or the exception's name."""
    host, port = stack.app_url.removeprefix("http://").split(":")
    start = threading.Barrier(count)

    def one(i):
        payload = body(i) if callable(body) else body
        start.wait()
        conn = http.client.HTTPConnection(host, int(port), timeout=HANG_GUARD)
        try:
            conn.request(method, path, body=None if payload is None else json.dumps(payload),
                         headers={"Content-Type": "application/json", "Connection": "close", **(headers or {})})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        except OSError as err:  # a reset, a refused or timed-out connection
            return type(err).__name__
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def statuses(results):
    return Counter(r[0] if isinstance(r, tuple) else r for r in results)


def test_the_servers_listen_with_a_real_backlog(stack):
    assert stack._app_server.server.request_queue_size == LISTEN_BACKLOG >= 200
    assert stack._aws_server.request_queue_size == LISTEN_BACKLOG


@pytest.mark.parametrize("count", [50, 200])
def test_every_client_of_a_burst_is_answered(stack, count):
    assert statuses(burst(stack, count, "GET", "/health")) == {200: count}


@pytest.mark.parametrize("count", [50, 200])
def test_a_burst_of_sends_is_answered_and_sent_once_each(stack, count):
    tag = uuid.uuid4().hex[:8]
    results = burst(stack, count, "POST", "/sms", body=lambda i: {"to": US, "body": f"burst {tag} {i}"})
    assert statuses(results) == {202: count}
    sent = Counter(m["body"] for m in outbox(stack) if m["body"].startswith(f"burst {tag} "))
    assert sent == {f"burst {tag} {i}": 1 for i in range(count)}


def test_fifty_clients_with_one_idempotency_key_make_one_send(stack):
    key, body = f"burst-{uuid.uuid4()}", {"to": US, "body": f"one key {uuid.uuid4().hex[:8]}"}
    results = burst(stack, 50, "POST", "/sms", body=body, headers={"Idempotency-Key": key})
    counts = statuses(results)
    # Every client answered: the first send, its replays, or "still in progress, retry".
    assert set(counts) <= {202, 409} and sum(counts.values()) == 50 and counts[202] >= 1, counts
    assert len({r[1]["id"] for r in results if r[0] == 202}) == 1
    assert {r[1]["error"]["code"] for r in results if r[0] == 409} <= {"IdempotencyKeyInProgress"}
    assert [m["body"] for m in outbox(stack)].count(body["body"]) == 1


def test_the_access_log_masks_numbers_and_cannot_be_forged(stack, capsys):
    api = Http(stack.app_url)
    api.call("GET", "/messages/%2B14255550123")
    api.call("GET", "/messages/+14255550199")
    api.call("GET", "/messages/x%0D%0A127.0.0.1%20-%20-%20forged")
    log = capsys.readouterr().err
    assert "14255550123" not in log and "14255550199" not in log and "+1********23" in log
    assert not any(line.startswith("127.0.0.1 - - forged") for line in log.splitlines())
