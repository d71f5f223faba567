"""``chalicelib/countries.json`` against the AWS sources it copies, the CloudFormation schema that takes its
codes, and the phonenumbers library that parses our numbers."""
from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path

import botocore.session
import phonenumbers
import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.conftest import sender  # noqa: F401  (sets the path for chalicelib)
from chalicelib.sending import countries

DATA_FILE = Path(countries.__file__).with_name("countries.json")
DATA = json.loads(DATA_FILE.read_text(encoding="utf-8"))
ROWS = {row["iso"]: row for row in DATA["rows"]}

SMS_PAGE = "https://docs.aws.amazon.com/sms-voice/latest/userguide/phone-numbers-sms-by-country.html"
MMS_PAGE = "https://docs.aws.amazon.com/sms-voice/latest/userguide/phone-numbers-mms-by-country.html"

# Kosovo: AWS lists it as XK, a user-assigned code that ISO 3166-1 has not assigned. phonenumbers knows it.
NOT_ISO_ASSIGNED = {"XK"}

# Rows copied verbatim from the table's source text (the HTML table of the page's Markdown source).
DOC_ROWS = [
    '<tr><td>Australia</td><td>AU</td><td>61</td><td>No</td><td>Yes</td><td>Registration required'
    '<a href="#sms-support-note-8">8</a></td><td>Yes</td><td>Yes</td></tr>',
    '<tr><td>Bahamas</td><td>BS</td><td>1-242</td><td>No</td><td>No</td><td>No</td><td>No</td><td>No</td></tr>',
    '<tr><td>Canada</td><td>CA</td><td>1</td><td>Yes</td><td>Yes</td><td>No</td><td>Yes</td><td>Yes</td></tr>',
    '<tr><td>China</td><td>CN</td><td>86</td><td>Yes</td><td>No</td><td>No <a href="#sms-support-note-2">2</a> </td>'
    '<td>Yes</td><td>No</td></tr>',
    '<tr><td>Dominican Republic</td><td>DO</td><td>1-809, 1-829, 1-849</td><td>Yes</td><td>No</td><td>No</td>'
    '<td>Yes</td><td>Yes</td></tr>',
    '<tr><td>France</td><td>FR</td><td>33</td><td>Yes</td><td>No</td><td>Yes<a href="#sms-support-note-11">11</a>'
    '</td><td>Yes</td><td>Yes</td></tr>',
    '<tr><td>Germany</td><td>DE</td><td>49</td><td>Yes</td><td>Yes</td><td>Yes</td><td>Yes</td><td>Yes</td></tr>',
    '<tr><td>Guinea-Bissau</td><td>GW</td><td>245</td><td>No</td><td>No</td><td>Yes</td><td>N/A</td><td>No</td></tr>',
    '<tr><td>India</td><td>IN</td><td>91</td><td>Yes</td><td>Yes<a href="#sms-support-note-4">4</a></td>'
    '<td>Registration required<a href="#sms-support-note-3">3</a> </td><td>Yes</td><td>Yes</td></tr>',
    '<tr><td>Kosovo</td><td>XK</td><td>383</td><td>No</td><td>No</td><td>Yes</td><td>No</td><td>No</td></tr>',
    '<tr><td>Mexico</td><td>MX</td><td>52</td><td>Yes</td><td>No</td><td>Yes</td><td>Yes</td><td>Yes</td></tr>',
    '<tr><td>Puerto Rico</td><td>PR</td><td>1-787, 1-939</td><td>Yes</td><td>Yes</td><td>No</td><td>Yes</td>'
    '<td>Yes</td></tr>',
    '<tr><td>Singapore</td><td>SG</td><td>65</td><td>Yes</td><td>Yes</td><td>Yes<a href="#sms-support-note-5">5</a>'
    '</td><td>Yes</td><td>Yes</td></tr>',
    '<tr><td>United Kingdom</td><td>GB</td><td>44</td><td>Yes</td><td>Yes</td><td>Registration required'
    '<a href="#sms-support-note-7">7</a></td><td>Yes</td><td>No</td></tr>',
    '<tr><td>United States</td><td>US</td><td>1</td><td>Yes</td><td>Yes</td><td>No</td><td>Yes</td><td>Yes</td></tr>',
    '<tr><td>Zimbabwe</td><td>ZW</td><td>263</td><td>No</td><td>No</td><td>Yes</td><td>No</td><td>No</td></tr>',
]
# The MMS page's whole table, verbatim (Markdown source).
MMS_DOC_ROWS = ["| Canada | CA | 1 | Yes | Yes | No | No |", "| United States | US | 1 | Yes | Yes | Yes | No |"]
FIELDS = ["name", "iso", "dialingCode", "shortCodes", "longCodes", "senderId", "twoWay", "internationalSending"]


