"""Delivery status: the ingest function that reads SNS delivery-status logs and End User Messaging
events and settles each message's record (``ingest``).

May import: ``core`` only.
"""
