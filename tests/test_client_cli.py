"""The ``sms`` command line, run in-process (``sms_sender.cli.main(argv, env=..., stdout=..., stderr=...)``)
against the local stack over real HTTP on loopback.

Delivery receipts come when a test says so: the stack's own receipts are held back an hour, and ``Carrier``
writes the receipts of what was sent when the command waits (its injected ``sleep``). So ``sms batch`` and
``sms tail`` see each status change at a known step, whatever the machine's speed.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from devstack.receipts import SIMULATOR_FAILURE, SIMULATOR_SUCCESS
from devstack.receiver import Receiver
from devstack.server import LocalStack

from .localhttp import Http, wait_for

from sms_sender import cli  # noqa: E402

pytestmark = pytest.mark.xdist_group("client-cli")  # one local stack for the module, on one worker

SUCCESS, FAILURE = sorted(SIMULATOR_SUCCESS)[0], sorted(SIMULATOR_FAILURE)[0]
HANG_GUARD = 120.0  # how long a wait for something that never comes goes on before the test fails
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 300


class Carrier:
    """Records every send the emulated AWS accepts; ``deliver()`` writes the receipts of those not yet answered
    (the real ingest runs before it returns)."""

    def __init__(self, stack):
        self.stack, self.sent, self.done = stack, [], 0
        stack.emulator.listeners.append(lambda entry, provider, context=None: self.sent.append((entry, provider)))

    def deliver(self) -> int:
        due, self.done = self.sent[self.done:], len(self.sent)
        for provider in ("sns", "sms-voice"):
            entries = [entry for entry, p in due if p == provider]
            if entries:
                self.stack.receipts.deliver_now(entries, provider)
        return len(due)


@pytest.fixture(scope="module")
def stack():
    with LocalStack(app_port=0, aws_port=0, visibility_timeout=10, function_timeout=10,
                    receipt_delay=3600) as running:
        yield running


@pytest.fixture(scope="module")
def carrier(stack):
    return Carrier(stack)


@pytest.fixture
def api(stack):
    return Http(stack.app_url)


class Run:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def json(self):
        return json.loads(self.out)


def run(argv, env, *, sleep=None) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, env=env, stdout=out, stderr=err, sleep=sleep)
    return Run(code, out.getvalue(), err.getvalue())


def answering(carrier):
    """The sleep of a command that waits for a batch: the carrier answers what was sent, then a short real wait
    lets the batch worker send the rest."""
    import time

    def sleep(seconds):
        carrier.deliver()
        time.sleep(min(seconds, 0.05))

    return sleep


@pytest.fixture
def env(stack, carrier):
    """The command's environment; the carrier listens from the module's first send on."""
    return {"SMS_API_URL": stack.app_url}


def outbox(stack) -> list[dict]:
    return Http(stack.aws_url).call("GET", "/_outbox")[2]


def test_send_json_and_get(stack, env, api):
    before = len(outbox(stack))
    sent = run(["send", "--to", SUCCESS, "--body", "from the command line", "--json"], env)
    assert sent.code == 0 and sent.err == ""
    message = sent.json()
    assert message["status"] == "sent" and message["to"] == SUCCESS
    assert [(o["to"], o["body"]) for o in outbox(stack)[before:]] == [(SUCCESS, "from the command line")]
    got = run(["get", message["id"], "--json"], env)
    assert got.code == 0 and got.json() == api.call("GET", f"/messages/{message['id']}")[2]
    human = run(["get", message["id"]], env)
    assert human.code == 0 and f"id                 {message['id']}" in human.out.splitlines()


def test_send_human_line(env):
    sent = run(["send", "--to", SUCCESS, "--body", "human"], env)
    assert sent.code == 0 and sent.out.count("\n") == 1
    assert " sent " in sent.out and SUCCESS in sent.out and "outbound" in sent.out


def test_send_media_file_is_one_command(stack, env, tmp_path):
    """What took `curl` seven copied form fields: POST /media, the presigned upload, POST /mms."""
    picture = tmp_path / "cat.png"
    picture.write_bytes(PNG)
    before = len(outbox(stack))
    sent = run(["send", "--to", SUCCESS, "--media", str(picture), "--body", "a cat", "--json"], env)
    assert sent.code == 0, sent.err
    message = sent.json()
    assert message["channel"] == "mms" and message["mediaUrl"].startswith("s3://")
    assert [(o["channel"], o["mediaUrl"], o["body"]) for o in outbox(stack)[before:]] == [
        ("mms", message["mediaUrl"], "a cat")]


def test_a_media_type_guessed_from_the_name_and_refused_points_at_content_type(env, tmp_path):
    picture = tmp_path / "note.xyz"  # Python's mimetypes: chemical/x-xyz
    picture.write_bytes(PNG)
    guessed = run(["send", "--to", SUCCESS, "--media", str(picture)], env)
    assert guessed.code == 1 and "MediaTypeNotSupported" in guessed.err.splitlines()[0]
    assert guessed.err.splitlines()[1] == f"sms: {cli.GUESSED_TYPE_HINT}"
    named = run(["send", "--to", SUCCESS, "--media", str(picture), "--content-type", "image/png"], env)
    assert named.code == 0, named.err  # what the hint says to do
    wrong = run(["send", "--to", SUCCESS, "--media", str(picture), "--content-type", "text/plain"], env)
    assert wrong.code == 1 and "MediaTypeNotSupported" in wrong.err and cli.GUESSED_TYPE_HINT not in wrong.err


@pytest.mark.parametrize("name, content_type, content, kind", [
    ("notes.png", None, b"just some text\n", "PNG"),  # the type from the name: image/png
    ("photo.jpg", None, PNG, "JPEG"),
    ("cat.bin", "image/gif", PNG, "GIF"),  # a type given that the content is not
])
def test_a_picture_whose_content_is_not_that_picture_is_refused_before_any_upload(stack, env, tmp_path, name,
                                                                                 content_type, content, kind):
    """The API sees only the type the client names; a text file named .png went out as a PNG MMS."""
    picture = tmp_path / name
    picture.write_bytes(content)
    before = len(outbox(stack))
    argv = ["send", "--to", SUCCESS, "--media", str(picture)] + (["--content-type", content_type] if content_type
                                                                  else [])
    refused = run(argv, env)
    assert refused.code == 2 and refused.err == (f"sms: {name!r} does not hold a {kind} picture (its content does "
                                                 f"not begin as a {kind} file's does): give the picture itself\n")
    assert len(outbox(stack)) == before


def test_an_api_error_prints_its_code_and_message_on_stderr(env):
    bad = run(["send", "--to", "12", "--body", "hi"], env)
    assert bad.code == 1 and bad.out == ""
    assert bad.err.startswith("sms: 400 InvalidPhoneNumber: ") and "(field: to)" in bad.err
    as_json = run(["send", "--to", "12", "--body", "hi", "--json"], env)
    assert as_json.code == 1 and as_json.out == ""
    error = json.loads(as_json.err)
    assert error["status"] == 400 and error["error"]["code"] == "InvalidPhoneNumber" and error["error"]["field"] == "to"
    missing = run(["get", "no-such-message"], env)
    assert missing.code == 1 and missing.err.startswith("sms: 404 MessageNotFound: ")


@pytest.mark.parametrize("argv, says", [
    (["send", "--to", SUCCESS], "give --body TEXT, --template ID or --media FILE"),
    (["send", "--to", SUCCESS, "--body", "x", "--var", "a=b"], "--var goes with --template"),
    (["send", "--to", SUCCESS, "--template", "t", "--var", "novalue"], "--var takes name=value"),
    (["send", "--to", SUCCESS, "--media", "/no/such/file.png"], "no such file"),
])
def test_usage_errors_exit_2(env, argv, says):
    result = run(argv, env)
    assert result.code == 2 and says in result.err and result.out == ""


def test_list_pages_and_masks_numbers(env):
    run(["send", "--to", SUCCESS, "--body", "listed"], env)
    listed = run(["list", "--limit", "2", "--json"], env)
    assert listed.code == 0 and len(listed.json()["messages"]) == 2 and listed.json()["next"]
    human = run(["list", "--limit", "2"], env)
    assert human.code == 0 and human.out.splitlines()[0].split() == cli.MESSAGE_HEADER
    assert SUCCESS not in human.out and cli.mask(SUCCESS) in human.out
    assert "more: sms list --all" in human.err


def test_batch_shows_progress_until_done_and_counts_each_status(env, carrier, tmp_path):
    rows = tmp_path / "batch.csv"
    rows.write_text(f"to,body\n{SUCCESS},first\n{FAILURE},second\nnot a number,third\n")

    result = run(["batch", str(rows)], env, sleep=answering(carrier))
    assert result.code == 0, result.err
    assert "3 row(s): 2 accepted, 1 rejected" in result.err
    bars = [line for line in result.err.splitlines() if line.startswith("[")]
    assert bars and bars[-1].startswith("[" + "#" * 30 + "] 2/2 final")
    counts = {line.split()[0]: line.split()[1] for line in result.out.splitlines()[1:] if line.startswith("  ")
              and not line.strip().startswith("line")}
    assert counts["delivered"] == "1" and counts["failed"] == "1" and counts["rejected"] == "1"
    assert "  line 4: InvalidPhoneNumber (to): " in result.out


def test_batch_json_and_a_bad_file(env, carrier, tmp_path):
    rows = tmp_path / "batch.csv"
    rows.write_text(f"phone number,body\n{FAILURE},only\n")
    result = run(["batch", str(rows), "--json"], env, sleep=answering(carrier))
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["counts"]["failed"] == 1 and summary["rejected"] == []
    assert summary["batches"][0]["progress"]["done"] is True
    again = run(["batch", str(rows), "--json", "--idempotency-key", "cli-once"], env, sleep=answering(carrier))
    repeat = run(["batch", str(rows), "--json", "--idempotency-key", "cli-once"], env, sleep=answering(carrier))
    assert again.code == repeat.code == 0
    assert again.json()["batches"][0]["id"] == repeat.json()["batches"][0]["id"]  # the same batch: sent once
    # The same key with the file changed: refused, and the hint says why in the command's terms.
    rows.write_text(f"phone number,body\n{FAILURE},changed\n")
    changed = run(["batch", str(rows), "--idempotency-key", "cli-once"], env, sleep=answering(carrier))
    assert changed.code == 1 and "409 IdempotencyKeyReused" in changed.err
    assert changed.err.splitlines()[-1] == ("sms: --idempotency-key cli-once went with another request within the "
                                            "last 24 hours (another file, or this one changed since): give a new "
                                            "key to send this one")
    # Every row refused: nothing was sent, and the exit code says so (it was 0).
    bad = tmp_path / "bad.csv"
    bad.write_text("to,body\n+1999,nobody\n")
    nothing = run(["batch", str(bad)], env, sleep=answering(carrier))
    assert nothing.code == 1 and "0 accepted, 1 rejected" in nothing.err + nothing.out
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("number,text\n1,2\n")
    refused = run(["batch", str(wrong)], env)
    assert refused.code == 2 and "needs a 'to'" in refused.err


def test_tail_follows_new_messages_and_status_changes_until_ctrl_c(env, api, carrier):
    steps, sent = [], {}

    def sleep(seconds):
        steps.append(seconds)
        if len(steps) == 1:  # a message arrives...
            sent.update(api.call("POST", "/sms", {"to": SUCCESS, "body": "tail me"})[2])
        elif len(steps) == 2:  # ... its receipt comes ...
            carrier.deliver()
        else:  # ... and the user presses Ctrl-C
            raise KeyboardInterrupt

    carrier.deliver()  # whatever earlier tests sent is settled: only this test's messages change below
    before = [run(["send", "--to", SUCCESS, "--body", f"before tail {n}", "--json"], env).json()["id"]
              for n in range(2)]
    result = run(["tail", "--lines", "2", "--interval", "0.5"], env, sleep=sleep)
    assert result.code == 0 and steps == [0.5, 0.5, 0.5]
    printed = [line.split()[1] for line in result.out.splitlines()]
    # the last two messages first, oldest first; then only what changed: the new one, and the receipts
    assert printed[:2] == before and set(printed[2:]) == {*before, sent["id"]}
    lines = [line for line in result.out.splitlines() if sent["id"] in line]
    assert len(lines) == 2
    assert lines[0].split()[-1] == "sent" and lines[1].endswith("sent -> delivered")
    assert cli.mask(SUCCESS) in lines[0] and SUCCESS not in result.out
    assert "Ctrl-C stops" in result.err


def test_tail_json_lines(env, api, carrier):
    steps, sent = [], {}

    def sleep(seconds):
        steps.append(seconds)
        if len(steps) == 1:
            sent.update(api.call("POST", "/sms", {"to": FAILURE, "body": "tail json"})[2])
        elif len(steps) == 2:
            carrier.deliver()
        else:
            raise KeyboardInterrupt

    carrier.deliver()
    result = run(["tail", "--lines", "0", "--json"], env, sleep=sleep)
    events = [json.loads(line) for line in result.out.splitlines()]
    mine = [(e["event"], e["previousStatus"], e["message"]["status"]) for e in events
            if e["message"]["id"] == sent["id"]]
    assert result.code == 0 and mine == [("message", None, "sent"), ("status", "sent", "failed")]


def test_keys_create_list_revoke(env):
    made = run(["keys", "create", "--name", "cli key", "--scope", "messages:read,messages:send", "--json"], env)
    assert made.code == 0, made.err
    key = made.json()
    assert key["key"].startswith("sk_live_") and sorted(key["scopes"]) == ["messages:read", "messages:send"]
    listed = run(["keys"], env)
    assert listed.code == 0 and key["id"] in listed.out and key["key"] not in listed.out
    with_key = run(["keys", "current", "--json"], {**env, "SMS_API_KEY": key["key"]})
    assert with_key.code == 0 and with_key.json()["id"] == key["id"]
    assert run(["keys", "revoke", key["id"]], env).code == 0
    assert run(["keys", "get", key["id"], "--json"], env).json()["revokedAt"]
    unknown = run(["keys", "current"], {**env, "SMS_API_KEY": "sk_live_" + "a" * 16 + "_" + "b" * 49})
    assert unknown.code == 1 and unknown.err.startswith("sms: 401 Unauthorized: ")
    assert unknown.err.splitlines()[1] == f"sms: {cli.REFUSED_KEY_HINT}"  # what to check, in the CLI's terms
    human = run(["keys", "create", "--name", "shown once", "--scope", "messages:read"], env)
    shown = [line for line in human.out.splitlines() if line.startswith("key  sk_live_")]
    assert human.code == 0 and len(shown) == 1 and "only time the key is shown" in human.err


def test_the_key_from_a_file_and_the_url_from_a_stages_outputs(stack, env, tmp_path):
    made = run(["keys", "create", "--name", "file key", "--scope", "messages:read", "--json"], env).json()
    key_file = tmp_path / "key"
    key_file.write_text(made["key"] + "\n")
    outputs = tmp_path / "cdk-outputs-dev.json"
    outputs.write_text(json.dumps({"SmsSender-dev": {"ApiUrl": stack.app_url + "/", "KeysTableName": "t"}}))
    nowhere = {"SMS_API_URL": "http://127.0.0.1:9"}  # the outputs file must win over it
    current = run(["keys", "current", "--json", "--stage", "dev", "--outputs", str(outputs),
                   "--key-file", str(key_file)], nowhere)
    assert current.code == 0 and current.json()["id"] == made["id"]
    before = run(["--json", "--stage", "dev", "--outputs", str(outputs), "--key-file", str(key_file),
                  "keys", "current"], nowhere)  # the same options before the command, as `sms --help` lists them
    assert before.code == 0 and before.json() == current.json()
    by_env = run(["keys", "current", "--json"], {**env, "SMS_API_KEY_FILE": str(key_file)})
    assert by_env.code == 0 and by_env.json()["id"] == made["id"]
    no_key = run(["health", "--stage", "dev", "--outputs", str(outputs)], {})
    assert no_key.code == 2 and "never a key" in no_key.err and "SMS_API_KEY" in no_key.err
    no_file = run(["health", "--stage", "prod"], {})
    assert no_file.code == 2 and "cdk-outputs-prod.json not found" in no_file.err


def test_webhooks_and_opt_outs(env):
    with Receiver(204, lifetime=60) as receiver:
        made = run(["webhooks", "create", "--url", receiver.url, "--event", "message.failed", "--json"], env)
        assert made.code == 0, made.err
        hook = made.json()
        assert hook["secret"].startswith("whsec_") and hook["events"] == ["message.failed"]
        listed = run(["webhooks"], env)
        assert hook["id"] in listed.out and hook["secret"] not in listed.out
        assert run(["webhooks", "delete", hook["id"]], env).code == 0
        gone = run(["webhooks", "get", hook["id"]], env)
        assert gone.code == 1 and "404 WebhookNotFound" in gone.err
    number = "+14255550177"
    assert run(["opt-outs", "add", number], env).code == 0
    got = run(["opt-outs", "get", number, "--json"], env)
    assert got.code == 0 and got.json()["source"] == "api"
    assert number in run(["opt-outs", "list", "--all"], env).out
    assert run(["opt-outs", "remove", number], env).code == 0
    assert "404 OptOutNotFound" in run(["opt-outs", "get", number], env).err


def test_reports_and_an_export_from_the_command_line(stack, env, carrier, tmp_path):
    """The daily figures count a delivered send once the tally has read it, the table shows the API's figures,
    and an export lands as a CSV file holding the message's row and never its body."""
    today = datetime.now(timezone.utc).date()
    span = ["--from", (today - timedelta(days=1)).isoformat(), "--to", today.isoformat()]

    def sms_totals():
        answer = run(["reports", "daily", *span, "--json"], env)
        assert answer.code == 0, answer.err
        return answer.json()["totals"]["sms"]

    carrier.deliver()  # what earlier tests sent settles first, so only this test's message moves the figures
    before = wait_for(lambda: (lambda t: t if t["pending"] == 0 else None)(sms_totals()), HANG_GUARD)
    assert before, "the earlier messages never settled in the report"
    sent = run(["send", "--to", SUCCESS, "--body", "counted once", "--json"], env)
    assert sent.code == 0, sent.err
    carrier.deliver()
    after = wait_for(lambda: (lambda t: t if t["delivered"] == before["delivered"] + 1 and t["pending"] == 0
                              else None)(sms_totals()), HANG_GUARD)
    assert after, "the delivered message never reached the report"
    assert (after["accepted"], after["failed"]) == (before["accepted"] + 1, before["failed"])

    table = run(["reports", "daily", *span], env)
    total = next(line.split() for line in table.out.splitlines() if line.startswith("total") and " sms " in line)
    assert total[2:9] == [str(after[k]) for k in ("accepted", "delivered", "failed", "unknown", "pending",
                                                  "received", "segments")]

    target = tmp_path / "messages.csv"
    exported = run(["reports", "export", *span, "--output", str(target), "--timeout", str(HANG_GUARD)], env)
    assert exported.code == 0, exported.err
    rows = list(csv.DictReader(target.open()))
    mine = [row for row in rows if row["id"] == sent.json()["id"]]
    assert [(row["status"], row["to"], row["channel"]) for row in mine] == [("delivered", SUCCESS, "sms")]
    assert "counted once" not in target.read_text()


