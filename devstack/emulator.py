"""The embedded AWS: one WSGI app on one loopback endpoint.

- moto serves S3, SNS, DynamoDB (and its streams), SQS, CloudWatch Logs and KMS; DynamoDB's transactions
  run through ``transactions.transact_write_items``, which rolls back the items a cancelled one touched
  instead of copying whole tables; its conditional writes are whole (``itemwrites``); DynamoDB Streams'
  ``GetRecords`` and SQS's ``ReceiveMessage`` run through ``motocosts``, the same answers at a cost that does not
  grow with the stream or the queue;
- the sms-voice stand-in answers ``PinpointSMSVoiceV2.*`` calls;
- presigned S3 POST uploads are checked against their policy and signature, as S3 does;
- ``GET /_outbox`` lists every SMS and MMS accepted, oldest first;
- ``POST /_faults`` makes the next N calls of an operation fail: an AWS error (throttling, a
  5xx), a timeout before the service sees the call, or a timeout after the service carried it
  out (a send that reached the outbox, a write that was stored, whose answer never comes). Any
  operation of any service here: sms-voice, SNS, DynamoDB, SQS, CloudWatch Logs and S3's object
  calls (``HeadObject``, ``GetObject``, ``PutObject``, ``DeleteObject``);
- ``POST /_limits`` ``{"mps": N}`` makes sends enforce N message parts per second with a token
  bucket, answering ``ThrottlingException`` (SNS: ``Throttling``) above it, as an origination
  identity's throughput limit does; ``GET /_limits`` also counts the throttled calls;
- ``POST /_inbound`` ``{"originationNumber", "messageBody", "destinationNumber"?,
  "previousPublishedMessageId"?}`` plays a text from a phone to one of the account's numbers, as End
  User Messaging receives it (``inbound()``).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import re
import select
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.s3.models import s3_backends
from moto.sns.models import sns_backends
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from . import appload  # noqa: F401  (puts app/ on the path)
from chalicelib.core.segments import segment  # noqa: E402
from chalicelib.core.web import to_json  # noqa: E402
from chalicelib.sending.worker import TokenBucket  # noqa: E402
from . import itemwrites, motocosts, snsoptouts, transactions
from .sms_voice.model import TARGET_PREFIX, ApiError
from .sms_voice.standin import SmsVoiceStandIn, respond

ACCOUNT = DEFAULT_ACCOUNT_ID
FAKE_SECRET = "testing"  # moto's fake credentials; nothing here is a real key


def _parts(operation: str, raw: bytes) -> int:
    """Message parts of an sms-voice send: an SMS's segments; an MMS is one part."""
    if operation == "SendMediaMessage":
        return 1
    try:
        return segment(json.loads(raw).get("MessageBody") or "")[1]
    except ValueError:
        return 1


def _iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- fault injection --------------------------------------------------------------------------
EFFECTS = ("error", "timeout", "timeout-after-accept")
# Longer than the app's read timeout (AWS_READ_TIMEOUT, 10 s on the local stack: chalicelib/core/aws.py), so a
# held answer is a timeout.
DEFAULT_DELAY = 15.0
MAX_DELAY = 60.0


def _default_message(code) -> str:
    """A fault's message when its body gives none: AWS's for throttling ("Rate exceeded"), else one that names
    the code and says where it came from, so that no error reads as throttling that is not."""
    if code in ("ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException"):
        return "Rate exceeded"
    return f"{code} (a fault armed on the local stack's /_faults)"


