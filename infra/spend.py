"""End User Messaging's monthly spend limits, set to the stage's ``monthlySpendLimitUsd``."""
from __future__ import annotations


from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from . import nag
from .config import StageConfig


class SpendLimits(Construct):
    """``SetTextMessageSpendLimitOverride`` (SMS on an ``sms-voice`` stage) and
    ``SetMediaMessageSpendLimitOverride`` (MMS), so that ``monthlySpendLimitUsd`` caps End User
    Messaging as SNS's ``MonthlySpendLimit`` caps SNS. Both are account-wide and must not exceed
    the account's spend quota (``make preflight`` checks it); deleting the stack leaves them."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        calls = []
        if config.sms_provider == "sms-voice":
            calls.append(("Text", "setTextMessageSpendLimitOverride"))
        if config.uses_end_user_messaging:  # MMS always goes through End User Messaging
            calls.append(("Media", "setMediaMessageSpendLimitOverride"))
        for label, action in calls:
            call = cr.AwsSdkCall(service="PinpointSMSVoiceV2", action=action,
                                 parameters={"MonthlyLimit": config.monthly_spend_limit_usd},
                                 physical_resource_id=cr.PhysicalResourceId.of(f"{config.prefix}-{label.lower()}-spend"))
            iam_action = "sms-voice:" + action[0].upper() + action[1:]
            override = cr.AwsCustomResource(
                self, f"{label}SpendLimit", on_create=call, on_update=call,  # no on_delete: leave the account alone
                policy=cr.AwsCustomResourcePolicy.from_statements([
                    iam.PolicyStatement(actions=[iam_action], resources=["*"])]),
                install_latest_aws_sdk=False)
            nag.acknowledge(override, "AwsSolutions-IAM5[Resource::*]",
                            f"{iam_action} has no resource-level permissions.")
