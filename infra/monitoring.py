"""Alarms, their topic, and the dashboard."""
from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .api import SenderApi
from .config import StageConfig
from .queue import BatchQueue


class Monitoring(Construct):
    """Alarms, all to one topic (with an email subscription when alarmEmail is set), and a dashboard."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig, api: SenderApi,
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
