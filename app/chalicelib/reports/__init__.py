"""Delivery reports (issue 22): what was sent, delivered and failed each UTC day, and what it cost, kept
apart from the messages so the figures outlive them; and CSV exports of the messages themselves.

- ``figures``: what a message record counts for (the definitions), and the change one stream record makes.
- ``tally``: the stream function (``report_tally``): every change of the messages table, counted exactly
  once into daily counters in the reports table.
- ``daily``: ``GET /reports/daily``: the counters of a range of days, summed.
- ``exports``: ``POST /exports`` and ``GET /exports/{id}``: an export's state, its file's presigned URL.
- ``writer``: the export function (``export_writer``): the messages of a range, streamed as CSV into the
  media bucket with a multipart upload, handing its place to its next invocation when time runs low.
- ``routes``: the routes (``messages:read``).

May import: ``core`` (and its own modules); ``routes`` names the key authorizer, as every capability's routes do.
"""
