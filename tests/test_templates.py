"""Templates (``chalicelib/templates``): the placeholder rules on their own, then the ``/templates`` routes and sends
from a template on both channels and in a personalised batch, through the Chalice test client (moto behind it;
a Stubber for End User Messaging's SendMediaMessage, which validates its parameters against botocore's model)."""
from __future__ import annotations

import json
import os

import boto3
import pytest
from botocore.stub import ANY
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from chalicelib.core import errors, segments, store
from chalicelib.templates import manage, render

from .conftest import REGION, body_of, post

TO = "+14255550123"
OTHER = "+14255550124"
IDENTITY = "arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc"


def sent_sms():
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


def error_of(response) -> dict:
    return body_of(response)["error"]


def refusal(call) -> errors.InvalidRequest:
    with pytest.raises(errors.InvalidRequest) as raised:
        call()
    return raised.value


# -- the placeholder rules ------------------------------------------------------------------------------------------
def test_placeholders_are_listed_once_in_order_of_first_use_as_first_written():
    body = "Hi ((First name)), your code is ((code)). Bye (( first NAME )) and ((CODE)) at ((due-date_2))"
    assert render.names(body) == ["First name", "code", "due-date_2"]


def test_names_match_without_regard_to_case_or_spaces_at_their_ends_but_inner_spaces_count():
    body = "Hi ((First name)), code ((code)); again (( first NAME ))."
    assert render.render(body, {"  FIRST NAME ": "Ada", "Code": 42}) == "Hi Ada, code 42; again Ada."
    missing = refusal(lambda: render.render("Hi ((first name))", {"firstname": "Ada", "first  name": "Ada"}))
    assert missing.code == "MissingPersonalisation" and "'first name'" in missing.message


def test_names_may_be_any_script_with_digits_spaces_underscores_and_dashes():
    assert render.render("((Prénom)) ((número 2)) ((名前))", {"prénom": "Zoë", "NÚMERO 2": 7, "名前": "花子"}) == \
        "Zoë 7 花子"


@pytest.mark.parametrize("body, text", [
    ("Reply ((YES to confirm", "Reply ((YES to confirm"),  # never closed: text
    ("Hi ((name)) and ((unclosed", "Hi Ada and ((unclosed"),
    ("(((name)))", "(Ada)"),  # brackets beyond the two that open and two that close: text
    ("Smile :)) ((name))", "Smile :)) Ada"),
    ("((name))((name))", "AdaAda"),
])
def test_an_unclosed_opening_and_extra_brackets_are_plain_text(body, text):
    assert render.render(body, {"name": "Ada"}) == text


@pytest.mark.parametrize("placeholder", [
    "(())", "((   ))", "((first.name))", "((a\nb))", "((tab\there))", "((a ((b))", "((price: $5))", "((50%))",
])
def test_a_placeholder_with_an_empty_name_or_another_character_is_invalid_template_naming_it(placeholder):
    refused = refusal(lambda: render.names(f"Dear customer {placeholder} thanks"))
    assert (refused.code, refused.field) == ("InvalidTemplate", "body")
    assert repr(placeholder) in refused.message


def test_a_missing_value_names_every_missing_placeholder_in_order_and_extra_keys_are_ignored():
    refused = refusal(lambda: render.render("((a)) ((B)) ((c)) ((d))", {"b": "x", "unused": "y"}))
    assert (refused.code, refused.field) == ("MissingPersonalisation", "personalisation")
    assert refused.message == "'personalisation' has no value for 'a', 'c', 'd'."
    assert render.render("no placeholders", None) == "no placeholders"
    assert render.render("((a))", {"a": "x", "unused": "y"}) == "x"


@pytest.mark.parametrize("value, text", [("text", "text"), (42, "42"), (-7, "-7"), (1.5, "1.5"), (0.1, "0.1"),
                                         ("", ""), ("((other))", "((other))")])
def test_values_are_strings_or_numbers_put_in_as_they_are_and_never_rendered_again(value, text):
    assert render.render("[((v))]", {"v": value, "other": "no"}) == f"[{text}]"


