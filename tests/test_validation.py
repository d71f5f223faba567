"""Unit tests of request validation and phone handling: every bad input is one clear 4xx code."""
import pytest

from tests.conftest import sender  # noqa: F401
from chalicelib.core import errors, inputs, log
from chalicelib.core import phone
from chalicelib.sending import validation
from chalicelib.core.settings import ConfigError, Settings
from chalicelib.core.web import status_for

SETTINGS = Settings(media_bucket="media-bucket", messages_table="m", idempotency_table="i")


def rejects(fn, *args):
    with pytest.raises(errors.MessagingError) as caught:
        fn(*args)
    return status_for(caught.value), caught.value.code, caught.value.field


def test_e164_and_national_numbers_normalise_to_e164():
    assert phone.normalize("+1 (415) 555-2671") == ("+14155552671", "US")
    assert phone.normalize("020 7946 0958", "gb") == ("+442079460958", "GB")


@pytest.mark.parametrize("to, country, code", [
    (None, None, "MissingField"),
    ("", None, "MissingField"),
    (14155552671, None, "InvalidPhoneNumber"),
    ("4155552671", None, "InvalidPhoneNumber"),      # national without country
    ("+1415", None, "InvalidPhoneNumber"),
    ("not a number", "US", "InvalidPhoneNumber"),
    ("+14155552671", "USA", "InvalidCountry"),
    ("4155552671", "XX", "InvalidCountry"),          # two letters, but no country's: not the number's fault
    ("4155552671", "UK", "InvalidCountry"),          # the United Kingdom is GB
    ("+14155552671", "XX", "InvalidCountry"),
])
def test_bad_numbers_are_400_naming_the_field(to, country, code):
    status, got, field = rejects(phone.normalize, to, country)
    assert (status, got) == (400, code)
    assert field in ("to", "country")


@pytest.mark.parametrize("to, country, read_as", [
    ("+1425abc0123", None, "+14252220123"),          # a typo: the library reads a keypad's digits
    ("+1 425 CALL NOW", None, "+14252255669"),
    ("425 555 CALL", "US", "+14255552255"),           # a national number
    ("tel:+1-425-555-0123", None, "+14255550123"),
    ("+1 425 555 0123 ext. 12", None, "+14255550123"),
    ("+14255550123;ext=12", None, "+14255550123"),
    ("+14255550123 x12", None, "+14255550123"),
    ("+14255550123#12", None, "+14255550123"),        # an extension without letters
])
def test_a_number_with_letters_or_an_extension_is_refused_where_the_library_reads_another(to, country, read_as):
    """phonenumbers takes these (the library finds a number in free text), and a send would go to ``read_as``,
    which for a typo is someone else's number. The API refuses them on ``to``: nothing is sent by mistake."""
    import phonenumbers

    parsed = phonenumbers.parse(to, None if to.startswith(("+", "tel:")) else country)
    assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == read_as
    with pytest.raises(errors.MessagingError) as caught:
        phone.normalize(to, country)
    assert (caught.value.code, caught.value.field) == ("InvalidPhoneNumber", "to")
    # Each is told what is wrong with it: an extension is named as one, whether or not it is written in letters.
    said = "has an extension" if parsed.extension else "holds letters"
    assert said in caught.value.message


def test_a_number_with_a_second_plus_is_refused_though_the_library_reads_it():
    import phonenumbers

    assert phonenumbers.format_number(phonenumbers.parse("++14255550123", None),
                                      phonenumbers.PhoneNumberFormat.E164) == "+14255550123"
    for to in ("++14255550123", "+ +14255550123"):
        with pytest.raises(errors.MessagingError) as caught:
            phone.normalize(to)
        assert (caught.value.code, caught.value.field) == ("InvalidPhoneNumber", "to")
        assert "more than one '+'" in caught.value.message
    assert phone.normalize("+44 (0) 20 7946 0958") == ("+442079460958", "GB")  # one "+": a written form


