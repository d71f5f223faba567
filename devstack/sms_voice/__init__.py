"""A stand-in for End User Messaging SMS (``pinpoint-sms-voice-v2``), which moto lacks: the embedded AWS
(``devstack/emulator.py``) answers every ``PinpointSMSVoiceV2.*`` call with it.

One class, ``standin.SmsVoiceStandIn``, holds the emulated account and answers the API. What it plays is
grouped by area, one module each:

- ``model``: the API's front door. Every call is checked against botocore's own service model of the API,
  and a refused one answers in AWS's JSON protocol (``ApiError``); the paging and filters the Describe
  operations share.
- ``sending``: origination identities (phone numbers, pools, sender ids), configuration sets, and
  ``SendTextMessage`` / ``SendMediaMessage`` (dry runs among them). Accepted sends go to the shared outbox.
- ``two_way``: two-way settings (``UpdatePhoneNumber`` / ``UpdatePool``), keywords, and ``receive()``: what
  End User Messaging does with a text a phone sends to one of the numbers.
- ``opt_outs``: opt-out lists and the numbers on them.
- ``standin``: the class, composed of the three areas, and ``respond()``, one call off the wire.

May import: ``model`` nothing of the package; ``opt_outs`` ``model``; ``two_way`` ``model`` and ``opt_outs``;
``sending`` ``model`` (and, outside the package, the local receipts' prices); ``standin`` all of them. This
``__init__`` imports nothing, so no module imports back into it (import ``devstack.sms_voice.standin`` for the class).
"""