@pytest.mark.parametrize("personalisation", [
    "Ada", ["Ada"], {"v": True}, {"v": None}, {"v": ["x"]}, {"v": {"x": 1}}, {"V": "a", " v": "b"},
    json.loads('{"v": 1e400}'),  # JSON that parses as infinity
])
def test_personalisation_that_is_not_an_object_of_strings_and_numbers_is_refused(personalisation):
    refused = refusal(lambda: render.render("((v))", personalisation))
    assert (refused.code, refused.field) == ("InvalidPersonalisation", "personalisation")


def test_a_rendered_body_is_counted_in_segments_by_the_characters_of_its_values():
    body = "Hello ((name)), your appointment is confirmed for ((day)). Reply STOP to opt out."
    plain = render.render(body, {"name": "Zoe", "day": "Monday"})
    accented = render.render(body, {"name": "Zoë", "day": "Monday"})  # ë is not in GSM-7
    assert segments.segment(plain) == (segments.GSM7, 1)
    assert len(accented) > 70 and segments.segment(accented) == (segments.UCS2, 2)


# -- /templates -----------------------------------------------------------------------------------------------------
def make(client, **fields) -> dict:
    response = post(client, "/templates", {"name": "reminder", "body": "Hi ((first name)), see you at ((time)).",
                                           **fields})
    assert response.status_code == 201, response.body
    return body_of(response)


def put(client, template_id, body):
    return client.http.put(f"/templates/{template_id}", body=json.dumps(body),
                           headers={"Content-Type": "application/json"})


def test_a_template_is_made_read_versioned_and_archived(client):
    made = post(client, "/templates", {"name": "  reminder ", "body": "Hi ((first name)), at ((time))."})
    template = body_of(made)
    assert made.status_code == 201 and made.headers["Location"] == f"/templates/{template['id']}"
    assert list(template) == list(manage.FIELDS)
    assert {k: template[k] for k in ("name", "channel", "mediaUrl", "version", "placeholders", "archivedAt")} == {
        "name": "reminder", "channel": "sms", "mediaUrl": None, "version": 1, "placeholders": ["first name", "time"],
        "archivedAt": None}
    assert template["id"].startswith("tpl_") and template["createdAt"] == template["updatedAt"]
    assert body_of(client.http.get(f"/templates/{template['id']}")) == template

    second = put(client, template["id"], {"name": "reminder", "body": "Hello ((first name))! ((time)) it is."})
    assert second.status_code == 200
    v2 = body_of(second)
    assert (v2["version"], v2["placeholders"], v2["createdAt"]) == (2, ["first name", "time"], template["createdAt"])
    assert body_of(client.http.get(f"/templates/{template['id']}")) == v2
    assert body_of(client.http.get(f"/templates/{template['id']}?version=1")) == template
    assert body_of(client.http.get(f"/templates/{template['id']}?version=2")) == v2
    # The same PUT again changes nothing: no version 3.
    assert body_of(put(client, template["id"], {"name": "reminder", "body": "Hello ((first name))! ((time)) it is."})
                   ) == v2
    beyond = client.http.get(f"/templates/{template['id']}?version=3")
    assert beyond.status_code == 404 and error_of(beyond)["code"] == "TemplateNotFound"
    for wrong in ("0", "-1", "two", "1.5"):
        answer = client.http.get(f"/templates/{template['id']}?version={wrong}")
        assert answer.status_code == 400 and (error_of(answer)["code"], error_of(answer)["field"]) == (
            "InvalidTemplateVersion", "version")
    other = put(client, template["id"], {"name": "reminder", "body": "x", "channel": "mms", "mediaUrl": "s3://b/k"})
    assert other.status_code == 400 and error_of(other)["code"] == "InvalidChannel"

    assert client.http.delete(f"/templates/{template['id']}").status_code == 204
    archived = body_of(client.http.get(f"/templates/{template['id']}"))
    assert archived["archivedAt"] and {**archived, "archivedAt": None} == v2
    assert body_of(client.http.get(f"/templates/{template['id']}?version=1"))["archivedAt"] == archived["archivedAt"]
    assert client.http.delete(f"/templates/{template['id']}").status_code == 204  # again: nothing changes
    assert body_of(client.http.get(f"/templates/{template['id']}"))["archivedAt"] == archived["archivedAt"]
    late = put(client, template["id"], {"name": "reminder", "body": "version 3?"})
    assert late.status_code == 404 and error_of(late)["code"] == "TemplateNotFound"


