"""Two-way messaging: the inbound topic and its key, the inbound queue and its dead-letter queue, the
channel role, and the custom resource that turns two-way on for the stage's number or pool (whose own
opt-out list stays)."""
from __future__ import annotations

from pathlib import Path

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import custom_resources as cr
from constructs import Construct

from . import nag
from .config import StageConfig
from .queue import queue_with_dead_letters
from .runtime import PYTHON

HANDLERS = Path(__file__).resolve().parent / "handlers"
SMS_VOICE = "sms-voice.amazonaws.com"


def is_pool(identity: str) -> bool:
    return identity.split("/")[-1].startswith("pool-")


def identity_arn(config: StageConfig, stack: Stack) -> str:
    """The real ARN of the stage's phone number, pool or sender id (IAM authorizes on it, never on
    the E.164 number)."""
    identity = config.origination_identity
    if identity.startswith("arn:"):
        return identity
    kind = "pool" if identity.startswith("pool-") else "phone-number"
    return stack.format_arn(service="sms-voice", resource=kind, resource_name=identity)


def sms_voice_conditions(stack: Stack) -> dict:
    """End User Messaging of this account only (the confused-deputy conditions its guide gives)."""
    return {"StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": stack.format_arn(service="sms-voice", resource="*")}}


class TwoWay(Construct):
    """Replies to the stage's number or pool (``config.two_way``).

    End User Messaging publishes each reply to a standard SNS topic (FIFO is not supported), encrypted
    with a key of the stack's that End User Messaging may use; the topic hands it to a queue (the SNS
    envelope kept: its ``Timestamp`` is the reply's time), which the inbound function (``inbound_reply``,
    wired in ``infra/api.py``) drains. A reply the function cannot take goes to the dead-letter queue
    after ``MAX_RECEIVES`` receives. A custom resource (``infra/handlers/two_way.py``) points the
    identity at the topic and sets the stage's keywords; deleting the stack puts the identity's earlier
    settings back.

    The identity keeps its own opt-out list (``Default`` unless someone chose another): End User
    Messaging refuses sends to the numbers on the list associated with the sender, so that list, never
    changed, is the one place every STOP lands, before, during and after the stack. The custom resource
    reads its name (``opt_out_list_name``), which the app gets as ``OPT_OUT_LIST_NAME``; the API may
    read and change that list (``opt_out_list_arn``).

    ``channel_role`` is the role End User Messaging publishes as when the identity already has a
    ``TwoWayChannelRole`` of its own (that role could not reach this topic or key): the documented trust
    and permission policies (tests/aws_docs/sms-voice-two-way-channel-role.json), held to this topic and
    key."""

    INBOUND_TIMEOUT_SECONDS = 30
    MAX_RECEIVES = 5

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        # The documented key and topic policy (tests/aws_docs/sms-voice-two-way-topic-policy.json).
        # Nothing is kept under this key (SNS holds no messages; the queues use SQS's own keys).
        self.key = kms.Key(self, "TopicKey", enable_key_rotation=True, removal_policy=RemovalPolicy.DESTROY,
                           pending_window=Duration.days(7), description=f"{config.prefix}: encrypts the inbound topic")
        self.key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal(SMS_VOICE)], actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            resources=["*"], conditions=sms_voice_conditions(stack)))
        self.topic = sns.Topic(self, "Inbound", master_key=self.key, enforce_ssl=True)
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal(SMS_VOICE)], actions=["sns:Publish"], resources=[self.topic.topic_arn],
            conditions=sms_voice_conditions(stack)))
        self.queue, self.dead_letters = queue_with_dead_letters(
            self, max_receives=self.MAX_RECEIVES, retention_period=Duration.days(4),
            visibility_timeout=Duration.seconds(6 * self.INBOUND_TIMEOUT_SECONDS))
        self.topic.add_subscription(subscriptions.SqsSubscription(self.queue, raw_message_delivery=False))
        self.channel_role = self._channel_role(stack)
        self.identity = self._turn_on(config, stack)
        # The identity's own opt-out list, as the custom resource read it (never changed).
        self.opt_out_list_name = self.identity.get_att_string("OptOutListName")
        self.opt_out_list_arn = stack.format_arn(service="sms-voice", resource="opt-out-list",
                                                 resource_name=self.opt_out_list_name)
        # Which of the stage's answers (HELP, STOP) End User Messaging kept its own of, and why; "none".
        self.keywords_not_set = self.identity.get_att_string("KeywordsNotSet")
        # The number in E.164, where the identity is a number (a pool has several).
        self.origination_number = None if is_pool(config.origination_identity) \
            else self.identity.get_att_string("PhoneNumber")

    def _channel_role(self, stack: Stack) -> iam.Role:
        """End User Messaging's guide ("IAM policies for Amazon SNS topics"): trusted by
        ``sms-voice.amazonaws.com`` for this account, allowed ``sns:Publish`` on the topic (of this
        account) and the key's ``kms:Decrypt``/``kms:GenerateDataKey*`` when SNS uses it for this topic.
        The guide grants the key on ``*``; here it is this one key."""
        role = iam.Role(self, "ChannelRole", description="End User Messaging publishes replies to the inbound "
                        "topic as this role, on an identity that has a TwoWayChannelRole of its own",
                        assumed_by=iam.ServicePrincipal(SMS_VOICE, conditions={
                            "StringEquals": {"aws:SourceAccount": stack.account}}))
        role.add_to_policy(iam.PolicyStatement(
            actions=["sns:Publish"], resources=[self.topic.topic_arn],
            conditions={"StringEquals": {"aws:ResourceAccount": stack.account}}))
        role.add_to_policy(iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=[self.key.key_arn],
            conditions={"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": self.topic.topic_arn,
                                         "aws:CalledViaLast": "sns.amazonaws.com"}}))
        nag.acknowledge(role.node.find_child("DefaultPolicy"),
                        "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                        "The documented channel-role policy: SNS asks for GenerateDataKey and its variants on "
                        "this one key, for this one topic (the encryption-context condition).")
        return role

    def _turn_on(self, config: StageConfig, stack: Stack) -> CustomResource:
        """The custom resource: its handler may describe and update this one identity and its keywords,
        and hand End User Messaging the stack's channel role (``iam:PassRole`` on that role, to that
        service only)."""
        arn = identity_arn(config, stack)
        pool = is_pool(config.origination_identity)
        log_group = logs.LogGroup(self, "HandlerLogs", retention=logs.RetentionDays.THREE_MONTHS,
                                  removal_policy=RemovalPolicy.DESTROY)
        role = iam.Role(self, "HandlerRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        role.add_to_policy(iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                               resources=[log_group.log_group_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["sms-voice:DescribePools", "sms-voice:UpdatePool"] if pool
            else ["sms-voice:DescribePhoneNumbers", "sms-voice:UpdatePhoneNumber"], resources=[arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["sms-voice:DescribeKeywords", "sms-voice:PutKeyword", "sms-voice:DeleteKeyword"], resources=[arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[self.channel_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": SMS_VOICE}}))
        handler = lambda_.Function(
            self, "Handler", runtime=PYTHON, handler="two_way.on_event", role=role,
            code=lambda_.Code.from_asset(str(HANDLERS), exclude=["__pycache__", "*.pyc", "__init__.py"]),
            timeout=Duration.minutes(2), log_group=log_group,
            description=f"{config.prefix}: two-way messaging on the stage's number or pool")
        handler.node.add_dependency(role)
        # The Provider framework's own function: its own log group, and the right to invoke the handler.
        framework_logs = logs.LogGroup(self, "ProviderLogs", retention=logs.RetentionDays.THREE_MONTHS,
                                       removal_policy=RemovalPolicy.DESTROY)
        framework_role = iam.Role(self, "ProviderRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        framework_role.add_to_policy(iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                                         resources=[framework_logs.log_group_arn]))
        provider = cr.Provider(self, "Provider", on_event_handler=handler, log_group=framework_logs,
                               framework_on_event_role=framework_role)
        nag.acknowledge(framework_role.node.find_child("DefaultPolicy"),
                        f"AwsSolutions-IAM5[Resource::{nag.resource(self, handler.function_arn)}:*]",
                        "aws-cdk-lib's Provider framework invokes the handler by any version or alias of this "
                        "one function (grantInvoke names the function and '<arn>:*').")
        resource = CustomResource(self, "Identity", service_token=provider.service_token,
                                  resource_type="Custom::TwoWayMessaging", properties={
                                      "Identity": config.origination_identity,
                                      "TopicArn": self.topic.topic_arn,
                                      "ChannelRoleArn": self.channel_role.role_arn,
                                      "Stage": config.stage,
                                      "Keywords": [{"Keyword": k.keyword, "Message": k.message, "Action": k.action}
                                                   for k in config.all_keywords]})
        # End User Messaging may check the topic (and the role it is handed) when the identity is pointed
        # at it: policies first.
        resource.node.add_dependency(self.topic, self.key, self.channel_role)
        return resource