def test_templates_from_the_command_line(stack, env):
    """A template's life on the local stack: made, sent from with --var, replaced (a new version, the first
    message keeps its body), archived (a send from it is then refused with the API's code)."""
    made = run(["templates", "create", "--name", "reminder", "--body", "Hi ((Name)), see you at ((time))",
                "--json"], env)
    assert made.code == 0, made.err
    template = made.json()
    assert (template["version"], template["placeholders"]) == (1, ["Name", "time"])
    before = len(outbox(stack))
    sent = run(["send", "--to", SUCCESS, "--template", template["id"], "--var", "name=Ada", "--var", "time=7pm",
                "--json"], env)
    assert sent.code == 0, sent.err
    first = sent.json()
    assert (first["body"], first["templateId"], first["templateVersion"]) == (
        "Hi Ada, see you at 7pm", template["id"], 1)
    assert [o["body"] for o in outbox(stack)[before:]] == ["Hi Ada, see you at 7pm"]
    replaced = run(["templates", "replace", template["id"], "--name", "reminder", "--body", "Bye ((name))",
                    "--json"], env)
    assert replaced.code == 0 and replaced.json()["version"] == 2
    listed = run(["templates", "--json"], env)
    assert template["id"] in [t["id"] for t in listed.json()["templates"]]
    assert run(["get", first["id"], "--json"], env).json()["body"] == "Hi Ada, see you at 7pm"
    assert run(["templates", "get", template["id"], "--version", "1", "--json"], env).json()["body"] == \
        template["body"]
    archived = run(["templates", "archive", template["id"]], env)
    assert archived.code == 0 and archived.out == "done\n"
    refused = run(["send", "--to", SUCCESS, "--template", template["id"], "--var", "name=Ada"], env)
    assert refused.code == 1 and refused.err.startswith("sms: 404 TemplateNotFound: ")


