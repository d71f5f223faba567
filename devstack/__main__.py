"""``python -m devstack``: what ``make dev`` runs."""
from __future__ import annotations

import signal
import threading

from .server import LocalStack


def main() -> None:
    stack = LocalStack().start()
    app, aws = stack.app_url, stack.aws_url
    print(f"""
Sender running against the embedded local stack (no AWS account; nothing leaves this machine).

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
