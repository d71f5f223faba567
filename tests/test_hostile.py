"""Hostile input, case by case: each gets a 4xx with a precise error code, and no call reaches AWS.

Two witnesses. Through ``chalice.test.Client`` (moto behind it), a botocore ``before-call`` hook on every
client the app uses records and refuses any AWS call. Through real HTTP to the local stack (the dev stage's
settings from cdk.json), the same hook on the app's clients, counted for the server's request threads only
(the batch worker and the receipts keep polling), and the emulated AWS's outbox.
"""
from __future__ import annotations

import json
import socket
import threading
import uuid

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType as T



from .conftest import body_of, post
from .localhttp import HANG_GUARD, Http, wait_for
from .test_e2e import stack  # noqa: F401  (the module-scoped local stack, one per test module)

US = "+14255550123"
SERVICES = ("sns", "pinpoint-sms-voice-v2", "dynamodb", "s3", "sqs", "logs")
SENDING = ("sns", "pinpoint-sms-voice-v2", "sqs", "s3")  # a batch may record itself in DynamoDB, nothing more
MEDIA = "s3://sms-sender-local-media/media/cat.png"


class Tripwire:
    """Records every AWS call the app's clients make (from ``threads`` whose name holds the given text,
    when given) and, with ``refuse``, fails it, so a leak is both a 500 and a recorded call."""

    def __init__(self, refuse=SERVICES, thread_name: str | None = None):
        self.calls: list[str] = []
        self._refuse, self._thread_name = refuse, thread_name
        self._clients = []

    def _hook(self, model, **_kwargs):
        if self._thread_name and self._thread_name not in threading.current_thread().name:
            return
        service = model.service_model.service_name
        self.calls.append(f"{service}.{model.name}")
        if service in self._refuse:
            raise AssertionError(f"hostile input reached AWS: {service}.{model.name}")

    def arm(self):
        from chalicelib.core import aws

        for service in SERVICES:
            client = aws.client(service)
            client.meta.events.register("before-call", self._hook)
            self._clients.append(client)
        return self

    def disarm(self):
        for client in self._clients:
            client.meta.events.unregister("before-call", self._hook)

    def sends(self):
        return [c for c in self.calls if c.split(".")[0] in SENDING]


@pytest.fixture
def no_aws(client):
    wire = Tripwire().arm()
    yield wire
    wire.disarm()
    assert wire.calls == [], wire.calls


@pytest.fixture
def no_sends(client):
    """For batches: a batch records itself (DynamoDB); no item may be sent, enqueued or looked up in S3."""
    wire = Tripwire(refuse=SENDING).arm()
    yield wire
    wire.disarm()
    assert wire.sends() == [], wire.sends()


def post_bytes(client, path, raw, headers=None):
    """Raw bytes, straight to the test client (the suite's request recorder cannot read nesting bombs)."""
    return client.http.post(path, body=raw, headers={"Content-Type": "application/json", **(headers or {})})


def error_of(response, status, code, field=None, case=None):
    assert response.status_code == status, (case, response.status_code, response.body[:300])
    error = body_of(response)["error"]
    assert error["code"] == code, (case, error)
    assert error.get("field") == field, (case, error)
    assert set(error) <= {"code", "message", "field"}
    return error


def test_the_tripwire_trips(client):
    """The witness works: a good request does reach AWS, and the tripwire sees it."""
    wire = Tripwire(refuse=()).arm()
    try:
        assert post(client, "/sms", {"to": US, "body": "hello"}).status_code == 202
    finally:
        wire.disarm()
    assert "sns.Publish" in wire.calls


# --- nesting and size bombs ------------------------------------------------------------------------------

def nested(depth, open_="[", close="]", inner=""):
    return open_ * depth + inner + close * depth


BOMBS = {
    "array 100000 deep": nested(100_000),
    "object 100000 deep": nested(100_000, '{"a":', "}", "1"),
    "field 5000 deep": '{"to":"%s","body":"hi","x":%s}' % (US, nested(5000)),
    "field 40 deep (under the parser's limit)": '{"to":"%s","body":"hi","x":%s}' % (US, nested(40)),
    "body field nested": '{"to":"%s","body":%s}' % (US, nested(3000, '{"b":', "}", '"x"')),
}