def test_scheduled_sends_listed_and_canceled_from_the_command_line(stack, env, tmp_path):
    """A send and a batch for tomorrow wait as ``scheduled`` (``list --status scheduled`` shows them), and
    ``sms cancel`` stops both: nothing reaches the outbox, and a second cancel prints the API's 409."""
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0).isoformat()
    before = len(outbox(stack))
    sent = run(["send", "--to", SUCCESS, "--body", "see you tomorrow", "--send-at", tomorrow, "--json"], env)
    assert sent.code == 0, sent.err
    message = sent.json()
    assert message["status"] == "scheduled" and message["sendAt"].startswith(tomorrow[:19])
    rows = tmp_path / "later.csv"
    rows.write_text(f"to,body\n{SUCCESS},one\n{SUCCESS},two\n")
    batch = run(["batch", str(rows), "--send-at", tomorrow, "--no-wait", "--json"], env)
    assert batch.code == 0, batch.err
    batch_id = batch.json()["batches"][0]["id"]
    waiting = run(["list", "--status", "scheduled", "--all", "--json"], env)
    assert message["id"] in [m["id"] for m in waiting.json()["messages"]]

    canceled = run(["cancel", message["id"], "--json"], env)
    assert canceled.code == 0 and canceled.json()["status"] == "canceled"
    progress = run(["cancel", batch_id, "--batch", "--json"], env)
    assert progress.code == 0 and (progress.json()["canceled"], progress.json()["scheduled"]) == (2, 0)
    again = run(["cancel", message["id"]], env)
    assert again.code == 1 and again.err.startswith("sms: 409 NotCancelable: ")
    assert message["id"] not in [m["id"] for m in run(["list", "--status", "scheduled", "--all", "--json"],
                                                      env).json()["messages"]]
    assert len(outbox(stack)) == before