@pytest.mark.parametrize("path", ["/templates/tpl_" + "0" * 32, "/templates/no-such-template", "/templates/x%20y"])
def test_an_unknown_template_is_404_on_every_method(client, path):
    for response in (client.http.get(path), put(client, path.rsplit("/", 1)[1], {"name": "n", "body": "b"}),
                     client.http.delete(path)):
        assert response.status_code == 404 and error_of(response)["code"] == "TemplateNotFound", response.body


def test_the_list_is_newest_first_paged_as_messages_and_shows_archived_templates(client, monkeypatch):
    from datetime import datetime, timedelta, timezone

    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    ticks = iter(range(100))  # each template made a second after the one before, however fast the machine
    monkeypatch.setattr(manage, "now_iso", lambda: store.now_iso(start + timedelta(seconds=next(ticks))))
    made = [make(client, name=f"t{i}") for i in range(5)]
    client.http.delete(f"/templates/{made[1]['id']}")
    first = body_of(client.http.get("/templates?limit=2"))
    second = body_of(client.http.get(f"/templates?limit=2&next={first['next']}"))
    third = body_of(client.http.get(f"/templates?limit=2&next={second['next']}"))
    listed = first["templates"] + second["templates"] + third["templates"]
    assert [t["name"] for t in listed] == ["t4", "t3", "t2", "t1", "t0"] and third["next"] is None
    assert [t["archivedAt"] is not None for t in listed] == [False, False, False, True, False]
    assert listed[0] == body_of(client.http.get(f"/templates/{made[4]['id']}"))
    for query, code in (("limit=0", "InvalidLimit"), ("limit=101", "InvalidLimit"), ("next=nope", "InvalidNext")):
        answer = client.http.get(f"/templates?{query}")
        assert answer.status_code == 400 and error_of(answer)["code"] == code


@pytest.mark.parametrize("fields, code, field", [
    ({"body": "x"}, "MissingField", "name"),
    ({"name": "n"}, "MissingField", "body"),
    ({"name": "n" * 101, "body": "x"}, "InvalidName", "name"),
    ({"name": "n", "body": ""}, "InvalidTemplate", "body"),
    ({"name": "n", "body": " \n\u200b "}, "InvalidTemplate", "body"),
    ({"name": "n", "body": 5}, "InvalidTemplate", "body"),
    ({"name": "n", "body": "Hi ((first.name))"}, "InvalidTemplate", "body"),
    ({"name": "n", "body": "x" * 1601}, "BodyTooLong", "body"),
    ({"name": "n", "body": "bell\x07"}, "InvalidBody", "body"),
    ({"name": "n", "body": "x", "channel": "fax"}, "InvalidChannel", "channel"),
    ({"name": "n", "body": "x", "channel": "mms"}, "MissingField", "mediaUrl"),
    ({"name": "n", "body": "x", "channel": "mms", "mediaUrl": "s3://someone-elses-bucket/a.png"},
     "InvalidMediaUrl", "mediaUrl"),
    ({"name": "n", "body": "x", "mediaUrl": "s3://sms-sender-local-media/media/a.png"}, "InvalidMediaUrl",
     "mediaUrl"),
    ({"name": "n", "body": "x", "version": 2}, "UnknownField", "version"),
])
def test_a_bad_template_is_a_400_naming_the_field(client, fields, code, field):
    response = post(client, "/templates", fields)
    assert response.status_code == 400, response.body
    assert (error_of(response)["code"], error_of(response)["field"]) == (code, field)


