"""The End User Messaging stand-in as one class: ``SmsVoiceStandIn`` holds the emulated account (its
identities, configuration sets, keywords and opt-out lists) and answers the API, each area's operations
coming from its module (``sending``, ``two_way``, ``opt_outs``). ``respond()`` plays one call on the wire:
the ``X-Amz-Target`` and the JSON body in, AWS's status and JSON answer out.
"""
from __future__ import annotations

import json
import threading
import time

from .model import TARGET_PREFIX, ApiError, validate
from .opt_outs import DEFAULT_OPT_OUT_LIST, OptOutLists
from .sending import Sending
from .two_way import TwoWay


class SmsVoiceStandIn(Sending, TwoWay, OptOutLists):
    """Holds the emulated account's identities, configuration sets, keywords and opt-out lists; answers the
    API (``handle``), one call at a time."""

    def __init__(self, *, region: str, account: str, record_send, read_media):
        self.region, self.account = region, account
        # (channel, to, body, media_url, provider_id, context=...) -> None
        self._record_send = record_send
        self._read_media = read_media  # (bucket, key) -> (content_type, size) | None
        self._lock = threading.Lock()
        self.phone_numbers: dict[str, dict] = {}
        self.sender_ids: dict[tuple[str, str], dict] = {}  # (SenderId, IsoCountryCode) -> information
        self.pools: dict[str, dict] = {}
        self.configuration_sets: dict[str, dict] = {}
        self.dry_runs = 0  # sends validated with DryRun: none reached the outbox
        self.handoff_seconds = 0.0  # how long the local carrier takes to hand a message off (TimeToLive)
        self.ttl_expired: set[str] = set()  # MessageIds whose TimeToLive ran out before the hand-off
        self.identities: list[tuple[str, str | None]] = []  # (MessageId, OriginationIdentity) of each accepted send
        self.clock = time.time  # tests move it to play the 30 days of DeleteOptedOutNumber
        # name -> {"OptOutListName", "OptOutListArn", "CreatedTimestamp"} plus "numbers" (E.164 -> the
        # OptedOutNumberInformation) and "opted_in" (E.164 -> when DeleteOptedOutNumber last took it off)
        self.opt_out_lists: dict[str, dict] = {}
        self.keywords: dict[str, dict[str, dict]] = {}  # PhoneNumberId or PoolId -> KEYWORD -> KeywordInformation
        self._new_opt_out_list(DEFAULT_OPT_OUT_LIST)

    def handle(self, operation: str, params: dict) -> dict:
        validate(operation, params)
        method = getattr(self, "op_" + operation, None)
        if method is None:
            raise ApiError("ValidationException", f"The local stand-in does not implement {operation}",
                           Reason="UNKNOWN_OPERATION")
        with self._lock:
            return method(params)


def respond(standin: SmsVoiceStandIn, target: str, raw: bytes) -> tuple[int, dict]:
    operation = target[len(TARGET_PREFIX):]
    try:
        params = json.loads(raw or b"{}")
        return 200, standin.handle(operation, params)
    except ApiError as err:
        return err.status, err.body()
    except ValueError:
        return 400, {"__type": "SerializationException", "message": "body is not JSON"}