def test_nesting_bombs_are_invalid_json(client, no_aws):
    for path in ("/sms", "/mms", "/media", "/batches"):
        for name, bomb in BOMBS.items():
            error = error_of(post_bytes(client, path, bomb.encode()), 400, "InvalidJson", case=(path, name))
            assert "deeper than 32 levels" in error["message"]


def test_a_deep_batch_item_and_a_deep_messages_list(client, no_aws):
    for raw in ('{"messages":%s}' % nested(50_000), '{"messages":[%s]}' % nested(40, '{"a":', "}", "1"),
                '{"messages":[{"to":"%s","body":"x","extra":%s}]}' % (US, nested(35))):
        error_of(post_bytes(client, "/batches", raw.encode()), 400, "InvalidJson")


def test_the_deepest_valid_body_is_fine(client):
    """Depth is refused past 32 levels, far beyond any body of the contract (a batch nests 3). A body 31 deep
    is read: what refuses it is the member the route does not define (UnknownField), not its depth."""
    raw = '{"to":"%s","body":"hi","x":%s}' % (US, nested(30))
    error_of(post(client, "/sms", raw), 400, "UnknownField", field="x")


def test_a_body_over_the_limit_is_refused_unread(client, no_aws):
    from chalicelib.core.inputs import MAX_REQUEST_BYTES

    raw = json.dumps({"to": US, "body": "x" * (MAX_REQUEST_BYTES + 1)})
    for path in ("/sms", "/batches"):
        error_of(post(client, path, raw), 400, "RequestTooLarge")


def test_huge_arrays_in_batches(client, no_aws):
    for count in (1001, 200_000):
        raw = '{"messages":[%s]}' % ",".join(["{}"] * count)
        error = error_of(post(client, "/batches", raw), 400, "BatchTooLarge", "messages")
        assert str(count) in error["message"]


HUGE = "9" * 1_000_000


HUGE_FIELDS = [
    ("/sms", "body", 400, "BodyTooLong"),
    ("/sms", "to", 400, "InvalidPhoneNumber"),
    ("/sms", "country", 400, "InvalidCountry"),
    ("/sms", "senderId", 400, "InvalidSenderId"),
    ("/sms", "type", 400, "InvalidType"),
    ("/mms", "mediaUrl", 400, "InvalidMediaUrl"),
    ("/mms", "body", 400, "BodyTooLong"),
    ("/media", "contentType", 422, "MediaTypeNotSupported"),
]
BASE = {"/sms": {"to": US, "body": "hi"}, "/mms": {"to": US, "mediaUrl": MEDIA},
        "/media": {"contentType": "image/png", "size": 10}}


def test_huge_strings(client, no_aws):
    for path, field, status, code in HUGE_FIELDS:
        value = ("s3://sms-sender-local-media/" + HUGE) if field == "mediaUrl" else HUGE
        error_of(post(client, path, {**BASE[path], field: value}), status, code, field, case=(path, field))


def test_a_media_key_s3_cannot_hold(client, no_aws):
    error_of(post(client, "/mms", {"to": US, "mediaUrl": "s3://sms-sender-local-media/" + "k" * 1025}),
             400, "InvalidMediaUrl", "mediaUrl")


def test_numbers_constants_and_repeated_members(client, no_aws):
    for raw in ('{"to":"%s","body":"hi","size":%s}' % (US, "9" * 5000),  # beyond any JSON number we read
                '{"to":"%s","body":NaN}' % US,
                '{"to":"%s","body":"hi","x":-Infinity}' % US,
                '{"to":"%s","body":"hi","to":"+19005551234"}' % US,  # a repeated member: which one is sent?
                '{"messages":[{"to":"%s","body":"a","body":"b"}]}' % US,
                '{"to":"%s","body":"hi"} {"to":"%s"}' % (US, US),
                '{"to":"%s","body":"hi"' % US):
        for path in ("/sms", "/batches"):
            error_of(post_bytes(client, path, raw.encode()), 400, "InvalidJson", case=raw[:60])


