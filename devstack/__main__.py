"""``python -m devstack [--stage NAME]``: what ``make dev [STAGE=NAME]`` runs."""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from . import stage as stages
from .server import LocalStack


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=(
        "Serve the app on http://127.0.0.1:8000 against the embedded AWS on http://127.0.0.1:4566, with a "
        "stage's settings from cdk.json (and the local overrides devstack/stage.py lists)."))
    parser.add_argument("--stage", default=stages.DEFAULT_STAGE, help="a stage of cdk.json (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        stack = LocalStack(stage=args.stage)
    except stages.StageConfigError as err:
        sys.exit(f"make dev: {err}")
    stack.start()
    app, aws = stack.app_url, stack.aws_url
    config = stack.stage_config
    overrides = "\n".join(f"  {name}={stack.env[name]}" for name in stages.OVERRIDES)
    print(f"""
Sender running against the embedded local stack (no AWS account; nothing leaves this machine).

Stage {config.stage} from cdk.json: smsProvider {config.sms_provider}, allowedCountries \
{','.join(config.allowed_countries) or 'all'}, defaultSmsType {config.default_sms_type}\
{', senderId ' + config.sender_id if config.sender_id else ''}.
Local overrides (the reason for each is in devstack/stage.py):
{overrides}

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
  curl -s -X POST {app}/batches -H 'Content-Type: application/json' \
       -d '{{"messages": [{{"to": "+14254147755", "body": "one"}}, {{"to": "+14254147167", "body": "two"}}]}}'
  curl -s {app}/batches/<id>

Send an MMS: get an upload, upload the file, send it.
  curl -s -X POST {app}/media -H 'Content-Type: application/json' -d '{{"contentType": "image/png", "size": 2048}}'
  (POST the file to upload.url with upload.fields as form fields, then)
  curl -s -X POST {app}/mms -H 'Content-Type: application/json' \\
       -d '{{"to": "+14255550123", "body": "A picture", "mediaUrl": "<mediaUrl from /media>"}}'

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
