"""No input, however odd, gives a 500: every field of every route with values of the wrong type."""
import json

import pytest

from tests.conftest import body_of, post

ODD = [None, 0, -1, 1.5, True, "", " ", "x" * 5000, [], ["+14255550123"], {}, {"a": 1}, "\u0000", "😀"]
ROUTES = {
    "/sms": {"to": "+14255550123", "body": "hi", "type": "transactional", "senderId": "ACME", "country": "US"},
    "/mms": {"to": "+14255550123", "body": "hi", "mediaUrl": "s3://sms-sender-local-media/media/x.png"},
    "/media": {"contentType": "image/png", "size": 10},
}


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_odd_field_values_are_4xx_not_500(client, path):
    for field in ROUTES[path]:
        for value in ODD:
            response = post(client, path, {**ROUTES[path], field: value})
            assert response.status_code < 500 or response.status_code == 503, (field, value, response.body)
            if response.status_code >= 400:
                assert set(body_of(response)["error"]) >= {"code", "message"}


@pytest.mark.parametrize("raw", ["null", "[]", "123", '"s"', "{", "{}", json.dumps({"to": {"$ne": 1}})])
def test_odd_bodies(client, raw):
    for path in ROUTES:
        response = post(client, path, raw)
        assert 400 <= response.status_code < 500, (path, raw, response.body)


@pytest.mark.parametrize("query", ["limit=abc", "limit=0", "limit=9999", "next=%%%", "next=e30", "limit=&next="])
def test_odd_list_queries(client, query):
    response = client.http.get(f"/messages?{query}")
    assert response.status_code in (200, 400), response.body