def test_huge_numbers_where_a_size_belongs(client, no_aws):
    for size in ("1e400", "-1e400", "-1", "1.5", "true", '"1"'):
        raw = '{"contentType":"image/png","size":%s}' % size
        error_of(post(client, "/media", raw), 400, "InvalidSize", "size")
    error_of(post(client, "/media", '{"contentType":"image/png","size":1%s}' % ("0" * 300)), 422, "MediaTooLarge",
             "size")


# --- invalid UTF-8 and invalid Unicode escapes ------------------------------------------------------------

BAD_BYTES = {
    "invalid start byte": b"\xff\xfe",
    "lone continuation byte": b"\x80",
    "overlong slash": b"\xc0\xaf",
    "truncated sequence": b"\xe2\x82",
    "UTF-8-encoded surrogate (CESU-8)": b"\xed\xa0\x80",
    "Latin-1 e-acute": b"\xe9",
    "beyond U+10FFFF": b"\xf4\x90\x80\x80",
}


def test_invalid_utf8(client, no_aws):
    for name, bad in BAD_BYTES.items():
        raw = b'{"to":"' + US.encode() + b'","body":"hi ' + bad + b'"}'
        for path in ("/sms", "/batches"):
            body = raw if path == "/sms" else b'{"messages":[' + raw + b"]}"
            error = error_of(post_bytes(client, path, body), 400, "InvalidJson", case=(path, name))
            assert "UTF-8" in error["message"]


def test_utf16_is_refused(client, no_aws):
    raw = json.dumps({"to": US, "body": "hi"}).encode("utf-16")
    error_of(post_bytes(client, "/sms", raw), 400, "InvalidJson")


ESCAPES = {
    "lone high surrogate": r"\ud800",
    "lone low surrogate": r"\udfff",
    "reversed pair": r"\udc00\ud800",
    "high surrogate then text": r"\ud83dx",
    "high surrogate at the end": "x\\ud83d",
}


def test_lone_surrogate_escapes(client, no_aws):
    for name, escape in ESCAPES.items():
        lone_surrogates_are_invalid_json(client, name, escape)


def lone_surrogates_are_invalid_json(client, name, escape):
    cases = {
        "/sms": [f'{{"to":"{US}","body":"{escape}"}}', f'{{"to":"{US}{escape}","body":"hi"}}',
                 f'{{"to":"{US}","body":"hi","{escape}":1}}', f'{{"to":"{US}","body":"hi","x":["{escape}"]}}',
                 f'{{"to":"{US}","body":"hi","senderId":"{escape}"}}'],
        "/mms": [f'{{"to":"{US}","mediaUrl":"{MEDIA}{escape}"}}'],
        "/media": [f'{{"contentType":"image/png{escape}","size":1}}'],
        "/batches": [f'{{"messages":[{{"to":"{US}","body":"{escape}"}}]}}'],
    }
    for path, raws in cases.items():
        for raw in raws:
            error = error_of(post(client, path, raw), 400, "InvalidJson", case=(name, raw))
            assert "surrogate" in error["message"]


def test_valid_escapes_and_a_byte_order_mark_still_work(client):
    response = post(client, "/sms", '{"to":"%s","body":"\\ud83d\\ude00 caf\\u00e9"}' % US)
    assert response.status_code == 202 and body_of(response)["body"] == "\U0001F600 caf\u00e9"
    raw = b"\xef\xbb\xbf" + json.dumps({"to": US, "body": "with a BOM"}).encode()
    assert post_bytes(client, "/sms", raw).status_code == 202


# --- bodies of only whitespace or control characters ------------------------------------------------------

BLANK_BODIES = {
    "spaces": "   ", "line breaks and tabs": "\n\t\r\n", "no-break space": "\u00a0", "ideographic space": "\u3000",
    "zero-width space": "\u200b", "zero-width joiner": "\u200d\u200d", "byte order mark": "\ufeff",
    "line separator": "\u2028", "Hangul filler": "\u3164", "blank Braille": "\u2800", "NUL": "\x00",
    "escape sequence": "\x1b[2J", "DEL": "\x7f", "next line (C1)": "\u0085", "mixed": " \u200b\t\u00a0\x0b",
}
CONTROL_INSIDE = {"NUL inside": "hi\x00there", "bell": "ding\x07", "ANSI colour": "\x1b[31mred", "C1": "a\x9bb"}


