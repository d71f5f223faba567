"""schemathesis against the local stack: every operation of app/chalicelib/openapi.json, generated
from the document itself (examples, coverage and fuzzing phases, positive and negative data, methods
the paths lack), then stateful runs that follow the document's links (send, then read back).

Checks on every response: no 5xx; the status code, content type, headers and body conform to the
document; every 4xx carries the contract's error body (``error_body``); every JSON answer is one line
ending in a newline (``final_newline``); data outside the document is refused with a 4xx; a method a path
lacks is 405 with ``Allow``. The local stack runs in-process on free loopback ports, and every request is
checked to go to 127.0.0.1 before it is sent. Seeded and derandomized. The last test prints how many cases
were tried (about 4,100, in 60 to 120 s here)."""
from __future__ import annotations

import collections
import time
import urllib.parse

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi import stateful as openapi_stateful
from schemathesis.specs.openapi.checks import ensure_resource_availability, negative_data_rejection, use_after_free

from devstack import resources
from devstack.server import HOST, LocalStack

from .localhttp import HANG_GUARD

from chalicelib import openapi  # importable once tests/conftest.py has loaded the app

# test_cases_tried counts the cases every other test of this module ran: under -n they all run on one worker.
pytestmark = pytest.mark.xdist_group("fuzz")

SEED = 20261124
# Examples per operation in the fuzzing phase; the examples and coverage phases add their own. Seeded and
# derandomized, every run tries the same cases: 60 a operation kept the fuzzing phase and cut the module's time by
# about a third (120 tried 5,800 cases in all, over a seventh of make test's CPU).
MAX_EXAMPLES = 60
# Stateful: scenarios, each a chain of up to STEPS linked calls (enough that a send and a batch are each
# followed to their links among the other operations' scenarios).
SCENARIOS, STEPS = 150, 6
MINIMUM_CASES = 2000

MEDIA_BUCKET = f"{resources.PREFIX}-media"
MEDIA_KEY = "media/fuzz.png"
# Numbers the fuzzer mixes into `to` so that sends get through: AWS's success and failure simulators
# (the local stack follows them) and an ordinary valid number.
PHONES = ["+14254147755", "+14254147167", "+14255550123"]

CONFIG = SchemathesisConfig.from_dict({
    "seed": SEED,
    "suppress-health-check": ["all"],
    "request-timeout": HANG_GUARD,
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none",
                   "with-security-parameters": False, "allow-extra-parameters": False},
    "phases": {
        "stateful": {"max-steps": STEPS},
        # TRACE and QUERY never reach the app locally: the local HTTP server answers them 501 itself.
        "coverage": {"unexpected-methods": ["get", "put", "post", "delete", "patch"]},
    },
    "checks": {
        # The local stack has no API Gateway in front: no key check. Deployed, API Gateway enforces the
        # key (tests/test_infra.py checks the template).
        "ignored_auth": {"enabled": False},
        # Data the document allows can still be refused: a string the schema calls a phone number is
        # rarely a valid one, and the stage decides sender ids and countries.
        "positive_data_acceptance": {"enabled": False},
    },
    "dictionaries": {"phones": {"values": PHONES},
                     "media": {"values": [f"s3://{MEDIA_BUCKET}/{MEDIA_KEY}"]}},
    "parameters": {
        "body.to": {"dictionary": "phones", "probability": 0.3},
        "body.mediaUrl": {"dictionary": "media", "probability": 0.5},
        "body.messages[*].to": {"dictionary": "phones", "probability": 0.3},
        "body.messages[*].mediaUrl": {"dictionary": "media", "probability": 0.5},
    },
})
schema = schemathesis.openapi.from_path(openapi.PATH, config=CONFIG)

CASES: collections.Counter = collections.Counter()
STATUSES: collections.Counter = collections.Counter()
LINKS: collections.Counter = collections.Counter()
STARTED = [time.monotonic()]


class LoopbackOnly(requests.Session):
    """A session that sends nothing off 127.0.0.1."""

    def send(self, request, **kwargs):
        host = urllib.parse.urlsplit(request.url).hostname
        assert host == HOST, f"the fuzzer tried to reach {host}: only the local stack on {HOST} is allowed"
        return super().send(request, **kwargs)


@pytest.fixture(scope="module")
def stack():
    STARTED[0] = time.monotonic()
    with LocalStack(app_port=0, aws_port=0, settings={"PROVIDER_MAX_ATTEMPTS": "2"}) as running:
        # The media the dictionary names, so some MMS get through the preflight and are sent.
        from chalicelib.core import aws

        aws.client("s3").put_object(Bucket=MEDIA_BUCKET, Key=MEDIA_KEY, Body=b"\x89PNG" + b"0" * 512,
                                    ContentType="image/png")
        yield running


@pytest.fixture(scope="module")
def session():
    with LoopbackOnly() as http:
        yield http