def _fault_spec(spec: dict) -> dict:
    """A ``POST /_faults`` body, with its defaults. The original form still works:
    ``{"operation", "code", "count", "message", "status", "fields"}`` answers an AWS error."""
    effect = spec.get("effect", "error")
    if effect not in EFFECTS:
        raise ValueError(f"effect must be one of {', '.join(EFFECTS)}")
    if not isinstance(spec["operation"], str) or not spec["operation"]:
        raise ValueError("operation must name an AWS operation, e.g. Publish")
    code = spec.get("code", "ThrottlingException")
    fault = {"operation": spec["operation"], "effect": effect, "code": code,
             "message": spec.get("message", _default_message(code)), "status": int(spec.get("status", 400)),
             "count": int(spec.get("count", 1)), "fields": spec.get("fields", {}), "taken": 0, "holding": 0}
    if spec.get("service"):
        fault["service"] = str(spec["service"])
    if spec.get("match"):
        re.compile(spec["match"])
        fault["match"] = spec["match"]
    if effect != "error":
        fault["delay"] = min(max(float(spec.get("delay", DEFAULT_DELAY)), 0.0), MAX_DELAY)
    return fault


class _Call:
    """Which AWS call a request is: the service's signing name, the operation, the protocol."""

    __slots__ = ("service", "operation", "protocol")

    def __init__(self, service: str, operation: str, protocol: str):
        self.service, self.operation, self.protocol = service, operation, protocol


_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_S3_OBJECT_CALLS = {"HEAD": "HeadObject", "GET": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject"}


def _form(raw: bytes) -> dict:
    return parse_qs(raw.decode("utf-8", "replace")) if raw and b"Action=" in raw[:200] else {}


def _call_of(environ, raw: bytes) -> _Call | None:
    """The AWS call a request makes (JSON protocols by X-Amz-Target, query protocols by Action,
    S3 object calls by method and path), or None for anything else."""
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = scope.group(1) if scope else ""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return _Call(service or target.split(".")[0], target.rsplit(".", 1)[-1], "json")
    action = _form(raw).get("Action")
    if action:
        return _Call(service, action[0], "query")
    if service == "s3":
        host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0]
        parts = environ.get("PATH_INFO", "").lstrip("/").split("/", 1)
        path_style = host in ("127.0.0.1", "localhost") or re.fullmatch(r"[\d.]+", host or "0")
        has_key = len(parts) == 2 and parts[1] if path_style else bool(parts[0])
        operation = _S3_OBJECT_CALLS.get(environ.get("REQUEST_METHOD", "")) if has_key else None
        return _Call("s3", operation, "rest-xml") if operation else None
    return None


def _control(body, status: int = 200) -> Response:
    """An answer of the local stack's own endpoints (``/_outbox``, ``/_faults``, ``/_limits``, ``/_inbound``),
    written as the app writes its answers (``web.to_json``: one compact line that ends in a newline)."""
    return Response(to_json(body), status=status, mimetype="application/json")


def _aws_error(environ, start_response, call: _Call, status: int, code: str, message: str, fields: dict):
    """An AWS error answer in the call's protocol, as botocore parses it."""
    if call.protocol == "json":
        body = {"__type": code, "message": message, **fields}
        return Response(json.dumps(body), status=status,
                        mimetype="application/x-amz-json-1.0")(environ, start_response)
    request_id = str(uuid.uuid4())
    if call.protocol == "query":
        xml = (f"<ErrorResponse><Error><Type>{'Receiver' if status >= 500 else 'Sender'}</Type>"
               f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
               f"<RequestId>{request_id}</RequestId></ErrorResponse>")
    else:  # S3's REST-XML (a HEAD answer has no body: botocore goes by the status alone)
        xml = (f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
               f"<RequestId>{request_id}</RequestId></Error>")
    return Response(xml, status=status, mimetype="text/xml" if call.protocol == "query" else "application/xml",
                    headers={"x-amz-request-id": request_id})(environ, start_response)


_E164 = re.compile(r"\+[1-9][0-9]{1,18}")


def _inbound_problem(reply) -> str | None:
    """What is wrong with a ``POST /_inbound`` body, or None."""
    if not isinstance(reply, dict):
        return "the body must be a JSON object"
    for name in ("originationNumber", "messageBody"):
        if not isinstance(reply.get(name), str):
            return f"{name} is required (a string)"
    for name in ("originationNumber", "destinationNumber"):
        if reply.get(name) is not None and not (isinstance(reply[name], str) and _E164.fullmatch(reply[name])):
            return f"{name} must be an E.164 number (+ and up to 19 digits)"
    if not reply["messageBody"]:
        return "messageBody must not be empty"
    previous = reply.get("previousPublishedMessageId")
    if previous is not None and not isinstance(previous, str):
        return "previousPublishedMessageId must be a string"
    return None