def test_blank_and_control_bodies(client, no_aws):
    for name, body in {**BLANK_BODIES, **CONTROL_INSIDE}.items():
        error_of(post(client, "/sms", {"to": US, "body": body}), 400, "InvalidBody", "body", case=name)
        # An MMS body is optional, but one that is there must show something.
        error_of(post(client, "/mms", {"to": US, "body": body, "mediaUrl": MEDIA}), 400, "InvalidBody", "body",
                 case=name)


def test_blank_and_control_bodies_in_batches(client, no_sends):
    bodies = list({**BLANK_BODIES, **CONTROL_INSIDE}.values())
    response = post(client, "/batches", {"messages": [{"to": US, "body": body} for body in bodies]})
    assert response.status_code == 202, response.body
    result = body_of(response)
    assert result["accepted"] == 0
    assert [(r["index"], r["error"]["code"], r["error"]["field"]) for r in result["rejected"]] == [
        (i, "InvalidBody", "body") for i in range(len(bodies))]


def test_line_breaks_and_tabs_inside_a_text_are_fine(client):
    response = post(client, "/sms", {"to": US, "body": "Line one\r\nLine two\n\tindented"})
    assert response.status_code == 202


# --- numbers that cannot receive SMS ------------------------------------------------------------------

REFUSED_NUMBERS = [
    (T.PREMIUM_RATE, "+19005551234"), (T.PREMIUM_RATE, "+449098790123"), (T.PREMIUM_RATE, "+33891234567"),
    (T.SHARED_COST, "+611300123456"), (T.SHARED_COST, "+4918012345678"),
    (T.UAN, "+445512345678"),
    (T.VOICEMAIL, "+49177991234567"), (T.VOICEMAIL, "+41860123456789"),
    (T.PAGER, "+447640123456"), (T.PAGER, "+4916412345"),
    (T.PERSONAL_NUMBER, "+15002345678"), (T.PERSONAL_NUMBER, "+447031234567"),
    (T.TOLL_FREE, "+448001234567"), (T.TOLL_FREE, "+611800123456"),  # toll-free outside the US and Canada
]
SENDABLE_NUMBERS = [
    (T.FIXED_LINE_OR_MOBILE, US), (T.FIXED_LINE_OR_MOBILE, "+12042345678"), (T.MOBILE, "+33612345678"),
    (T.FIXED_LINE, "+442079460958"), (T.VOIP, "+445612345678"), (T.TOLL_FREE, "+18005550199"),
]


def test_numbers_that_cannot_receive_sms(client, no_aws):
    for kind, number in REFUSED_NUMBERS:
        parsed = phonenumbers.parse(number)
        assert phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) == kind, number
        error = error_of(post(client, "/sms", {"to": number, "body": "win a prize"}), 400, "NumberCannotReceiveSms",
                         "to", case=number)
        assert number not in error["message"]
        error_of(post(client, "/mms", {"to": number, "mediaUrl": MEDIA}), 400, "NumberCannotReceiveSms", "to",
                 case=number)
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        region = phonenumbers.region_code_for_number(parsed)
        error_of(post(client, "/sms", {"to": national, "country": region, "body": "x"}), 400,
                 "NumberCannotReceiveSms", "to", case=(national, region))


def test_refused_numbers_in_a_batch(client, no_sends):
    items = [{"to": number, "body": "x"} for _kind, number in REFUSED_NUMBERS]
    result = body_of(post(client, "/batches", {"messages": items}))
    assert result["accepted"] == 0
    assert [r["error"]["code"] for r in result["rejected"]] == ["NumberCannotReceiveSms"] * len(items)


def test_numbers_that_can(client):
    for kind, number in SENDABLE_NUMBERS:
        assert phonenumbers.number_type(phonenumbers.parse(number)) == kind, number
        response = post(client, "/sms", {"to": number, "body": "hello"})
        assert response.status_code == 202, (number, response.body)


def test_every_type_phonenumbers_knows_is_decided():
    from chalicelib.core import phone

    types = {v for k, v in vars(T).items() if k.isupper()}
    assert types == set(phone.SENDABLE) | set(phone.REFUSED)
    assert not set(phone.SENDABLE) & set(phone.REFUSED)


# --- countries outside the allowlist ----------------------------------------------------------------------