def error_body(ctx, response, case):
    """Every 4xx (and 5xx) the app answers carries {"error": {"code", "message", ...}}, whatever the
    document allows beside it (API Gateway's own 403 and 429 bodies exist only deployed)."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"not the contract's error body: {body!r}"
    error = body["error"]
    assert isinstance(error.get("code"), str) and isinstance(error.get("message"), str), body
    assert set(error) <= {"code", "message", "field", "messageId", "requestId"}, body
    if error["code"] in ("Throttled", "IdempotencyKeyInProgress"):
        assert int(response.headers["retry-after"][0]) >= 1
    return None


def final_newline(ctx, response, case):
    """Every JSON answer ends in a newline (curl's prompt starts a line of its own) and is otherwise one
    compact line (tests/test_json_newline.py covers the answers the fuzzer does not reach)."""
    if response.status_code == 204 or not response.headers.get("content-type", [""])[0].startswith(
            "application/json"):
        return None
    text = response.content.decode()
    assert text.endswith("\n") and "\n" not in text[:-1], f"not one line ending in a newline: {text[-80:]!r}"
    return None


CHECKS = [error_body, final_newline]


def excluded(case):
    # An invalid batch item does not fail the request: it comes back in `rejected` (202).
    if case.operation.label == "POST /batches":
        return [negative_data_rejection]
    # DELETE /keys/{id} revokes: the key stays readable, with its revokedAt, as the contract says (the
    # messages it sent still name it). DELETE /templates/{id} archives: the template stays readable, with
    # its archivedAt (the messages sent from it name it). An archived template takes no new version (PUT is 404
    # TemplateNotFound), however recently it was made.
    if case.operation.path.startswith(("/keys", "/templates")):
        return [use_after_free, ensure_resource_availability]
    return []


def record(case, response):
    CASES[case.operation.label] += 1
    STATUSES[response.status_code] += 1


@schema.parametrize()
def test_every_operation(case, stack, session):
    transport = {"base_url": stack.app_url, "session": session}
    response = case.call(**transport)
    record(case, response)  # before the checks, so that a failing answer is counted too
    case.validate_response(response, additional_checks=CHECKS, excluded_checks=excluded(case),
                           transport_kwargs=transport)


def roots(operation, node, produced_anywhere):
    """Which operations may start a scenario: every POST without path parameters (each creates something
    the links then read). schemathesis's own guess reads `senderId` as a reference to a "Sender" that no
    operation creates, and so would never start a scenario with POST /sms or POST /batches; the GETs
    without path parameters add scenarios of lists, which test_every_operation covers."""
    return operation.method == "post" and not operation.path_parameters


def test_stateful_links(stack, session, monkeypatch):
    monkeypatch.setattr(openapi_stateful, "is_likely_root_transition", roots)

    class Machine(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"base_url": stack.app_url, "session": session}

        def step(self, input):
            output = super().step(input)
            if input.transition is not None and input.is_applied:
                # e.g. "POST /sms -> [202] GetMessage -> GET /messages/{message_id}"
                source, link, target = input.transition.id.split(" -> ")
                LINKS[(source, link.split()[-1], output.response.status_code)] += 1
            return output

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            record(case, response)
            case.validate_response(response, additional_checks=CHECKS, excluded_checks=excluded(case),
                                   transport_kwargs=kwargs or None, recorder=self.recorder)

    # Which links a step may take depends on what the stack answered before (a bundle fills only with a 2xx), so
    # hypothesis can meet a choice it replays drawing differently and stop with FlakyStrategyDefinition: about
    # the generator's bookkeeping, not about an answer (a failing check raises its own error). Such a run goes
    # on with a fresh one, its links kept; so does a run that has not yet followed both links asserted below
    # (random bodies seldom make a valid send: an unseeded run once followed none). Up to five runs in all; the
    # first is seeded, the others are not.
    def links_followed() -> set:
        return {(source, link) for (source, link, status) in LINKS if status == 200}

    # A send's GetMessage link (POST /sms and POST /mms document the same one; random bodies seldom make a
    # valid SMS now that a body, a template, a sendAt and price caps are each one way to be refused).
    send_links, batch_link = {("POST /sms", "GetMessage"), ("POST /mms", "GetMessage")}, ("POST /batches", "GetBatch")

    for attempt in range(5):
        try:
            Machine.run(settings=hypothesis.settings(
                max_examples=SCENARIOS, stateful_step_count=STEPS, deadline=None, derandomize=attempt == 0,
                database=None, suppress_health_check=list(hypothesis.HealthCheck)))
        except hypothesis.errors.FlakyStrategyDefinition:
            continue
        if links_followed() & send_links and batch_link in links_followed():
            break
    assert links_followed() & send_links, sorted(LINKS.items())
    assert batch_link in links_followed(), sorted(LINKS.items())


def test_cases_tried(stack, capsys):
    if not CASES:
        pytest.skip("counts the cases of the tests above: run the whole file")
    total = sum(CASES.values())
    outbox = requests.get(f"{stack.aws_url}/_outbox", timeout=HANG_GUARD).json()
    line = (f"schemathesis: {total} cases tried ({len(CASES)} operations), "
            f"{sum(n for s, n in STATUSES.items() if s >= 500)} 5xx, links followed {sum(LINKS.values())}, "
            f"{len(outbox)} messages sent to the emulator, {time.monotonic() - STARTED[0]:.0f} s")
    with capsys.disabled():  # shown in every run, `make test` included, not only under -s
        print(f"\n{line}\n  per operation: " + ", ".join(f"{k} {v}" for k, v in sorted(CASES.items()))
              + "\n  statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(STATUSES.items())))
    assert set(CASES) == {f"{method.upper()} {path}" for path, item in openapi.DOCUMENT["paths"].items()
                          for method in item}
    assert total >= MINIMUM_CASES, line
    assert not any(status >= 500 for status in STATUSES)  # each would have failed its test too
    assert len(outbox) <= total  # bounded: at most one send per case
