"""End User Messaging SMS: the configuration set, its event destination and the protect configuration."""
from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_smsvoice as smsvoice
from constructs import Construct

from .config import StageConfig


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
