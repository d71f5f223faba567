"""Presigned uploads name S3's regional endpoint, which works for a new bucket in any region."""
from urllib.parse import urlparse

import pytest

from .conftest import post, body_of


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-5"])
def test_a_presigned_upload_goes_to_the_buckets_region(settings_env, monkeypatch, region):
    from chalicelib.core import aws
    from chalicelib.sending import media
    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    settings_env(MEDIA_BUCKET="media-bucket", MESSAGES_TABLE="t", IDEMPOTENCY_TABLE="i")
    upload = media.create_upload(get_settings(), content_type="image/png", size=1024)
    assert urlparse(upload["upload"]["url"]).hostname == f"media-bucket.s3.{region}.amazonaws.com"
    assert aws.s3_endpoint(region) == f"https://s3.{region}.amazonaws.com"


def test_the_local_stack_endpoint_wins(settings_env, monkeypatch):
    from chalicelib.core import aws

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert aws.s3_endpoint("us-east-1") is None


def test_the_api_answers_with_the_regional_url(client):
    response = post(client, "/media", {"contentType": "image/png", "size": 100})
    assert response.status_code == 201
    assert urlparse(body_of(response)["upload"]["url"]).hostname.endswith(".s3.us-east-1.amazonaws.com")