def _hung_up(connection, wait: float) -> bool | None:
    """Whether the client has closed its side of ``connection`` (waiting up to ``wait`` seconds to see);
    None if that cannot be told (it sent more bytes, which a caller waiting for its answer does not)."""
    try:
        readable, _, _ = select.select([connection], [], [], wait)
        if not readable:
            return False
        return None if connection.recv(1, socket.MSG_PEEK) else True
    except (OSError, ValueError):  # reset, or closed on this side
        return True


class Emulator:
    def __init__(self, region: str = "us-east-1"):
        self.region = region
        itemwrites.install()  # a conditional write is whole: no other write to its item between check and write
        transactions.install()  # a transaction costs the items it touches, not the tables it names
        motocosts.install()  # a stream read costs its records, a queue receive does not count the queue
        snsoptouts.install()  # SNS's opt-out check reads the list the list call answers, as on AWS
        self.moto = DomainDispatcherApplication(create_backend_app)
        self._lock = threading.Lock()
        self.outbox: list[dict] = []
        self.faults: list[dict] = []
        self.sms_voice = SmsVoiceStandIn(region=region, account=ACCOUNT, record_send=self.record_send,
                                         read_media=self.head_media)
        self.local_number: str | None = None  # where ``/_inbound`` texts go by default (the local stack sets it)
        self._last_sent: dict[str, str] = {}  # destination -> the provider's id of the last message sent to it
        self.mps_limit: float | None = None
        self._throughput = None  # a TokenBucket over parts while an MPS is enforced
        self.throttled = 0
        self._closing = threading.Event()
        # Called with (outbox entry, "sns" | "sms-voice", the send's Context or None): delivery
        # receipts hook in here.
        self.listeners = []

    # -- shared state -------------------------------------------------------------------------
    def record_send(self, channel, to, body, media_url, provider_id, provider: str = "sms-voice",
                    context: dict | None = None) -> None:
        entry = {"channel": channel, "to": to, "body": body, "mediaUrl": media_url,
                 "providerMessageId": provider_id, "at": _iso()}
        with self._lock:
            self.outbox.append(entry)
            self._last_sent[to if to.startswith("+") else "+" + to] = provider_id
        for listener in list(self.listeners):
            listener(entry, provider, context)

    def head_media(self, bucket: str, key: str):
        try:
            obj = s3_backends[ACCOUNT]["aws"].get_object(bucket, key)
        except Exception:
            return None
        if obj is None:
            return None
        return obj.metadata.get("Content-Type", ""), obj.size

    def set_mps(self, mps: float | None) -> None:
        with self._lock:
            self.mps_limit = mps
            self._throughput = TokenBucket(mps, capacity=mps) if mps else None  # one second's burst
            self.throttled = 0

    def over_limit(self, parts: int) -> bool:
        """Take ``parts`` from the throughput bucket; True when they are not there, and the call
        must be throttled."""
        throughput = self._throughput
        if throughput is None or throughput.try_acquire(parts):
            return False
        with self._lock:
            self.throttled += 1
        return True

    def take_fault(self, operation: str, service: str = "", body: bytes = b"") -> dict | None:
        """The first armed fault for this call, with one of its ``count`` taken; None if none.
        A fault names the ``operation``; optionally the ``service`` (the signing name: ``sns``,
        ``sms-voice``, ``dynamodb``, ``s3``, ...) and ``match``, a regular expression the request
        body must contain."""
        text = None
        with self._lock:
            for fault in self.faults:
                if fault["operation"] != operation or fault["count"] <= 0:
                    continue
                if fault.get("service") and fault["service"] != service:
                    continue
                if fault.get("match"):
                    text = body.decode("utf-8", "replace") if text is None else text
                    if not re.search(fault["match"], text):
                        continue
                fault["count"] -= 1
                fault["taken"] = fault.get("taken", 0) + 1
                return fault
        return None

    def _hold(self, fault: dict, environ) -> None:
        """Keep a call's answer back until the caller has given up on it (closed its connection, as
        botocore does on its read timeout), or for the fault's delay (at most MAX_DELAY), whichever comes
        first: the answer goes to nobody, however slow the machine. The fault's ``holding`` counts the
        calls it holds back now: a test waits for it to be 0 again (the answer has gone) instead of
        sleeping for the delay."""
        with self._lock:
            fault["holding"] += 1
        try:
            deadline = time.monotonic() + fault["delay"]
            connection = environ.get("werkzeug.socket")
            while not self._closing.is_set() and (left := deadline - time.monotonic()) > 0:
                gone = None if connection is None else _hung_up(connection, min(left, 0.05))
                if gone is None:
                    self._closing.wait(left)  # cannot tell: the whole delay
                    break
                if gone:
                    break
        finally:
            with self._lock:
                fault["holding"] -= 1

    def close(self) -> None:
        """Let every held answer go now (nothing else needs stopping: the server owns the threads)."""
        self._closing.set()

    # -- WSGI ---------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/_outbox" and method == "GET":
            with self._lock:
                return _control(self.outbox)(environ, start_response)
        if path == "/_faults":
            return self._faults_endpoint(environ, start_response)
        if path == "/_limits":
            return self._limits_endpoint(environ, start_response)
        if path == "/_inbound":
            return self._inbound_endpoint(environ, start_response)
        raw = self._body(environ)
        call = _call_of(environ, raw)
        fault = self.take_fault(call.operation, call.service, raw) if call else None
        if fault is None:
            return self._dispatch(environ, start_response, raw)
        if fault["effect"] == "error":
            return _aws_error(environ, start_response, call, fault["status"], fault["code"], fault["message"],
                              fault.get("fields", {}))
        if fault["effect"] == "timeout":  # the service never sees the call; the answer comes too late
            self._hold(fault, environ)
            return _aws_error(environ, start_response, call, 504, "RequestTimeout",
                              "The local fault injection held this call back.", {})
        # timeout-after-accept: the service carries the call out; its answer is held back.
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured.update(status=status, headers=headers)
            return lambda data: None

        chunks = b"".join(self._dispatch(environ, capture, raw))
        self._hold(fault, environ)
        start_response(captured["status"], captured["headers"])
        return [chunks]

    def _dispatch(self, environ, start_response, raw: bytes):
        """The call as the emulated AWS answers it when no fault applies."""
        method = environ.get("REQUEST_METHOD", "GET")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(TARGET_PREFIX):
            operation = target[len(TARGET_PREFIX):]
            if operation in ("SendTextMessage", "SendMediaMessage") and self.over_limit(_parts(operation, raw)):
                return self._json(environ, start_response, 400,
                                  {"__type": "ThrottlingException", "message": "Rate exceeded"})
            status, body = respond(self.sms_voice, target, raw)
            return self._json(environ, start_response, status, body)
        if method == "POST" and "HTTP_AUTHORIZATION" not in environ and \
                environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
            return self._s3_post_upload(environ, start_response)
        if method == "OPTIONS" and "HTTP_ORIGIN" in environ:
            return self._cors_preflight(environ, start_response)
        form = _form(raw)
        if form.get("Action") == ["Publish"] and "PhoneNumber" in form:
            return self._sns_publish_sms(environ, start_response, form)
        return self.moto(environ, start_response)

    @staticmethod
    def _body(environ) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        return raw

    @staticmethod
    def _json(environ, start_response, status, body):
        return Response(json.dumps(body), status=status,
                        mimetype="application/x-amz-json-1.0")(environ, start_response)

    def _faults_endpoint(self, environ, start_response):
        request = Request(environ)
        if request.method == "DELETE":
            with self._lock:
                self.faults.clear()
            return Response("", status=204)(environ, start_response)
        if request.method != "POST":
            with self._lock:
                listed = _control(self.faults)
            return listed(environ, start_response)
        try:
            fault = _fault_spec(json.loads(request.get_data() or b"{}"))
        except (ValueError, TypeError, KeyError, re.error) as err:
            return _control({"error": f"bad fault: {err}"}, 400)(environ, start_response)
        with self._lock:
            self.faults.append(fault)
        return _control(fault, 201)(environ, start_response)

    def _limits_endpoint(self, environ, start_response):
        request = Request(environ)
        if request.method == "POST":
            self.set_mps(float(json.loads(request.get_data() or b"{}").get("mps") or 0) or None)
        elif request.method == "DELETE":
            self.set_mps(None)
        with self._lock:
            body = {"mps": self.mps_limit, "throttled": self.throttled}
        return _control(body)(environ, start_response)

    # -- replies ----------------------------------------------------------------------------------
    def inbound(self, origination: str, body: str, destination: str | None = None,
                previous: str | None = None) -> dict:
        """A text from the phone ``origination`` to the account's number ``destination`` (default: the
        local number), as End User Messaging receives it: the keyword it begins with is applied (STOP and
        the other opt-out keywords put the sender on the number's opt-out list, opt-in keywords take it
        off) and answered, the answer going to ``/_outbox`` (marked ``"keyword"``; it makes no delivery
        receipt: it goes out without the configuration set), and, with two-way on, the documented payload
        is published to the number's two-way SNS topic, naming the number's registered keyword in
        ``messageKeyword`` whatever the text says. ``previous`` (``previousPublishedMessageId``)
        defaults to the last message the emulated AWS sent that phone (through SNS too, so that under
        ``make dev`` a reply on an SNS stage answers what the console just sent). Returns what happened
        (no phone number, no body)."""
        destination = destination or self.local_number
        result = self.sms_voice.receive(origination, destination, body)
        inbound_id = str(uuid.uuid4())
        with self._lock:
            previous = previous or self._last_sent.get(origination)
        payload = {"originationNumber": origination, "destinationNumber": destination,
                   # "the registered keyword that's associated with your dedicated phone number": the
                   # number's, whatever the text begins with
                   "messageKeyword": result["registered_keyword"],
                   "messageBody": body, "inboundMessageId": inbound_id}
        if previous:
            payload["previousPublishedMessageId"] = previous
        if result["answer"]:
            entry = {"channel": "sms", "to": origination, "body": result["answer"], "mediaUrl": None,
                     "providerMessageId": str(uuid.uuid4()), "at": _iso(), "from": destination,
                     "keyword": result["keyword"]}
            with self._lock:
                self.outbox.append(entry)
        published = False
        if result["channel"]:
            sns_backends[ACCOUNT][self.region].publish(json.dumps(payload), arn=result["channel"])
            published = True
        return {"inboundMessageId": inbound_id, "messageKeyword": payload["messageKeyword"],
                "action": result["action"], "answered": bool(result["answer"]), "published": published}

    def _inbound_endpoint(self, environ, start_response):
        request = Request(environ)

        def answer(status, body):
            return _control(body, status)(environ, start_response)

        if request.method != "POST":
            return answer(405, {"error": "POST a reply: {\"originationNumber\", \"messageBody\", "
                                         "\"destinationNumber\"?, \"previousPublishedMessageId\"?}"})
        try:  # what a phone can send: UTF-8 text, no lone surrogates
            reply = json.loads(request.get_data().decode("utf-8"))
            json.dumps(reply, ensure_ascii=False).encode("utf-8")
        except (ValueError, UnicodeError):
            return answer(400, {"error": "the body must be a JSON object in UTF-8"})
        problem = _inbound_problem(reply)
        if problem:
            return answer(400, {"error": problem})
        try:
            done = self.inbound(reply["originationNumber"], reply["messageBody"], reply.get("destinationNumber"),
                                reply.get("previousPublishedMessageId"))
        except ApiError as err:
            return answer(404, {"error": f"destinationNumber is none of this account's numbers ({err.message})"})
        return answer(202, done)

    def _sns_publish_sms(self, environ, start_response, form):
        if self.over_limit(segment(form.get("Message", [""])[0])[1]):
            return _aws_error(environ, start_response, _Call("sns", "Publish", "query"), 400, "Throttling",
                              "Rate exceeded", {})
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = status
            return start_response(status, headers, exc_info)

        chunks = list(self.moto(environ, capture))
        if captured.get("status", "").startswith("200"):
            match = re.search(rb"<MessageId>([^<]+)</MessageId>", b"".join(chunks))
            if match:
                self.record_send("sms", form["PhoneNumber"][0], form.get("Message", [""])[0], None,
                                 match.group(1).decode(), provider="sns")
        return chunks

    # -- presigned POST uploads ---------------------------------------------------------------
    @staticmethod
    def _cors_preflight(environ, start_response):
        headers = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, PUT, GET",
                   "Access-Control-Allow-Headers": "*"}
        return Response("", status=200, headers=headers)(environ, start_response)

    def _s3_post_upload(self, environ, start_response):
        request = Request(environ)
        bucket = request.path.strip("/").split("/")[0]
        fields = {k: v for k, v in request.form.items()}
        upload = request.files.get("file")
        error = self._check_policy(bucket, fields, upload)
        cors = {"Access-Control-Allow-Origin": "*"}
        if error:
            code, message = error
            xml = f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
            return Response(xml, status=403 if code != "EntityTooLarge" else 400, mimetype="application/xml",
                            headers=cors)(environ, start_response)
        data = upload.read()
        key = fields["key"].replace("${filename}", upload.filename or "file")
        put = EnvironBuilder(method="PUT", path=f"/{bucket}/{key}", data=data,
                             headers={"Content-Type": fields.get("Content-Type", "binary/octet-stream"),
                                      "Host": environ.get("HTTP_HOST", "127.0.0.1")}).get_environ()
        status_holder = {}
        list(self.moto(put, lambda status, headers, exc_info=None: status_holder.update(status=status)))
        if not status_holder.get("status", "").startswith("200"):
            return Response("upload failed", status=500)(environ, start_response)
        return Response("", status=204, headers=cors)(environ, start_response)

    @staticmethod
    def _check_policy(bucket: str, fields: dict, upload) -> tuple[str, str] | None:
        policy_b64 = fields.get("policy") or fields.get("Policy")
        if not policy_b64 or upload is None:
            return "AccessDenied", "A presigned POST needs a policy and a file field."
        credential = fields.get("x-amz-credential", "")
        parts = credential.split("/")
        if len(parts) != 5:
            return "AccessDenied", "Missing or malformed x-amz-credential."
        _, date, region, service, _ = parts
        key = ("AWS4" + FAKE_SECRET).encode()
        for part in (date, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields.get("x-amz-signature", "")):
            return "SignatureDoesNotMatch", "The policy signature does not match."
        policy = json.loads(base64.b64decode(policy_b64))
        expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        if expires.timestamp() < time.time():
            return "AccessDenied", "Invalid according to Policy: Policy expired."
        size = len(upload.read())
        upload.seek(0)
        values = {**{k.lower(): v for k, v in fields.items()}, "bucket": bucket}
        for condition in policy.get("conditions", []):
            if isinstance(condition, dict):
                (name, want), = condition.items()
                if values.get(name.lower()) != want:
                    return "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {name}"
            elif condition[0] == "content-length-range":
                low, high = int(condition[1]), int(condition[2])
                if size > high:
                    return "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
                if size < low:
                    return "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size"
            elif condition[0] in ("eq", "starts-with"):
                name = condition[1].lstrip("$").lower()
                have = values.get(name, "")
                ok = have == condition[2] if condition[0] == "eq" else have.startswith(condition[2])
                if not ok:
                    return "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {name}"
        return None
