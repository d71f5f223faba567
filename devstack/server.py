"""Start and stop the whole local stack: the embedded AWS and the Chalice app, on loopback only."""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request

from http.server import BaseHTTPRequestHandler

from chalice.local import ChaliceRequestHandler, CustomLocalChalice, LocalChalice, LocalDevServer, ThreadedHTTPServer
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import ThreadedWSGIServer

from . import appload, queues, receipts, resources, rules, streams
from . import stage as stages
from .emulator import Emulator
from .gateway import Gateway, KeyCheck
from .hangups import QuietHangUps

HOST = "127.0.0.1"
APP_PORT = 8000
AWS_PORT = 4566
REGION = "us-east-1"
# socketserver listens with a backlog of 5 (``request_queue_size``): a burst of clients overflows it, and the
# kernel then drops or resets their connections. The kernel caps this at net.core.somaxconn.
LISTEN_BACKLOG = 1024
# API Gateway's payload quota for a REST API: it answers 413 to a larger request, before the app sees it.
API_GATEWAY_MAX_PAYLOAD = 10 * 1024 * 1024
# After refusing a request, how much of its body the server reads and drops (bytes, seconds) before it closes.
DISCARD_LIMIT, DISCARD_SECONDS = 64 * 1024 * 1024, 5.0
# Concurrent invocations of the webhook delivery function: "Lambda processes up to five batches at a time"
# from an SQS queue before it scales up (AWS Lambda Developer Guide, "Using Lambda with Amazon SQS").
WEBHOOK_INSTANCES = 5
# The report tally's mapping retries a failing batch without limit on AWS; locally, this many times.
REPORT_TALLY_RETRIES = 20


class AppServer(ThreadedHTTPServer):
    """Chalice's local server (a thread per connection), with a listen backlog that a load test on
    loopback does not overflow. ``key_check``: API Gateway's key check, shared by every connection (its
    cache of the authorizer's answers with it)."""

    request_queue_size = LISTEN_BACKLOG
    key_check: KeyCheck | None = None


class EmulatorServer(ThreadedWSGIServer):
    """The embedded AWS's server: werkzeug's threaded server, with the same backlog as the app's (every
    app request makes AWS calls, so a burst at the app is a burst here)."""

    request_queue_size = LISTEN_BACKLOG


