"""What every capability stands on: settings (``settings``), AWS clients (``aws``), the message store's
primitives and the table layouts (``store``, ``schema``), domain errors and the one AWS error mapping
(``errors``), logging that never prints a phone number (``log``), phone numbers (``phone``), SMS
segments (``segments``), what a message body may hold (``text``), request parsing (``inputs``) and the HTTP
edge (``web``).

May import: the standard library, boto3/botocore, Powertools, phonenumbers and Chalice; nothing of
chalicelib outside ``core``.
"""
