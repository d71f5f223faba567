"""Shared fixtures. The Chalice app is loaded in one place, ``devstack.appload``.

Also the log-hygiene plugin (the end of this file): every log line the suite produces is kept,
and the session fails if one holds a full phone number, a message body or a credential.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import re
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from devstack import appload, itemwrites, motocosts, resources

from . import botocore_models

botocore_models.install()  # botocore's JSON parsed once per process, not once per session
itemwrites.install()  # a conditional write is whole, as on AWS: two threads' writes to an item do not interleave
motocosts.install()  # moto's answers at less cost; the KMS key aws_env makes for every test has no RSA key to make

REGION = "us-east-1"
sender = appload.load()

from chalicelib.core import aws  # noqa: E402  (importable once appload has set the path)

FAKE_ENV = {
    # moto's fake credentials; no real key is ever used by the tests.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "PROVIDER_MAX_ATTEMPTS": "2",
}


@pytest.fixture
def settings_env(monkeypatch):
    """Environment for the API tests; yields a function to change settings and drop cached clients."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "ALLOWED_COUNTRIES", "SMS_PROVIDER",
                 "ORIGINATION_IDENTITY", "CONFIGURATION_SET_NAME", "SENDER_ID", "DEFAULT_SMS_TYPE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)

    def configure(**values):
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        aws.reset()

    yield configure
    aws.reset()


# The clients aws_env makes the stack's resources with, made once per process: moto answers a client made
# before its mock_aws starts all the same (its hook is on every client), and making ten clients cost a third
# of each test's setup.
@functools.cache
def _maker(service: str):
    return boto3.client(service, region_name=REGION)


@pytest.fixture
def aws_env(settings_env):
    """moto for S3, SNS, DynamoDB, SQS and Logs, with the resources the stack creates."""
    with mock_aws():
        env = resources.create_core(_maker, REGION, "123456789012")
        settings_env(**env, ORIGINATION_IDENTITY="arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc",
                     CONFIGURATION_SET_NAME="sms-sender-test")
        yield settings_env


@pytest.fixture
def calls(monkeypatch):
    """Every AWS call the code under test makes: (IAM service prefix, operation, parameters)."""
    from botocore.client import BaseClient

    made, original = [], BaseClient._make_api_call

    def recording(self, operation, params):
        made.append((self.meta.service_model.signing_name, operation, params))
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return made


# Templates synthesized once per session, for all the workers (see tests/synth.py).
SYNTH_FIXTURES = {"synth_dir", "template", "prod_template", "mms_template", "sms_voice_template", "second_stage",
                  "one_way_template"}
# The xdist group of every module that reads one (``pytest_collection_modifyitems``).
SYNTH_GROUP = "synth"


@pytest.fixture(scope="session", autouse=True)
def _synth_shared(tmp_path_factory):
    """The folder every worker of the session shares for its synths (tests/synth.py): the session's base
    temporary folder, which pytest-xdist makes the parent of each worker's own."""
    from . import synth

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    synth.SHARED = base / "synth-shared"
    synth.SHARED.mkdir(exist_ok=True)
    yield synth.SHARED
    synth.SHARED = None


@pytest.fixture(scope="session")
def synth_dir():
    """Where the dev stage (``template``) is synthesized: its cloud assembly is ``cdk.out`` in it."""
    from .synth import shared_dir

    return shared_dir("template")


@pytest.fixture(scope="session")
def template():
    """The dev stage as cdk.json has it."""
    from .synth import session_template

    return session_template("template")


@pytest.fixture(scope="session")
def prod_template():
    from .synth import session_template

    return session_template("prod_template")


@pytest.fixture(scope="session")
def mms_template():
    """An SNS stage with an origination identity: MMS on, End User Messaging resources created."""
    from .synth import session_template

    return session_template("mms_template")


@pytest.fixture(scope="session")
def sms_voice_template():
    """An End User Messaging stage with a pool, a sender id and a spend limit."""
    from .synth import session_template

    return session_template("sms_voice_template")


@pytest.fixture(scope="session")
def one_way_template():
    """MMS_STAGE with ``twoWay: false``: its phone number could receive, and the stage says not to."""
    from .synth import session_template

    return session_template("one_way_template")


@pytest.fixture(scope="session")
def second_stage():
    """Another stage for the same account and region, leaving the account-wide settings to dev."""
    from .synth import session_template

    return session_template("second_stage")


@pytest.fixture
def client(aws_env):
    """Chalice's test client, behind the local stack's API Gateway (``devstack/gateway.py``): the key check
    runs, a request without a key acts as a live key with every scope (as under make dev), and API Gateway's
    own answers come in the contract's body."""
    from chalice.test import Client

    from devstack.gateway import Gateway

    with Client(sender.app) as test_client:
        http = test_client.http
        http._local_gateway = Gateway(sender.app, http._config)
        yield test_client