def test_destination_outside_the_allowlist_is_403():
    with pytest.raises(errors.NotAllowed) as caught:
        phone.normalize("+442079460958", allowed_countries=frozenset({"US", "CA"}))
    assert caught.value.code == "CountryNotAllowed" and status_for(caught.value) == 403


def test_mask_never_shows_the_whole_number():
    assert log.mask("+14155552671") == "+1********71"
    assert "4155552671" not in log.scrub("failed for +14155552671 today")


@pytest.mark.parametrize("data, code", [
    ({"to": "+14155552671"}, "MissingField"),
    ({"to": "+14155552671", "body": ""}, "MissingField"),
    ({"to": "+14155552671", "body": 42}, "InvalidBody"),
    ({"to": "+14155552671", "body": "x" * 1601}, "BodyTooLong"),
    ({"to": "+14155552671", "body": "ж" * 801}, "BodyTooLong"),  # 1602 bytes: over SNS's 1600 bytes
    ({"to": "+14155552671", "body": "hi", "type": "marketing"}, "InvalidType"),
    ({"to": "+14155552671", "body": "hi", "senderId": "TOO-LONG-SENDER"}, "InvalidSenderId"),
    ({"to": "+14155552671", "body": "hi", "senderId": "12345"}, "InvalidSenderId"),
])
def test_bad_sms_requests(data, code):
    status, got, _ = rejects(validation.sms, data, SETTINGS)
    assert (status, got) == (400, code)


def test_an_sms_without_its_text_says_whether_it_was_left_out_or_empty():
    for body, said in ((None, "is required"), ("", "is empty")):
        with pytest.raises(errors.MessagingError) as caught:
            validation.sms({"to": "+14155552671", "body": body}, SETTINGS)
        assert (caught.value.code, caught.value.field) == ("MissingField", "body")
        assert caught.value.message == f"'body' {said}: an SMS needs its text (1 to 1600 characters)."


def test_a_good_sms_request():
    message = validation.sms({"to": "+442079460958", "body": "x" * 1600, "type": "Promotional",
                              "senderId": "ACME1"}, SETTINGS)
    assert (message.to, message.sms_type, message.sender_id) == ("+442079460958", "promotional", "ACME1")


@pytest.mark.parametrize("url", [None, "", "https://example.com/cat.png", "s3://other-bucket/cat.png",
                                 "s3://media-bucket/", "s3://media-bucket-evil/cat.png"])
def test_mms_media_must_be_in_the_stage_bucket(url):
    status, code, field = rejects(validation.mms, {"to": "+14155552671", "mediaUrl": url}, SETTINGS)
    assert status == 400 and code in ("MissingField", "InvalidMediaUrl") and field == "mediaUrl"


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_bodies_that_are_not_a_json_object(raw):
    assert rejects(inputs.parse_json, raw)[:2] == (400, "InvalidJson")


@pytest.mark.parametrize("value", ["0", "101", "ten", "-1"])
def test_bad_limits(value):
    assert rejects(inputs.limit, value)[:2] == (400, "InvalidLimit")


def test_settings_fail_clearly_on_bad_values():
    base = {"MEDIA_BUCKET": "b", "MESSAGES_TABLE": "m", "IDEMPOTENCY_TABLE": "i"}
    assert Settings.from_env({**base, "ALLOWED_COUNTRIES": "us, ca"}).allowed_countries == {"US", "CA"}
    with pytest.raises(ConfigError, match="SMS_PROVIDER"):
        Settings.from_env({**base, "SMS_PROVIDER": "carrier-pigeon"})
    with pytest.raises(ConfigError, match="MAX_MPS"):
        Settings.from_env({**base, "MAX_MPS": "fast"})
    with pytest.raises(ConfigError, match="MEDIA_BUCKET"):
        Settings.from_env({"MESSAGES_TABLE": "m", "IDEMPOTENCY_TABLE": "i"})
