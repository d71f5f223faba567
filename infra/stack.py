"""The stack: media bucket, message store, batch queue and the Chalice API, with a CDK-owned,
least-privilege role for the API function."""
from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Acknowledgment, CfnOutput, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as logs_destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_smsvoice as smsvoice
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import custom_resources as cr
from chalice.cdk import Chalice
from constructs import Construct

from devstack import appload  # noqa: F401  (the one place that puts app/ on the path)
from chalicelib import schema  # noqa: E402  (table keys shared with the app and the local stack)
from chalicelib import worker as pacing  # noqa: E402  (how many worker instances a maxMps takes)

from . import nag
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
        nag.acknowledge(self.bucket.node.default_child, "AwsSolutions-S1",
                        "Objects are short-lived MMS media under random keys, written only through presigned "
                        "POSTs the API issues and records; CloudTrail data events audit access when needed.")


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
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,  # the ingest needs only our id
        )
        self.messages.add_global_secondary_index(
            index_name=schema.MESSAGES_BATCH_INDEX,
            partition_key=dynamodb.Attribute(name=schema.MESSAGES_BATCH_KEY, type=string),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=list(schema.MESSAGES_BATCH_PROJECTION),
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
    # The worker's timeout; the queue's visibility timeout is 6 times it, as AWS advises for
    # Lambda event sources.
    WORKER_TIMEOUT_SECONDS = 30

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        self.dead_letters = sqs.Queue(
            self, "DeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=Duration.days(14))
        self.queue = sqs.Queue(
            self, "Queue", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            visibility_timeout=Duration.seconds(6 * self.WORKER_TIMEOUT_SECONDS),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=self.MAX_RECEIVES, queue=self.dead_letters))


class DeliveryLogging(Construct):
    """SNS SMS delivery-status logs: the two log groups (made here, with retention, so that
    subscription filters can attach at deploy time), a role SNS assumes to write only to them, and
    the account's SMS attributes set through ``SetSMSAttributes``. Those attributes and the log-group
    names are one per account and region: only the stage with ``accountSettings`` makes them, and
    deleting it leaves the attributes as they are. Other stages use the groups by name."""

    # The name the custom resource's singleton Lambda gets in every stack (aws-cdk-lib constant).
    CUSTOM_RESOURCE_PROVIDER = "AWS679f53fac002430cb0da5b7982bd2287"

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        base = f"sns/{stack.region}/{stack.account}/DirectPublishToPhoneNumber"
        if not config.account_settings:
            self.success = logs.LogGroup.from_log_group_name(self, "Success", base)
            self.failure = logs.LogGroup.from_log_group_name(self, "Failure", f"{base}/Failure")
            return
        self.success = logs.LogGroup(self, "Success", log_group_name=base,
                                     retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.RETAIN)
        self.failure = logs.LogGroup(self, "Failure", log_group_name=f"{base}/Failure",
                                     retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.RETAIN)
        self.role = iam.Role(self, "SnsDeliveryStatusRole", assumed_by=iam.ServicePrincipal("sns.amazonaws.com"))
        self.role.apply_removal_policy(RemovalPolicy.RETAIN)  # the account keeps pointing at it after a delete
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[self.success.log_group_arn, self.failure.log_group_arn]))
        attributes = {
            "DeliveryStatusIAMRole": self.role.role_arn,
            "DeliveryStatusSuccessSamplingRate": "100",  # every delivery, so every message gets a final status
            "DefaultSMSType": config.default_sms_type.capitalize(),
        }
        if config.monthly_spend_limit_usd:
            attributes["MonthlySpendLimit"] = str(config.monthly_spend_limit_usd)
        call = cr.AwsSdkCall(service="SNS", action="setSMSAttributes", parameters={"attributes": attributes},
                             physical_resource_id=cr.PhysicalResourceId.of(f"{config.prefix}-sms-attributes"))
        self.sms_attributes = cr.AwsCustomResource(
            self, "SmsAttributes", on_create=call, on_update=call,  # no on_delete: leave the account alone
            policy=cr.AwsCustomResourcePolicy.from_statements([
                iam.PolicyStatement(actions=["sns:SetSMSAttributes"], resources=["*"]),
                iam.PolicyStatement(actions=["iam:PassRole"], resources=[self.role.role_arn]),
            ]),
            install_latest_aws_sdk=False,
        )
        nag.acknowledge(self.sms_attributes, "AwsSolutions-IAM5[Resource::*]",
                        "sns:SetSMSAttributes has no resource-level permissions; PassRole is scoped to the role.")
        provider = stack.node.find_child(self.CUSTOM_RESOURCE_PROVIDER)
        nag.acknowledge(provider, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                                  "AWSLambdaBasicExecutionRole]",
                        "aws-cdk-lib's AwsCustomResource provider; the managed policy only lets it write its logs.")