@pytest.fixture
def sms_voice(aws_env):
    """A Stubber on the app's own sms-voice client (moto has no pinpoint-sms-voice-v2)."""
    with Stubber(aws.client("pinpoint-sms-voice-v2")) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def sns_stub(aws_env):
    """A Stubber on the app's SNS client, for exact Publish parameters and injected SNS errors."""
    with Stubber(aws.client("sns")) as stub:
        yield stub
        stub.assert_no_pending_responses()


def post(client, path, body, headers=None):
    hygiene.note_request(body, headers)
    payload = body if isinstance(body, str) else json.dumps(body)
    return client.http.post(path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})


def body_of(response):
    return json.loads(response.body)


class NullLogs:
    """A CloudWatch Logs client for ``devstack.receipts.Receipts`` run without moto: it takes the log streams
    and events the receipts write and keeps nothing (the tests read what reaches the ingest instead)."""

    class exceptions:
        ResourceAlreadyExistsException = type("ResourceAlreadyExistsException", (Exception,), {})

    def create_log_stream(self, **kwargs):
        pass

    def put_log_events(self, **kwargs):
        pass


@pytest.fixture
def put_media():
    """Put an object in the media bucket (inside the moto mock); returns its s3:// URL."""
    def put(key="media/cat.png", content_type="image/png", size=1024):
        bucket = os.environ["MEDIA_BUCKET"]
        boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key=key, Body=b"x" * size,
                                                          ContentType=content_type)
        return f"s3://{bucket}/{key}"

    return put


@pytest.fixture
def api(stack):
    """Real HTTP to the app of the module's local stack (its ``stack`` fixture)."""
    from .localhttp import Http

    return Http(stack.app_url)


# -- log hygiene ---------------------------------------------------------------------------------
# A small plugin: every logging record of the session (every logger, at the levels the suite runs;
# the root logger at INFO) is kept as the line it prints, with the test that was running. The app's
# JSON lines are rendered by the app's own formatter, so they are exactly what it prints to
# stdout. At the end none may hold a full phone number the tests used (E.164 or national form), a
# message body the tests sent, or a credential; the session fails if one does.

