"""Start and stop the whole local stack: the embedded AWS and the Chalice app, on loopback only."""
from __future__ import annotations

import logging
import os
import threading
import urllib.request

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server

from . import appload, pipeline, resources
from .emulator import Emulator

HOST = "127.0.0.1"
APP_PORT = 8000
AWS_PORT = 4566
REGION = "us-east-1"


class LocalStack:
    """``start()`` brings everything up; ``stop()`` shuts both servers down and restores the
    environment. Ports 0 pick free ports (the tests do this so they never clash with make dev)."""

    # Local defaults a stage would set in cdk.json: a quick batch worker, two instances of it.
    DEFAULTS = {"MAX_MPS": "20", "WORKER_CONCURRENCY": "2"}

    def __init__(self, *, app_port: int = APP_PORT, aws_port: int = AWS_PORT, settings: dict | None = None,
                 visibility_timeout: int = 30, function_timeout: float = 20.0, receipt_delay: float = 0.5):
        self._ports = (app_port, aws_port)
        self._extra = {**self.DEFAULTS, **(settings or {})}
        self._visibility_timeout, self._function_timeout = visibility_timeout, function_timeout
        self._receipt_delay = receipt_delay
        self.queue_runner = self.receipts = None
        self._saved_env: dict[str, str | None] = {}
        self._threads: list[threading.Thread] = []
        self.emulator = Emulator(REGION)
        self.env: dict[str, str] = {}
        self.app_url = self.aws_url = ""

    def _setenv(self, values: dict) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _serve(self, server, name: str) -> None:
        thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def start(self) -> "LocalStack":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._aws_server = make_server(HOST, self._ports[1], self.emulator, threaded=True,
                                       request_handler=MotoRequestHandler)
        self.aws_url = f"http://{HOST}:{self._aws_server.server_port}"
        self._serve(self._aws_server, "embedded-aws")
        # moto keeps its state per process: start from an empty account every time.
        urllib.request.urlopen(urllib.request.Request(f"{self.aws_url}/moto-api/reset", method="POST"), timeout=30)
        # moto's fake credentials: the app signs requests as it would on AWS, nothing leaves the machine.
        self._setenv({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                      "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": self.aws_url})
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            self._saved_env.setdefault(name, os.environ.pop(name, None))
        self.env = {**resources.create(self.aws_url, REGION, self.emulator,
                                       visibility_timeout=self._visibility_timeout), **self._extra}
        self._setenv(self.env)

        module = appload.load()
        from chalice.config import Config
        from chalice.local import create_local_server
        from chalicelib import aws
        from chalicelib.settings import get_settings

        aws.reset()
        # Chalice's local server changes the app object's class; put it back on stop, so that
        # another local stack can start in the same process.
        self._app, self._app_class = module.app, module.app.__class__
        self._app_server = create_local_server(module.app, Config.create(lambda_timeout=60), HOST, self._ports[0])
        self.app_url = f"http://{HOST}:{self._app_server.server.server_port}"
        self._serve(self._app_server.server, "chalice-local")
        settings = get_settings()
        self.receipts = pipeline.Receipts(
            emulator=self.emulator, logs=aws.client("logs"), ingest=lambda event: module.status_ingest(event, None),
            sns_groups=resources.sns_log_groups(REGION, self.emulator.sms_voice.account),
            events_group=resources.EVENTS_LOG_GROUP, origination=resources.ORIGINATION_NUMBER,
            delay=self._receipt_delay).start()
        self.queue_runner = pipeline.QueueRunner(
            sqs=aws.client("sqs"), queue_url=settings.batch_queue_url, settings=settings,
            function_timeout=self._function_timeout).start()
        return self

    def stop(self) -> None:
        for part in (self.queue_runner, self.receipts):
            if part is not None:
                part.stop()
        for server in (getattr(self, "_app_server", None), getattr(self, "_aws_server", None)):
            if server is not None:
                server.shutdown()
        for thread in self._threads:
            thread.join(timeout=10)
        self._app_server.server.server_close()
        self._aws_server.server_close()
        self._app.__class__ = self._app_class
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        from chalicelib import aws

        aws.reset()

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