def test_a_command_alone_runs_its_default_action(env):
    assert run(["opt-outs", "--json"], env).json()["optOuts"] is not None
    assert run(["keys", "--json"], env).json()["keys"] is not None
    assert run(["webhooks", "--json"], env).json()["webhooks"] is not None


def test_a_command_without_a_key_where_keys_are_required_says_how_to_give_one(stack, env, monkeypatch):
    """The API's 401 tells an HTTP caller to send a header; the command adds what its own user can do."""
    monkeypatch.setattr(stack.key_check, "require_keys", True)  # as under make dev REQUIRE_KEYS=1
    refused = run(["list"], env)
    assert refused.code == 1 and refused.err.startswith("sms: 401 Unauthorized: ")
    assert refused.err.splitlines()[1] == f"sms: {cli.KEY_HINT}"
    assert "SMS_API_KEY" in cli.KEY_HINT and "--key-file" in cli.KEY_HINT


# -- a request that may have been done: the key to ask again with ---------------------------------------------------

def scripted_run(script, argv, tmp_path=None):
    """The command against a scripted server (tests/clientlib.py), on the test's clock: no wait is slept."""
    from .clientlib import FakeTime, Scripted

    time = FakeTime()
    with Scripted(script) as server:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(argv, env={"SMS_API_URL": server.url}, stdout=out, stderr=err, sleep=time.sleep,
                        clock=time.clock)
    return Run(code, out.getvalue(), err.getvalue()), server.requests


