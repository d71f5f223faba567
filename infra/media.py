"""The MMS media bucket."""
from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

import apppath  # noqa: F401  (puts app/ on the path for chalicelib)
from chalicelib.core import schema  # where exports are written, and for how long they are kept

from . import nag
from .config import StageConfig


class MediaBucket(Construct):
    """Private, encrypted, SSL-only; uploads only through presigned POSTs; media expires. CSV exports
    (``exports/``, written by the export function) expire after ``schema.EXPORT_DAYS`` days, or sooner when
    ``mediaRetentionDays`` is shorter (S3 applies whichever rule expires an object first), and an upload an
    export left unfinished is aborted after a day."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self, "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(config.media_retention_days)),
                             s3.LifecycleRule(prefix=schema.EXPORTS_PREFIX, expiration=Duration.days(schema.EXPORT_DAYS),
                                              abort_incomplete_multipart_upload_after=Duration.days(1))],
            cors=[s3.CorsRule(allowed_methods=[s3.HttpMethods.POST], allowed_origins=["*"], allowed_headers=["*"])],
            removal_policy=RemovalPolicy.RETAIN,
        )
        nag.acknowledge(self.bucket.node.default_child, "AwsSolutions-S1",
                        "Objects are short-lived MMS media under random keys, written only through presigned "
                        "POSTs the API issues and records; CloudTrail data events audit access when needed.")
