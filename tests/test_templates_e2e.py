"""Templates on the local stack (``make dev``): real HTTP on loopback, the templates table the local stack makes
as the stack does, the batch worker draining the queue, and the emulated AWS's outbox as the witness of what was
sent: a personalised batch goes out rendered, row by row."""
from __future__ import annotations

import pytest

from devstack.server import LocalStack

from .localhttp import Http, wait_for

US = "+14254147755"  # AWS's success simulator number


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0, settings={"PROVIDER_MAX_ATTEMPTS": "2"}) as running:
        yield running


def test_a_template_sends_one_message_and_a_personalised_batch_locally(api, stack):
    emulated = Http(stack.aws_url)
    before = len(emulated.call("GET", "/_outbox")[2])
    status, headers, template = api.call("POST", "/templates", {
        "name": "local reminder", "body": "Hi ((first name)), your table is at ((time))."})
    assert status == 201 and headers["Location"] == f"/templates/{template['id']}"
    status, _, one = api.call("POST", "/sms", {"to": US, "templateId": template["id"],
                                               "personalisation": {"First Name": "Ada", "time": "19:30"}})
    assert status == 202 and one["body"] == "Hi Ada, your table is at 19:30." and one["templateVersion"] == 1
    status, _, batch = api.call("POST", "/batches", {"templateId": template["id"], "messages": [
        {"to": US, "personalisation": {"first name": "Alan", "time": "20:00"}},
        {"to": US, "personalisation": {"first name": "Grace"}},
        {"to": US, "personalisation": {"first name": "Zoë", "time": "20:30"}}]})
    assert status == 202 and batch["accepted"] == 2
    assert [(r["index"], r["error"]["code"]) for r in batch["rejected"]] == [(1, "MissingPersonalisation")]

    def sent():
        return [m["body"] for m in emulated.call("GET", "/_outbox")[2][before:]]

    wait_for(lambda: len(sent()) == 3, seconds=60)
    assert sorted(sent()) == sorted(["Hi Ada, your table is at 19:30.", "Hi Alan, your table is at 20:00.",
                                     "Hi Zoë, your table is at 20:30."])
    assert wait_for(lambda: api.call("GET", f"/batches/{batch['id']}")[2]["done"], seconds=60)
    status, _, listed = api.call("GET", "/templates?limit=1")
    assert status == 200 and listed["templates"][0]["id"] == template["id"]