BUSY = (409, {"Retry-After": "20"}, {"error": {"code": "IdempotencyKeyInProgress",
                                              "message": "A request with this Idempotency-Key is still in progress."}})


def test_an_sms_with_no_answer_names_the_key_to_ask_again_with():
    from .clientlib import DROP

    done, requests = scripted_run([DROP] * 4, ["send", "--to", "+14254147755", "--body", "hello"])
    key = requests[0].headers["idempotency-key"]
    assert done.code == 1 and {r.headers["idempotency-key"] for r in requests} == {key}
    assert done.err.splitlines()[-1] == (f"sms: it may have been done all the same: run the same command with "
                                         f"--idempotency-key {key} to ask again without sending twice")
    # Asked again with it, the same key goes out: the API answers the first request's outcome.
    from .clientlib import message_json

    again, requests = scripted_run([(202, {}, message_json())],
                                   ["send", "--to", "+14254147755", "--body", "hello", "--idempotency-key", key])
    assert again.code == 0 and requests[0].headers["idempotency-key"] == key


def test_a_batch_still_being_answered_at_the_deadline_names_the_key_of_the_run(tmp_path):
    """The first request of a run stays in progress past the client's deadline: the run stops, and says how to ask
    again. Its key is the run's, KEY-1 for its first batch of 1,000, as --idempotency-key makes them."""
    rows = tmp_path / "rows.csv"
    rows.write_text("to,body\n+14254147755,hello\n")
    done, requests = scripted_run([BUSY] * 5, ["batch", str(rows), "--no-wait"])
    base = requests[0].headers["idempotency-key"].removesuffix("-1")
    assert done.code == 1 and "409 IdempotencyKeyInProgress" in done.err
    assert done.err.splitlines()[-1].startswith(f"sms: it may have been done all the same: run the same command "
                                                f"with --idempotency-key {base} ")
    again, requests = scripted_run([(202, {}, {"id": "batch-1", "accepted": 1, "rejected": []})],
                                   ["batch", str(rows), "--no-wait", "--idempotency-key", base])
    assert again.code == 0 and requests[0].headers["idempotency-key"] == f"{base}-1"
    # With --json, stderr holds the error's JSON alone: a program reading it gets no line of prose.
    as_json, _ = scripted_run([BUSY] * 5, ["batch", str(rows), "--no-wait", "--json"])
    assert as_json.code == 1 and json.loads(as_json.err)["error"]["code"] == "IdempotencyKeyInProgress"