@pytest.fixture
def us_ca(aws_env):
    aws_env(ALLOWED_COUNTRIES="US,CA")


OUTSIDE = ["+4930123456", "+447911123456", "+33612345678", "+61412345678", "+525512345678"]


def test_countries_outside_the_allowlist(client, us_ca, no_aws):
    for number in OUTSIDE:
        error_of(post(client, "/sms", {"to": number, "body": "hi"}), 403, "CountryNotAllowed", "to", case=number)
        error_of(post(client, "/mms", {"to": number, "mediaUrl": MEDIA}), 403, "CountryNotAllowed", "to", case=number)
        parsed = phonenumbers.parse(number)
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        error_of(post(client, "/sms", {"to": national, "country": phonenumbers.region_code_for_number(parsed),
                                       "body": "hi"}), 403, "CountryNotAllowed", "to", case=national)


def test_countries_outside_the_allowlist_in_a_batch(client, us_ca, no_sends):
    items = [{"to": n, "body": "hi"} for n in OUTSIDE] + [{"to": n, "mediaUrl": MEDIA} for n in OUTSIDE]
    result = body_of(post(client, "/batches", {"messages": items}))
    assert result["accepted"] == 0
    assert [(r["index"], r["error"]["code"]) for r in result["rejected"]] == [
        (i, "CountryNotAllowed") for i in range(len(items))]


# --- header injection through any field ------------------------------------------------------------------

CRLF = "\r\nX-Injected: 1"


def no_injection(response):
    names = {name.lower() for name in response.headers}
    assert "x-injected" not in names, response.headers
    assert not any("\r" in str(v) or "\n" in str(v) for v in response.headers.values()), response.headers


CRLF_FIELDS = [
    ("/sms", {"to": US + CRLF}, 400, "InvalidPhoneNumber", "to"),
    ("/sms", {"to": "+1425555" + CRLF + "0123"}, 400, "InvalidPhoneNumber", "to"),
    ("/sms", {"to": US + "\x00"}, 400, "InvalidPhoneNumber", "to"),
    ("/sms", {"senderId": "ACME" + CRLF}, 400, "InvalidSenderId", "senderId"),
    ("/sms", {"country": "US" + CRLF, "to": "4255550123"}, 400, "InvalidCountry", "country"),
    ("/sms", {"type": "transactional" + CRLF}, 400, "InvalidType", "type"),
    ("/sms", {"body": "\r\n\r\n"}, 400, "InvalidBody", "body"),
    ("/mms", {"mediaUrl": MEDIA + CRLF}, 400, "InvalidMediaUrl", "mediaUrl"),
    ("/mms", {"mediaUrl": "s3://sms-sender-local-media/a\x00b.png"}, 400, "InvalidMediaUrl", "mediaUrl"),
    ("/media", {"contentType": "image/png" + CRLF}, 422, "MediaTypeNotSupported", "contentType"),
    ("/media", {"contentType": "image/png;" + CRLF}, 422, "MediaTypeNotSupported", "contentType"),
    ("/media", {"contentType": "image/png; x=\u00e9"}, 422, "MediaTypeNotSupported", "contentType"),
]


def test_crlf_in_fields_is_refused(client, no_aws):
    for path, fields, status, code, field in CRLF_FIELDS:
        response = post(client, path, {**BASE[path], **fields})
        error_of(response, status, code, field, case=fields)
        no_injection(response)


def test_crlf_in_batch_items_is_refused(client, no_sends):
    cases = [(fields, code) for path, fields, _status, code, _field in CRLF_FIELDS if path != "/media"]
    items = [{**BASE["/mms" if "mediaUrl" in fields else "/sms"], **fields} for fields, _code in cases]
    response = post(client, "/batches", {"messages": items})
    no_injection(response)
    result = body_of(response)
    assert result["accepted"] == 0
    assert [r["error"]["code"] for r in result["rejected"]] == [code for _fields, code in cases]


def test_crlf_in_a_body_stays_in_the_body(client):
    """Line breaks are part of a text: it is sent, and nothing of it reaches a response header."""
    response = post(client, "/sms", {"to": US, "body": "hi" + CRLF})
    assert response.status_code == 202
    no_injection(response)
    message = body_of(response)
    assert response.headers["Location"] == f"/messages/{message['id']}"
    assert message["body"] == "hi" + CRLF


