"""The embedded local stack: an emulated AWS on one loopback endpoint plus the Chalice app.

``python -m devstack`` (what ``make dev`` runs) serves the app on http://127.0.0.1:8000 and the
emulated AWS on http://127.0.0.1:4566. The end-to-end tests start the same stack in-process.
"""
