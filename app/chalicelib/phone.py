"""Phone number parsing (the phonenumbers library, lite build) and masking for logs."""
from __future__ import annotations

import re

import phonenumbers

from .errors import InvalidRequest, NotAllowed


def normalize(to, country=None, *, allowed_countries=frozenset()) -> tuple[str, str]:
    """Return (E.164 number, ISO country) or raise a domain error naming the field."""
    if to is None or (isinstance(to, str) and not to.strip()):
        raise InvalidRequest("MissingField", "'to' is required.", field="to")
    if not isinstance(to, str):
        raise InvalidRequest("InvalidPhoneNumber", "'to' must be a string.", field="to")
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
    region = phonenumbers.region_code_for_number(number) or ""
    if allowed_countries and region not in allowed_countries:
        raise NotAllowed(
            "CountryNotAllowed",
            f"Sending to {region or 'this destination'} is not allowed on this stage.",
            field="to",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), region


def mask(number: str | None) -> str:
    """'+14155550100' -> '+1*******00': enough to tell numbers apart in logs, never the whole number."""
    if not number:
        return ""
    digits = number.lstrip("+")
    if len(digits) <= 4:
        return "*" * len(number)
    return "+" + digits[:1] + "*" * (len(digits) - 3) + digits[-2:]


_E164 = re.compile(r"\+\d{6,15}")


def scrub(text: str) -> str:
    """Mask anything in free text that looks like an E.164 number (the only form the app handles)."""
    return _E164.sub(lambda m: mask(m.group()), text)
