"""API Gateway's stage path in front of the Chalice app, for tests.

Deployed, the API is reached at ``https://<api>.execute-api.<region>.amazonaws.com/api/...``. API
Gateway routes ``/api/sms`` to the ``/sms`` route and hands the Lambda a REST proxy event whose
``requestContext`` holds ``"stage": "api"`` and ``"path": "/api/sms"``, the path the caller used
(AWS: "Input format of a Lambda function for proxy integration", and ``$context.path``: "for ...
``https://{rest-api-id}.execute-api.{region}.amazonaws.com/{stage}/root/child``, the
``$context.path`` value is ``/{stage}/root/child``"). A path outside the stage matches no resource,
and API Gateway answers 403 ``Missing Authentication Token``, which the stack's gateway response makes 404
``RouteNotFound``.

Chalice local (``chalice.local``, which ``make dev`` and ``chalice.test.Client`` use) routes the
path as given and sets ``requestContext.path`` to it, with no stage. ``through_stage`` turns one of
its events into what API Gateway sends; ``StageServer`` serves the app on loopback under ``/api/``
that way, for the browser tests.
"""
from __future__ import annotations

import functools
import threading

from http.server import BaseHTTPRequestHandler

from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalChalice, ThreadedHTTPServer

from chalicelib.core.gateway import ROUTE_NOT_FOUND
from devstack.gateway import Gateway
from devstack.hangups import QuietHangUps

HOST = "127.0.0.1"
STAGE = "api"


def route_of(used: str, prefix: str) -> str:
    """The app's route path for a request to ``used`` (no query) under ``prefix`` (``/api``, ``/v1``
    or ``""``). ValueError outside the prefix: API Gateway has no resource there."""
    if prefix and used != prefix and not used.startswith(prefix + "/"):
        raise ValueError(f"{used} is outside {prefix}")
    return used[len(prefix):] or "/"


def through_stage(event: dict, *, used: str, stage: str = STAGE) -> dict:
    """``event`` (Chalice local's, routed on the app's own path) as API Gateway delivers the same
    request: the stage name, and the path the caller used."""
    event["requestContext"].update(stage=stage, path=used)
    return event


class _StageHandler(QuietHangUps, ChaliceRequestHandler):
    """Chalice local's request handler, behind a stage path as API Gateway puts it. A browser that drops a
    connection mid-answer costs a line, not a traceback in the test run's output, as under ``make dev``."""

    def __init__(self, request, client_address, server, *, app_object, config, prefix: str, stage: str, key_check=None):
        self._prefix, self._stage = prefix, stage
        self.local_gateway = Gateway(app_object, config, key_check=key_check)  # API Gateway's key check and answers
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    def _generic_handle(self) -> None:
        used, _, query = self.path.partition("?")
        try:
            route = route_of(used, self._prefix)
        except ValueError:
            answer = ROUTE_NOT_FOUND  # API Gateway: no resource there (the stack's gateway response: 404)
            self._send_http_response(answer.status, {"Content-Type": "application/json", **dict(answer.headers)},
                                     answer.body().encode())
            return
        self.path = route + (f"?{query}" if query else "")
        converter = self.local_gateway.event_converter
        create = converter.create_lambda_event
        converter.create_lambda_event = lambda **request: through_stage(create(**request), used=used,
                                                                       stage=self._stage)
        super()._generic_handle()

    # The base class binds its own method to each verb: bind this one.
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle


class StageServer:
    """The Chalice ``app`` at ``http://127.0.0.1:<port>/api/`` (``url`` has no trailing slash), as
    API Gateway serves its stage. Loopback only; ``stop()`` (or leaving the ``with``) ends it.

    The app must already be Chalice local's (the local stack makes it so), whose current request is
    per thread: this server handles each request on its own thread, as the stack's does."""

    def __init__(self, app, *, stage: str = STAGE, key_check=None):
        if not isinstance(app, LocalChalice):
            raise TypeError("start the local stack first: it makes the app Chalice local's")
        handler = functools.partial(_StageHandler, app_object=app, config=Config.create(lambda_timeout=60),
                                    prefix=f"/{stage}", stage=stage, key_check=key_check)
        self._server = ThreadedHTTPServer((HOST, 0), handler)
        self.origin = f"http://{HOST}:{self._server.server_port}"
        self.url = f"{self.origin}/{stage}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="api-gateway-stage", daemon=True)

    def start(self) -> "StageServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> "StageServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
