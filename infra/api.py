"""The Chalice app (API, key authorizer, batch worker, status ingest, webhook fanout and delivery, inbound
replies, report tally, export writer and schedule sweep), its roles, and the API's throttle, gateway responses
and logs."""
from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as logs_destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from apppath import APP_DIR  # also puts app/ on the path for chalicelib
from chalicelib.sending import countries  # which countries take sender ids
from chalicelib.core import gateway as gateway_answers  # API Gateway's own answers, in the contract's body
from chalicelib.core import aws as aws_timing  # the API's timeout, under API Gateway's 29 seconds
from chalicelib.core import schema  # table keys shared with the app and the local stack
from chalicelib.sending import worker as pacing  # how many worker instances a maxMps takes
from chalicelib.sending import schedule as scheduling  # the schedule sweep's timeout

from . import nag
from .config import StageConfig
from .keys import KeyStore
from .media import MediaBucket
from .messaging import EndUserMessaging
from .queue import BatchQueue
from .reports import Reports
from .runtime import ChaliceApp
from .store import MessageStore
from .templates import TemplateStore
from .two_way import TwoWay, identity_arn
from .webhooks import Webhooks

# How the app encrypts a secret (chalicelib/webhooks.py): EncryptionContext {"webhookId": <endpoint id>}.
WEBHOOK_CONTEXT_KEY, WEBHOOK_ID_PREFIX = "webhookId", "wh_"