class EndUserMessaging(Construct):
    """The End User Messaging configuration set: every text and media event to a CloudWatch Logs
    group, and a protect configuration that blocks countries outside ``allowedCountries``."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        self.configuration_set_name = config.configuration_set_name or f"{config.prefix}-config"
        self.events = logs.LogGroup(self, "Events", retention=logs.RetentionDays.THREE_MONTHS,
                                    removal_policy=RemovalPolicy.RETAIN)
        role = iam.Role(self, "EventsRole", assumed_by=iam.ServicePrincipal("sms-voice.amazonaws.com"))
        role.add_to_policy(iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                               resources=[self.events.log_group_arn]))
        self.protect = None
        if config.allowed_countries:
            import phonenumbers

            rules = [smsvoice.CfnProtectConfiguration.CountryRuleProperty(
                country_code=code, protect_status="ALLOW" if code in config.allowed_countries else "BLOCK")
                for code in sorted(phonenumbers.SUPPORTED_REGIONS | set(config.allowed_countries))]
            self.protect = smsvoice.CfnProtectConfiguration(
                self, "Protect", country_rule_set=smsvoice.CfnProtectConfiguration.CountryRuleSetProperty(
                    sms=rules, mms=rules))
        self.configuration_set = smsvoice.CfnConfigurationSet(
            self, "ConfigurationSet",
            configuration_set_name=self.configuration_set_name,
            protect_configuration_id=self.protect.attr_protect_configuration_id if self.protect else None,
            event_destinations=[smsvoice.CfnConfigurationSet.EventDestinationProperty(
                enabled=True, event_destination_name="status-logs",
                matching_event_types=["TEXT_ALL", "MEDIA_ALL"],
                cloud_watch_logs_destination=smsvoice.CfnConfigurationSet.CloudWatchLogsDestinationProperty(
                    iam_role_arn=role.role_arn, log_group_arn=self.events.log_group_arn))],
        )


class SenderApi(Construct):
    """The Chalice app: the API, the batch worker and the status ingest. Each function runs as a
    role CDK owns, granted only what that function uses, and logs to a log group CDK owns (with
    retention), the only group its role may write to."""

    API, WORKER, INGEST = "api_handler", "batch_worker", "status_ingest"  # Chalice's function names
    LOGICAL_IDS = {API: "APIHandler", WORKER: "BatchWorker", INGEST: "StatusIngest"}
    def __init__(self, scope: Construct, id: str, *, config: StageConfig, media: MediaBucket,
                 store: MessageStore, batch: BatchQueue, configuration_set_name: str | None = None) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.log_groups: dict[str, logs.LogGroup] = {}
        self.roles: dict[str, iam.Role] = {}
        send_reason = ("SMS to phone numbers needs sns:Publish on *, and an explicit Deny keeps every topic out of "
                       "reach; X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions.")
        api = self.role = self._function_role(self.API, "ApiRole", wildcard_reason=send_reason)
        worker = self._function_role(self.WORKER, "WorkerRole", wildcard_reason=send_reason)
        ingest = self._function_role(self.INGEST, "IngestRole", wildcard_reason=(
            "X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions."))
        eum_resources = self.sms_voice_resources(config, stack, configuration_set_name)
        bucket = media.bucket
        bucket_id = stack.get_logical_id(bucket.node.default_child)
        messages = store.messages.table_arn
        for role in (api, worker):
            # SMS to phone numbers needs sns:Publish on "*"; the Deny keeps every topic out of reach.
            role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=["*"]))
            role.add_to_policy(iam.PolicyStatement(
                effect=iam.Effect.DENY, actions=["sns:Publish"], resources=["arn:aws:sns:*:*:*"]))
            if eum_resources:
                role.add_to_policy(iam.PolicyStatement(
                    actions=["sms-voice:SendTextMessage", "sms-voice:SendMediaMessage"], resources=eum_resources))
            # HeadObject, and SendMediaMessage (which reads with the caller's rights), on any object of
            # the bucket; ListBucket so a missing object is a 404 rather than a 403.
            role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects("*")]))
            role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn]))
            nag.acknowledge(role.node.find_child("DefaultPolicy"), f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/*]",
                            "MMS sends read the object named by mediaUrl, which may be any key in this one bucket.")
        # The presigned POST signs with the API's role: PutObject under the upload prefix only.
        api.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"],
                                              resources=[bucket.arn_for_objects(f"{schema.MEDIA_PREFIX}*")]))
        nag.acknowledge(api.node.find_child("DefaultPolicy"),
                        f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{schema.MEDIA_PREFIX}*]",
                        "Presigned POST uploads go to random keys under the upload prefix of this one bucket.")
        api.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"],
            resources=[messages]))
        api.add_to_policy(iam.PolicyStatement(actions=["dynamodb:Query"], resources=[
            f"{messages}/index/{schema.MESSAGES_LIST_INDEX}", f"{messages}/index/{schema.MESSAGES_BATCH_INDEX}"]))
        api.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            resources=[store.idempotency.table_arn]))
        api.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[batch.queue.queue_arn]))
        # The worker claims and updates records, and keeps the per-recipient pacing gate in the
        # idempotency table (short-lived keys).
        worker.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[messages]))
        worker.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:PutItem"], resources=[store.idempotency.table_arn]))
        worker.add_to_policy(iam.PolicyStatement(
            actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                     "sqs:ChangeMessageVisibility"], resources=[batch.queue.queue_arn]))
        # The ingest finds a record by the provider's id and settles it.
        ingest.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:Query"], resources=[f"{messages}/index/{schema.MESSAGES_PROVIDER_INDEX}"]))
        ingest.add_to_policy(iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[messages]))
        self.concurrency = pacing.instances_for(config.max_mps)  # the worker paces by the same rule
        self._functions: dict[str, lambda_.IFunction] = {}

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
            "WORKER_CONCURRENCY": str(self.concurrency),
            "MAX_RECEIVES": str(BatchQueue.MAX_RECEIVES),
            "POWERTOOLS_SERVICE_NAME": "sms-sender",
        }
        for key, value in (("ORIGINATION_IDENTITY", config.origination_identity),
                           ("CONFIGURATION_SET_NAME", configuration_set_name),
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
        # Chalice reads per-function settings from .chalice/config.json only, not from the
        # construct's stage_config, so each function's own role and timeout are set here.
        timeouts = {self.WORKER: BatchQueue.WORKER_TIMEOUT_SECONDS, self.INGEST: 60}
        for name, role in self.roles.items():
            function = self.chalice.get_resource(self.LOGICAL_IDS[name])
            function.add_property_override("Role", role.role_arn)
            if name in timeouts:
                function.add_property_override("Timeout", timeouts[name])
        for name, log_group in self.log_groups.items():
            function = self.chalice.get_resource(self.LOGICAL_IDS[name])
            function.add_property_override("LoggingConfig", {"LogGroup": log_group.log_group_name,
                                                             "LogFormat": "Text"})
            # cdk-nag sees these only after the SAM transform (checked in the tests); the
            # acknowledgments travel in the AWS::Serverless resource's Metadata.
            nag.acknowledge(function, "AwsSolutions-L1",
                            "Chalice packages for the Python that runs the synth (pinned by the Makefile's "
                            "venv); the runtime follows it, so the wheels always match.")
        rest_api = self.chalice.get_resource("RestAPI")
        nag.acknowledge(rest_api, "AwsSolutions-APIG2",
                        "The app validates every field and answers with the contract's error codes; API Gateway "
                        "validation would answer first, in another shape.")
        nag.acknowledge(rest_api, "AwsSolutions-APIG3",
                        "Sends need the API key, and the usage plan throttles them; add a WAF web ACL in front "
                        "of a public production API if you need IP or rate rules beyond that.")
        self._protect_api(config)
        self._drain(batch)

    def function(self, name: str) -> lambda_.IFunction:
        """A Chalice function as a CDK ``IFunction``, in this stack's environment, so that CDK may
        add permissions to it (the subscription filters' invoke permission)."""
        if name not in self._functions:
            self._functions[name] = lambda_.Function.from_function_attributes(
                self, f"{self.LOGICAL_IDS[name]}Function", same_environment=True,
                function_arn=self.chalice.get_resource(self.LOGICAL_IDS[name]).get_att("Arn").to_string())
        return self._functions[name]

    def _drain(self, batch: BatchQueue) -> None:
        """The worker drains the batch queue: 10 records an invocation, partial failures reported,
        at most ``concurrency`` instances."""
        mapping = lambda_.CfnEventSourceMapping(
            self, "WorkerQueue", function_name=self.function(self.WORKER).function_name,
            event_source_arn=batch.queue.queue_arn, batch_size=10, maximum_batching_window_in_seconds=1,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=lambda_.CfnEventSourceMapping.ScalingConfigProperty(maximum_concurrency=self.concurrency))
        mapping.node.add_dependency(self.roles[self.WORKER])  # the poller needs the SQS rights first

    def ingest_from(self, log_groups: list[logs.ILogGroup]) -> None:
        """Subscription filters: every line of these log groups goes to the status ingest (the
        Lambda destination also grants CloudWatch Logs the right to invoke it)."""
        destination = logs_destinations.LambdaDestination(self.function(self.INGEST))
        for i, group in enumerate(log_groups):
            logs.SubscriptionFilter(self, f"IngestSubscription{i}", log_group=group, destination=destination,
                                    filter_pattern=logs.FilterPattern.all_events())

    def _function_role(self, name: str, id: str, *, wildcard_reason: str) -> iam.Role:
        """A role for one function: write to its own log group, send X-Ray traces, nothing else yet."""
        log_group = self.log_groups[name] = logs.LogGroup(
            self, f"{id}Logs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.DESTROY)
        role = self.roles[name] = iam.Role(self, id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        role.add_to_policy(iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                               resources=[log_group.log_group_arn]))
        role.add_to_policy(iam.PolicyStatement(actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                                               resources=["*"]))
        nag.acknowledge(role.node.find_child("DefaultPolicy"), "AwsSolutions-IAM5[Resource::*]", wildcard_reason)
        return role

    def _protect_api(self, config: StageConfig) -> None:
        """API key plus a usage plan carrying the stage's throttle; access logs, metrics and X-Ray
        on the stage. Chalice's routes already require the key (``api_key_required``)."""
        rest_api = self.chalice.sam_template.get_resource("RestAPI")
        stage_id = "RestAPIapiStage"  # the stage the SAM transform creates for StageName "api"
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=logs.RetentionDays.THREE_MONTHS,
                                         removal_policy=RemovalPolicy.DESTROY)
        rest_api.add_property_override("Name", f"{config.prefix}-api")
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
        cdk_validations = "CloudFormation-Validate::E3005"
        Validations.of(plan).acknowledge(Acknowledgment(id=cdk_validations, reason=(
            f"{stage_id} does exist once CloudFormation runs the SAM transform; the tests check it does.")))
        if config.account_settings:
            # Access and execution logs need API Gateway's account-wide CloudWatch Logs role (one per
            # account and region, so only the stage with accountSettings sets it, and keeps it on delete).
            role = iam.Role(self, "CloudWatchRole", assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
                            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                                "service-role/AmazonAPIGatewayPushToCloudWatchLogs")])
            role.apply_removal_policy(RemovalPolicy.RETAIN)
            nag.acknowledge(role, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                                  "AmazonAPIGatewayPushToCloudWatchLogs]",
                            "The AWS-managed policy API Gateway documents for its account logging role; it only "
                            "creates and writes API Gateway's own log groups.")
            account = apigateway.CfnAccount(self, "Account", cloud_watch_role_arn=role.role_arn)
            account.apply_removal_policy(RemovalPolicy.RETAIN)
            rest_api.node.add_dependency(account)
        apigateway.CfnUsagePlanKey(self, "UsagePlanKey", key_id=self.api_key.ref, key_type="API_KEY",
                                   usage_plan_id=plan.ref)

    @staticmethod
    def sms_voice_resources(config: StageConfig, stack: Stack, configuration_set_name: str | None) -> list[str]:
        """The identity and configuration-set ARNs sends may use: never ``*``."""
        prefix = f"arn:{stack.partition}:sms-voice:{stack.region}:{stack.account}"
        arns = []
        identity = config.origination_identity
        if identity:
            arns.append(identity if identity.startswith("arn:") else
                        f"{prefix}:{'pool' if identity.startswith('pool-') else 'phone-number'}/{identity}")
        if configuration_set_name:
            arns.append(f"{prefix}:configuration-set/{configuration_set_name}")
        return arns


