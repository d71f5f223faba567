"""The send path's shortcuts (issue 18's per-send CPU) answer exactly what the library calls they replace
answer: ``store.encode`` writes what boto3's ``TypeSerializer`` writes and ``store.decode`` reads what its
``TypeDeserializer`` reads; ``phone.parse`` reads a number as ``phonenumbers.parse`` reads it, ``phone.region_and_type`` finds the region
and type phonenumbers finds, and ``phone.normalize`` refuses as invalid exactly the numbers
``phonenumbers.is_valid_number`` refuses."""
from __future__ import annotations

from decimal import Decimal

import hypothesis
import phonenumbers
import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import strategies as st

from chalicelib.core import errors, phone, store

SERIALIZER = TypeSerializer()
DESERIALIZER = TypeDeserializer()


def answer(fn, value):
    """What ``fn(value)`` returns, or the type of what it raises: the very failure is compared too."""
    try:
        return fn(value)
    except Exception as error:  # noqa: BLE001
        return type(error)


def serialized(value):
    """What boto3 writes for ``value`` (the store's float rule applied first)."""
    return answer(lambda v: SERIALIZER.serialize(store._storable(v)), value)  # noqa: SLF001 - the rule encode keeps


def encoded(value):
    return answer(store.encode, value)


PLAIN = (st.text() | st.booleans() | st.none() | st.integers() | st.integers(min_value=-10 ** 40, max_value=10 ** 40)
         | st.floats(allow_nan=True) | st.decimals(allow_nan=False))
VALUES = st.recursive(PLAIN, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@hypothesis.settings(max_examples=400, deadline=None, database=None)
@hypothesis.given(VALUES)
def test_encode_writes_what_the_type_serializer_writes(value):
    assert repr(encoded(value)) == repr(serialized(value))


@pytest.mark.parametrize("value", [0, -1, 10 ** 38 - 1, -(10 ** 38 - 1), 10 ** 38, -(10 ** 38), 10 ** 39 + 7,
                                   True, False, "", "x", None, 1.5, Decimal("1.10")])
def test_encode_at_the_edges(value):
    assert repr(encoded(value)) == repr(serialized(value))


def deserialized(attr):
    return answer(lambda a: store._plain(DESERIALIZER.deserialize(a)), attr)  # noqa: SLF001 - the rule decode keeps


def decoded(attr):
    return answer(store.decode, attr)


NUMBERS = st.from_regex(r"-?[0-9]{1,45}(\.[0-9]{1,10})?([eE][-+]?[0-9]{1,3})?", fullmatch=True)
ATTRIBUTES = (VALUES.map(serialized).filter(lambda attr: not isinstance(attr, type))
              | NUMBERS.map(lambda number: {"N": number})
              | st.dictionaries(st.sampled_from(["S", "N", "BOOL", "NULL", "M", "L", "X"]),
                                st.text(max_size=3) | st.booleans(), max_size=2))


@hypothesis.settings(max_examples=400, deadline=None, database=None)
@hypothesis.given(ATTRIBUTES)
def test_decode_reads_what_the_type_deserializer_reads(attr):
    assert repr(decoded(attr)) == repr(deserialized(attr))  # repr: NaN as NaN, 1 apart from 1.0


def example_numbers():
    """Every region's example number of every type phonenumbers has one for, and its invalid example."""
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(phonenumbers.PhoneNumberType.UNKNOWN + 1):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                yield number
        invalid = phonenumbers.invalid_example_number(region)
        if invalid is not None:
            yield invalid
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            yield number


def test_a_number_is_refused_as_invalid_exactly_when_phonenumbers_calls_it_invalid():
    seen = valid = 0
    for number in example_numbers():
        text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        try:
            phone.normalize(text)
            refused_as_invalid = False
        except errors.MessagingError as error:
            refused_as_invalid = error.code == "InvalidPhoneNumber"
        assert refused_as_invalid == (not phonenumbers.is_valid_number(number)), text
        seen += 1
        valid += phonenumbers.is_valid_number(number)
    assert seen > 1000 and 0 < valid < seen  # both kinds were met, from every region


def library_answer(number):
    return phonenumbers.region_code_for_number(number), phonenumbers.number_type(number)


def test_region_and_type_are_the_librarys_for_every_example_number():
    for number in example_numbers():
        assert phone.region_and_type(number) == library_answer(number), number


# Calling codes shared by several regions (where the one-pass search differs most from the library's calls),
# then any code at all.
SHARED = sorted(code for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items() if len(regions) > 1)


@hypothesis.settings(max_examples=1500, deadline=None, database=None)
@hypothesis.given(st.sampled_from(SHARED) | st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
                  st.text("0123456789", min_size=1, max_size=14))
def test_region_and_type_are_the_librarys_for_any_number(code, digits):
    try:
        number = phonenumbers.parse(f"+{code}{digits}", None)
    except phonenumbers.NumberParseException:
        return
    assert phone.region_and_type(number) == library_answer(number)


def parsed_both_ways(text):
    """(ours, the library's): the number read, or the type of what reading it raised."""
    return answer(phone.parse, text), answer(lambda t: phonenumbers.parse(t, None), text)


def with_national_prefix(number):
    """The number in E.164 with its region's national prefix written in after the calling code, as people
    write ``+1 1 425...`` or ``+44 0 20...``: the library strips it, where the region's plan says so."""
    region = phonenumbers.region_code_for_country_code(number.country_code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(number.country_code, region)
    prefix = metadata.national_prefix if metadata is not None else None
    if prefix:
        yield f"+{number.country_code}{prefix}{phonenumbers.national_significant_number(number)}"


def test_parse_reads_every_example_number_as_the_library_does():
    seen = 0
    for number in example_numbers():
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        for text in (e164, *with_national_prefix(number)):
            ours, library = parsed_both_ways(text)
            assert ours == library, text
            seen += 1
    assert seen > 1500


# Any + and digits: the calling codes the regions share, any code, no code; a national prefix, leading zeros,
# too few digits and too many.
@hypothesis.settings(max_examples=3000, deadline=None, database=None)
@hypothesis.given(st.sampled_from(SHARED) | st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE))
                  | st.integers(min_value=0, max_value=999),
                  st.sampled_from(["", "0", "1", "00", "8", "06"]), st.text("0123456789", max_size=16))