def _doc_row(html: str) -> dict:
    cells = re.findall(r"<td>(.*?)</td>", html)
    row, notes = {}, []
    for field, cell in zip(FIELDS, cells, strict=True):
        for note in re.findall(r'<a href="#sms-support-note-(\d+)">\1</a>', cell):
            notes.append(int(note))
        row[field] = re.sub(r"<a [^>]*>.*?</a>", "", cell).strip()
    if notes:
        row["notes"] = notes
    return row


def test_file_names_its_sources_and_date():
    assert DATA["source"] == {"sms": SMS_PAGE, "mms": MMS_PAGE}
    assert countries.SOURCE == DATA["source"]
    assert date.fromisoformat(DATA["retrieved"]) <= date.today()
    assert countries.RETRIEVED == DATA["retrieved"]
    assert DATA["lastUpdated"] is None or date.fromisoformat(DATA["lastUpdated"])
    assert any("doc-history" in line for line in DATA["provenance"])


def test_lists_are_derived_from_the_rows():
    assert len(DATA["rows"]) == len(ROWS) == 215, "one row per country, as the table has"
    for name in ("sms", "senderId", "senderIdRegistrationRequired", "mms"):
        assert DATA[name] == sorted(set(DATA[name])), f"{name} is sorted and has no duplicates"
    assert set(DATA["sms"]) == set(ROWS)
    assert set(DATA["senderId"]) == {c for c, r in ROWS.items() if r["senderId"] in ("Yes", "Registration required")}
    assert set(DATA["senderIdRegistrationRequired"]) == {c for c, r in ROWS.items()
                                                         if r["senderId"] == "Registration required"}
    assert {r["senderId"] for r in ROWS.values()} == {"Yes", "No", "Registration required"}
    for row in ROWS.values():
        assert set(row) <= {*FIELDS, "notes"} and set(FIELDS) <= set(row)
        assert all(row[f] in ("Yes", "No") for f in ("shortCodes", "longCodes", "internationalSending"))
        assert row["twoWay"] in ("Yes", "No", "N/A")
        assert set(row.get("notes", [])) <= {int(n) for n in DATA["tableNotes"]}


def test_module_exposes_the_file():
    assert countries.SMS == frozenset(DATA["sms"])
    assert countries.MMS == frozenset(DATA["mms"])
    assert countries.SENDER_ID == frozenset(DATA["senderId"])
    assert countries.SENDER_ID_REGISTRATION_REQUIRED == frozenset(DATA["senderIdRegistrationRequired"])
    assert all(isinstance(s, frozenset) for s in (countries.SMS, countries.MMS, countries.SENDER_ID))


@pytest.mark.parametrize("html", DOC_ROWS, ids=lambda html: re.search(r"<td>([A-Z]{2})</td>", html).group(1))
def test_rows_match_the_doc_text(html):
    expected = _doc_row(html)
    assert ROWS[expected["iso"]] == expected


