"""``python -m devstack [--stage NAME]``: what ``make dev [STAGE=NAME]`` runs."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from . import stage as stages
from .server import LocalStack


APP_LOGGER = "sms-sender"  # chalicelib/core/log.py SERVICE: the app's logger (tests/test_devstack_main.py)


class QuietSweeps(logging.Filter):
    """make dev runs the schedule sweep every second (``stage.RULES``), where EventBridge runs it once a minute and
    its line is the stage's heartbeat: here a sweep that did nothing (queued nothing, settled no dead letter)
    writes no line, so the terminal keeps the requests' lines. One that did something still writes its line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.getMessage() == "schedule sweep" and getattr(record, "enqueued", None) == 0
                    and not getattr(record, "settled", 0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=(
        "Serve the app on http://127.0.0.1:8000 against the embedded AWS on http://127.0.0.1:4566, with a "
        "stage's settings from cdk.json (and the local overrides devstack/stage.py lists)."))
    parser.add_argument("--stage", default=stages.DEFAULT_STAGE, help="a stage of cdk.json (default: %(default)s)")
    parser.add_argument("--require-keys", action="store_true", help=(
        "refuse requests without a key (401), as a deployed stage does, and print an admin key"))
    args = parser.parse_args(argv)
    try:
        stack = LocalStack(stage=args.stage, require_keys=args.require_keys)
    except stages.StageConfigError as err:
        sys.exit(f"make dev: {err}")
    logging.getLogger(APP_LOGGER).addFilter(QuietSweeps())
    stack.start()
    app, aws = stack.app_url, stack.aws_url
    config = stack.stage_config
    overrides = "\n".join(f"  {name}={stack.env[name]}" for name in stages.OVERRIDES if name in stack.env)
    overrides += "".join(f"\n  {name}: every {every:g} s (an EventBridge rule deployed)"
                         for name, (every, _reason) in stages.RULES.items())
    if stack.admin_key:
        keys = ("Keys are required, as deployed: send 'Authorization: Bearer <key>'. This local key has every scope:\n"
                f"admin key: {stack.admin_key}\n"
                "(make keys through POST /keys or the console's Keys panel, each with the scopes it needs)")
    else:
        keys = ("A request without a key acts as a live key with every scope; one that carries a key\n"
                "('Authorization: Bearer sk_...') is checked as deployed. make dev REQUIRE_KEYS=1 refuses keyless requests.")
    print(f"""
Sender running against the embedded local stack (no AWS account; nothing leaves this machine).

Stage {config.stage} from cdk.json: smsProvider {config.sms_provider}, allowedCountries \
{','.join(config.allowed_countries) or 'all'}, defaultSmsType {config.default_sms_type}\
{', senderId ' + config.sender_id if config.sender_id else ''}.
Local overrides (the reason for each is in devstack/stage.py):
{overrides}

{keys}

  send console   {app}/
  API            {app}
  embedded AWS   {aws}   (AWS_ENDPOINT_URL; every accepted SMS/MMS at {aws}/_outbox)

Try it:
  curl -s {app}/health
  curl -s -X POST {app}/sms -H 'Content-Type: application/json' \\
       -d '{{"to": "+14255550123", "body": "Hello from my own AWS account"}}'
  curl -s {app}/messages          (a moment later the status is delivered)
  curl -s {aws}/_outbox

Send a batch: +14254147755 is delivered, +14254147167 fails (AWS's simulator numbers).
  curl -s -X POST {app}/batches -H 'Content-Type: application/json' \\
       -d '{{"messages": [{{"to": "+14254147755", "body": "one"}}, {{"to": "+14254147167", "body": "two"}}]}}'
  curl -s {app}/batches/<id>

Send an MMS: get an upload, upload the file, send it.
  curl -s -X POST {app}/media -H 'Content-Type: application/json' -d '{{"contentType": "image/png", "size": 2048}}'
  (POST the file to upload.url with upload.fields as form fields, then)
  curl -s -X POST {app}/mms -H 'Content-Type: application/json' \\
       -d '{{"to": "+14255550123", "body": "A picture", "mediaUrl": "<mediaUrl from /media>"}}'

Webhooks: run a receiver, then point an endpoint at it (here only http://127.0.0.1:<port> or
http://localhost:<port>; deployed, only https).
  .venv/bin/python -m devstack.receiver --port 9000   (another terminal; prints each delivery)
  curl -s -X POST {app}/webhooks -H 'Content-Type: application/json' \\
       -d '{{"url": "http://127.0.0.1:9000/hooks"}}'
  (then restart the receiver with --secret <the whsec_ secret from that answer> to check signatures)

Replies: play a text from a phone to the local number, as End User Messaging receives it. HELP and
STOP are answered (in /_outbox), and STOP puts the sender on the opt-out list.
  curl -s -X POST {aws}/_inbound -H 'Content-Type: application/json' \\
       -d '{{"originationNumber": "+14255550123", "messageBody": "Yes, see you then"}}'
  curl -s '{app}/messages?direction=inbound'
  curl -s -X POST {aws}/_inbound -H 'Content-Type: application/json' \\
       -d '{{"originationNumber": "+14255550123", "messageBody": "STOP"}}'
  curl -s {app}/opt-outs          (then a send to +14255550123 is 409 RecipientOptedOut)
  curl -s -X DELETE {app}/opt-outs/%2B14255550123      (opts it back in: once in 30 days)

Ctrl-C stops everything.
""", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping…", flush=True)
        stack.stop()


if __name__ == "__main__":
    main()
