"""API Gateway's 29 seconds (issue 20): every function behind the API times out sooner, no AWS call is tried
again once another attempt might not end before the function must answer, and a send is never started that
might end after the caller was answered."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from chalicelib.core import aws, web
from chalicelib.sending import messages

from .conftest import body_of, post

TO = "+14255550123"
API_GATEWAY_INTEGRATION_SECONDS = 29  # "Maximum integration timeout: 29 seconds" (API Gateway quotas)


def test_every_function_behind_the_api_times_out_before_api_gateway_gives_up(template):
    functions = template.to_json()["Resources"]
    for function_id in ("APIHandler", "Bearer"):
        timeout = functions[function_id]["Properties"]["Timeout"]
        assert timeout < API_GATEWAY_INTEGRATION_SECONDS, function_id
    assert functions["APIHandler"]["Properties"]["Timeout"] == aws.API_TIMEOUT_SECONDS
    # One attempt of any call, the answer after it, and a send's two calls fit in the function's time.
    assert messages.send_seconds_needed() + web.ANSWER_SECONDS < aws.API_TIMEOUT_SECONDS
    assert aws.attempt_seconds() == aws.CONNECT_TIMEOUT_SECONDS + aws.READ_TIMEOUT_SECONDS


class Failing:
    """DynamoDB on 127.0.0.1 answering every request 500 InternalServerError (retryable): counts attempts."""

    def __init__(self):
        self.attempts = 0
        self.clock = [1000.0]  # each attempt takes the longest an attempt may take
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.attempts += 1
                outer.clock[0] += aws.attempt_seconds()
                body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                                   "message": "try again"}).encode()
                self.send_response(500)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 0.2
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.done = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):  # bounded: until the test ends, at most 100 requests
        served = 0
        while not self.done and served < 100:
            self.server.handle_request()
            served += 1
        self.server.server_close()

    def stop(self):
        self.done = True
        self.thread.join(timeout=5)


@pytest.fixture
def failing(settings_env, monkeypatch):
    settings_env(MEDIA_BUCKET="b", MESSAGES_TABLE="m", IDEMPOTENCY_TABLE="i", PROVIDER_MAX_ATTEMPTS="3")
    server = Failing()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    aws.reset()
    yield server
    server.stop()
    aws.reset()


def attempts_of(failing) -> int:
    failing.attempts = 0
    with pytest.raises(Exception):
        aws.client("dynamodb").get_item(TableName="m", Key={"id": {"S": "x"}})
    return failing.attempts


def test_without_a_deadline_a_failing_call_gets_all_its_attempts(failing):
    assert attempts_of(failing) == 3


def test_no_attempt_is_made_that_might_end_after_the_deadline(failing, monkeypatch):
    """An injected clock on which every attempt takes the longest an attempt may take (connect and read time)."""
    monkeypatch.setattr(aws, "clock", lambda: failing.clock[0])
    attempt = aws.attempt_seconds()
    # Attempt k + 1 is made only if, after k attempts, a backoff and one more attempt still end in time.
    # A hair short of room for the second attempt: one only.
    with aws.deadline(2 * attempt + aws.backoff_seconds(1) - 0.01):
        assert attempts_of(failing) == 1
    # Room for the second, a hair short of room for the third.
    with aws.deadline(3 * attempt + aws.backoff_seconds(2) - 0.01):
        assert attempts_of(failing) == 2
    with aws.deadline(3 * attempt + aws.backoff_seconds(2)):
        assert attempts_of(failing) == 3


def test_a_send_that_might_end_after_the_answer_is_not_made_and_can_be_retried(client, sns_stub, monkeypatch):
    monkeypatch.setattr(web, "time_to_answer", lambda app: messages.send_seconds_needed() - 0.5)
    refused = post(client, "/sms", {"to": TO, "body": "too late"}, {"Idempotency-Key": "late-1"})
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    error = body_of(refused)["error"]
    assert error["code"] == "Unavailable" and error["messageId"]  # sns_stub holds no response: no Publish was made
    record = body_of(client.http.get(f"/messages/{error['messageId']}"))
    assert record["status"] == "failed" and record["error"]["code"] == "NotSent"
    # Nothing was sent, so the same Idempotency-Key tries again (not a replay of the refusal).
    monkeypatch.setattr(web, "time_to_answer", lambda app: 25.0)
    sns_stub.add_response("publish", {"MessageId": "sns-late-1"})
    again = post(client, "/sms", {"to": TO, "body": "too late"}, {"Idempotency-Key": "late-1"})
    assert again.status_code == 202 and body_of(again)["providerMessageId"] == "sns-late-1"


def test_every_client_waits_at_most_one_attempts_time_for_an_answer(failing):
    config = aws.client("dynamodb").meta.config
    assert (config.connect_timeout, config.read_timeout) == (aws.CONNECT_TIMEOUT_SECONDS, aws.READ_TIMEOUT_SECONDS)
