"""Alarms, their topic, and the dashboard."""
from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .api import SenderApi
from .config import StageConfig
from .queue import BatchQueue
from .reports import Reports
from .two_way import TwoWay
from .webhooks import Webhooks


def spend_metrics(config: StageConfig, period: Duration) -> dict[str, tuple[cloudwatch.Metric, str]]:
    """Month-to-date spend, per channel and provider, keyed by the name of its 80% alarm. SMS on
    SNS is SNS's figure; SMS on End User Messaging and every MMS are End User Messaging's own
    (``AWS/SMSVoice``), whose spend limits the stack sets to the same ``monthlySpendLimitUsd``."""
    def metric(namespace, name):
        return cloudwatch.Metric(namespace=namespace, metric_name=name, statistic="Maximum", period=period)

    metrics = {"SpendAt80Percent": (metric("AWS/SNS", "SMSMonthToDateSpentUSD"), "SMS") if config.sms_provider == "sns"
               else (metric("AWS/SMSVoice", "TextMessageMonthlySpend"), "SMS")}
    if config.origination_identity:
        metrics["MediaSpendAt80Percent"] = (metric("AWS/SMSVoice", "MediaMessageMonthlySpend"), "MMS")
    return metrics


class Monitoring(Construct):
    """Alarms, all to one topic (with an email subscription when alarmEmail is set), and a dashboard."""

    TALLY_BEHIND_MS = 15 * 60 * 1000

    def __init__(self, scope: Construct, id: str, *, config: StageConfig, api: SenderApi,
                 batch: BatchQueue, webhooks: Webhooks, reports: Reports, two_way: TwoWay | None = None) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.topic = sns.Topic(self, "Alarms", enforce_ssl=True)
        # A topic policy replaces SNS's default one, and enforce_ssl gives the topic a policy that
        # holds only a Deny: CloudWatch must be allowed in by name, for this account's alarms only.
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")], actions=["sns:Publish"],
            resources=[self.topic.topic_arn], conditions={
                "ArnLike": {"aws:SourceArn": stack.format_arn(service="cloudwatch", resource="alarm",
                                                              resource_name="*",
                                                              arn_format=ArnFormat.COLON_RESOURCE_NAME)},
                "StringEquals": {"aws:SourceAccount": stack.account}}))
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        five = Duration.minutes(5)
        # SNS counts SMS sent to phone numbers under PhoneNumber=PhoneNumberDirect; with no
        # dimensions these metrics hold nothing (CloudWatch does not add dimensions up).
        direct = {"PhoneNumber": "PhoneNumberDirect"}
        failed = cloudwatch.Metric(namespace="AWS/SNS", metric_name="NumberOfNotificationsFailed",
                                   dimensions_map=direct, statistic="Sum", period=five)
        delivered = cloudwatch.Metric(namespace="AWS/SNS", metric_name="NumberOfNotificationsDelivered",
                                      dimensions_map=direct, statistic="Sum", period=five)
        spend = spend_metrics(config, five)
        api_dims = {"ApiName": f"{config.prefix}-api", "Stage": "api"}
        server_errors = cloudwatch.Metric(namespace="AWS/ApiGateway", metric_name="5XXError",
                                          dimensions_map=api_dims, statistic="Sum", period=five)
        latency = cloudwatch.Metric(namespace="AWS/ApiGateway", metric_name="Latency",
                                    dimensions_map=api_dims, statistic="p99", period=five)
        sends = cloudwatch.Metric(namespace="AWS/ApiGateway", metric_name="Count",
                                  dimensions_map=api_dims, statistic="Sum", period=five)
        greater = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        alarms = {"SmsDeliveryFailures": (failed, 5, "5 or more SMS failed delivery in 5 minutes")}
        functions = [("Api", api.API), ("Worker", api.WORKER), ("Ingest", api.INGEST),
                     ("WebhookFanout", api.FANOUT), ("WebhookDelivery", api.DELIVERY), ("ReportTally", api.TALLY),
                     ("ExportWriter", api.WRITER), ("ScheduleSweep", api.SWEEP)]
        if two_way:
            functions.append(("Inbound", api.INBOUND))
        for label, name in functions:
            function = api.function(name)
            alarms[f"{label}Errors"] = (function.metric_errors(period=five), 1, f"the {name} function raised errors")
            alarms[f"{label}Throttles"] = (function.metric_throttles(period=five), 1,
                                           f"the {name} function was throttled")
        alarms.update({
            "Api5xx": (server_errors, 5, "API Gateway answered 5XX 5 or more times in 5 minutes"),
            "BatchQueueAge": (batch.queue.metric_approximate_age_of_oldest_message(period=five), 900,
                              "the oldest batch message has waited 15 minutes or more"),
        })
        if config.monthly_spend_limit_usd:
            for name, (metric, channel) in spend.items():
                alarms[name] = (metric, round(config.monthly_spend_limit_usd * 0.8, 2),
                                f"month-to-date {channel} spend reached 80% of monthlySpendLimitUsd")
        alarms["IngestFailures"] = (api.ingest_failures.metric_approximate_number_of_messages_visible(period=five), 1,
                                    "status receipts the ingest could not apply after its retries are waiting")
        webhook_depth = {name: queue.metric_approximate_number_of_messages_visible(period=five) for name, queue in (
            ("WebhookDeadLetters", webhooks.dead_letters), ("WebhookFanoutFailures", webhooks.fanout_failures),
            ("WebhookQueue", webhooks.queue))}
        alarms["WebhookDeadLetters"] = (webhook_depth["WebhookDeadLetters"], 1,
                                        "webhook events ran out of retries and sit in the dead-letter queue")
        if two_way:
            alarms["InboundDeadLetters"] = (
                two_way.dead_letters.metric_approximate_number_of_messages_visible(period=five), 1,
                "replies the inbound function could not take sit in the inbound dead-letter queue")
        alarms["WebhookFanoutFailures"] = (webhook_depth["WebhookFanoutFailures"], 1,
                                           "status changes the webhook fanout gave up on: their events were "
                                           "never queued (the queue holds where they are in the stream)")
        # The tally retries a failing batch without limit, and the stream keeps records 24 hours: a record
        # waiting this long means the figures are behind, and within the day it would be lost.
        tally_age = api.function(api.TALLY).metric("IteratorAge", statistic="Maximum", period=five)
        alarms["ReportTallyBehind"] = (tally_age, self.TALLY_BEHIND_MS,
                                       "the report tally is 15 minutes or more behind the messages table's stream "
                                       "(records older than 24 hours are lost)")
        alarms["ExportDeadLetters"] = (reports.dead_letters.metric_approximate_number_of_messages_visible(period=five),
                                       1, "CSV exports the export function could not write sit in the dead-letter "
                                          "queue")
        # Counts the worker, the sweep and the status ingest log once per invocation, turned into metrics.
        counted = {}
        for function, field, metric_name in ((api.WORKER, "sent", "BatchSends"),
                                             (api.SWEEP, "enqueued", "ScheduledEnqueued"),
                                             (api.SWEEP, "settled", "DeadLettersSettled"),
                                             (api.INGEST, "applied", "StatusesApplied"),
                                             (api.INGEST, "unknown", "StatusUnknownMessage"),
                                             (api.INGEST, "malformed", "StatusMalformedLine")):
            logs.MetricFilter(self, metric_name, log_group=api.log_groups[function],
                              metric_namespace=f"SmsSender/{config.stage}", metric_name=metric_name,
                              filter_pattern=logs.FilterPattern.exists(f"$.{field}"), metric_value=f"$.{field}")
            counted[metric_name] = cloudwatch.Metric(namespace=f"SmsSender/{config.stage}", metric_name=metric_name,
                                                     statistic="Sum", period=five)
        # The sweep ends the record of each batch message the queue dead-lettered and deletes the message within a
        # minute (chalicelib/sending/deadletters.py), so the queue's depth alone would rarely see it: the alarm
        # adds the messages waiting there (visible, or hidden by a sweep that left them: one it could not read, a
        # claim not stale yet) and the sweep's count of the ones it settled. Metric math takes a missing value in
        # a sum as 0.
        alarms["DeadLetters"] = (cloudwatch.MathExpression(
            expression="visible + hidden + settled", label="batch messages dead-lettered", period=five,
            using_metrics={"visible": batch.dead_letters.metric_approximate_number_of_messages_visible(period=five),
                           "hidden": batch.dead_letters.metric_approximate_number_of_messages_not_visible(
                               period=five),
                           "settled": counted["DeadLettersSettled"]}), 1,
            "batch messages reached the dead-letter queue: their records were ended failed (NotSent or "
            "SendInterrupted), or wait there to be")
        self.alarms = {}
        for name, (metric, threshold, description) in alarms.items():
            alarm = cloudwatch.Alarm(self, name, metric=metric, threshold=threshold, evaluation_periods=1,
                                     comparison_operator=greater, alarm_description=description,
                                     treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
            self.alarms[name] = alarm
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{config.prefix}")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Sends (API requests, batch sends, scheduled messages the sweep queued)",
                                   left=[sends, counted["BatchSends"], counted["ScheduledEnqueued"]]),
            cloudwatch.GraphWidget(title="SMS deliveries and failures", left=[delivered, failed]),
            cloudwatch.GraphWidget(title="Month-to-date spend (USD)", left=[m for m, _ in spend.values()]),
            cloudwatch.GraphWidget(title="API latency p99 (ms)", left=[latency]),
            cloudwatch.GraphWidget(title="Batch queue depth; dead-lettered messages the sweep ended", left=[
                batch.queue.metric_approximate_number_of_messages_visible(period=five),
                batch.dead_letters.metric_approximate_number_of_messages_visible(period=five)],
                right=[counted["DeadLettersSettled"]]),
            cloudwatch.GraphWidget(title="Delivery statuses applied; unknown ids and malformed lines", left=[
                counted["StatusesApplied"], counted["StatusUnknownMessage"], counted["StatusMalformedLine"]]),
            cloudwatch.GraphWidget(title="Webhooks: events waiting, dead letters, fanout failures",
                                   left=list(webhook_depth.values())),
            cloudwatch.GraphWidget(title="Webhook fanout: stream record age when read (ms)", left=[
                api.function(api.FANOUT).metric("IteratorAge", statistic="Maximum", period=five)]),
            cloudwatch.GraphWidget(title="Reports: tally's stream record age when read (ms); exports failed",
                                   left=[tally_age],
                                   right=[reports.dead_letters.metric_approximate_number_of_messages_visible(
                                       period=five)]),
        )
        if two_way:
            self.dashboard.add_widgets(cloudwatch.GraphWidget(
                title="Replies: waiting, dead letters; inbound function errors", left=[
                    two_way.queue.metric_approximate_number_of_messages_visible(period=five),
                    two_way.dead_letters.metric_approximate_number_of_messages_visible(period=five)],
                right=[api.function(api.INBOUND).metric_errors(period=five)]))