def test_parse_reads_any_plain_number_as_the_library_does(code, prefix, digits):
    ours, library = parsed_both_ways(f"+{code}{prefix}{digits}")
    assert ours == library


@pytest.mark.parametrize("text", ["+14255550123", "+1 425 555 0123", "+1-425-555-0123", "+1 (425) 555-0123",
                                  "+14255550123 ext. 7", "tel:+1-425-555-0123", "+1425555O123", "+１４２５５５５０１２３",
                                  "+390612345678", "+3900612345678", "+4402079460958", "+2250712345678", "+"])
def test_parse_leaves_anything_but_plain_e164_to_the_library(text):
    ours, library = parsed_both_ways(text)
    assert ours == library


# Chalice's content-type check, asked once per distinct question (``web.remember_content_type_checks``).
TYPES = ["application/json", "text/plain", "text/html", "image/png", "application/octet-stream", "*/*",
         "multipart/form-data", "application/x-www-form-urlencoded", "Application/JSON", "IMAGE/PNG"]
HEADER_PARTS = st.sampled_from(TYPES + ["charset=utf-8", " q=0.9", "", "*/*;q=0.1", "image/*", "text/*"])
HEADERS = st.lists(st.tuples(HEADER_PARTS, st.sampled_from([",", ";", ", ", " ; "])), max_size=4).map(
    lambda parts: "".join(part + sep for part, sep in parts).rstrip(",; ")) | st.text(max_size=30)


def test_the_app_asks_chalice_each_content_type_question_once():
    import chalice.app

    from chalicelib.core import web

    from .conftest import sender

    assert sender.app is not None and chalice.app._matches_content_type is web._remembered_content_type_match
    binary = list(sender.app.api.binary_types)
    assert len(binary) > 10  # the list each request's answer is checked against twice


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(HEADERS, st.lists(st.sampled_from(TYPES), max_size=6))
def test_a_remembered_content_type_check_answers_as_chalice_does(header, valid):
    from chalicelib.core import web

    chalices = web._CHALICE_MATCHES
    assert web._remembered_content_type_match(header, valid) == chalices(header, valid)
    # Asked again, with the same list changed in place: the answer follows the list, not the first answer.
    valid.append("*/*")
    assert web._remembered_content_type_match(header, valid) is True is chalices(header, valid)
    valid[:] = ["text/csv"]
    assert web._remembered_content_type_match(header, valid) == chalices(header, valid)


def test_the_remembered_content_type_checks_are_bounded():
    from chalicelib.core import web

    for n in range(1_000):
        web._remembered_content_type_match(f"application/x-{n}", ["application/json"])
    assert web._matched_content_type.cache_info().currsize <= 256
