"""A client that hangs up before its answer is written (curl stopped with ^C, a browser tab closed mid-request)
costs the local servers at most one short line on stderr, never a traceback, and they go on answering.

Each case opens a raw socket on 127.0.0.1, sends a whole request and closes at once: with a FIN (the server's
write then meets a broken pipe or a reset) and with SO_LINGER 0 (an RST: its read or its write meets a reset).
The test waits until the server has finished with every one of those connections (socketserver's
``process_request_thread`` returns only after ``handle_error`` has printed), then reads what it printed."""
from __future__ import annotations

import socket
import struct
import threading

import pytest

from devstack.receiver import Receiver
from devstack.server import LocalStack

from .localhttp import Http

CONNECTIONS = 8  # per case: a hang-up meets the server's write on most of them, each enough to print a traceback


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0) as running:
        yield running


@pytest.fixture(scope="module")
def receiver():
    with Receiver(204, lifetime=300) as running:
        yield running


class Finished:
    """The client ports whose connection a socketserver server has finished with (handled, any error printed,
    closed): ``process_request_thread`` wrapped on the server object, so the server's own code still runs."""

    def __init__(self, server):
        self.ports: set[int] = set()
        self._changed = threading.Condition()
        original = server.process_request_thread

        def tracked(request, client_address):
            try:
                original(request, client_address)
            finally:
                with self._changed:
                    self.ports.add(client_address[1])
                    self._changed.notify_all()

        server.process_request_thread = tracked
        self._undo = lambda: vars(server).pop("process_request_thread", None)

    def wait(self, ports: set[int], timeout: float = 60.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: ports <= self.ports, timeout)

    def undo(self) -> None:
        self._undo()


def servers(stack, receiver):
    host, port = stack.app_url.removeprefix("http://").split(":")
    aws_host, aws_port = stack.aws_url.removeprefix("http://").split(":")
    return {
        "app": (stack._app_server.server, (host, int(port))),
        "embedded AWS": (stack._aws_server, (aws_host, int(aws_port))),
        "webhook receiver": (receiver.server, ("127.0.0.1", receiver.server.server_port)),
    }


def request(method: str, path: str, body: bytes = b"", content_type: str = "application/json") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body:
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


REQUESTS = {
    "app": [
        request("GET", "/health"),
        request("GET", "/"),  # the console page: a larger answer
        request("GET", "/no-such-route"),  # the gateway's own 404
        request("POST", "/sms", b"not json"),  # the app's 400
        request("GET", "/opt-outs/%2B14255550123"),  # a number in the path: the hang-up line masks it too
    ],
    "embedded AWS": [
        request("GET", "/_outbox"),
        request("POST", "/", b"Action=ListQueues&Version=2012-11-05", "application/x-www-form-urlencoded"),
    ],
    "webhook receiver": [request("POST", "/hooks", b"{}")],
}


def hang_up(address, request: bytes, *, reset: bool) -> int:
    """Send ``request`` on a new connection and close it at once; the client port."""
    conn = socket.create_connection(address, timeout=10)
    if reset:  # close with an RST, not a FIN
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    port = conn.getsockname()[1]
    conn.sendall(request)
    conn.close()
    return port


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
@pytest.mark.parametrize("name", list(REQUESTS))
def test_a_client_that_hangs_up_gets_no_traceback_and_the_server_keeps_serving(stack, receiver, capfd, name, reset):
    server, address = servers(stack, receiver)[name]
    finished = Finished(server)
    try:
        capfd.readouterr()
        ports = {hang_up(address, request, reset=reset) for request in REQUESTS[name] for _ in range(CONNECTIONS)}
        assert finished.wait(ports), f"the {name} server did not finish with the closed connections"
    finally:
        finished.undo()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err[:3000]
    lines = err.splitlines()
    # At most an access line for the request and one short line for the hang-up, per connection.
    assert len(lines) <= 2 * len(ports), err[:3000]
    assert all(len(line) < 300 for line in lines), err[:3000]
    assert "14255550123" not in err
    # And it still answers.
    base = f"http://{address[0]}:{address[1]}"
    if name == "app":
        status, _headers, body = Http(base).call("GET", "/health")
        assert (status, body) == (200, {"status": "ok"})
    elif name == "embedded AWS":
        assert Http(base).call("GET", "/_outbox")[0] == 200
    else:
        assert Http(base).call("POST", "/hooks", {})[0] == 204
