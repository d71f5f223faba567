"""The app's code, one package per capability. ``app.py`` (beside this folder) holds only the routes and
the Lambda functions; each calls into one of these.

- ``core``: settings, AWS clients, the message store's primitives and table layouts, domain errors, logging,
  phone numbers and segments, the HTTP edge (request parsing, error mapping, responses). Imports nothing
  else of chalicelib.
- ``sending``: validation, media, the providers, the one send path, batches, the batch worker, pacing and
  idempotency.
- ``status``: delivery-status ingest (receipts from SNS and End User Messaging logs).
- ``webhooks``: endpoints and their secrets, the stream fanout, signed delivery, the address guard.
- ``templates``: message templates with ``((placeholders))``, their versions, and the placeholder rules.
- ``replies``: inbound replies and the stage's opt-out list.
- ``reports``: delivery reports: daily figures counted from the messages table's stream, and CSV exports.
- ``console``: the send console (the page and its static files).
- ``openapi``: the HTTP contract, ``openapi.json``, served at ``GET /openapi.json``.

Dependencies point one way: every capability imports ``core``; ``sending`` calls ``replies`` (opt-out
checks) and ``templates`` (a send from a template renders it), and nothing calls back. No module uses
another's private (``_``) names, and there is no import cycle (``tests/test_layout.py`` reads every import,
lazy ones included).
"""
