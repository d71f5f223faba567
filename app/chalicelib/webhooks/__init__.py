"""Signed webhooks (Standard Webhooks v1): endpoints and their secrets (``endpoints``), the stream fanout
that turns status changes into events (``events``), the delivery function (``delivery``) and the address
guard every endpoint URL and delivery passes (``netguard``).

May import: ``core`` only (and its own modules).
"""
