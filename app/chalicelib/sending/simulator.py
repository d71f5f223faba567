"""AWS End User Messaging's destination simulator numbers ("Simulator phone numbers" in the user guide,
https://docs.aws.amazon.com/sms-voice/latest/userguide/test-phone-numbers.html): messages to them stay inside
End User Messaging and report a success or a failure. A test key's messages settle the same way, without a
provider call: failed for a failure number, delivered for any other. The local stack's receipts follow them.
"""
from __future__ import annotations

SUCCESS = frozenset({"+14254147755", "+61455944038", "+33755512501"})
FAILURE = frozenset({"+14254147167", "+61455944039", "+33755512502"})


def fails(number: str) -> bool:
    return number in FAILURE
