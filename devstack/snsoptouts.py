"""SNS's opt-out list on the embedded AWS, one list for every call that reads it, as on AWS.

moto 5.2.5 (``moto/sns/models.py``) keeps a list of opted-out numbers that ``ListPhoneNumbersOptedOut`` answers and
``OptInPhoneNumber`` takes a number off, but its ``CheckIfPhoneNumberIsOptedOut`` answers from another rule: true for
any number ending in ``99``, and for no number on its list. On a fresh ``make dev``, ``GET /opt-outs`` listed eight
numbers that ``GET /opt-outs/{number}`` and ``DELETE /opt-outs/{number}`` then answered 404 ``OptOutNotFound``.

On AWS the two are one list. SNS's API reference, as botocore's model of SNS carries it:
``CheckIfPhoneNumberIsOptedOut`` "Accepts a phone number and indicates whether the phone holder has opted out of
receiving SMS messages from your Amazon Web Services account"; ``ListPhoneNumbersOptedOut`` "Returns a list of
phone numbers that are opted out, meaning you cannot send SMS messages to them"; ``OptInPhoneNumber`` "Use this
request to opt in a phone number that is opted out, which enables you to resume sending SMS messages to the
number". So here a number is opted out exactly when it is on the list. The replacement is put in place only over
the method it was read against (``MOTO_SOURCE``, its source's sha256), by ``motocosts.replace``;
``tests/test_standin_sns_opt_outs.py`` holds the three calls to one list.
"""
from __future__ import annotations

from moto.sns.models import SNSBackend

from . import motocosts

MOTO_CHECK = SNSBackend.check_if_phone_number_is_opted_out
MOTO_SOURCE = "a8c9b6931f0a1a116892b0e4dc7296fdf78e11f0d97b60055d1fb56b55fe3a3e"


def check_if_phone_number_is_opted_out(self, number: str) -> bool:
    """Whether ``number`` is on the account's opt-out list: the list ``ListPhoneNumbersOptedOut`` answers."""
    return number in self.opt_out_numbers


def install() -> bool:
    """Put the check in place of moto's, if moto's is the one it was read against; says whether it is. Idempotent."""
    return motocosts.replace(SNSBackend, "check_if_phone_number_is_opted_out", MOTO_CHECK,
                             check_if_phone_number_is_opted_out, MOTO_SOURCE, "devstack/snsoptouts.py")