# -- sending from a template ----------------------------------------------------------------------------------------
def test_an_sms_from_a_template_sends_and_stores_the_rendered_body_and_keeps_its_version(client):
    template = make(client, body="Hi ((First name)), your code is ((code)).")
    response = post(client, "/sms", {"to": TO, "templateId": template["id"],
                                     "personalisation": {" first NAME": "Ada", "code": 123456, "unused": "x"}})
    assert response.status_code == 202, response.body
    message = body_of(response)
    assert (message["body"], message["templateId"], message["templateVersion"]) == (
        "Hi Ada, your code is 123456.", template["id"], 1)
    assert (message["segments"], message["encoding"]) == (1, "GSM-7")
    assert sent_sms()[-1] == (TO, "Hi Ada, your code is 123456.")

    put(client, template["id"], {"name": "reminder", "body": "Code ((code)) for ((first name)): ¿Zoë?"})
    latest = body_of(post(client, "/sms", {"to": TO, "templateId": template["id"],
                                           "personalisation": {"first name": "Ada", "code": 1}}))
    pinned = body_of(post(client, "/sms", {"to": TO, "templateId": template["id"], "templateVersion": 1,
                                           "personalisation": {"first name": "Ada", "code": 1}}))
    assert (latest["body"], latest["templateVersion"], latest["encoding"]) == ("Code 1 for Ada: ¿Zoë?", 2, "UCS-2")
    assert (pinned["body"], pinned["templateVersion"]) == ("Hi Ada, your code is 1.", 1)
    # The first message keeps what it was sent with.
    assert body_of(client.http.get(f"/messages/{message['id']}")) == message


def test_a_rendered_body_over_1600_characters_is_body_too_long_and_nothing_is_sent(client, calls):
    template = make(client, body="Dear ((name)), " + "x" * 1500)
    before = len(sent_sms())
    start = len(calls)
    response = post(client, "/sms", {"to": TO, "templateId": template["id"], "personalisation": {"name": "y" * 100}})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["field"]) == ("BodyTooLong", "personalisation")
    assert template["id"] in error["message"] and "1600" in error["message"]
    assert len(sent_sms()) == before
    assert not [op for _, op, _ in calls[start:] if op in ("PutItem", "Publish")]  # no record, no send


def test_the_unicode_segment_count_of_a_rendered_sms(client):
    template = make(client, body="Hello ((name)), your appointment is confirmed for ((day)). Reply STOP to opt out.")
    plain = body_of(post(client, "/sms", {"to": TO, "templateId": template["id"],
                                          "personalisation": {"name": "Zoe", "day": "Monday"}}))
    accented = body_of(post(client, "/sms", {"to": TO, "templateId": template["id"],
                                             "personalisation": {"name": "Zoë", "day": "Monday"}}))
    assert (plain["encoding"], plain["segments"]) == ("GSM-7", 1)
    assert (accented["encoding"], accented["segments"]) == ("UCS-2", 2)
    stored = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=os.environ["MESSAGES_TABLE"], Key={"id": {"S": accented["id"]}})["Item"]
    assert store.from_item(stored)["segments"] == 2


def test_a_missing_value_names_every_one_and_nothing_is_recorded(client):
    template = make(client)
    response = post(client, "/sms", {"to": TO, "templateId": template["id"], "personalisation": {"Name": "Ada"}})
    assert response.status_code == 400
    assert error_of(response) == {"code": "MissingPersonalisation", "field": "personalisation",
                                  "message": "'personalisation' has no value for 'first name', 'time'."}


