"""The MMS media bucket."""
from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from . import nag
from .config import StageConfig


class MediaBucket(Construct):
    """Private, encrypted, SSL-only; uploads only through presigned POSTs; media expires."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self, "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(config.media_retention_days))],
            cors=[s3.CorsRule(allowed_methods=[s3.HttpMethods.POST], allowed_origins=["*"], allowed_headers=["*"])],
            removal_policy=RemovalPolicy.RETAIN,
        )
        nag.acknowledge(self.bucket.node.default_child, "AwsSolutions-S1",
                        "Objects are short-lived MMS media under random keys, written only through presigned "
                        "POSTs the API issues and records; CloudTrail data events audit access when needed.")
