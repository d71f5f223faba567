"""Two-way messaging: replies to the stage's number (``inbound``) and the stage's opt-out list, kept in
step with End User Messaging's and SNS's (``optouts``).

May import: ``core`` only. ``sending`` calls ``optouts`` before each send; nothing here calls back.
"""