BAD_KEYS = ["key" + CRLF, "key\nX-Injected: 1", "key\r", "\x00", "tab\there", "caf\u00e9", "\u00ff" * 10,
            "\U0001F600", "", "   ", "k" * 256, "k" * 100_000]


def test_bad_idempotency_keys(client, no_aws):
    for key in BAD_KEYS:
        for path, body in (("/sms", BASE["/sms"]), ("/batches", {"messages": [BASE["/sms"]]}),
                           ("/media", BASE["/media"]), ("/mms", BASE["/mms"])):
            response = post(client, path, body, {"Idempotency-Key": key})
            error_of(response, 400, "InvalidIdempotencyKey", "Idempotency-Key", case=(path, key[:20]))
            no_injection(response)


def test_good_idempotency_keys(client):
    for key in ("k" * 255, "order 42 shipped", "a:b/c=d+e~f", str(uuid.uuid4())):
        assert post(client, "/sms", {"to": US, "body": "hi"}, {"Idempotency-Key": key}).status_code == 202


def test_the_key_is_checked_before_the_body(client, no_aws):
    bomb = nested(5000).encode()
    error_of(post_bytes(client, "/sms", bomb, {"Idempotency-Key": "caf\u00e9"}), 400, "InvalidIdempotencyKey",
             "Idempotency-Key")
    error_of(post_bytes(client, "/sms", bomb, {"Idempotency-Key": "fine"}), 400, "InvalidJson")


def test_huge_headers_are_ignored_not_500(client):
    response = post(client, "/sms", {"to": US, "body": "hi"}, {"X-Filler": "x" * 200_000, "User-Agent": "\u00e9" * 100})
    assert response.status_code == 202


def test_a_response_header_can_never_carry_a_line_break():
    from chalicelib.core import web

    response = web.json_response(201, {}, {"Location": "/messages/a\r\nX-Injected: 1\u00e9", "Retry-After": 1})
    assert response.headers["Location"] == "/messages/a%0D%0AX-Injected: 1%C3%A9"
    assert response.headers["Retry-After"] == "1"


# --- odd ids and paths ------------------------------------------------------------------------------------

ODD_IDS = ["%00", "..", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "a" * 5000, "%ED%A0%80", "%C3%A9", "\u00e9", "%0D%0A",
           "recipient%23%2B14255550123", "'%20OR%201=1--", "%7B%7B7*7%7D%7D", "%20", "-1", "a%20b",
           "batch-" + "x" * 3000, "*", "%2A"]


def test_odd_message_and_batch_ids(client, no_aws):
    for odd in ODD_IDS:
        error_of(client.http.get(f"/messages/{odd}"), 404, "MessageNotFound", case=odd[:40])
        error_of(client.http.get(f"/batches/{odd}"), 404, "BatchNotFound", case=odd[:40])


def test_plausible_ids_that_are_not_there(client):
    missing = str(uuid.uuid4())
    error_of(client.http.get(f"/messages/{missing}"), 404, "MessageNotFound")
    error_of(client.http.get(f"/batches/batch-{missing}"), 404, "BatchNotFound")
    error_of(client.http.get(f"/batches/{missing}"), 404, "BatchNotFound")


def test_a_batch_id_is_not_a_message_and_a_gate_is_neither(client):
    batch = body_of(post(client, "/batches", {"messages": [{"to": US, "body": "hi"}]}))["id"]
    error_of(client.http.get(f"/messages/{batch}"), 404, "MessageNotFound")
    error_of(client.http.get("/messages/recipient#" + US), 404, "MessageNotFound")


# --- the same over real HTTP, on the local stack with the dev stage's settings ----------------------------
# (``stack``: the same module-scoped local stack the end-to-end tests start, imported from them)

@pytest.fixture
def wire(stack):
    tripwire = Tripwire(refuse=(), thread_name="process_request_thread").arm()
    yield tripwire
    tripwire.disarm()


@pytest.fixture
def outbox(stack):
    aws = Http(stack.aws_url)

    def sent():
        return aws.call("GET", "/_outbox")[2]

    return sent


