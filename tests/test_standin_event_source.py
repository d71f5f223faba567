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

