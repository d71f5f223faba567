"""The stack: one construct per concern (each in its own module), composed here."""
from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from .api import SenderApi
from .config import StageConfig
from .delivery_logging import DeliveryLogging, acknowledge_provider
from .keys import KeyStore
from .media import MediaBucket
from .messaging import EndUserMessaging
from .monitoring import Monitoring
from .queue import BatchQueue
from .reports import Reports
from .spend import SpendLimits
from .store import MessageStore
from .templates import TemplateStore
from .two_way import TwoWay
from .webhooks import Webhooks


class SenderStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        media = MediaBucket(self, "Media", config=config)
        store = MessageStore(self, "Store", config=config)
        batch = BatchQueue(self, "Batch", config=config)
        webhooks = Webhooks(self, "Webhooks", config=config)
        keys = KeyStore(self, "Keys", config=config)
        templates = TemplateStore(self, "Templates", config=config)
        reports = Reports(self, "Reports", config=config)
        messaging = None
        if config.uses_end_user_messaging:
            messaging = EndUserMessaging(self, "Messaging", config=config)
        # Replies reach the stage only through an End User Messaging number or pool.
        two_way = TwoWay(self, "TwoWay", config=config) if config.two_way else None
        api = SenderApi(self, "Api", config=config, media=media, store=store, batch=batch, webhooks=webhooks,
                        keys=keys, templates=templates, reports=reports, messaging=messaging, two_way=two_way)
        delivery = DeliveryLogging(self, "DeliveryLogging", config=config)
        if config.account_settings and config.monthly_spend_limit_usd and messaging:
            SpendLimits(self, "SpendLimits", config=config)
        api.ingest_from([delivery.success, delivery.failure] + ([messaging.events] if messaging else []),
                        after=delivery.ready)
        monitoring = Monitoring(self, "Monitoring", config=config, api=api, batch=batch, webhooks=webhooks,
                                reports=reports, two_way=two_way)
        acknowledge_provider(self)
        CfnOutput(self, "MediaBucketName", value=media.bucket.bucket_name)
        CfnOutput(self, "MessagesTableName", value=store.messages.table_name)
        CfnOutput(self, "BatchQueueUrl", value=batch.queue.queue_url)
        CfnOutput(self, "WebhooksTableName", value=webhooks.table.table_name)
        CfnOutput(self, "WebhookDeadLetterQueueUrl", value=webhooks.dead_letters.queue_url,
                  description="webhook events that ran out of retries (24 hours); an alarm watches it")
        if two_way:
            CfnOutput(self, "InboundTopicArn", value=two_way.topic.topic_arn,
                      description="End User Messaging publishes replies to the stage's number or pool here")
            CfnOutput(self, "OptOutListName", value=two_way.opt_out_list_name,
                      description="the identity's own opt-out list, left as it was: every STOP lands here")
            CfnOutput(self, "KeywordsNotSet", value=two_way.keywords_not_set,
                      description="the stage's HELP or STOP answers End User Messaging kept its own of, and why; "
                                  "none when it gives them all")
            CfnOutput(self, "InboundDeadLetterQueueUrl", value=two_way.dead_letters.queue_url,
                      description="replies the inbound function could not take; an alarm watches it")
        CfnOutput(self, "ApiUrl", value=api.chalice.sam_template.get_output("EndpointURL").value)
        CfnOutput(self, "KeysTableName", value=keys.table.table_name,
                  description="the stage's API keys (make key and make keys write and read it with your AWS credentials)")
        CfnOutput(self, "ReportsTableName", value=reports.table.table_name,
                  description="the daily counters (kept 400 days) and the CSV exports' progress")
        CfnOutput(self, "ExportDeadLetterQueueUrl", value=reports.dead_letters.queue_url,
                  description="exports the export function could not write; an alarm watches it")
        CfnOutput(self, "SmokeAlarmName", value=monitoring.alarms["DeadLetters"].alarm_name,
                  description="make smoke sets this alarm to ALARM and checks its SNS action ran")
        CfnOutput(self, "DashboardUrl", value=f"https://console.aws.amazon.com/cloudwatch/home?region={self.region}"
                                              f"#dashboards:name={monitoring.dashboard.dashboard_name}")
