"""A webhook receiver on loopback, for ``make dev``, the tests and the benchmark.

``python -m devstack.receiver [--port 9000] [--secret whsec_...]`` listens on http://127.0.0.1:9000/ and
prints one line per delivery: its ``webhook-id``, the event type and message id, and whether its signature
verifies under the secret (Standard Webhooks, with the ``standardwebhooks`` package). Ctrl-C stops it.

In the tests, ``Receiver(answers)`` answers each request with ``answers``, a status, or the status
``answers(delivery)`` gives (``HANG``: never answer, hold the connection until the receiver stops); it keeps
every request, and stops by itself after ``lifetime`` seconds. It listens on 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

from .hangups import QuietHangUps

HANG = "hang"
MAX_BODY = 1024 * 1024  # a webhook payload is a message resource: far less


class _Server(ThreadingHTTPServer):
    """socketserver listens with a backlog of 5: a burst of deliveries (a batch posts up to 10 at once,
    the benchmark keeps 16 in flight) would overflow it, and the kernel would reset connections."""

    request_queue_size = 128


@dataclass
class Delivery:
    """One request the receiver got: the how-manieth (``n``, from 0), its headers (names in lower case), the
    exact body bytes, when it arrived (``time.time()``), the status it was answered (None: held, never
    answered), and the JSON body (``event``)."""

    n: int
    path: str
    headers: dict
    body: bytes
    at: float
    status: int | None = None
    event: dict = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        return self.headers.get("webhook-id")

    @property
    def signatures(self) -> list[str]:
        return (self.headers.get("webhook-signature") or "").split()


class Receiver:
    """A receiver thread on 127.0.0.1 (``port`` 0: a free one). ``url`` is where it listens."""

    def __init__(self, answers=200, *, port: int = 0, lifetime: float = 300.0, on_request=None):
        self.answers = answers if callable(answers) else (lambda delivery, status=answers: status)
        self.deliveries: list[Delivery] = []
        self.on_request = on_request  # called with each Delivery, on the request's thread
        self._changed = threading.Condition()
        self._closing = threading.Event()
        receiver = self

        class Handler(QuietHangUps):  # a sender that gave up waiting costs no traceback
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, MAX_BODY))
                try:
                    event = json.loads(body)
                except ValueError:
                    event = {}
                with receiver._changed:
                    delivery = Delivery(len(receiver.deliveries), self.path,
                                        {k.lower(): v for k, v in self.headers.items()}, body, time.time(),
                                        event=event)
                    receiver.deliveries.append(delivery)
                    receiver._changed.notify_all()
                if receiver.on_request is not None:
                    receiver.on_request(delivery)
                answer = receiver.answers(delivery)
                if answer == HANG:  # hold the connection, never answer; let go when the receiver stops
                    receiver._closing.wait()
                    self.close_connection = True
                    return
                self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver._changed:
                    delivery.status = int(answer)
                    receiver._changed.notify_all()

            def log_message(self, *args):  # quiet: a request line names no secret, but keep test output clean
                pass

        self.server = _Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="webhook-receiver", daemon=True)
        self._timer = threading.Timer(lifetime, self.stop) if lifetime else None

    def start(self) -> "Receiver":
        self._thread.start()
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # held requests end now
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
        if self._timer is not None:
            self._timer.cancel()

    def __enter__(self) -> "Receiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_for(self, check, timeout: float = 120.0):
        """Wait until ``check(deliveries)`` is truthy (re-checked on every request); its value, or None.
        ``timeout`` is a hang guard, not a measurement: the wait ends as soon as the check holds, so it
        only decides how soon a wait for something that never comes gives up (tests/localhttp.py,
        ``HANG_GUARD``: generous, for a machine other work keeps busy)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = check(list(self.deliveries))
                left = deadline - time.monotonic()
                if value or left <= 0:
                    return value or None
                self._changed.wait(min(left, 0.5))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.receiver", description=(
        "A webhook receiver on http://127.0.0.1:PORT/ that prints each delivery and checks its signature."))
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", action="append", default=[],
                        help="the endpoint's whsec_ secret (repeatable: a delivery verifies under any of them)")
    parser.add_argument("--status", type=int, default=204, help="the status to answer (default: %(default)s)")
    args = parser.parse_args(argv)
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    hooks = [Webhook(secret) for secret in args.secret]

    def show(delivery: Delivery) -> None:
        verdict = "not checked (no --secret)"
        for hook in hooks:
            try:
                hook.verify(delivery.body, delivery.headers)
                verdict = "signature ok"
                break
            except WebhookVerificationError as err:
                verdict = f"signature INVALID ({err})"
        event = delivery.event
        print(f"{delivery.id}  {event.get('type')}  message {event.get('data', {}).get('id')}  "
              f"{len(delivery.signatures)} signature(s), {verdict}", flush=True)

    receiver = Receiver(args.status, port=args.port, lifetime=0, on_request=show).start()
    print(f"Receiving webhooks on {receiver.url} (any path; answering {args.status}); Ctrl-C stops.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