class AppRequestHandler(QuietHangUps, ChaliceRequestHandler):
    """Chalice's request handler, answering what it would otherwise drop or read without bound: a
    ``Content-Length`` that is not a number (400), a chunked body (411: Chalice reads only
    ``Content-Length`` bodies), and a body over API Gateway's 10 MB payload quota (413, as API Gateway
    answers; the body is read and dropped, never held). The access log masks phone numbers. A client that hangs
    up before its answer is written costs one line, not a traceback (``devstack/hangups.py``)."""

    def __init__(self, request, client_address, server, app_object, config):
        # Chalice's handler, with API Gateway's key check and its own answers (``devstack/gateway.py``).
        self.local_gateway = Gateway(app_object, config, key_check=server.key_check)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    # The handler writes a response in several small writes; with Nagle's algorithm on, the last one
    # waits for the client's delayed ACK, about 40 ms a request on loopback.
    disable_nagle_algorithm = True

    def _refuse(self, status: int, message: str) -> None:
        body = (json.dumps({"message": message}, separators=(",", ":")) + "\n").encode()  # compact, one line
        self.close_connection = True  # the unread body must not be taken for the next request
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self._discard_rest()

    def _discard_rest(self) -> None:
        """Read and drop what the client is still sending (bounded in bytes and time), so that closing
        does not reset the connection before the client has read the answer."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(DISCARD_SECONDS)
            left, deadline = DISCARD_LIMIT, time.monotonic() + DISCARD_SECONDS
            while left > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def _generic_handle(self) -> None:
        if self.headers.get("transfer-encoding"):
            return self._refuse(411, "Length Required")
        length = self.headers.get_all("content-length") or ["0"]
        if len(set(length)) != 1 or not re.fullmatch(r"\s*[0-9]{1,20}\s*", length[0]):
            return self._refuse(400, "Bad Request: Content-Length")
        if int(length[0]) > API_GATEWAY_MAX_PAYLOAD:
            return self._refuse(413, "Request Too Long")
        super()._generic_handle()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def log_message(self, format: str, *args) -> None:
        from chalicelib.core.log import scrub

        # Decoded first, so that %2B-encoded numbers are masked too; control characters escaped after, so
        # that a %0D%0A in a path cannot forge a log line.
        line = scrub(urllib.parse.unquote(format % args, errors="replace")).translate(self._control_char_table)
        sys.stderr.write(f"{self.address_string()} - - [{self.log_date_time_string()}] {line}\n")


def make_admin_key(name: str = "make dev admin") -> str:
    """A live key with every scope in the local keys table (``make dev REQUIRE_KEYS=1`` prints it)."""
    from chalicelib.core.caller import Caller
    from chalicelib.core.settings import get_settings
    from chalicelib.keys import manage, scopes

    root = Caller("local", frozenset(scopes.SCOPES), False)
    _resource, key = manage.create({"name": name, "scopes": list(scopes.SCOPES)}, root, get_settings())
    return key


def create_app_server(app, config, host: str, port: int) -> LocalDevServer:
    """``chalice.local.create_local_server`` with ``AppServer`` and ``AppRequestHandler``."""
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config, host, port, handler_cls=AppRequestHandler, server_cls=AppServer)


class LocalStack:
    """``start()`` brings everything up; ``stop()`` shuts both servers down and restores the
    environment. Ports 0 pick free ports (the tests do this so they never clash with make dev).

    The app runs with ``stage``'s settings from cdk.json (``devstack/stage.py``: the same mapping the CDK
    stack uses, and the local overrides with their reasons); ``settings`` overrides variables on top
    (the tests use it)."""

    def __init__(self, *, app_port: int = APP_PORT, aws_port: int = AWS_PORT, settings: dict | None = None,
                 visibility_timeout: int = 30, function_timeout: float = 20.0, receipt_delay: float = 0.5,
                 stage: str = stages.DEFAULT_STAGE, require_keys: bool = False, sweep_every: float | None = None):
        self._ports = (app_port, aws_port)
        self.require_keys = require_keys
        self.key_check: KeyCheck | None = None
        self.admin_key: str | None = None  # with require_keys: a key with every scope, made at start
        self.stage_config = stages.load(stage)
        self._extra = dict(settings or {})
        self._visibility_timeout, self._function_timeout = visibility_timeout, function_timeout
        self._receipt_delay = receipt_delay
        # The schedule sweep's rule: every ``sweep_every`` seconds (devstack/stage.py RULES says why not a minute).
        self._sweep_every = stages.RULES["schedule_sweep"][0] if sweep_every is None else sweep_every
        self.queue_runner = self.receipts = self.webhook_fanout = self.webhook_delivery = self.inbound = None
        self.report_tally = self.export_writer = self.sweep = None
        self.resources: dict[str, str] = {}
        self._saved_env: dict[str, str | None] = {}
        self._threads: list[tuple] = []  # (server, the thread serving it)
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
        self._threads.append((server, thread))

    def start(self) -> "LocalStack":
        """Bring everything up; should any part refuse to start (a function timeout longer than its queue's
        visibility timeout, a port in use), stop what did start and put the environment back, then raise."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> "LocalStack":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._aws_server = EmulatorServer(HOST, self._ports[1], self.emulator, handler=MotoRequestHandler)
        self.aws_url = f"http://{HOST}:{self._aws_server.server_port}"
        self._serve(self._aws_server, "embedded-aws")
        # moto keeps its state per process: start from an empty account every time.
        urllib.request.urlopen(urllib.request.Request(f"{self.aws_url}/moto-api/reset", method="POST"), timeout=30)
        # moto's fake credentials: the app signs requests as it would on AWS, nothing leaves the machine.
        self._setenv({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                      "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": self.aws_url})
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            self._saved_env.setdefault(name, os.environ.pop(name, None))
        created = resources.create(self.aws_url, REGION, self.emulator, visibility_timeout=self._visibility_timeout,
                                   keywords=self.stage_config.all_keywords,
                                   two_way=not self.stage_config.two_way_off)
        self.resources = created  # every resource's name and URL (the inbound queues among them)
        for country in stages.sender_id_countries(self.stage_config):  # as the stage's account has it registered
            self.emulator.sms_voice.add_sender_id(self.stage_config.sender_id, country)
        self.env = {**stages.environment(self.stage_config, created), **self._extra}
        self._setenv(self.env)

        module = appload.load()
        from chalice.config import Config
        from chalicelib.core import aws
        from chalicelib.core.settings import get_settings
        from chalicelib.sending import schedule as scheduling

        aws.reset()
        # Chalice's local server changes the app object's class; put it back on stop, so that
        # another local stack can start in the same process.
        self._app, self._app_class = module.app, module.app.__class__
        # 60 s, not the deployed 28 (chalicelib/core/aws.py): no API Gateway stands in front here, and moto on a busy
        # machine is far slower than AWS (AWS_READ_TIMEOUT is 10 s here for the same reason).
        self._app_server = create_app_server(module.app, Config.create(lambda_timeout=60), HOST, self._ports[0])
        self.key_check = self._app_server.server.key_check = KeyCheck(module.app, require_keys=self.require_keys)
        if self.require_keys:
            self.admin_key = make_admin_key()
        self.app_url = f"http://{HOST}:{self._app_server.server.server_port}"
        self._serve(self._app_server.server, "chalice-local")
        settings = get_settings()
        self.receipts = receipts.Receipts(
            emulator=self.emulator, logs=aws.client("logs"), ingest=lambda event: module.status_ingest(event, None),
            sns_groups=resources.sns_log_groups(REGION, self.emulator.sms_voice.account),
            events_group=resources.EVENTS_LOG_GROUP, origination=resources.ORIGINATION_NUMBER,
            delay=self._receipt_delay).start()
        self.queue_runner = queues.QueueRunner(
            sqs=aws.client("sqs"), queue_url=settings.batch_queue_url, settings=settings,
            function_timeout=self._function_timeout).start()
        # Webhooks: the messages table's stream into the real fan-out function, the delivery queue into the
        # real delivery function, as the stack's event source mappings do.
        self.webhook_fanout = streams.StreamPlayer(
            streams=aws.client("dynamodbstreams"), dynamodb=aws.client("dynamodb"), table=settings.messages_table,
            function=module.webhook_fanout, region=REGION, function_timeout=self._function_timeout).start()
        self.webhook_delivery = queues.SqsEventSource(
            sqs=aws.client("sqs"), queue_url=settings.webhook_queue_url, function=module.webhook_delivery,
            instances=WEBHOOK_INSTANCES, function_timeout=self._function_timeout, name="webhook-delivery").start()
        # Reports: the same stream into the real tally function (its own mapping, as on AWS: a stream shard takes
        # two readers), retrying a failing record far more often than the fanout's (deployed: without limit);
        # the export queue into the real export function, one export per invocation, with Lambda's 15 minutes.
        self.report_tally = streams.StreamPlayer(
            streams=aws.client("dynamodbstreams"), dynamodb=aws.client("dynamodb"), table=settings.messages_table,
            function=module.report_tally, region=REGION, retries=REPORT_TALLY_RETRIES,
            function_timeout=self._function_timeout).start()
        self.export_writer = queues.SqsEventSource(
            sqs=aws.client("sqs"), queue_url=settings.export_queue_url, function=module.export_writer,
            function_timeout=resources.EXPORT_WRITER_TIMEOUT, name="export-writer").start()
        # Scheduled sends: the real sweep function, as the stack's EventBridge rule runs it, with the stack's timeout
        # (the sweep keeps SWEEP_SAFETY_SECONDS of it in hand).
        self.sweep = rules.RateRule(function=module.schedule_sweep, every=self._sweep_every,
                                    function_timeout=scheduling.SWEEP_TIMEOUT_SECONDS, name="schedule-sweep").start()
        # Replies: the inbound queue (which the inbound topic feeds) into the real inbound function; a
        # stage with twoWay false has neither, as deployed.
        if "INBOUND_QUEUE_URL" in created:
            self.inbound = queues.SqsEventSource(
                sqs=aws.client("sqs"), queue_url=created["INBOUND_QUEUE_URL"], function=module.inbound_reply,
                function_timeout=self._function_timeout, name="inbound-reply").start()
        return self

    def stop(self) -> None:
        """Stop what runs (all of it after ``start()``, or what a failed start got to) and restore the environment."""
        self.emulator.close()  # answers a fault holds back go now, not after their delay
        # The pollers end within a long poll (a second): stopped together, not one after another.
        stopping = [threading.Thread(target=part.stop) for part in (
            self.sweep, self.webhook_delivery, self.webhook_fanout, self.queue_runner, self.receipts, self.inbound,
            self.report_tally, self.export_writer)
            if part is not None]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        for server, _thread in self._threads:  # only a server that serves can be shut down (else it would wait)
            server.shutdown()
        for server, thread in self._threads:
            thread.join(timeout=10)
            server.server_close()
        served = [server for server, _thread in self._threads]
        for server in (getattr(self, "_aws_server", None), getattr(getattr(self, "_app_server", None), "server", None)):
            if server is not None and server not in served:
                server.server_close()  # made, never served: a start that failed in between
        if getattr(self, "_app", None) is not None:
            self._app.__class__ = self._app_class
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        from chalicelib.core import aws

        aws.reset()

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