@pytest.mark.parametrize("answer", [
    (502, {}, {"error": {"code": "ProviderError", "message": "AWS failed.", "messageId": "m-1"}}),  # its outcome
    (503, {}, {"error": {"code": "BatchesNotConfigured", "message": "No batch queue."}}),  # nothing begun
    (400, {}, {"error": {"code": "InvalidPhoneNumber", "message": "'to' is not a phone number.", "field": "to"}}),
])
def test_a_failure_that_was_not_done_gives_no_key_to_ask_again_with(answer):
    done, requests = scripted_run([answer], ["send", "--to", "+14254147755", "--body", "hello"])
    assert done.code == 1 and len(requests) == 1 and "--idempotency-key" not in done.err


def test_an_unreachable_api_gives_no_key_to_ask_again_with():
    """A refused connection sent nothing: the run can simply be made again."""
    import socket

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{free.getsockname()[1]}"
    from .clientlib import FakeTime

    time, out, err = FakeTime(), io.StringIO(), io.StringIO()
    code = cli.main(["send", "--to", "+14254147755", "--body", "hello"], env={"SMS_API_URL": url}, stdout=out,
                    stderr=err, sleep=time.sleep, clock=time.clock)
    assert code == 1 and "cannot reach the API" in err.getvalue() and "--idempotency-key" not in err.getvalue()