def raw_http(stack, request: bytes, timeout=HANG_GUARD) -> tuple[int, dict, bytes]:
    """One request as raw bytes on a fresh connection, read until the server closes it (every request
    here asks it to, or is one it closes after): (status, headers, body)."""
    host, port = stack.app_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def raw_post(path: str, body: bytes, headers: dict | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             f"Content-Length: {len(body)}", "Connection: close"]
    head = "\r\n".join(lines).encode() + b"".join(b"\r\n" + k + b": " + v for k, v in (headers or {}).items())
    return head + b"\r\n\r\n" + body


def test_http_the_dev_stage_settings_apply(stack):
    """make dev runs the dev stage of cdk.json: its allowedCountries, its provider, its SMS type."""
    assert stack.env["ALLOWED_COUNTRIES"] == "US,CA" and stack.env["SMS_PROVIDER"] == "sns"
    assert stack.env["STAGE"] == "dev" and stack.env["MAX_MPS"] == "20"


def test_http_countries_outside_dev_are_403(stack, api, wire, outbox):
    before = len(outbox())
    for path, fields in (("/sms", {"body": "hi"}), ("/mms", {"mediaUrl": MEDIA})):
        for number in ("+4915112345678", "+447911123456", "+33612345678"):
            status, headers, body = api.call("POST", path, {"to": number, **fields})
            assert (status, body["error"]["code"], body["error"]["field"]) == (403, "CountryNotAllowed", "to")
    assert wire.calls == [] and len(outbox()) == before


def test_http_a_batch_sends_only_what_it_accepted(stack, api, outbox):
    status, _, result = api.call("POST", "/batches", {"messages": [
        {"to": "+4915112345678", "body": "de"}, {"to": "+19005551234", "body": "premium"},
        {"to": US, "body": "   "}, {"to": "+14254147755", "body": "the one that goes"}]})
    assert status == 202 and result["accepted"] == 1
    assert [(r["index"], r["error"]["code"]) for r in result["rejected"]] == [
        (0, "CountryNotAllowed"), (1, "NumberCannotReceiveSms"), (2, "InvalidBody")]
    assert wait_for(lambda: api.call("GET", f"/batches/{result['id']}")[2]["done"]), "the batch did not finish"
    sent = [m for m in outbox() if m["body"] in ("de", "premium", "   ", "the one that goes")]
    assert [(m["to"], m["body"]) for m in sent] == [("+14254147755", "the one that goes")]


def test_http_premium_rate_is_400_and_toll_free_goes(stack, api, wire, outbox):
    before = len(outbox())
    status, _, body = api.call("POST", "/sms", {"to": "+19005551234", "body": "win"})
    assert (status, body["error"]["code"]) == (400, "NumberCannotReceiveSms") and wire.calls == []
    assert len(outbox()) == before
    assert api.call("POST", "/sms", {"to": "+18005550199", "body": "text-enabled toll-free"})[0] == 202


@pytest.mark.parametrize("name", sorted(BAD_BYTES))
def test_http_invalid_utf8(stack, wire, outbox, name):
    before = len(outbox())
    raw = b'{"to":"' + US.encode() + b'","body":"' + BAD_BYTES[name] + b'"}'
    status, headers, body = raw_http(stack, raw_post("/sms", raw))
    assert (status, json.loads(body)["error"]["code"]) == (400, "InvalidJson")
    assert wire.calls == [] and len(outbox()) == before


def test_http_bombs_and_blank_bodies(stack, api, wire, outbox):
    before = len(outbox())
    for path in ("/sms", "/batches"):
        for raw, code in ((nested(100_000).encode(), "InvalidJson"), (nested(40).encode(), "InvalidJson"),
                          (b'{"to":"%s","body":"\\ud800"}' % US.encode(), "InvalidJson")):
            status, _, body = raw_http(stack, raw_post(path, raw))
            assert (status, json.loads(body)["error"]["code"]) == (400, code)
    status, _, body = api.call("POST", "/batches", {"messages": [{}] * 1001})
    assert (status, body["error"]["code"]) == (400, "BatchTooLarge")
    for blank in ("   ", "\u200b", "\x00"):
        status, _, body = api.call("POST", "/sms", {"to": US, "body": blank})
        assert (status, body["error"]["code"]) == (400, "InvalidBody")
    assert wire.calls == [] and len(outbox()) == before


