"""AWS End User Messaging's destination simulator numbers ("Simulator phone numbers" in the user guide,
https://docs.aws.amazon.com/sms-voice/latest/userguide/test-phone-numbers.html): messages to them stay inside
End User Messaging and report a success or a failure. A test key's messages settle the same way, without a
provider call: failed for a failure number, delivered for any other. The local stack's receipts and
``make smoke`` use the same numbers.
"""
from __future__ import annotations

# By destination country, in the order make smoke prefers them (MMS exists for US and CA destinations only).
SUCCESS_BY_COUNTRY = {"US": "+14254147755", "AU": "+61455944038", "FR": "+33755512501"}
FAILURE_BY_COUNTRY = {"US": "+14254147167", "AU": "+61455944039", "FR": "+33755512502"}
SUCCESS = frozenset(SUCCESS_BY_COUNTRY.values())
FAILURE = frozenset(FAILURE_BY_COUNTRY.values())


def fails(number: str) -> bool:
    return number in FAILURE