TESTS = Path(__file__).parent
APP_LOGGER = "sms-sender"  # chalicelib.core.log.SERVICE
# Credentials that must never reach a log line. moto's fake key "testing" counts too: a line that
# holds the fake key would hold the real one on AWS.
API_KEY_VALUES = {"SECRET-API-KEY-VALUE-0123456789"}  # the smoke tests' API key; plus every x-api-key sent
CREDENTIALS = [
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA|ANPA)[A-Z0-9]{16}\b")),
    ("SigV4 signature", re.compile(r"(?i)\b(?:x-amz-)?signature=[0-9a-f]{64}\b")),
    ("SigV4 credential", re.compile(r"(?i)\bcredential=[A-Za-z0-9]{4,}/\d{8}/")),
    ("session token", re.compile(r"(?i)x-amz-security-token[\"'=:\s]+[A-Za-z0-9/+=]{16,}")),
    # An API key of the app's (chalicelib/keys/tokens.py), sk_live_ or sk_test_ and more: never in a log line.
    ("API key", re.compile(r"sk_(?:live|test)_[A-Za-z0-9_]{8,}")),
    ("fake AWS key", re.compile(r"(?i)(?:access[_-]?key(?:[_-]?id)?|secret(?:[_-]?access)?[_-]?key|session[_-]?token)"
                                r"[\"'\s:=]{1,6}testing\b")),
    ("AWS secret key", re.compile(r"(?<![A-Za-z0-9/+])(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*[A-Z])"
                                  r"(?=[A-Za-z0-9/+]*[0-9])(?=[A-Za-z0-9/+]*[/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")),
]
_E164_LITERAL = re.compile(r"\+\d{8,15}\b")
_BODY_LITERAL = re.compile(r"""["']body["']\s*:\s*["']([^"'\\]{8,})["']""")
_DIGIT_RUN = re.compile(r"\+?\(?\d[\d ().-]{5,}\d")
# A date, with or without its time (a report's ?from=2026-12-04 is not a number's digits).
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class LogHygiene(logging.Handler):
    def __init__(self):
        super().__init__(logging.NOTSET)
        self.lines: dict[str, tuple[str, str]] = {}  # line -> (test, logger), first seen
        self.test = "(collection)"
        self.numbers: set[str] = set()  # national significant numbers (digits)
        self.bodies: set[str] = set()
        self.keys: set[str] = set(API_KEY_VALUES)
        self.formatters: dict[str, logging.Formatter | None] = {}
        self.leaks: list[tuple[str, str, str, str]] = []

    # -- what the tests send ----------------------------------------------------------------------
    def note_number(self, to, country=None) -> None:
        import phonenumbers

        if not isinstance(to, str) or len(to) > 64:
            return
        try:
            parsed = phonenumbers.parse(to.strip(), None if to.strip().startswith("+") else country)
            digits = str(parsed.national_number)
        except Exception:  # not a number phonenumbers reads (a hostile case): its digits, as written
            digits = re.sub(r"\D", "", to)
        if 7 <= len(digits) <= 17:  # shorter digit strings are everywhere (counts, times, ids)
            self.numbers.add(digits)

    def note_body(self, body) -> None:
        # Only text distinctive enough that finding it in a line means the body leaked: 8 or more
        # characters, more than one word or some punctuation, not one character repeated.
        if isinstance(body, str) and 8 <= len(body.strip()) <= 2000 and len(set(body)) > 3 \
                and re.search(r"[\s\W\d]", body.strip()):
            self.bodies.add(body)

    def note_request(self, body, headers=None) -> None:
        """What a test sends through ``post`` or the local-stack HTTP helper. Never fails the
        test: hostile bodies (nesting bombs, invalid UTF-8) are simply not read."""
        try:
            for name, value in (headers or {}).items():
                if str(name).lower() == "x-api-key" and isinstance(value, str) and len(value) >= 8:
                    self.keys.add(value)
                if str(name).lower() == "authorization" and isinstance(value, str):
                    key = value.partition(" ")[2].strip()
                    if len(key) >= 8:
                        self.keys.add(key)
            if isinstance(body, (bytes, str)):
                if len(body) > 1_000_000:
                    return
                body = json.loads(body)
            pending, seen = [body], 0
            while pending and seen < 10_000:  # iterative: a nesting bomb does not recurse
                data, seen = pending.pop(), seen + 1
                if isinstance(data, dict):
                    if "to" in data:
                        self.note_number(data["to"], data.get("country"))
                    self.note_body(data.get("body"))
                    pending.extend(v for v in data.values() if isinstance(v, (dict, list)))
                elif isinstance(data, list):
                    pending.extend(v for v in data if isinstance(v, (dict, list)))
        except Exception:
            pass

    def note_sources(self, folder: Path) -> None:
        """The numbers and bodies written in the tests themselves (cases that bypass the helpers)."""
        for source in folder.glob("*.py"):
            text = source.read_text(errors="replace")
            for number in _E164_LITERAL.findall(text):
                self.note_number(number)
            for body in _BODY_LITERAL.findall(text):
                self.note_body(body)

    # -- capture ----------------------------------------------------------------------------------
    def _formatter(self, name: str) -> logging.Formatter | None:
        """The formatter that prints this logger's lines (the app's JSON one, or Powertools'), if one does."""
        if name not in self.formatters:
            found, logger = None, logging.getLogger(name)
            while logger is not None and found is None:
                for handler in logger.handlers:
                    if type(handler.formatter).__module__.startswith(("aws_lambda_powertools", "chalicelib")):
                        found = handler.formatter
                        break
                logger = logger.parent if logger.propagate else None
            self.formatters[name] = found
        return self.formatters[name]

    def emit(self, record: logging.LogRecord) -> None:
        try:
            formatter = self._formatter(record.name)
            if formatter is not None:
                line = formatter.format(record)
            else:
                line = record.getMessage()
                if record.exc_info:
                    line += "\n" + logging.Formatter().formatException(record.exc_info)
                if record.stack_info:
                    line += "\n" + record.stack_info
                extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
                if extras:
                    line += " " + json.dumps(extras, default=str)
        except Exception as err:  # a record that cannot be rendered is kept as its parts
            line = f"{record.msg!r} {record.args!r} ({err})"
        self.lines.setdefault(line, (self.test, record.name))

    def install(self) -> None:
        root = logging.getLogger()
        if self not in root.handlers:
            root.addHandler(self)
        app = logging.getLogger(APP_LOGGER)  # the app's own lines do not propagate to the root logger
        if self not in app.handlers:
            app.addHandler(self)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)

    # -- the check --------------------------------------------------------------------------------
    def _numbers_in(self, line: str) -> list[str]:
        lengths = {len(n) for n in self.numbers}
        found = []
        for run in _DIGIT_RUN.findall(_TIMESTAMP.sub(" ", line)):
            digits = re.sub(r"\D", "", run)
            for size in lengths:
                for i in range(len(digits) - size + 1):
                    if digits[i:i + size] in self.numbers:
                        found.append(digits[i:i + size])
        return found

    def check(self) -> list[tuple[str, str, str, str]]:
        """(test, logger, what, line) for every line that holds something it must not."""
        leaks = []
        by_start: dict[str, list[str]] = {}  # bodies and keys (8 characters or more) by their first 8
        for text in self.bodies | self.keys:
            by_start.setdefault(text[:8], []).append(text)
        for line, (test, logger) in self.lines.items():
            what = [f"phone number ...{n[-4:]}" for n in self._numbers_in(line)]
            for i in range(len(line) - 7):
                for text in by_start.get(line[i:i + 8], ()):
                    if line.startswith(text, i):
                        what.append("API key value" if text in self.keys else f"message body {text[:12]!r}...")
            what += [name for name, pattern in CREDENTIALS if pattern.search(line)]
            if what:
                leaks.append((test, logger, ", ".join(sorted(set(what))), line))
        return leaks