def opt_out_items(*partitions: str) -> dict:
    """A condition holding a DynamoDB call to items of these partition keys (the opt-out list and
    the opt-in history in the settings table; the sweep's cursor): every key the call names must be
    one of them."""
    return {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": list(partitions)}}


class SenderApi(Construct):
    """The Chalice app: the API, the batch worker, the status ingest, the webhook fanout and
    delivery, the report tally and the export function, and (on a two-way stage) the inbound function. Each function runs as a role CDK owns,
    granted only what that function uses, and logs to a log group CDK owns (with retention), the only
    group its role may write to. A stage without two-way has no inbound function at all."""

    # Chalice's function names
    API, WORKER, INGEST, FANOUT, DELIVERY, INBOUND = ("api_handler", "batch_worker", "status_ingest",
                                                      "webhook_fanout", "webhook_delivery", "inbound_reply")
    TALLY, WRITER, SWEEP = "report_tally", "export_writer", "schedule_sweep"
    AUTHORIZER = "bearer"  # the built-in authorizer (chalicelib/keys/routing.py), a function of its own
    # Chalice would make the authorizer's handler its own wrapper, which loads Chalice on every cold start: the
    # same check without it (API Gateway's TOKEN input in, the policy out).
    AUTHORIZER_HANDLER = "chalicelib.keys.authorizer.handler"
    LOGICAL_IDS = {API: "APIHandler", WORKER: "BatchWorker", INGEST: "StatusIngest", FANOUT: "WebhookFanout",
                   DELIVERY: "WebhookDelivery", INBOUND: "InboundReply", AUTHORIZER: "Bearer",
                   TALLY: "ReportTally", WRITER: "ExportWriter", SWEEP: "ScheduleSweep"}
    AUTHORIZER_TIMEOUT_SECONDS = 10

    def __init__(self, scope: Construct, id: str, *, config: StageConfig, media: MediaBucket,
                 store: MessageStore, batch: BatchQueue, webhooks: Webhooks, keys: KeyStore,
                 templates: TemplateStore, reports: Reports, messaging: EndUserMessaging | None = None,
                 two_way: TwoWay | None = None) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.log_groups: dict[str, logs.LogGroup] = {}
        self.roles: dict[str, iam.Role] = {}
        send_reason = ("SMS to phone numbers needs sns:Publish on *, and an explicit Deny keeps every topic out of "
                       "reach; X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions.")
        api = self._function_role(self.API, "ApiRole", wildcard_reason=send_reason + (
            " SNS's opt-out calls (ListPhoneNumbersOptedOut, CheckIfPhoneNumberIsOptedOut, OptInPhoneNumber) "
            "have none either." if config.sms_provider == "sns" else ""))
        worker = self._function_role(self.WORKER, "WorkerRole", wildcard_reason=send_reason)
        xray_reason = "X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions."
        ingest = self._function_role(self.INGEST, "IngestRole", wildcard_reason=xray_reason)
        fanout = self._function_role(self.FANOUT, "WebhookFanoutRole", wildcard_reason=xray_reason)
        delivery = self._function_role(self.DELIVERY, "WebhookDeliveryRole", wildcard_reason=xray_reason)
        sweep = self._function_role(self.SWEEP, "SweepRole", wildcard_reason=xray_reason)
        self._grant_keys(keys, api=api, authorizer=self._function_role(self.AUTHORIZER, "AuthorizerRole",
                                                                       wildcard_reason=xray_reason))
        self._grant_templates(templates, api=api)
        self._grant_reports(reports, store, media, api=api,
                            tally=self._function_role(self.TALLY, "ReportTallyRole", wildcard_reason=xray_reason),
                            writer=self._function_role(self.WRITER, "ExportWriterRole", wildcard_reason=xray_reason))
        if two_way:
            self._grant_two_way(two_way, store, webhooks, api=api, inbound=self._function_role(
                self.INBOUND, "InboundRole", wildcard_reason=xray_reason))
        self._grant_opt_outs(webhooks, api=api, worker=worker)
        if config.sms_provider == "sns":
            # The account's SNS opt-out list (GET/DELETE /opt-outs); these take no resource.
            api.add_to_policy(iam.PolicyStatement(actions=[
                "sns:ListPhoneNumbersOptedOut", "sns:CheckIfPhoneNumberIsOptedOut", "sns:OptInPhoneNumber"],
                resources=["*"]))
        configuration_set_name = messaging.configuration_set_name if messaging else None
        text_arns, media_arns = self.sms_voice_resources(config, stack, messaging)
        bucket = media.bucket
        bucket_id = stack.get_logical_id(bucket.node.default_child)
        messages = store.messages.table_arn
        for role in (api, worker):
            # SMS to phone numbers needs sns:Publish on "*"; the Deny keeps every topic out of reach.
            role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=["*"]))
            role.add_to_policy(iam.PolicyStatement(
                effect=iam.Effect.DENY, actions=["sns:Publish"], resources=["arn:aws:sns:*:*:*"]))
            if text_arns:
                role.add_to_policy(iam.PolicyStatement(actions=["sms-voice:SendTextMessage"], resources=text_arns))
            if media_arns:
                role.add_to_policy(iam.PolicyStatement(actions=["sms-voice:SendMediaMessage"], resources=media_arns))
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
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem",
                     "dynamodb:BatchGetItem"],  # BatchGetItem: a list page reads its records by key
            resources=[messages]))
        api.add_to_policy(iam.PolicyStatement(actions=["dynamodb:Query"], resources=[
            f"{messages}/index/{schema.MESSAGES_LIST_INDEX}", f"{messages}/index/{schema.MESSAGES_BATCH_INDEX}",
            f"{messages}/index/{schema.MESSAGES_DUE_INDEX}"]))  # the due index: GET /messages?status=scheduled
        api.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            resources=[store.idempotency.table_arn]))
        api.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[batch.queue.queue_arn]))
        # The worker claims and updates records, and keeps the per-recipient pacing gate (PutItem,
        # GetItem) and the stage's send schedule (UpdateItem) in the idempotency table (short-lived keys).
        worker.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[messages]))
        worker.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            resources=[store.idempotency.table_arn]))
        worker.add_to_policy(iam.PolicyStatement(
            actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                     "sqs:ChangeMessageVisibility"], resources=[batch.queue.queue_arn]))
        # The ingest finds a record by the provider's id and settles it.
        ingest.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:Query"], resources=[f"{messages}/index/{schema.MESSAGES_PROVIDER_INDEX}"]))
        ingest.add_to_policy(iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[messages]))
        self._grant_webhooks(webhooks, store, api=api, fanout=fanout, delivery=delivery)
        self._grant_sweep(store, batch, sweep=sweep)
        self.concurrency = pacing.instances_for(config.max_mps)  # the event source's maximum concurrency
        self._functions: dict[str, lambda_.IFunction] = {}

        # The one mapping from stage settings to the app's variables; the local stack uses it too.
        environment = config.app_environment(
            media_bucket=media.bucket.bucket_name, messages_table=store.messages.table_name,
            idempotency_table=store.idempotency.table_name, batch_queue_url=batch.queue.queue_url,
            batch_dlq_url=batch.dead_letters.queue_url, max_receives=BatchQueue.MAX_RECEIVES,
            worker_concurrency=self.concurrency,
            configuration_set_name=configuration_set_name, webhooks_table=webhooks.table.table_name,
            webhook_queue_url=webhooks.queue.queue_url, webhook_dlq_url=webhooks.dead_letters.queue_url,
            webhook_key_id=webhooks.key.key_arn,
            opt_out_list_name=two_way.opt_out_list_name if two_way else None,
            origination_number=two_way.origination_number if two_way else None, keys_table=keys.table.table_name,
            templates_table=templates.table.table_name, reports_table=reports.table.table_name,
            export_queue_url=reports.queue.queue_url)
        self.chalice = ChaliceApp(self, "Chalice", source_dir=str(APP_DIR), stage_config={
            "api_gateway_stage": "api",
            "environment_variables": environment,
            "manage_iam_role": False,
            "iam_role_arn": api.role_arn,
            "lambda_memory_size": 512,
            # Under API Gateway's 29 seconds: the app's calls end before it (chalicelib/core/aws.py).
            "lambda_timeout": aws_timing.API_TIMEOUT_SECONDS,
            "xray": True,
        })
        # Chalice reads per-function settings from .chalice/config.json only, not from the
        # construct's stage_config, so each function's own role and timeout are set here.
        timeouts = {self.WORKER: BatchQueue.WORKER_TIMEOUT_SECONDS, self.INGEST: 60,
                    self.FANOUT: Webhooks.FANOUT_TIMEOUT_SECONDS, self.DELIVERY: Webhooks.DELIVERY_TIMEOUT_SECONDS,
                    self.INBOUND: TwoWay.INBOUND_TIMEOUT_SECONDS, self.AUTHORIZER: self.AUTHORIZER_TIMEOUT_SECONDS,
                    self.TALLY: Reports.TALLY_TIMEOUT_SECONDS, self.WRITER: Reports.WRITER_TIMEOUT_SECONDS,
                    self.SWEEP: scheduling.SWEEP_TIMEOUT_SECONDS}
        if not two_way:
            # Chalice packages every function of app.py; a stage without two-way builds no inbound one.
            self.chalice.sam_template.node.try_remove_child(self.LOGICAL_IDS[self.INBOUND])
        for name, role in self.roles.items():
            function = self.chalice.get_resource(self.LOGICAL_IDS[name])
            function.add_property_override("Role", role.role_arn)
            if name != self.API:  # app.py registers the routes only in the API's function (APP_FUNCTION unset)
                function.add_property_override("Environment.Variables.APP_FUNCTION", name)
            if name in timeouts:
                function.add_property_override("Timeout", timeouts[name])
        self.chalice.get_resource(self.LOGICAL_IDS[self.AUTHORIZER]).add_property_override(
            "Handler", self.AUTHORIZER_HANDLER)
        for name, log_group in self.log_groups.items():
            function = self.chalice.get_resource(self.LOGICAL_IDS[name])
            function.add_property_override("LoggingConfig", {"LogGroup": log_group.log_group_name,
                                                             "LogFormat": "Text"})
        rest_api = self.chalice.get_resource("RestAPI")
        nag.acknowledge(rest_api, "AwsSolutions-APIG2",
                        "The app validates every field and answers with the contract's error codes; API Gateway "
                        "validation would answer first, in another shape.")
        nag.acknowledge(rest_api, "AwsSolutions-APIG3",
                        "Every route but the open ones needs a scoped key (the Lambda authorizer), and the stage "
                        "throttles; add a WAF web ACL in front of a public production API if you need IP or rate "
                        "rules beyond that.")
        self._protect_api(config)
        # The worker: 10 records an invocation, gathered for up to a second, at most ``concurrency`` instances.
        self._drain_queue("WorkerQueue", self.WORKER, batch.queue, batch_size=pacing.BATCH_SIZE,
                          batching_window_seconds=1, concurrency=self.concurrency)
        self._keep_failed_ingests()
        self._fan_out(store, webhooks)
        # Webhook delivery: 10 records an invocation (a failed record's visibility is already set to its
        # backoff), at most ``DELIVERY_CONCURRENCY`` instances.
        self._drain_queue("WebhookQueue", self.DELIVERY, webhooks.queue, batch_size=10,
                          concurrency=Webhooks.DELIVERY_CONCURRENCY)
        self._sweep_every_minute()
        if two_way:
            # Inbound replies: 10 an invocation; a reply it cannot take is received again, then dead-lettered.
            self._drain_queue("InboundQueue", self.INBOUND, two_way.queue, batch_size=10)
        self._tally(store)
        # Exports: one at a time, at most ``WRITER_CONCURRENCY`` at once.
        self._drain_queue("ExportQueue", self.WRITER, reports.queue, batch_size=1,
                          concurrency=Reports.WRITER_CONCURRENCY)

    def function(self, name: str) -> lambda_.IFunction:
        """A Chalice function as a CDK ``IFunction``, in this stack's environment, so that CDK may
        add permissions to it (the subscription filters' invoke permission)."""
        if name not in self._functions:
            self._functions[name] = lambda_.Function.from_function_attributes(
                self, f"{self.LOGICAL_IDS[name]}Function", same_environment=True,
                function_arn=self.chalice.get_resource(self.LOGICAL_IDS[name]).get_att("Arn").to_string())
        return self._functions[name]

    def _drain_queue(self, id: str, name: str, queue: sqs.IQueue, *, batch_size: int,
                     batching_window_seconds: int | None = None, concurrency: int | None = None) -> None:
        """Function ``name`` drains ``queue`` (an SQS event source mapping): ``batch_size`` records an
        invocation, each record's failure reported on its own (``ReportBatchItemFailures``), batches gathered
        for up to ``batching_window_seconds`` and at most ``concurrency`` instances where given."""
        scaling = None if concurrency is None else \
            lambda_.CfnEventSourceMapping.ScalingConfigProperty(maximum_concurrency=concurrency)
        mapping = lambda_.CfnEventSourceMapping(
            self, id, function_name=self.function(name).function_name, event_source_arn=queue.queue_arn,
            batch_size=batch_size, maximum_batching_window_in_seconds=batching_window_seconds,
            function_response_types=["ReportBatchItemFailures"], scaling_config=scaling)
        mapping.node.add_dependency(self.roles[name])  # the poller needs the SQS rights first

    @staticmethod
    def _grant_webhooks(webhooks: Webhooks, store: MessageStore, *, api: iam.Role, fanout: iam.Role,
                        delivery: iam.Role) -> None:
        """Each webhook call, to its function's role: the API keeps the endpoints and encrypts their
        secrets (and decrypts one to replay an answer); the fanout reads the stream and the
        endpoints and queues deliveries; the delivery reads endpoints, records attempts, disables an
        endpoint that answers 410, decrypts secrets and moves an event that ran out of time to the
        dead-letter queue. ``tests/test_webhooks_stack.py`` records the calls and checks them."""
        table = webhooks.table.table_arn
        # Secrets are encrypted under the endpoint's id (EncryptionContext {"webhookId": id}), and
        # the key serves nothing else.
        secret_context = {"StringLike": {f"kms:EncryptionContext:{WEBHOOK_CONTEXT_KEY}": f"{WEBHOOK_ID_PREFIX}*"}}
        api.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                     "dynamodb:Query"], resources=[table]))
        # Decrypt: a replayed POST /webhooks or rotation (same Idempotency-Key) answers with the same
        # secret, which the stored answer never holds.
        api.add_to_policy(iam.PolicyStatement(actions=["kms:Encrypt", "kms:Decrypt"],
                                              resources=[webhooks.key.key_arn], conditions=secret_context))
        # The stream, as the DynamoDB guide's policy for a Lambda trigger has it
        # (tests/aws_docs/dynamodb-stream-lambda-policy.json), less ListStreams, which takes no
        # resource: named on the stream it would grant nothing, and the trigger works without it.
        fanout.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
            resources=[store.messages.table_stream_arn]))
        fanout.add_to_policy(iam.PolicyStatement(actions=["dynamodb:Query"], resources=[table]))
        # The delivery queue; and the on-failure destination, which Lambda sends to as the function.
        fanout.add_to_policy(iam.PolicyStatement(
            actions=["sqs:SendMessage"], resources=[webhooks.queue.queue_arn, webhooks.fanout_failures.queue_arn]))
        delivery.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], resources=[table]))
        delivery.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[webhooks.key.key_arn],
                                                   conditions=secret_context))
        delivery.add_to_policy(iam.PolicyStatement(
            actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                     "sqs:ChangeMessageVisibility"], resources=[webhooks.queue.queue_arn]))
        delivery.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"],
                                                   resources=[webhooks.dead_letters.queue_arn]))

    def _fan_out(self, store: MessageStore, webhooks: Webhooks) -> None:
        """The fanout reads the messages table's stream from now on, 100 records an invocation. A
        failing batch is split in two until the bad record stands alone; after ``FANOUT_RETRIES``
        (or once a record is ``FANOUT_MAX_RECORD_AGE`` old) its place in the stream goes to the
        failure queue, which an alarm watches. Deletions (TTL expiries) never reach the function:
        Lambda filters a DynamoDB stream's records only under their ``dynamodb`` key
        (tests/aws_docs/lambda-dynamodb-filtering.json), and the filter passes a record only if it has
        a new image (the item's key always in it), which an insert and an update have and a deletion
        has not. The fanout skips deletions itself as well (``webhook_events.event_for``)."""
        new_image = {"dynamodb": {"NewImage": {schema.MESSAGES_KEY: {"S": [{"exists": True}]}}}}
        mapping = lambda_.CfnEventSourceMapping(
            self, "WebhookStream", function_name=self.function(self.FANOUT).function_name,
            event_source_arn=store.messages.table_stream_arn, starting_position="LATEST", batch_size=100,
            bisect_batch_on_function_error=True, maximum_retry_attempts=Webhooks.FANOUT_RETRIES,
            maximum_record_age_in_seconds=Webhooks.FANOUT_MAX_RECORD_AGE.to_seconds(),
            filter_criteria=lambda_.CfnEventSourceMapping.FilterCriteriaProperty(filters=[
                lambda_.CfnEventSourceMapping.FilterProperty(
                    pattern=json.dumps(new_image))]),
            destination_config=lambda_.CfnEventSourceMapping.DestinationConfigProperty(
                on_failure=lambda_.CfnEventSourceMapping.OnFailureProperty(
                    destination=webhooks.fanout_failures.queue_arn)))
        mapping.node.add_dependency(self.roles[self.FANOUT])  # Lambda checks the stream and queue rights

    def _sweep_every_minute(self) -> None:
        """An EventBridge rule runs the schedule sweep every minute (EventBridge's shortest rate). A failed run
        is not tried again, by EventBridge nor by Lambda: the next minute's run starts from the cursor the
        failed one left, so a retry would only overlap it. Its errors metric has an alarm (monitoring)."""
        function = self.function(self.SWEEP)
        self.sweep_rule = events.Rule(self, "SweepRule", schedule=events.Schedule.rate(Duration.minutes(1)),
                                      description="Puts scheduled messages that fall due soon on the batch queue")
        self.sweep_rule.add_target(targets.LambdaFunction(function, retry_attempts=0,
                                                          max_event_age=Duration.minutes(1)))
        lambda_.CfnEventInvokeConfig(
            self, "SweepInvokeConfig", function_name=self.chalice.get_resource(self.LOGICAL_IDS[self.SWEEP]).ref,
            qualifier="$LATEST", maximum_retry_attempts=0, maximum_event_age_in_seconds=60)

    @staticmethod
    def _grant_sweep(store: MessageStore, batch: BatchQueue, *, sweep: iam.Role) -> None:
        """The schedule sweep reads the due index, keeps its cursor (one item of the idempotency table, and
        only that item: the condition holds every key the call names to it) and puts messages on the batch
        queue (SendMessageBatch is authorized as ``sqs:SendMessage``). Then it reads the batch dead-letter
        queue and ends the records its messages name (a read and a conditional write on the messages table).
        ``tests/test_schedule_stack.py`` records its calls and checks them against these grants, both ways."""
        sweep.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:Query"], resources=[f"{store.messages.table_arn}/index/{schema.MESSAGES_DUE_INDEX}"]))
        sweep.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[store.idempotency.table_arn],
            conditions=opt_out_items(schema.SWEEP_CURSOR)))
        sweep.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[batch.queue.queue_arn]))
        # It ends the records of what the batch queue dead-lettered, and deletes those messages
        # (chalicelib/sending/deadletters.py; DeleteMessageBatch is authorized as ``sqs:DeleteMessage``).
        sweep.add_to_policy(iam.PolicyStatement(actions=["sqs:ReceiveMessage", "sqs:DeleteMessage"],
                                                resources=[batch.dead_letters.queue_arn]))
        sweep.add_to_policy(iam.PolicyStatement(actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                                                resources=[store.messages.table_arn]))

    @staticmethod
    def _grant_reports(reports: Reports, store: MessageStore, media: MediaBucket, *, api: iam.Role, tally: iam.Role,
                       writer: iam.Role) -> None:
        """Each reports call, to its function's role, and each DynamoDB one only on its kind of item of the
        reports table (``dynamodb:LeadingKeys``: every partition key the call names). The tally reads the
        stream and counts each record in a transaction (a marker ``Put`` and counter ``Update``s, authorized
        item by item as PutItem and UpdateItem); the API reads the counters (``GET /reports/daily``), keeps the
        exports and queues them; the writer reads the messages by the list index, keeps its export's
        progress, writes the file under ``exports/`` (a multipart upload is PutObject throughout) and puts
        an export back on the queue when its time runs low. ``tests/test_reports_stack.py`` records the calls
        and checks them."""
        table, messages = reports.table.table_arn, store.messages.table_arn

        def items(*prefixes: str) -> dict:
            return {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{p}*" for p in prefixes]}}

        # The stream, as for the webhook fanout (the DynamoDB guide's trigger policy, less ListStreams).
        tally.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
            resources=[store.messages.table_stream_arn]))
        tally.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:PutItem", "dynamodb:UpdateItem"], resources=[table],
            conditions=items(schema.REPORTS_APPLIED, schema.REPORTS_DAILY)))
        api.add_to_policy(iam.PolicyStatement(actions=["dynamodb:BatchGetItem"], resources=[table],
                                              conditions=items(schema.REPORTS_DAILY)))
        api.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[table],
            conditions=items(schema.REPORTS_EXPORT)))
        api.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[reports.queue.queue_arn]))
        writer.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[table],
            conditions=items(schema.REPORTS_EXPORT)))
        writer.add_to_policy(iam.PolicyStatement(actions=["dynamodb:BatchGetItem"], resources=[messages]))
        writer.add_to_policy(iam.PolicyStatement(actions=["dynamodb:Query"],
                                                 resources=[f"{messages}/index/{schema.MESSAGES_LIST_INDEX}"]))
        exports = media.bucket.arn_for_objects(f"{schema.EXPORTS_PREFIX}*")
        writer.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                                                 resources=[exports]))
        bucket_id = Stack.of(media).get_logical_id(media.bucket.node.default_child)
        nag.acknowledge(writer.node.find_child("DefaultPolicy"),
                        f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{schema.EXPORTS_PREFIX}*]",
                        "Each export writes its own file, under a random key of the exports prefix of this one "
                        "bucket.")
        writer.add_to_policy(iam.PolicyStatement(
            actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage"],
            resources=[reports.queue.queue_arn]))

    def _tally(self, store: MessageStore) -> None:
        """The tally reads the messages table's stream from now on: its own mapping (a stream shard takes two
        readers; the webhook fanout is the other), batches of up to ``TALLY_BATCH_SIZE`` records gathered for a
        second. A failing batch is split until the bad record stands alone and retried without limit, whatever
        the record's age: a record left out would make the figures wrong, and counting is exactly once however
        often a record comes (its marker). The stream keeps records 24 hours: an alarm watches the age of what
        the function reads (``infra/monitoring.py``). The filter passes writes only, as the fanout's does."""
        new_image = {"dynamodb": {"NewImage": {schema.MESSAGES_KEY: {"S": [{"exists": True}]}}}}
        mapping = lambda_.CfnEventSourceMapping(
            self, "ReportStream", function_name=self.function(self.TALLY).function_name,
            event_source_arn=store.messages.table_stream_arn, starting_position="LATEST",
            batch_size=Reports.TALLY_BATCH_SIZE,
            maximum_batching_window_in_seconds=Reports.TALLY_BATCHING_WINDOW_SECONDS,
            bisect_batch_on_function_error=True, maximum_retry_attempts=-1, maximum_record_age_in_seconds=-1,
            filter_criteria=lambda_.CfnEventSourceMapping.FilterCriteriaProperty(filters=[
                lambda_.CfnEventSourceMapping.FilterProperty(pattern=json.dumps(new_image))]))
        mapping.node.add_dependency(self.roles[self.TALLY])  # Lambda checks the stream rights

    @staticmethod
    def _grant_keys(keys: KeyStore, *, api: iam.Role, authorizer: iam.Role) -> None:
        """Only these two touch the keys table. The authorizer reads a key and writes its ``lastUsedAt``, and
        nothing else of the item (the condition names the only attributes its update may touch); the API's
        ``/keys`` routes make, list, read and revoke keys."""
        table = keys.table.table_arn
        authorizer.add_to_policy(iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[table]))
        authorizer.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:UpdateItem"], resources=[table],
            conditions={"ForAllValues:StringEquals": {"dynamodb:Attributes": ["id", "lastUsedAt"]}}))
        api.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Scan"],
            resources=[table]))

    @staticmethod
    def _grant_templates(templates: TemplateStore, *, api: iam.Role) -> None:
        """Only the API touches the templates table: it creates a template and its first version, and each next
        version, in one transaction of Put and Update items; reads a head or a version (GetItem) and a page of
        heads (BatchGetItem) found in the list index (Query); archives with an UpdateItem. Versions are never
        deleted. ``tests/test_templates_stack.py`` records the calls and checks them."""
        table = templates.table.table_arn
        api.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem"],
            resources=[table]))
        api.add_to_policy(iam.PolicyStatement(actions=["dynamodb:Query"], resources=[
            f"{table}/index/{schema.TEMPLATES_LIST_INDEX}"]))

    @staticmethod
    def _grant_opt_outs(webhooks: Webhooks, *, api: iam.Role, worker: iam.Role) -> None:
        """The stage's opt-out list lives in the settings table (the webhooks table, under ``pk``
        ``optout``), on every stage. A batch checks its recipients at once (BatchGetItem, the API); the
        worker checks each message again before sending (GetItem: a STOP may come after the batch)
        and records an opt-out the provider reports (UpdateItem). Only those items: the condition
        holds every key the call names to the opt-out partition."""
        api.add_to_policy(iam.PolicyStatement(actions=["dynamodb:BatchGetItem"], resources=[webhooks.table.table_arn],
                                              conditions=opt_out_items(schema.OPT_OUTS)))
        worker.add_to_policy(iam.PolicyStatement(actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                                                 resources=[webhooks.table.table_arn],
                                                 conditions=opt_out_items(schema.OPT_OUTS)))

    @staticmethod
    def _grant_two_way(two_way: TwoWay, store: MessageStore, webhooks: Webhooks, *, api: iam.Role,
                       inbound: iam.Role) -> None:
        """The API keeps the End User Messaging opt-out list in step with its own (PUT and DELETE
        /opt-outs). The inbound function stores each reply once (a conditional put), finds the message
        it answers by the provider's id, applies opt-out and opt-in keywords to the opt-out items of the
        settings table (one transaction: the number's entry and its keyword history), and drains its
        queue. ``tests/test_two_way_stack.py`` records the calls and checks them."""
        # The identity's own opt-out list (the custom resource reads its name; two-way never changes it).
        api.add_to_policy(iam.PolicyStatement(
            actions=["sms-voice:DescribeOptedOutNumbers", "sms-voice:PutOptedOutNumber",
                     "sms-voice:DeleteOptedOutNumber"], resources=[two_way.opt_out_list_arn]))
        messages = store.messages.table_arn
        inbound.add_to_policy(iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=[messages]))
        inbound.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:Query"], resources=[f"{messages}/index/{schema.MESSAGES_PROVIDER_INDEX}"]))
        inbound.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:UpdateItem", "dynamodb:DeleteItem"], resources=[webhooks.table.table_arn],
            conditions=opt_out_items(schema.OPT_OUTS, schema.OPT_INS)))
        inbound.add_to_policy(iam.PolicyStatement(
            actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            resources=[two_way.queue.queue_arn]))

    def ingest_from(self, log_groups: list[logs.ILogGroup], *, after: list[Construct] = ()) -> None:
        """Subscription filters: every line of these log groups goes to the status ingest (the
        Lambda destination also grants CloudWatch Logs the right to invoke it), once whatever
        creates the groups (``after``) has run."""
        destination = logs_destinations.LambdaDestination(self.function(self.INGEST))
        for i, group in enumerate(log_groups):
            subscription = logs.SubscriptionFilter(self, f"IngestSubscription{i}", log_group=group,
                                                   destination=destination,
                                                   filter_pattern=logs.FilterPattern.all_events())
            for dependency in after:
                subscription.node.add_dependency(dependency)

    def _keep_failed_ingests(self) -> None:
        """CloudWatch Logs invokes the ingest asynchronously: Lambda retries a failed invocation
        twice, then hands the event to this queue (14 days) instead of dropping it. The ingest
        fails on purpose while a receipt's message is not found yet (see chalicelib/status.py)."""
        self.ingest_failures = sqs.Queue(
            self, "IngestFailures", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=Duration.days(14))
        nag.acknowledge(self.ingest_failures, "AwsSolutions-SQS3",
                        "This queue is itself the ingest's on-failure destination; an alarm watches it.")
        role = self.roles[self.INGEST]
        role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"],
                                               resources=[self.ingest_failures.queue_arn]))
        invoke_config = lambda_.CfnEventInvokeConfig(
            self, "IngestInvokeConfig", function_name=self.chalice.get_resource(self.LOGICAL_IDS[self.INGEST]).ref,
            qualifier="$LATEST", maximum_retry_attempts=2,
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(
                    destination=self.ingest_failures.queue_arn)))
        invoke_config.node.add_dependency(role)  # Lambda checks it may send to the queue

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
        """The stage's throttle, API Gateway's own answers in the contract's body, access logs (the key id as
        the principal), metrics and X-Ray. The routes' key check is the authorizer Chalice wires
        (``chalicelib/keys/authorizer.py``); API Gateway keeps its answer per key for a minute."""
        rest_api = self.chalice.sam_template.get_resource("RestAPI")
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=logs.RetentionDays.THREE_MONTHS,
                                         removal_policy=RemovalPolicy.DESTROY)
        rest_api.add_property_override("Name", f"{config.prefix}-api")
        rest_api.add_property_override("TracingEnabled", True)
        rest_api.add_property_override("AccessLogSetting", {
            "DestinationArn": self.access_logs.log_group_arn,
            "Format": json.dumps({
                "requestId": "$context.requestId", "ip": "$context.identity.sourceIp",
                "method": "$context.httpMethod", "path": "$context.resourcePath", "status": "$context.status",
                "latencyMs": "$context.responseLatency", "principal": "$context.authorizer.principalId"}),
        })
        # The stage's throttle, for every route of the stage (no usage plan: the API has no API Gateway key).
        rest_api.add_property_override("MethodSettings", [{
            "ResourcePath": "/*", "HttpMethod": "*", "MetricsEnabled": True, "LoggingLevel": "ERROR",
            "ThrottlingRateLimit": config.api_rate_limit, "ThrottlingBurstLimit": config.api_burst_limit}])
        self._gateway_responses(rest_api)
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

    @staticmethod
    def _gateway_responses(rest_api) -> None:
        """API Gateway's own answers (no key, a route outside the key's cached policy, an unknown path, the
        throttle, the key check failing, the defaults) in the contract's error body, from one table the local
        stack plays too (``chalicelib/core/gateway.py``). None quotes the ``Authorization`` header.

        They go in the API's definition (``x-amazon-apigateway-gateway-responses``), not as resources of their
        own: a gateway response takes effect on a stage only with a deployment, and the definition is what
        each deployment is made from."""
        rest_api.add_property_override("DefinitionBody.x-amazon-apigateway-gateway-responses", {
            response_type: {
                **({"statusCode": str(answer.status)} if answer.status else {}),
                "responseParameters": {f"gatewayresponse.header.{name}": f"'{value}'" for name, value in
                                       (("Content-Type", "application/json"), *answer.headers)},
                "responseTemplates": {"application/json": answer.body()},
            } for response_type, answer in gateway_answers.RESPONSES.items()})

    @staticmethod
    def sms_voice_resources(config: StageConfig, stack: Stack,
                            messaging: EndUserMessaging | None) -> tuple[list[str], list[str]]:
        """The real ARNs that SendTextMessage and SendMediaMessage may name: the origination
        identity, the stage's sender id in each allowed country that takes sender ids (text only),
        the configuration set and its protect configuration. Never ``*``."""
        if messaging is None:
            return [], []
        shared = messaging.arns() + [identity_arn(config, stack)]  # a stage with End User Messaging has one
        text = list(shared)
        if config.sender_id and config.sms_provider == "sms-voice":
            reachable = sorted(set(config.allowed_countries) & countries.SENDER_ID) if config.allowed_countries \
                else ["*"]
            text += [stack.format_arn(service="sms-voice", resource="sender-id",
                                      resource_name=f"{config.sender_id}/{country}") for country in reachable]
        return text, shared
