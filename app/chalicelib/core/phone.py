"""Phone number parsing (the phonenumbers library, lite build) and masking for logs."""
from __future__ import annotations

import re

import phonenumbers

from .errors import InvalidRequest, NotAllowed

_TYPE = phonenumbers.PhoneNumberType
# The number types phonenumbers tells apart that a message may go to. Fixed-line numbers are allowed (some
# take texts; in the US and Canada fixed-line and mobile numbers look alike: FIXED_LINE_OR_MOBILE), as are
# VoIP numbers (many take texts). Toll-free numbers take texts only in the North American Numbering Plan
# (text-enabled toll-free); elsewhere they do not.
SENDABLE = frozenset({_TYPE.MOBILE, _TYPE.FIXED_LINE, _TYPE.FIXED_LINE_OR_MOBILE, _TYPE.VOIP})
NANP_COUNTRY_CODE = 1
# Every other type is refused before any AWS call: messages to them are where SMS pumping fraud makes its
# money, or the number cannot take a text at all.
REFUSED = {
    _TYPE.PREMIUM_RATE: "a premium-rate number",
    _TYPE.SHARED_COST: "a shared-cost number",
    _TYPE.UAN: "a universal access (company) number",
    _TYPE.VOICEMAIL: "a voicemail access number",
    _TYPE.PAGER: "a pager number",
    _TYPE.PERSONAL_NUMBER: "a personal (forwarding) number",
    _TYPE.TOLL_FREE: "a toll-free number outside the US and Canada",
    _TYPE.UNKNOWN: "a number of unknown type",
}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_type(number: phonenumbers.PhoneNumber) -> None:
    """Refuse a number that cannot, or must not, receive SMS or MMS (see ``REFUSED``)."""
    kind = phonenumbers.number_type(number)
    if kind in SENDABLE or (kind == _TYPE.TOLL_FREE and number.country_code == NANP_COUNTRY_CODE):
        return
    raise InvalidRequest("NumberCannotReceiveSms", f"'to' is {REFUSED.get(kind, REFUSED[_TYPE.UNKNOWN])}, "
                         "which this service sends no SMS or MMS to.", field="to")


def normalize(to, country=None, *, allowed_countries=frozenset()) -> tuple[str, str]:
    """Return (E.164 number, ISO country) or raise a domain error naming the field."""
    if to is None or (isinstance(to, str) and not to.strip()):
        raise InvalidRequest("MissingField", "'to' is required.", field="to")
    if not isinstance(to, str):
        raise InvalidRequest("InvalidPhoneNumber", "'to' must be a string.", field="to")
    if _CONTROL.search(to):
        raise InvalidRequest("InvalidPhoneNumber", "'to' holds control characters.", field="to")
    if country is not None:
        if not isinstance(country, str) or not re.fullmatch(r"[A-Za-z]{2}", country):
            raise InvalidRequest("InvalidCountry", "'country' must be a two-letter ISO code such as US.", field="country")
        country = country.upper()
    text = to.strip()
    if not text.startswith("+") and country is None:
        raise InvalidRequest(
            "InvalidPhoneNumber",
            "'to' must be in E.164 form (+14155550100), or give a national number with 'country'.",
            field="to",
        )
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else country)
    except phonenumbers.NumberParseException:
        raise InvalidRequest("InvalidPhoneNumber", "'to' is not a phone number.", field="to") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidRequest("InvalidPhoneNumber", "'to' is not a valid phone number.", field="to")
    check_type(number)
    region = phonenumbers.region_code_for_number(number) or ""
    if allowed_countries and region not in allowed_countries:
        raise NotAllowed(
            "CountryNotAllowed",
            f"Sending to {region or 'this destination'} is not allowed on this stage.",
            field="to",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), region
