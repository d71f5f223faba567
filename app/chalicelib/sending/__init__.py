"""Sending: the members each request body may have (``fields``), request validation into an outbound message
(``validation``, ``countries``), MMS media (``media``), the provider calls (``providers``), the one send path
(``messages``), batches (``batches``), the batch worker and its pacing (``worker``, ``pacing``) and
``Idempotency-Key`` (``idempotency``).

May import: ``core``, and ``replies.optouts``' public functions (a send checks the opt-out list).
"""
