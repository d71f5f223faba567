"""Phone number parsing (the phonenumbers library, lite build) and masking for logs."""
from __future__ import annotations

import re

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, PhoneNumber
# The library's own steps: typing one number, and what its parse does after the calling code.
from phonenumbers.phonenumberutil import (ValidationResult, _maybe_strip_national_prefix_carrier_code,
                                          _number_type_helper, _test_number_length, region_code_for_country_code)

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
# A letter of any script. The library reads letters as a phone keypad's digits (+1 425 CALL NOW is +14252255669)
# and "ext" as an extension: a typo would send to another number.
_LETTER = re.compile(r"[^\W\d_]")
# A number as the API asks for it: + and the digits of E.164 (at most 15), no leading zero.
_E164 = re.compile(r"\+([1-9][0-9]{6,14})")
_PREFIX_KEPT = (ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY, ValidationResult.INVALID_LENGTH)


def parse(text: str, country: str | None = None) -> PhoneNumber:
    """``phonenumbers.parse(text, country)``; for a plain E.164 number (``+`` and digits), the steps of the
    library's parse that such a number takes, and no others.

    The library's parse first looks for a number in free text: punctuation, letters for digits, an extension, a
    ``tel:`` URI, digits of other scripts. Those are some of the largest regular expressions it has, and on a
    send the number is almost always plain E.164, for which none of them matches. What such a number does
    take: its calling code (the first one to three digits that are one), then the national prefix, stripped
    where the region's plan says so (``+1 1 425...`` is ``+1 425...``) exactly as the library strips it.
    Anything else, and anything the library would refuse, goes to the library itself.
    ``tests/test_shortcuts.py`` holds this to the library's answers."""
    plain = _E164.fullmatch(text)
    if plain is None:
        return phonenumbers.parse(text, country)
    digits = plain.group(1)
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return phonenumbers.parse(text, country)  # no calling code: the library says what is wrong
    national = digits[size:]
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region_code_for_country_code(code))
    _carrier, stripped, _found = _maybe_strip_national_prefix_carrier_code(national, metadata)
    if _test_number_length(stripped, metadata) not in _PREFIX_KEPT:
        national = stripped
    if len(national) < 2 or national[0] == "0":  # too short, or leading zeros (Italy's): the library's rules
        return phonenumbers.parse(text, country)
    return PhoneNumber(country_code=code, national_number=int(national))


def region_and_type(number: phonenumbers.PhoneNumber) -> tuple[str | None, int]:
    """``phonenumbers.region_code_for_number`` and ``number_type`` in one pass over the number's regions.

    A number is valid exactly when its region's plan gives it a type (``is_valid_number`` asks the same of the
    same metadata), so the type answers validity too. Where regions share a calling code (+1, +7, +44...), the
    library finds the region by typing the number against each plan in turn, then types it again for
    ``number_type``, and again for ``is_valid_number``: on every send, for a US number, three times the same
    ten patterns. Here the region's search keeps the type it found. ``tests/test_shortcuts.py`` holds this to
    the library's own answers for every region's example numbers, and for random ones."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(number.country_code)
    if regions is None:
        return None, _TYPE.UNKNOWN
    national = phonenumbers.national_significant_number(number)
    if len(regions) == 1:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(number.country_code, regions[0])
        return regions[0], _TYPE.UNKNOWN if metadata is None else _number_type_helper(national, metadata)
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if re.match(metadata.leading_digits, national):
                return region, _number_type_helper(national, metadata)
            continue
        kind = _number_type_helper(national, metadata)
        if kind != _TYPE.UNKNOWN:
            return region, kind
    return None, _TYPE.UNKNOWN


def check_type(number: phonenumbers.PhoneNumber, kind: int) -> None:
    """Refuse a number of type ``kind`` that cannot, or must not, receive SMS or MMS (see ``REFUSED``)."""
    if kind in SENDABLE or (kind == _TYPE.TOLL_FREE and number.country_code == NANP_COUNTRY_CODE):
        return
    raise InvalidRequest("NumberCannotReceiveSms", f"'to' is {REFUSED.get(kind, REFUSED[_TYPE.UNKNOWN])}, "
                         "which this service sends no SMS or MMS to.", field="to")


EXTENSION = "'to' has an extension, which a text cannot reach: leave it out."


def _extension(text: str, country: str | None) -> bool:
    """Whether the library reads an extension in ``text`` (``ext. 12``, ``x12``, ``;ext=12``): a number that holds
    letters for one is refused for its extension, not for its letters."""
    try:
        return bool(phonenumbers.parse(text, None if text.startswith("+") else country).extension)
    except phonenumbers.NumberParseException:
        return False


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
        if country not in phonenumbers.SUPPORTED_REGIONS:
            raise InvalidRequest("InvalidCountry", f"'country' {country} is not a country code of a numbering plan: "
                                 "give its ISO 3166 code, such as US or GB (not UK).", field="country")
    text = to.strip()
    if _LETTER.search(text):
        if _extension(text, country):
            raise InvalidRequest("InvalidPhoneNumber", EXTENSION, field="to")
        raise InvalidRequest("InvalidPhoneNumber", "'to' holds letters: write the number in digits, such as "
                             "+14255550123 (letters are not read as a keypad's digits).", field="to")
    if text.count("+") > 1:  # phonenumbers reads "++1425..." as +1425...: a typo is refused, not guessed at
        raise InvalidRequest("InvalidPhoneNumber", "'to' holds more than one '+': write one, before the country "
                             "code, such as +14255550123.", field="to")
    if not text.startswith("+") and country is None:
        raise InvalidRequest(
            "InvalidPhoneNumber",
            "'to' must be in E.164 form (+14155550100), or give a national number with 'country'.",
            field="to",
        )
    try:
        number = parse(text, None if text.startswith("+") else country)
    except phonenumbers.NumberParseException:
        raise InvalidRequest("InvalidPhoneNumber", "'to' is not a phone number.", field="to") from None
    if number.extension:
        raise InvalidRequest("InvalidPhoneNumber", EXTENSION, field="to")
    region, kind = region_and_type(number)
    if kind == _TYPE.UNKNOWN:
        raise InvalidRequest("InvalidPhoneNumber", "'to' is not a valid phone number.", field="to")
    check_type(number, kind)
    region = region or ""
    if allowed_countries and region not in allowed_countries:
        raise NotAllowed(
            "CountryNotAllowed",
            f"Sending to {region or 'this destination'} is not allowed on this stage.",
            field="to",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), region