class Monitoring(Construct):
    """Alarms, all to one topic (with an email subscription when alarmEmail is set), and a dashboard."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig, api: "SenderApi",
                 batch: BatchQueue) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(self, "Alarms", enforce_ssl=True)
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        five = Duration.minutes(5)
        failed = cloudwatch.Metric(namespace="AWS/SNS", metric_name="NumberOfNotificationsFailed",
                                   statistic="Sum", period=five)
        delivered = cloudwatch.Metric(namespace="AWS/SNS", metric_name="NumberOfNotificationsDelivered",
                                      statistic="Sum", period=five)
        spend = cloudwatch.Metric(namespace="AWS/SNS", metric_name="SMSMonthToDateSpentUSD",
                                  statistic="Maximum", period=five)
        api_dims = {"ApiName": f"{config.prefix}-api", "Stage": "api"}
        server_errors = cloudwatch.Metric(namespace="AWS/ApiGateway", metric_name="5XXError",
                                          dimensions_map=api_dims, statistic="Sum", period=five)
        latency = cloudwatch.Metric(namespace="AWS/ApiGateway", metric_name="Latency",
                                    dimensions_map=api_dims, statistic="p99", period=five)
        sends = cloudwatch.Metric(namespace="AWS/ApiGateway", metric_name="Count",
                                  dimensions_map=api_dims, statistic="Sum", period=five)
        greater = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        alarms = {"SmsDeliveryFailures": (failed, 5, "5 or more SMS failed delivery in 5 minutes")}
        for label, name in (("Api", api.API), ("Worker", api.WORKER), ("Ingest", api.INGEST)):
            function = api.function(name)
            alarms[f"{label}Errors"] = (function.metric_errors(period=five), 1, f"the {name} function raised errors")
            alarms[f"{label}Throttles"] = (function.metric_throttles(period=five), 1,
                                           f"the {name} function was throttled")
        alarms.update({
            "Api5xx": (server_errors, 5, "API Gateway answered 5XX 5 or more times in 5 minutes"),
            "DeadLetters": (batch.dead_letters.metric_approximate_number_of_messages_visible(period=five), 1,
                            "batch messages gave up and sit in the dead-letter queue"),
            "BatchQueueAge": (batch.queue.metric_approximate_age_of_oldest_message(period=five), 900,
                              "the oldest batch message has waited 15 minutes or more"),
        })
        if config.monthly_spend_limit_usd:
            alarms["SpendAt80Percent"] = (spend, round(config.monthly_spend_limit_usd * 0.8, 2),
                                          "month-to-date SMS spend reached 80% of monthlySpendLimitUsd")
        self.alarms = {}
        for name, (metric, threshold, description) in alarms.items():
            alarm = cloudwatch.Alarm(self, name, metric=metric, threshold=threshold, evaluation_periods=1,
                                     comparison_operator=greater, alarm_description=description,
                                     treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
            self.alarms[name] = alarm
        # Counts the worker and the status ingest log once per invocation, turned into metrics.
        counted = {}
        for function, field, metric_name in ((api.WORKER, "sent", "BatchSends"),
                                             (api.INGEST, "applied", "StatusesApplied"),
                                             (api.INGEST, "unknown", "StatusUnknownMessage"),
                                             (api.INGEST, "malformed", "StatusMalformedLine")):
            logs.MetricFilter(self, metric_name, log_group=api.log_groups[function],
                              metric_namespace=f"SmsSender/{config.stage}", metric_name=metric_name,
                              filter_pattern=logs.FilterPattern.exists(f"$.{field}"), metric_value=f"$.{field}")
            counted[metric_name] = cloudwatch.Metric(namespace=f"SmsSender/{config.stage}", metric_name=metric_name,
                                                     statistic="Sum", period=five)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{config.prefix}")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Sends (API requests, batch sends)", left=[sends, counted["BatchSends"]]),
            cloudwatch.GraphWidget(title="SMS deliveries and failures", left=[delivered, failed]),
            cloudwatch.GraphWidget(title="Month-to-date SMS spend (USD)", left=[spend]),
            cloudwatch.GraphWidget(title="API latency p99 (ms)", left=[latency]),
            cloudwatch.GraphWidget(title="Batch queue depth", left=[
                batch.queue.metric_approximate_number_of_messages_visible(period=five),
                batch.dead_letters.metric_approximate_number_of_messages_visible(period=five)]),
            cloudwatch.GraphWidget(title="Delivery statuses applied; unknown ids and malformed lines", left=[
                counted["StatusesApplied"], counted["StatusUnknownMessage"], counted["StatusMalformedLine"]]),
        )


class SenderStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        media = MediaBucket(self, "Media", config=config)
        store = MessageStore(self, "Store", config=config)
        batch = BatchQueue(self, "Batch", config=config)
        messaging = None
        if config.origination_identity or config.sms_provider == "sms-voice":
            messaging = EndUserMessaging(self, "Messaging", config=config)
        api = SenderApi(self, "Api", config=config, media=media, store=store, batch=batch,
                        configuration_set_name=messaging.configuration_set_name if messaging else None)
        delivery = DeliveryLogging(self, "DeliveryLogging", config=config)
        api.ingest_from([delivery.success, delivery.failure] + ([messaging.events] if messaging else []))
        monitoring = Monitoring(self, "Monitoring", config=config, api=api, batch=batch)
        CfnOutput(self, "MediaBucketName", value=media.bucket.bucket_name)
        CfnOutput(self, "MessagesTableName", value=store.messages.table_name)
        CfnOutput(self, "BatchQueueUrl", value=batch.queue.queue_url)
        CfnOutput(self, "ApiUrl", value=api.chalice.sam_template.get_output("EndpointURL").value)
        CfnOutput(self, "ApiKeyId", value=api.api_key.ref,
                  description="aws apigateway get-api-key --include-value --api-key <id> shows the value")
        CfnOutput(self, "DashboardUrl", value=f"https://console.aws.amazon.com/cloudwatch/home?region={self.region}"
                                              f"#dashboards:name={monitoring.dashboard.dashboard_name}")
