"""SNS SMS delivery-status logging and the account's SMS settings."""
from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from . import nag
from .config import StageConfig


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