def test_mms_is_the_mms_table():
    assert DATA["mms"] == sorted(re.match(r"\| [^|]+ \| ([A-Z]{2}) \|", row).group(1) for row in MMS_DOC_ROWS)
    assert countries.MMS == {"CA", "US"}
    assert countries.MMS <= countries.SMS


def test_sender_id_support():
    # Per the SMS table (and the MMS table's "Sender ID support MMS" column): no sender ids in the US or Canada.
    for code in ("US", "CA", "PR", "CN", "BR"):
        assert not countries.sender_id_supported(code), code
    for code in ("GB", "DE", "FR", "IN", "AU", "SG"):
        assert countries.sender_id_supported(code), code
    assert countries.sender_id_supported("gb")
    assert not countries.sender_id_supported("ZZ")
    assert {"GB", "IN", "AU"} <= countries.SENDER_ID_REGISTRATION_REQUIRED
    assert countries.SENDER_ID_REGISTRATION_REQUIRED <= countries.SENDER_ID


def test_codes_fit_the_protect_configuration_schema():
    """AWS::SMSVOICE::ProtectConfiguration CountryRule.CountryCode, as cfn-lint ships the resource schema,
    and the IsoCountryCode shape of UpdateProtectConfigurationCountryRuleSet in botocore's model."""
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(
        region="us-east-1", resource_type="AWS::SMSVOICE::ProtectConfiguration").schema
    country_code = schema["definitions"]["CountryRule"]["properties"]["CountryCode"]
    assert country_code["type"] == "string" and "enum" not in country_code
    assert country_code["pattern"] == "^[A-Z]{2}$"
    iso_shape = botocore.session.get_session().get_service_model("pinpoint-sms-voice-v2").shape_for("IsoCountryCode")
    assert iso_shape.metadata == {"min": 2, "max": 2, "pattern": "[A-Z]{2}"}
    for code in countries.SMS | countries.MMS | countries.SENDER_ID:
        assert re.search(country_code["pattern"], code), code
        assert re.fullmatch(iso_shape.metadata["pattern"], code), code


def test_codes_are_iso_3166_alpha_2():
    """Against Debian's iso-codes data where the machine has it: every code but Kosovo's is assigned."""
    iso_file = Path("/usr/share/iso-codes/json/iso_3166-1.json")
    if not iso_file.exists():
        if os.environ.get("CI"):  # make test installs it; in CI a missing one is a failure
            pytest.fail("iso-codes (iso_3166-1.json) is not installed: make test installs it with apt-get")
        pytest.skip("iso-codes (iso_3166-1.json) is not installed here")
    assigned = {c["alpha_2"] for c in json.loads(iso_file.read_text(encoding="utf-8"))["3166-1"]}
    assert countries.SMS - assigned == NOT_ISO_ASSIGNED


def test_codes_are_known_to_phonenumbers():
    regions = set(phonenumbers.SUPPORTED_REGIONS)
    assert countries.SMS <= regions, sorted(countries.SMS - regions)
    # The phonenumbers regions that AWS's SMS table does not list (30 with phonenumberslite 9.0.42), for one:
    assert {"AC", "TA", "BJ", "CU", "IR", "KP", "SY", "VA"} <= regions - countries.SMS


def test_dialing_codes_agree_with_phonenumbers():
    """A check on the copy: each row's dialing code is the one phonenumbers gives that region. The table gives
    Jersey 44-1434; Jersey's numbers are 44-1534 (phonenumbers), so only the country code is compared there."""
    for code, row in ROWS.items():
        for dialing in row["dialingCode"].split(", "):
            country, _, area = dialing.partition("-")
            assert int(country) == phonenumbers.country_code_for_region(code), code
            leading = phonenumbers.PhoneMetadata.metadata_for_region(code).leading_digits
            if area and country == "1":
                assert re.match(leading, area), (code, dialing)
    assert ROWS["JE"]["dialingCode"] == "44-1434"
