"""Policies (and one event) AWS documents, kept as fixtures: each file holds the document and names its source."""
import json
from pathlib import Path

HERE = Path(__file__).parent
SNS_DELIVERY_STATUS_ROLE = "sns-delivery-status-role-policy.json"
SMS_VOICE_LOGS_DESTINATION_ROLE = "sms-voice-cloudwatch-destination-policy.json"
SMS_VOICE_TWO_WAY_TOPIC = "sms-voice-two-way-topic-policy.json"
SMS_VOICE_TWO_WAY_CHANNEL_ROLE = "sms-voice-two-way-channel-role.json"
API_GATEWAY_TOKEN_AUTHORIZER_INPUT = "api-gateway-token-authorizer-input.json"  # an event, not a policy


def document(name: str) -> dict:
    fixture = json.loads((HERE / name).read_text())
    assert fixture["source"].startswith("https://docs.aws.amazon.com/")
    return fixture["document"]


def actions(name: str) -> tuple[str, ...]:
    return tuple(a for statement in document(name)["Statement"]
                 for a in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]))