def test_wrong_ways_to_send_from_a_template(client, put_media):
    template = make(client)
    media = make(client, name="picture", body="Look, ((name))", channel="mms", mediaUrl=put_media())
    archived = make(client, name="old")
    client.http.delete(f"/templates/{archived['id']}")
    cases = [
        ("/sms", {"to": TO, "body": "mine", "templateId": template["id"]}, 400, "BodyAndTemplate", "templateId"),
        ("/sms", {"to": TO, "body": "mine", "personalisation": {"a": "b"}}, 400, "MissingField", "templateId"),
        ("/sms", {"to": TO, "body": "mine", "templateVersion": 1}, 400, "MissingField", "templateId"),
        ("/sms", {"to": TO, "templateId": template["id"], "templateVersion": 0}, 400, "InvalidTemplateVersion",
         "templateVersion"),
        ("/sms", {"to": TO, "templateId": template["id"], "templateVersion": "1"}, 400, "InvalidTemplateVersion",
         "templateVersion"),
        ("/sms", {"to": TO, "templateId": template["id"], "templateVersion": 2,
                  "personalisation": {"first name": "a", "time": "b"}}, 404, "TemplateNotFound", "templateVersion"),
        ("/sms", {"to": TO, "templateId": template["id"], "personalisation": "Ada"}, 400, "InvalidPersonalisation",
         "personalisation"),
        ("/sms", {"to": TO, "templateId": "tpl_" + "f" * 32}, 404, "TemplateNotFound", "templateId"),
        ("/sms", {"to": TO, "templateId": 7}, 404, "TemplateNotFound", "templateId"),
        ("/sms", {"to": TO, "templateId": archived["id"], "personalisation": {"first name": "a", "time": "b"}},
         404, "TemplateNotFound", "templateId"),
        ("/sms", {"to": TO, "templateId": media["id"], "personalisation": {"name": "a"}}, 400, "InvalidChannel",
         "templateId"),
        ("/mms", {"to": TO, "templateId": template["id"], "personalisation": {"first name": "a", "time": "b"}},
         400, "InvalidChannel", "templateId"),
        ("/mms", {"to": TO, "templateId": media["id"], "body": "mine"}, 400, "BodyAndTemplate", "templateId"),
    ]
    before = len(sent_sms())
    for path, request, status, code, field in cases:
        response = post(client, path, request)
        assert response.status_code == status, (request, response.body)
        assert (error_of(response)["code"], error_of(response)["field"]) == (code, field), request
    assert "archived" in error_of(post(client, "/sms", cases[9][1]))["message"]
    assert len(sent_sms()) == before


def test_an_mms_from_a_template_carries_its_media_unless_the_request_names_other_media(client, sms_voice, put_media):
    picture, other = put_media("media/ticket.png"), put_media("media/other.png")
    template = make(client, name="ticket", body="Your ticket, ((name)): gate ((gate))", channel="mms",
                    mediaUrl=picture)
    assert (template["channel"], template["mediaUrl"]) == ("mms", picture)
    for media in (picture, other):
        sms_voice.add_response("send_media_message", {"MessageId": f"mms-{media[-9:]}"}, {
            "DestinationPhoneNumber": TO, "MessageBody": "Your ticket, Ada: gate 12", "OriginationIdentity": IDENTITY,
            "MediaUrls": [media], "ConfigurationSetName": "sms-sender-test", "Context": ANY})
    sent = post(client, "/mms", {"to": TO, "templateId": template["id"], "personalisation": {"name": "Ada", "gate": 12}})
    replaced = post(client, "/mms", {"to": TO, "templateId": template["id"], "mediaUrl": other,
                                     "personalisation": {"name": "Ada", "gate": 12}})
    assert sent.status_code == replaced.status_code == 202, (sent.body, replaced.body)
    assert [(body_of(r)["mediaUrl"], body_of(r)["templateId"], body_of(r)["segments"]) for r in (sent, replaced)] == [
        (picture, template["id"], 1), (other, template["id"], 1)]


def test_a_template_whose_media_is_gone_is_refused_as_its_own_media_would_be(client, sms_voice, put_media):
    template = make(client, name="gone", body="See ((what))", channel="mms",
                    mediaUrl=f"s3://{os.environ['MEDIA_BUCKET']}/media/never-uploaded.png")
    response = post(client, "/mms", {"to": TO, "templateId": template["id"], "personalisation": {"what": "this"}})
    assert response.status_code == 404 and error_of(response)["code"] == "MediaNotFound"


# -- personalised batches -------------------------------------------------------------------------------------------
def queued_ids():
    sqs = boto3.client("sqs", region_name=REGION)
    found = []
    while got := sqs.receive_message(QueueUrl=os.environ["BATCH_QUEUE_URL"], MaxNumberOfMessages=10,
                                     AttributeNames=["All"]).get("Messages", []):
        found += got
    return found