def test_http_body_size_limits(stack, wire):
    from chalicelib.core.inputs import MAX_REQUEST_BYTES

    big = json.dumps({"to": US, "body": "x" * MAX_REQUEST_BYTES}).encode()
    status, _, body = raw_http(stack, raw_post("/sms", big))
    assert (status, json.loads(body)["error"]["code"]) == (400, "RequestTooLarge")
    # Over API Gateway's 10 MB quota: refused by the local server as API Gateway refuses it, body unread.
    huge = b"x" * (10 * 1024 * 1024 + 1)
    status, headers, _ = raw_http(stack, raw_post("/sms", huge))
    assert status == 413 and headers["connection"] == "close"
    assert wire.calls == []


@pytest.mark.parametrize("request_bytes, status", [
    (b"POST /sms HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}", 400),
    (b"POST /sms HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}", 400),
    (b"POST /sms HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
    (b"POST /sms HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411),
])
def test_http_malformed_framing(stack, wire, request_bytes, status):
    assert raw_http(stack, request_bytes)[0] == status
    assert wire.calls == []


def test_http_header_injection_and_odd_headers(stack, wire, outbox):
    before = len(outbox())
    good = json.dumps({"to": US, "body": "hi"}).encode()
    for key in (b"caf\xc3\xa9", b"caf\xe9", b"k" * 256, b"k" * 60_000, b"\x01"):
        status, headers, body = raw_http(stack, raw_post("/sms", good, {b"Idempotency-Key": key}))
        assert (status, json.loads(body)["error"]["code"]) == (400, "InvalidIdempotencyKey"), key[:20]
    # A header line over the server's 64 KB limit, or too many headers: refused by the server itself, never a 500.
    status, _, _ = raw_http(stack, raw_post("/sms", good, {b"X-Filler": b"x" * 70_000}))
    assert status == 431
    status, _, _ = raw_http(stack, raw_post("/sms", good, {b"X-Filler-%d" % i: b"x" for i in range(150)}))
    assert status == 431
    assert wire.calls == [] and len(outbox()) == before
    # A bare CR ends a header line for the local server's parser (Python's email parser), so this is a key
    # and a second request header: sent once, and nothing of it comes back as a response header.
    key = b"hostile-" + uuid.uuid4().hex.encode()
    status, headers, _ = raw_http(stack, raw_post("/sms", good, {b"Idempotency-Key": key + b"\rX-Injected: 1"}))
    assert status == 202 and "x-injected" not in headers
    # A large header the server does take is ignored by the app.
    status, headers, body = raw_http(stack, raw_post("/sms", good, {b"X-Filler": b"x" * 60_000}))
    assert status == 202 and headers["location"] == "/messages/" + json.loads(body)["id"]
    assert len(outbox()) == before + 2


@pytest.mark.parametrize("path", [
    "/messages/%00", "/messages/..%2F..%2Fetc%2Fpasswd", "/messages/../health", "/messages/" + "a" * 8000,
    "/messages/%ED%A0%80", "/messages/%C3%A9", "/messages/%0D%0AX-Injected:%201", "/batches/%00",
    "/batches/batch-%ED%A0%80", "/batches/" + "b" * 8000, "/messages/a/b", "/%2e%2e/%2e%2e/etc/passwd",
    "/sms%0D%0AX-Injected:%201", "/messages?limit=%00", "/messages?next=%ED%A0%80", "/messages?limit=9" + "9" * 5000,
])
def test_http_odd_paths(stack, wire, path):
    status, headers, body = raw_http(stack, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert 400 <= status < 500, (path, status, body[:200])
    assert "x-injected" not in headers
    assert wire.calls == [] or all(c.startswith("dynamodb.") for c in wire.calls)  # only a list look-up


def test_http_raw_bytes_in_the_path_and_an_overlong_request_line(stack, wire):
    for line in (b"GET /messages/\xc3\xa9 HTTP/1.1", b"GET /messages/\xff\xfe HTTP/1.1",
                 b"GET /messages/" + b"a" * 70_000 + b" HTTP/1.1"):
        status, _, _ = raw_http(stack, line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert 400 <= status < 500, (line[:40], status)
    assert wire.calls == []
