"""Shared by the client's tests (tests/test_client*.py).

The client is imported from this checkout's ``clients/python/src``, ahead of any installed copy: the shared
virtualenv may hold another checkout's editable install, and these tests test the code beside them.

``Scripted`` is a loopback HTTP server that answers from a script, for the retry and paging tests: each answer
is ``(status, headers, body)`` or ``DROP`` (close the connection without answering). It keeps every request,
listens on 127.0.0.1 only, and stops by itself after ``lifetime`` seconds.
"""
from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENT_SRC = ROOT / "clients" / "python" / "src"
if str(CLIENT_SRC) not in sys.path:
    sys.path.insert(0, str(CLIENT_SRC))
for name in [m for m in sys.modules if m == "sms_sender" or m.startswith("sms_sender.")]:
    if not str(getattr(sys.modules[name], "__file__", "")).startswith(str(CLIENT_SRC)):
        del sys.modules[name]  # another checkout's copy, imported before this path was first

DROP = "drop"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body) if self.body else None


class Scripted:
    def __init__(self, script, *, lifetime: float = 60.0):
        self.script = list(script)
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                            body))
                answer = server.script.pop(0) if server.script else (500, {}, {"error": {"code": "ScriptEnded",
                                                                                           "message": "no more"}})
                if answer == DROP:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                status, headers, payload = answer
                raw = payload if isinstance(payload, bytes) else (b"" if payload is None else json.dumps(payload).encode())
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    def __enter__(self) -> "Scripted":
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._timer.cancel()
        if self._thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()


class FakeTime:
    """A clock that moves only when ``sleep`` is called: waits take no real time, and are recorded."""

    def __init__(self, start: float = 1000.0):
        self.now, self.slept = start, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def message_json(id="m-1", status="sent", to="+14254147755", **extra) -> dict:
    """A message resource as the API answers it."""
    return {"id": id, "direction": "outbound", "channel": "sms", "from": None, "to": to, "body": "hello",
            "mediaUrl": None, "status": status, "providerMessageId": "p-1", "segments": 1, "encoding": "GSM-7",
            "priceUsd": None, "error": None, "providerResponse": None, "dryRun": False,
            "createdAt": "2026-12-05T10:00:00.000Z", "updatedAt": "2026-12-05T10:00:00.000Z", "receivedAt": None,
            "inReplyTo": None, "keyId": "local", "test": False, **extra}