def test_a_personalised_batch_renders_each_row_on_its_own_reads_the_template_once_and_sends(client, calls):
    from chalicelib.core.settings import get_settings
    from chalicelib.sending import worker

    from .test_batches import as_event

    template = make(client, body="Hi ((first name)), see you at ((time)).")
    other = make(client, name="other", body="Other ((x))")
    rows = [
        {"to": TO, "personalisation": {"First Name": "Ada", "time": "10:30"}},
        {"to": OTHER, "personalisation": {"first name": "Alan"}},  # no time
        {"to": "not a number", "personalisation": {"first name": "Grace", "time": "9:00"}},
        {"to": TO, "body": "my own", "personalisation": {"first name": "x", "time": "y"}},
        {"to": OTHER, "personalisation": {"first name": "Zoë", "time": "11:00"}},
        {"to": TO, "templateId": other["id"], "personalisation": {"x": 1}},
        {"to": OTHER, "templateId": other["id"], "personalisation": {"x": 2}},
        {"to": TO, "personalisation": {"first name": "x" * 1600, "time": "y"}},
    ]
    start = len(calls)
    response = post(client, "/batches", {"templateId": template["id"], "messages": rows})
    assert response.status_code == 202, response.body
    accepted = body_of(response)
    assert accepted["accepted"] == 4
    assert [(r["index"], r["error"]["code"], r["error"].get("field")) for r in accepted["rejected"]] == [
        (1, "MissingPersonalisation", "personalisation"), (2, "InvalidPhoneNumber", "to"),
        (3, "BodyAndTemplate", "templateId"), (7, "BodyTooLong", "personalisation")]
    assert "'time'" in accepted["rejected"][0]["error"]["message"]
    template_reads = [params["Key"]["id"]["S"] for _, op, params in calls[start:]
                      if op == "GetItem" and params["TableName"] == os.environ["TEMPLATES_TABLE"]]
    assert sorted(template_reads) == sorted([template["id"], other["id"]])  # each once, not once per row

    queued = queued_ids()
    records = [body_of(client.http.get(f"/messages/{json.loads(m['Body'])['messageId']}")) for m in queued]
    assert sorted((r["body"], r["templateId"], r["templateVersion"], r["encoding"]) for r in records) == sorted([
        ("Hi Ada, see you at 10:30.", template["id"], 1, "GSM-7"),
        ("Hi Zoë, see you at 11:00.", template["id"], 1, "UCS-2"),
        ("Other 1", other["id"], 1, "GSM-7"), ("Other 2", other["id"], 1, "GSM-7")])
    # The worker sends what was rendered, and reads no template.
    start = len(calls)
    assert worker.handle(as_event(queued), settings=get_settings(), pacer=worker.TokenBucket(1000)) == {
        "batchItemFailures": []}
    assert not [c for c in calls[start:] if c[2].get("TableName") == os.environ["TEMPLATES_TABLE"]]
    assert sorted(body for _, body in sent_sms()[-4:]) == sorted(
        ["Hi Ada, see you at 10:30.", "Hi Zoë, see you at 11:00.", "Other 1", "Other 2"])


def test_a_batch_whose_template_is_missing_or_archived_is_refused_whole(client):
    archived = make(client, name="old")
    client.http.delete(f"/templates/{archived['id']}")
    rows = [{"to": TO, "personalisation": {"first name": "a", "time": "b"}}]
    for template_id in ("tpl_" + "e" * 32, archived["id"]):
        response = post(client, "/batches", {"templateId": template_id, "messages": rows})
        assert response.status_code == 404 and error_of(response)["code"] == "TemplateNotFound"
    assert queued_ids() == []
    orphan = post(client, "/batches", {"templateVersion": 2, "messages": rows})
    assert orphan.status_code == 400 and (error_of(orphan)["code"], error_of(orphan)["field"]) == (
        "MissingField", "templateId")


