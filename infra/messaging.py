"""End User Messaging SMS: the configuration set, its event destination and the protect configuration."""
from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_smsvoice as smsvoice
from constructs import Construct

import apppath  # noqa: F401  (puts app/ on the path for chalicelib)
from chalicelib.sending import countries  # End User Messaging's own supported-country lists (a dated data file)

from .config import StageConfig, StageConfigError
from .delivery_logging import log_group_arn


def country_rules(allowed: tuple[str, ...], supported: frozenset[str]):
    """One rule per country End User Messaging supports for the channel: ALLOW the stage's
    countries, BLOCK the rest. A code the service does not take would fail the deploy."""
    return [smsvoice.CfnProtectConfiguration.CountryRuleProperty(
        country_code=code, protect_status="ALLOW" if code in allowed else "BLOCK") for code in sorted(supported)]


class EndUserMessaging(Construct):
    """The End User Messaging configuration set: every text and media event to a CloudWatch Logs
    group, and a protect configuration that blocks countries outside ``allowedCountries``."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.configuration_set_name = config.configuration_set_name or f"{config.prefix}-config"
        # No fixed name: a retained group of a fixed name would make the next deploy after a destroy fail.
        self.events = logs.LogGroup(self, "Events", retention=logs.RetentionDays.THREE_MONTHS,
                                    removal_policy=RemovalPolicy.RETAIN)
        # The role and policy End User Messaging documents for a CloudWatch Logs event destination,
        # trusted only for this account's configuration set.
        role = iam.Role(self, "EventsRole", assumed_by=iam.ServicePrincipal(
            "sms-voice.amazonaws.com", conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": stack.format_arn(
                    service="sms-voice", resource="configuration-set", resource_name=self.configuration_set_name)},
            }))
        policy = iam.Policy(self, "EventsPolicy", roles=[role], statements=[iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            resources=[self.events.log_group_arn])])
        self.protect = None
        if config.allowed_countries:
            unknown = sorted(set(config.allowed_countries) - countries.SMS)
            if unknown:
                raise StageConfigError(
                    f"stage {config.stage}: allowedCountries {', '.join(unknown)}: End User Messaging does not send "
                    f"SMS there (its list of {len(countries.SMS)} countries: {countries.SOURCE})")
            self.protect = smsvoice.CfnProtectConfiguration(
                self, "Protect", country_rule_set=smsvoice.CfnProtectConfiguration.CountryRuleSetProperty(
                    sms=country_rules(config.allowed_countries, countries.SMS),
                    mms=country_rules(config.allowed_countries, countries.MMS)))
        self.configuration_set = smsvoice.CfnConfigurationSet(
            self, "ConfigurationSet",
            configuration_set_name=self.configuration_set_name,
            protect_configuration_id=self.protect.attr_protect_configuration_id if self.protect else None,
            event_destinations=[smsvoice.CfnConfigurationSet.EventDestinationProperty(
                enabled=True, event_destination_name="status-logs",
                matching_event_types=["TEXT_ALL", "MEDIA_ALL"],
                cloud_watch_logs_destination=smsvoice.CfnConfigurationSet.CloudWatchLogsDestinationProperty(
                    iam_role_arn=role.role_arn,
                    # The API's log group ARN has no ":*" (CDK's log_group_arn has one).
                    log_group_arn=log_group_arn(stack, self.events.log_group_name)))],
        )
        # The service checks the destination when the set is created: the policy must be there first.
        self.configuration_set.node.add_dependency(policy)
        self.configuration_set.node.add_dependency(self.events)

    def arns(self) -> list[str]:
        """The ARNs a send names through this configuration set (the protect configuration too)."""
        arns = [self.configuration_set.attr_arn]
        if self.protect is not None:
            arns.append(self.protect.attr_arn)
        return arns