hygiene = LogHygiene()
hygiene.note_sources(TESTS)

# The local-stack HTTP helper records what it sends too.
from .localhttp import Http as _Http  # noqa: E402

_http_call = _Http.call


def _recorded_call(self, method, path, body=None, headers=None, raw=None):
    hygiene.note_request(body if body is not None else raw, headers)
    return _http_call(self, method, path, body, headers, raw)


_Http.call = _recorded_call


def pytest_sessionstart(session):
    hygiene.install()


def pytest_runtest_logstart(nodeid, location):
    hygiene.test = nodeid
    hygiene.install()  # again, in case a test reset the root logger's handlers or level


# Under pytest-xdist (``-n``) each worker checks the lines its tests logged and hands the count and
# the leaks to the controller, which reports them all and fails the run on any leak.
_from_workers = {"lines": 0, "leaks": []}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    hygiene.leaks = hygiene.check() + [tuple(leak) for leak in _from_workers["leaks"]]
    if os.environ.get("LOG_HYGIENE_DUMP"):  # every line kept, one JSON object a line, to read them all
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        with open(os.environ["LOG_HYGIENE_DUMP"] + (f".{worker}" if worker else ""), "w") as dump:
            for line, (test, logger) in hygiene.lines.items():
                dump.write(json.dumps({"test": test, "logger": logger, "line": line}) + "\n")
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports
        workeroutput["hygiene"] = json.dumps({"lines": len(hygiene.lines), "leaks": hygiene.leaks})
    if hygiene.leaks and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist's controller: a worker finished; keep what its log-hygiene check found."""
    found = json.loads(getattr(node, "workeroutput", {}).get("hygiene") or '{"lines": 0, "leaks": []}')
    _from_workers["lines"] += found["lines"]
    _from_workers["leaks"].extend(found["leaks"])


def _reads_a_template(item) -> set[str]:
    """The session synth fixtures ``item`` reads, by name or as a parameter (``request.getfixturevalue``)."""
    from . import synth

    params = getattr(getattr(item, "callspec", None), "params", {})
    named = {value for value in params.values() if isinstance(value, str)}
    return (SYNTH_FIXTURES | set(synth.STAGES)) & (set(getattr(item, "fixturenames", ())) | named)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads the groups off the markers
def pytest_collection_modifyitems(config, items):
    """Under ``-n``, the tests of every module that synthesizes (one of its tests reads a template) run on one
    worker, as one group (``--dist loadgroup``): a module's own fixtures are built once, and that worker makes the
    session's synths (tests/synth.py) while the others run the rest. With a group per module, xdist handed out its
    largest groups first, the synthesizing modules among them: every worker began by needing a template, and all
    but one waited for the first synth (41 s on a fresh clone, where it builds the Lambda package too)."""
    synthesizing = {item.module.__name__ for item in items if _reads_a_template(item)}
    for item in items:
        if item.module.__name__ in synthesizing:
            item.add_marker(pytest.mark.xdist_group(SYNTH_GROUP))


def pytest_collection_finish(session):
    """The stages the selected tests read: a worker that would wait for one synthesizes another meanwhile."""
    from . import synth

    synth.NEEDED = set(synth.STAGES) & {name for item in session.items for name in _reads_a_template(item)}


def pytest_terminal_summary(terminalreporter):
    leaks = hygiene.leaks
    checked = len(hygiene.lines) + _from_workers["lines"]
    terminalreporter.write_sep("-", f"log hygiene: {checked} distinct log lines checked, "
                                    f"{len(leaks)} leaking", red=bool(leaks), green=not leaks)
    for test, logger, what, line in leaks[:30]:
        terminalreporter.write_line(f"LEAK {what} in a line of logger {logger!r} during {test}:")
        terminalreporter.write_line(f"    {line[:400]}")
    if len(leaks) > 30:
        terminalreporter.write_line(f"... and {len(leaks) - 30} more")