def test_a_batch_item_may_name_a_template_the_batch_does_not(client):
    template = make(client)
    rows = [{"to": TO, "body": "plain"},
            {"to": TO, "templateId": template["id"], "personalisation": {"first name": "a", "time": "b"}},
            {"to": TO, "templateId": "tpl_" + "d" * 32},
            {"to": TO, "personalisation": {"first name": "a"}}]
    accepted = body_of(post(client, "/batches", {"messages": rows}))
    assert accepted["accepted"] == 2
    assert [(r["index"], r["error"]["code"]) for r in accepted["rejected"]] == [
        (2, "TemplateNotFound"), (3, "MissingField")]


# -- who may ---------------------------------------------------------------------------------------------------------
def test_senders_read_and_send_from_templates_and_only_templates_manage_changes_them(client):
    from chalicelib.keys import scopes

    from .test_keys import bearer, make_key

    _, manager = make_key(client, [scopes.TEMPLATES])
    _, sender = make_key(client, [scopes.SEND])
    made = post(client, "/templates", {"name": "n", "body": "Hi ((who))"}, bearer(manager))
    assert made.status_code == 201
    template = body_of(made)
    refused = post(client, "/templates", {"name": "n", "body": "x"}, bearer(sender))
    assert refused.status_code == 403 and scopes.TEMPLATES in error_of(refused)["message"]
    for path in ("/templates", f"/templates/{template['id']}"):
        assert client.http.get(path, headers=bearer(sender)).status_code == 200
        assert client.http.get(path, headers=bearer(manager)).status_code == 403
    sent = post(client, "/sms", {"to": TO, "templateId": template["id"], "personalisation": {"who": "you"}},
                bearer(sender))
    assert sent.status_code == 202 and body_of(sent)["body"] == "Hi you"
    assert client.http.delete(f"/templates/{template['id']}", headers=bearer(sender)).status_code == 403


def test_a_test_key_sends_from_the_stages_templates_and_reaches_no_provider(client, calls):
    from chalicelib.keys import scopes

    from .test_keys import bearer, make_key

    template = make(client)
    _, key = make_key(client, [scopes.SEND], test=True)
    start = len(calls)
    sent = post(client, "/sms", {"to": TO, "templateId": template["id"],
                                 "personalisation": {"first name": "Ada", "time": "10:30"}}, bearer(key))
    assert sent.status_code == 202 and body_of(sent)["test"] is True
    assert body_of(sent)["body"] == "Hi Ada, see you at 10:30."
    assert not [op for _, op, _ in calls[start:] if op in ("Publish", "SendTextMessage", "SendMediaMessage")]


def test_a_stage_without_a_templates_table_says_so(client, aws_env):
    aws_env(TEMPLATES_TABLE=None)
    from chalicelib.core.settings import get_settings

    get_settings.cache_clear()
    try:
        for response in (client.http.get("/templates"), post(client, "/templates", {"name": "n", "body": "b"}),
                         post(client, "/sms", {"to": TO, "templateId": "tpl_" + "0" * 32})):
            assert response.status_code == 503 and error_of(response)["code"] == "TemplatesNotConfigured"
    finally:
        get_settings.cache_clear()


def test_the_document_lets_a_put_keep_an_mms_templates_channel_and_name_its_media():
    """On ``PUT`` a left-out or null ``channel`` is the template's own: for an MMS template the document must
    allow its ``mediaUrl`` then, as the API does (the fuzzer found the document refusing what the API took)."""
    import jsonschema

    from chalicelib import openapi

    schema = openapi.DOCUMENT["components"]["schemas"]["TemplateRequest"]
    media = "s3://bucket/media/a.png"
    valid = jsonschema.Draft202012Validator(schema).is_valid
    assert valid({"name": "n", "body": "b", "channel": None, "mediaUrl": media})
    assert valid({"name": "n", "body": "b", "mediaUrl": media})
    assert not valid({"name": "n", "body": "b", "channel": "sms", "mediaUrl": media})
    assert not valid({"name": "n", "body": "b", "channel": "mms"})
