"""SNS SMS delivery-status logging and the account's SNS SMS settings."""
from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from . import nag
from .config import StageConfig

RETENTION_DAYS = 90

# The name the custom resource's singleton Lambda gets in every stack (aws-cdk-lib constant).
CUSTOM_RESOURCE_PROVIDER = "AWS679f53fac002430cb0da5b7982bd2287"


def acknowledge_provider(stack: Stack) -> None:
    """The AwsCustomResource provider Lambda that aws-cdk-lib adds once per stack."""
    provider = stack.node.try_find_child(CUSTOM_RESOURCE_PROVIDER)
    if provider is not None:
        nag.acknowledge(provider, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                                  "AWSLambdaBasicExecutionRole]",
                        "aws-cdk-lib's AwsCustomResource provider; the managed policy only lets it write its logs.")


def log_group_arn(stack: Stack, name: str) -> str:
    """A log group's ARN as IAM and the End User Messaging API name it: no ``:*`` suffix (CDK's
    ``log_group_arn`` has one)."""
    return f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{name}"


def log_group_resources(arn: str) -> list[str]:
    """The group and its streams (CloudWatch Logs matches some actions against ``<arn>:*``)."""
    return [arn, f"{arn}:*"]


class DeliveryLogging(Construct):
    """SNS SMS delivery-status logs, and the account's SMS attributes (``SetSMSAttributes``).

    SNS creates its two delivery-status log groups itself once logging has been on, and they
    outlive a ``cdk destroy``. So the stack never owns them: a custom resource creates each group
    only where it is missing (``CreateLogGroup``, "already exists" ignored) and sets its retention;
    the subscription filters attach after that. ``deploy``, ``destroy``, ``deploy`` needs no manual
    step. SNS writes through a role that may touch only these two groups, with the actions SNS
    documents for delivery-status logging.

    The attributes and the log-group names are one per account and region: only the stage with
    ``accountSettings`` sets them, and deleting it leaves the account as it is. Other stages use
    the groups by name.
    """

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        base = f"sns/{stack.region}/{stack.account}/DirectPublishToPhoneNumber"
        names = (base, f"{base}/Failure")
        self.success = logs.LogGroup.from_log_group_name(self, "Success", names[0])
        self.failure = logs.LogGroup.from_log_group_name(self, "Failure", names[1])
        # What the subscription filters must wait for (nothing for a stage that only reads the groups).
        self.ready: list[Construct] = []
        if not config.account_settings:
            return
        arns = [log_group_arn(stack, name) for name in names]
        for label, name, arn in zip(("Success", "Failure"), names, arns):
            self.ready.append(self._ensure_group(label, name, arn))

        # The actions of SNS's documented delivery-status policy (AmazonSNSRole), on these two groups
        # only, inline: the role outlives a delete (the account keeps pointing at it), and its
        # permissions must outlive it with it.
        self.role = iam.Role(
            self, "SnsDeliveryStatusRole", assumed_by=iam.ServicePrincipal("sns.amazonaws.com"),
            inline_policies={"DeliveryStatusLogs": iam.PolicyDocument(statements=[iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:PutMetricFilter",
                         "logs:PutRetentionPolicy"],
                resources=[r for arn in arns for r in log_group_resources(arn)])])})
        self.role.apply_removal_policy(RemovalPolicy.RETAIN)
        for arn in arns:
            nag.acknowledge(self.role, f"AwsSolutions-IAM5[Resource::{nag.resource(self, arn)}:*]",
                            "SNS writes log streams of its own naming into its delivery-status groups.")
        attributes = {
            "DeliveryStatusIAMRole": self.role.role_arn,
            "DeliveryStatusSuccessSamplingRate": "100",  # every delivery, so every message gets a final status
            "DefaultSMSType": config.default_sms_type.capitalize(),
        }
        if config.monthly_spend_limit_usd and config.sms_provider == "sns":
            # Refused above the account's SNS SMS spend quota ($1 on a new account); `make preflight` checks it.
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
        # SNS needs its role's policy in place before it is told to use it.
        self.sms_attributes.node.add_dependency(self.role)
        nag.acknowledge(self.sms_attributes, "AwsSolutions-IAM5[Resource::*]",
                        "sns:SetSMSAttributes has no resource-level permissions; PassRole is scoped to the role.")

    def _ensure_group(self, label: str, name: str, arn: str) -> Construct:
        """Create the group if it is missing, then set its retention; never delete it."""
        create = cr.AwsSdkCall(
            service="CloudWatchLogs", action="createLogGroup", parameters={"logGroupName": name},
            physical_resource_id=cr.PhysicalResourceId.of(name),
            ignore_error_codes_matching="ResourceAlreadyExistsException")
        created = cr.AwsCustomResource(
            self, f"{label}Group", on_create=create, on_update=create,
            policy=cr.AwsCustomResourcePolicy.from_statements([
                iam.PolicyStatement(actions=["logs:CreateLogGroup"], resources=log_group_resources(arn))]),
            install_latest_aws_sdk=False)
        retention = cr.AwsSdkCall(
            service="CloudWatchLogs", action="putRetentionPolicy",
            parameters={"logGroupName": name, "retentionInDays": RETENTION_DAYS},
            physical_resource_id=cr.PhysicalResourceId.of(f"{name}-retention"))
        retained = cr.AwsCustomResource(
            self, f"{label}Retention", on_create=retention, on_update=retention,
            policy=cr.AwsCustomResourcePolicy.from_statements([
                iam.PolicyStatement(actions=["logs:PutRetentionPolicy"], resources=log_group_resources(arn))]),
            install_latest_aws_sdk=False)
        retained.node.add_dependency(created)
        for resource in (created, retained):
            nag.acknowledge(resource, f"AwsSolutions-IAM5[Resource::{nag.resource(self, arn)}:*]",
                            "CloudWatch Logs matches log-group actions against the group's ARN with ':*'.")
        return retained
