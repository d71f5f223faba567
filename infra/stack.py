"""The stack: media bucket, message store, batch queue and the Chalice API, with a CDK-owned,
least-privilege role for the API function."""
from __future__ import annotations

import json
import os
from pathlib import Path

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from chalice.cdk import Chalice
from constructs import Construct

from devstack import appload  # noqa: F401  (the one place that puts app/ on the path)
from chalicelib import schema  # noqa: E402  (table keys shared with the app and the local stack)

from .config import StageConfig

APP_DIR = Path(__file__).resolve().parent.parent / "app"


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


class MessageStore(Construct):
    """Message records (with the list and provider-id indexes) and the idempotency records."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        string = dynamodb.AttributeType.STRING
        self.messages = self._table("Messages", schema.MESSAGES_KEY, schema.MESSAGES_TTL, RemovalPolicy.RETAIN)
        self.messages.add_global_secondary_index(
            index_name=schema.MESSAGES_LIST_INDEX,
            partition_key=dynamodb.Attribute(name=schema.MESSAGES_LIST_PARTITION, type=string),
            sort_key=dynamodb.Attribute(name=schema.MESSAGES_LIST_SORT, type=string),
        )
        self.messages.add_global_secondary_index(
            index_name=schema.MESSAGES_PROVIDER_INDEX,
            partition_key=dynamodb.Attribute(name=schema.MESSAGES_PROVIDER_KEY, type=string),
        )
        self.idempotency = self._table("Idempotency", schema.IDEMPOTENCY_KEY, schema.IDEMPOTENCY_TTL,
                                       RemovalPolicy.DESTROY)

    def _table(self, id: str, key: str, ttl: str, removal: RemovalPolicy) -> dynamodb.Table:
        """On demand, point-in-time recovery, TTL."""
        return dynamodb.Table(
            self, id,
            partition_key=dynamodb.Attribute(name=key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            time_to_live_attribute=ttl,
            removal_policy=removal,
        )


class BatchQueue(Construct):
    """The bulk-send queue and its dead-letter queue: encrypted, SSL only, redrive after N receives."""

    MAX_RECEIVES = 5

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        self.dead_letters = sqs.Queue(
            self, "DeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=Duration.days(14))
        self.queue = sqs.Queue(
            self, "Queue", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            visibility_timeout=Duration.seconds(180),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=self.MAX_RECEIVES, queue=self.dead_letters))


class SenderApi(Construct):
    """The Chalice app, with a role CDK owns and grants only what the API uses."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig, media: MediaBucket,
                 store: MessageStore, batch: BatchQueue) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.role = iam.Role(self, "ApiRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole"))
        media.bucket.grant_read_write(self.role)
        store.messages.grant_read_write_data(self.role)
        store.idempotency.grant_read_write_data(self.role)
        batch.queue.grant_send_messages(self.role)
        # SMS to phone numbers needs sns:Publish on "*"; the Deny keeps every topic out of reach.
        self.role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=["*"]))
        self.role.add_to_policy(iam.PolicyStatement(
            effect=iam.Effect.DENY, actions=["sns:Publish"], resources=["arn:aws:sns:*:*:*"]))
        eum_resources = self.sms_voice_resources(config, stack)
        if eum_resources:
            self.role.add_to_policy(iam.PolicyStatement(
                actions=["sms-voice:SendTextMessage", "sms-voice:SendMediaMessage"], resources=eum_resources))

        environment = {
            "STAGE": config.stage,
            "SMS_PROVIDER": config.sms_provider,
            "DEFAULT_SMS_TYPE": config.default_sms_type,
            "MEDIA_BUCKET": media.bucket.bucket_name,
            "MESSAGES_TABLE": store.messages.table_name,
            "IDEMPOTENCY_TABLE": store.idempotency.table_name,
            "BATCH_QUEUE_URL": batch.queue.queue_url,
            "ALLOWED_COUNTRIES": ",".join(config.allowed_countries),
            "MAX_MPS": str(config.max_mps),
            "POWERTOOLS_SERVICE_NAME": "sms-sender",
        }
        for key, value in (("ORIGINATION_IDENTITY", config.origination_identity),
                           ("CONFIGURATION_SET_NAME", config.configuration_set_name),
                           ("SENDER_ID", config.sender_id)):
            if value:
                environment[key] = value
        self.chalice = Chalice(self, "Chalice", source_dir=str(APP_DIR), stage_config={
            "api_gateway_stage": "api",
            "environment_variables": environment,
            "manage_iam_role": False,
            "iam_role_arn": self.role.role_arn,
            "lambda_memory_size": 512,
            "lambda_timeout": 30,
            "xray": True,
        })
        self._protect_api(config)

    def _protect_api(self, config: StageConfig) -> None:
        """API key plus a usage plan carrying the stage's throttle; access logs, metrics and X-Ray
        on the stage. Chalice's routes already require the key (``api_key_required``)."""
        rest_api = self.chalice.sam_template.get_resource("RestAPI")
        stage_id = "RestAPIapiStage"  # the stage the SAM transform creates for StageName "api"
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=logs.RetentionDays.THREE_MONTHS,
                                         removal_policy=RemovalPolicy.DESTROY)
        rest_api.add_property_override("TracingEnabled", True)
        rest_api.add_property_override("AccessLogSetting", {
            "DestinationArn": self.access_logs.log_group_arn,
            "Format": json.dumps({
                "requestId": "$context.requestId", "ip": "$context.identity.sourceIp",
                "method": "$context.httpMethod", "path": "$context.resourcePath", "status": "$context.status",
                "latencyMs": "$context.responseLatency", "apiKeyId": "$context.identity.apiKeyId"}),
        })
        rest_api.add_property_override("MethodSettings", [{
            "ResourcePath": "/*", "HttpMethod": "*", "MetricsEnabled": True, "LoggingLevel": "ERROR"}])
        self.api_key = apigateway.CfnApiKey(self, "ApiKey", enabled=True,
                                            description=f"sms-sender {config.stage} API key")
        plan = apigateway.CfnUsagePlan(
            self, "UsagePlan",
            api_stages=[apigateway.CfnUsagePlan.ApiStageProperty(api_id=rest_api.ref, stage="api")],
            throttle=apigateway.CfnUsagePlan.ThrottleSettingsProperty(
                rate_limit=config.api_rate_limit, burst_limit=config.api_burst_limit),
        )
        plan.add_override("DependsOn", [stage_id])
        apigateway.CfnUsagePlanKey(self, "UsagePlanKey", key_id=self.api_key.ref, key_type="API_KEY",
                                   usage_plan_id=plan.ref)

    @staticmethod
    def sms_voice_resources(config: StageConfig, stack: Stack) -> list[str]:
        """The identity and configuration-set ARNs sends may use: never ``*``."""
        prefix = f"arn:{stack.partition}:sms-voice:{stack.region}:{stack.account}"
        arns = []
        identity = config.origination_identity
        if identity:
            arns.append(identity if identity.startswith("arn:") else
                        f"{prefix}:{'pool' if identity.startswith('pool-') else 'phone-number'}/{identity}")
        if config.configuration_set_name:
            arns.append(f"{prefix}:configuration-set/{config.configuration_set_name}")
        return arns


class SenderStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        media = MediaBucket(self, "Media", config=config)
        store = MessageStore(self, "Store", config=config)
        batch = BatchQueue(self, "Batch", config=config)
        api = SenderApi(self, "Api", config=config, media=media, store=store, batch=batch)
        CfnOutput(self, "MediaBucketName", value=media.bucket.bucket_name)
        CfnOutput(self, "MessagesTableName", value=store.messages.table_name)
        CfnOutput(self, "BatchQueueUrl", value=batch.queue.queue_url)
        CfnOutput(self, "ApiUrl", value=api.chalice.sam_template.get_output("EndpointURL").value)
        CfnOutput(self, "ApiKeyId", value=api.api_key.ref,
                  description="aws apigateway get-api-key --include-value --api-key <id> shows the value")
