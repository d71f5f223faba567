"""The local SQS event source refuses what Lambda refuses: a function whose timeout is longer than its queue's
visibility timeout. "Your function's timeout must be less than or equal to the queue's visibility timeout. Lambda
validates this requirement when you create or update an event source mapping and will return an error if the
function timeout exceeds the queue's visibility timeout."
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html)"""
import boto3
import pytest
from moto import mock_aws

from devstack import queues


def test_a_function_timeout_longer_than_the_visibility_timeout_is_refused():
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "10"})["QueueUrl"]
        with pytest.raises(ValueError, match=r"timeout \(10.5 s\) exceeds the queue's visibility timeout \(10 s\)"):
            queues.SqsEventSource(sqs=sqs, queue_url=queue, function=print, function_timeout=10.5)
        assert queues.SqsEventSource(sqs=sqs, queue_url=queue, function=print, function_timeout=10).queue_arn



def test_a_local_stack_that_cannot_start_stops_what_it_started_and_restores_the_environment():
    """The refusal above comes after the embedded AWS and the app server are up: they are stopped, their ports
    closed, and the environment is as it was (a ``with`` block never reaches ``__exit__`` when ``start`` raises)."""
    import os
    import urllib.error
    import urllib.request

    from devstack.server import LocalStack

    before = {name: os.environ.get(name) for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "BATCH_QUEUE_URL")}
    stack = LocalStack(app_port=0, aws_port=0, visibility_timeout=3, function_timeout=20)
    with pytest.raises(ValueError, match="which Lambda refuses"):
        stack.start()
    assert {name: os.environ.get(name) for name in before} == before
    assert stack.aws_url and stack.app_url
    for url in (stack.aws_url, stack.app_url):
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{url}/health", timeout=5)
