"""botocore's data files parsed once per test process (tests/botocore_models.py), against botocore's own parse
and against the requests of clients that parse for themselves."""
from __future__ import annotations

import boto3
import pytest
from botocore import loaders
from botocore.loaders import JSONFileLoader, Loader

from . import botocore_models

FILES = ["endpoints", "partitions", "dynamodb/2012-08-10/service-2", "sns/2010-03-31/service-2",
         "pinpoint-sms-voice-v2/2022-03-31/service-2", "sqs/2012-11-05/service-2", "s3/2006-03-01/service-2"]


def test_the_test_process_parses_each_file_once():
    assert JSONFileLoader._load_file is botocore_models.load_file_once


@pytest.mark.parametrize("name", FILES)
def test_a_file_is_what_botocore_parses(name, monkeypatch):
    monkeypatch.setattr(botocore_models, "_parsed", {})  # parsed here, not as earlier tests' clients left it
    path = next(f"{base}/{name}" for base in Loader().search_paths if JSONFileLoader().exists(f"{base}/{name}"))
    loader = JSONFileLoader()
    # botocore's own parse, by the first of its file endings that is there (.json, .json.gz)
    theirs = next(data for ending, open_method in loaders._JSON_OPEN_METHODS.items()
                  if (data := botocore_models.BOTOCORE_LOAD_FILE(loader, path + ending, open_method)) is not None)
    assert theirs
    assert loader.load_file(path) == theirs
    assert loader.load_file(path) == theirs  # the second time, as it was parsed


def test_new_sessions_parse_nothing_again(monkeypatch):
    parsed, botocore_s = [], botocore_models.BOTOCORE_LOAD_FILE

    def counting(self, full_path, open_method):
        data = botocore_s(self, full_path, open_method)
        if data is not None:  # a file that is there (botocore tries each ending)
            parsed.append(full_path)
        return data

    monkeypatch.setattr(botocore_models, "BOTOCORE_LOAD_FILE", counting)
    monkeypatch.setattr(botocore_models, "_parsed", {})
    for _ in range(3):
        boto3.session.Session(region_name="us-east-1").client("dynamodb")
    assert parsed and len(parsed) == len(set(parsed))  # each file parsed once, however many sessions


def test_a_file_that_changes_is_parsed_again(tmp_path):
    model = tmp_path / "model.json"
    model.write_text('{"a": 1}')
    loader = JSONFileLoader()
    assert loader.load_file(str(tmp_path / "model")) == {"a": 1}
    model.write_text('{"a": 22}')
    assert loader.load_file(str(tmp_path / "model")) == {"a": 22}
    assert loader.load_file(str(tmp_path / "missing")) is None


# One call of each service the suite's code calls, where botocore writes into its loaded data: the endpoint's
# entry for the region, the partition's name, S3's requestUri (the bucket taken off it).
CALLS = [
    ("s3", "put_object", {"Bucket": "media-bucket", "Key": "mms/m-1/photo.jpg", "Body": b"jpeg"}),
    ("s3", "get_object", {"Bucket": "media-bucket", "Key": "mms/m-1/photo.jpg"}),
    ("sqs", "send_message", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/batch",
                             "MessageBody": '{"id": "m-1"}'}),
    ("dynamodb", "put_item", {"TableName": "messages", "Item": {"id": {"S": "m-1"}}}),
    ("sns", "publish", {"PhoneNumber": "+14255550123", "Message": "Your code is 123456"}),
    ("pinpoint-sms-voice-v2", "send_text_message",
     {"DestinationPhoneNumber": "+14255550123", "MessageBody": "Your code is 123456"}),
]
# What a request carries that is the same on every run: not the time, the signature or the invocation id.
KEPT_HEADERS = ("Content-Type", "X-Amz-Target", "Content-MD5", "X-Amz-Content-SHA256")


class _Sent(Exception):
    def __init__(self, request):
        super().__init__("captured")
        self.request = request


def _requests(region: str) -> list[tuple]:
    """The request each of CALLS would send from a new session's clients, caught before it leaves."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=region)
    sent = []
    for service, operation, params in CALLS:
        client = session.client(service)

        def catch(request, **_):
            raise _Sent(request)

        client.meta.events.register("before-send", catch)
        with pytest.raises(_Sent) as caught:
            getattr(client, operation)(**params)
        request = caught.value.request
        body = request.body.read() if hasattr(request.body, "read") else request.body  # S3's is a stream
        sent.append((service, operation, request.method, request.url, body,
                     {name: request.headers.get(name) for name in KEPT_HEADERS}))
    return sent


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_clients_on_shared_data_send_what_clients_parsing_their_own_send(region, monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with monkeypatch.context() as own:
        own.setattr(JSONFileLoader, "_load_file", botocore_models.BOTOCORE_LOAD_FILE)
        theirs = _requests(region)
    _requests(region)  # the first clients on the shared data: botocore's writes into it happen here
    ours = _requests(region)
    assert ours == theirs
    assert [url for _, _, _, url, _, _ in ours[:2]] == [
        f"https://media-bucket.s3.{'' if region == 'us-east-1' else region + '.'}amazonaws.com/mms/m-1/photo.jpg"] * 2
