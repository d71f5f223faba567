"""End User Messaging's origination identities and sends, played by the stand-in.

As the API reference has it:
- ``OriginationIdentity`` may be a PhoneNumber, PhoneNumberId, PhoneNumberArn, SenderId, SenderIdArn, PoolId
  or PoolArn. A sender id exists per country (``RequestSenderId``), so one given by name must exist for the
  destination's country. A number in a pool sends under the pool's settings.
- ``SendTextMessage`` / ``SendMediaMessage`` need an identity with the channel's capability, a configuration
  set that exists, and (MMS) media in S3 of a type and size MMS takes. Accepted sends go to the shared
  outbox, with the ``Context`` they carried (End User Messaging echoes it in the ``context`` of every event
  of the message).
- ``DryRun``: "the message is checked and validated, but isn't sent to the end recipient. You are not charged
  for using DryRun." A dry run is validated like any send and answers a MessageId, but reaches no outbox and
  makes no delivery events.
- ``MaxPrice``: "If the calculated amount to send the text message is greater than MaxPrice, the message is
  not sent and an error is returned." The amount here is the local receipts' price per message part
  (``receipts.SMS_PRICE_USD``, ``receipts.MMS_PRICE_USD``); above the cap the send is refused with
  ValidationException ``PRICE_OVER_THRESHOLD`` (a reason in the model's ValidationExceptionReason), a dry
  run too, and nothing reaches the outbox.
- ``TimeToLive``: "If the messages isn't handed off before the TTL expires we stop attempting to hand off the
  message and return TTL_EXPIRED event." The local carrier hands a message off ``handoff_seconds`` after it
  was accepted (0 unless a test raises it); a send whose TimeToLive is shorter is accepted, and its final
  event is ``TEXT_TTL_EXPIRED`` / ``MEDIA_TTL_EXPIRED`` (``ttl_expired`` holds its MessageId).
"""
from __future__ import annotations

import re
import uuid
from decimal import Decimal

import phonenumbers

from .. import appload  # noqa: F401  (puts chalicelib on the path)
from chalicelib.sending.media import MAX_BYTES  # the documented MMS limits, one table for app and stand-in
from ..receipts import MMS_PRICE_USD, SMS_PRICE_USD  # the local price per message part
from .model import ApiError, matches, only, one_page


class Sending:
    """The identity, configuration set and send operations of ``SmsVoiceStandIn``: its ``phone_numbers``,
    ``pools``, ``sender_ids``, ``configuration_sets``, ``identities`` and ``dry_runs``. A new number or pool
    starts with ``two_way``'s defaults; a send checks ``opt_outs``' list."""

    # -- set-up used by the local stack -------------------------------------------------------
    def add_phone_number(self, number: str, capabilities=("SMS", "MMS"), registered_keyword: str | None = None) -> dict:
        """A phone number of the account. ``registered_keyword`` is what End User Messaging names in every
        two-way payload's ``messageKeyword`` ("the registered keyword that's associated with your dedicated
        phone number"). AWS documents no value but its example's ``JOIN``; replies captured from real numbers
        in public code say ``KEYWORD_<account>``, the default here."""
        pid = "phone-" + uuid.uuid4().hex
        entry = {"PhoneNumberId": pid, "PhoneNumber": number,
                 "PhoneNumberArn": f"arn:aws:sms-voice:{self.region}:{self.account}:phone-number/{pid}",
                 "MessageType": "TRANSACTIONAL", "NumberCapabilities": list(capabilities), "Status": "ACTIVE",
                 "IsoCountryCode": self._country(number) or "US", "NumberType": "LONG_CODE",
                 "MonthlyLeasingPrice": "1.00", "InternationalSendingEnabled": False, **self._two_way_defaults(),
                 # the stand-in's own bookkeeping (DescribePhoneNumbers answers only the model's members)
                 "registered_keyword": registered_keyword or f"KEYWORD_{self.account}"}
        self.phone_numbers[pid] = entry
        self.keywords[pid] = self._default_keywords()
        return entry

    def add_sender_id(self, sender_id: str, country: str, message_types=("TRANSACTIONAL",)) -> dict:
        entry = {"SenderId": sender_id, "IsoCountryCode": country.upper(), "MessageTypes": list(message_types),
                 "SenderIdArn": f"arn:aws:sms-voice:{self.region}:{self.account}:sender-id/{sender_id}/"
                                f"{country.upper()}",
                 "MonthlyLeasingPrice": "0.00", "DeletionProtectionEnabled": False, "Registered": False}
        self.sender_ids[(sender_id, country.upper())] = entry
        return entry

    def add_pool(self, phone_number_ids: list[str]) -> dict:
        pool_id = "pool-" + uuid.uuid4().hex
        entry = {"PoolId": pool_id, "PoolArn": f"arn:aws:sms-voice:{self.region}:{self.account}:pool/{pool_id}",
                 "Status": "ACTIVE", "MessageType": "TRANSACTIONAL", "PhoneNumberIds": list(phone_number_ids),
                 "SharedRoutesEnabled": False, **self._two_way_defaults()}
        self.pools[pool_id] = entry
        self.keywords[pool_id] = self._default_keywords()
        for number_id in phone_number_ids:
            self.phone_numbers[number_id]["PoolId"] = pool_id
        return entry

    def _number_or_pool(self, identity: str, *, pools: bool = True) -> tuple[str, dict]:
        """A phone number (id or ARN) or, with ``pools``, a pool (id or ARN): ("phone-number" | "pool", entry)."""
        for entry in self.phone_numbers.values():
            if identity in (entry["PhoneNumberId"], entry["PhoneNumberArn"]):
                return "phone-number", entry
        for entry in self.pools.values() if pools else ():
            if identity in (entry["PoolId"], entry["PoolArn"]):
                return "pool", entry
        raise ApiError("ResourceNotFoundException", f"No phone number or pool {identity}", 404,
                       ResourceType=self._kind(identity), ResourceId=identity)

    @staticmethod
    def _country(destination: str) -> str:
        try:
            return phonenumbers.region_code_for_number(phonenumbers.parse(
                destination if destination.startswith("+") else "+" + destination)) or ""
        except phonenumbers.NumberParseException:
            raise ApiError("ValidationException", "The destination is not a phone number",
                           Reason="INVALID_PARAMETER") from None

    @staticmethod
    def _kind(identity: str) -> str:
        """The ResourceType an identity names: from an ARN's resource part, else from its form."""
        if identity.startswith("arn:"):
            return identity.split(":", 5)[-1].split("/", 1)[0]
        if identity.startswith("pool-"):
            return "pool"
        if identity.startswith(("phone-", "+")) or identity.isdigit():
            return "phone-number"
        return "sender-id"

    def _identity(self, identity: str | None, destination: str, channel: str = "SMS") -> dict | None:
        """Find the origination identity in any form the API takes; ResourceNotFoundException when
        there is none, ConflictException NUMBER_CAPABILITIES_MISMATCH when its numbers lack the channel.
        Returns the number or pool whose opt-out list applies (None for a sender id)."""
        if identity is None:
            return None
        numbers = None
        for entry in self.phone_numbers.values():
            if identity in (entry["PhoneNumberId"], entry["PhoneNumberArn"], entry["PhoneNumber"]):
                # a number in a pool goes by the pool's settings (its opt-out list among them)
                numbers, kind, owner = [entry], "phone-number", self.pools.get(entry.get("PoolId"), entry)
        for entry in self.pools.values():
            if identity in (entry["PoolId"], entry["PoolArn"]):
                numbers, kind, owner = [self.phone_numbers[n] for n in entry["PhoneNumberIds"]], "pool", entry
        if numbers is None:
            sender = None
            if identity.startswith("arn:"):
                sender = next((e for e in self.sender_ids.values() if e["SenderIdArn"] == identity), None)
            else:
                sender = self.sender_ids.get((identity, self._country(destination)))
            if sender is not None:
                if channel != "SMS":
                    raise ApiError("ConflictException", "A sender id sends SMS only", 400,
                                   Reason="NUMBER_CAPABILITIES_MISMATCH", ResourceType="sender-id",
                                   ResourceId=identity)
                return None
            raise ApiError("ResourceNotFoundException", f"No origination identity {identity}", 404,
                           ResourceType=self._kind(identity), ResourceId=identity)
        if not any(channel in entry["NumberCapabilities"] for entry in numbers):
            raise ApiError("ConflictException", f"The origination identity cannot send {channel}", 400,
                           Reason="NUMBER_CAPABILITIES_MISMATCH", ResourceType=kind, ResourceId=identity)
        return owner

    def _configuration_set(self, name: str | None) -> None:
        if name is not None and name not in self.configuration_sets:
            raise ApiError("ResourceNotFoundException", f"No configuration set {name}", 404,
                           ResourceType="configuration-set", ResourceId=name)

    # -- operations ---------------------------------------------------------------------------
    @staticmethod
    def _within_price(p: dict, channel: str) -> None:
        """MaxPrice: refused when a message part costs more than the cap (the local price)."""
        cap = p.get("MaxPrice")
        price = SMS_PRICE_USD if channel == "sms" else MMS_PRICE_USD
        if cap is not None and Decimal(str(price)) > Decimal(cap):
            raise ApiError("ValidationException", f"The price of this message, {price} USD per part, is over "
                           f"MaxPrice {cap}", Reason="PRICE_OVER_THRESHOLD")

    def _accepted(self, p: dict, channel: str, media_url: str | None) -> dict:
        self._within_price(p, channel)
        message_id = str(uuid.uuid4())
        self.identities.append((message_id, p.get("OriginationIdentity")))
        if p.get("DryRun"):
            self.dry_runs += 1  # validated, not sent: no outbox entry, no events
        else:
            if p.get("TimeToLive") is not None and self.handoff_seconds > p["TimeToLive"]:
                self.ttl_expired.add(message_id)  # accepted, and never handed off: its final event says so
            self._record_send(channel, p["DestinationPhoneNumber"], p.get("MessageBody"), media_url, message_id,
                              context=p.get("Context"))
        return {"MessageId": message_id}

    def op_SendTextMessage(self, p: dict) -> dict:
        owner = self._identity(p.get("OriginationIdentity"), p["DestinationPhoneNumber"], "SMS")
        self._configuration_set(p.get("ConfigurationSetName"))
        self._not_opted_out(owner, p["DestinationPhoneNumber"])
        return self._accepted(p, "sms", None)

    def op_SendMediaMessage(self, p: dict) -> dict:
        owner = self._identity(p["OriginationIdentity"], p["DestinationPhoneNumber"], "MMS")
        self._configuration_set(p.get("ConfigurationSetName"))
        self._not_opted_out(owner, p["DestinationPhoneNumber"])
        url = p["MediaUrls"][0]
        match = re.fullmatch(r"s3://([^/]+)/(.+)", url)
        if not match:
            raise ApiError("ValidationException", f"MediaUrls must be s3://bucket/key, got {url}",
                           Reason="INVALID_PARAMETER")
        head = self._read_media(match.group(1), match.group(2))
        if head is None:
            raise ApiError("ValidationException", f"Cannot read {url}", Reason="RESOURCE_NOT_ACCESSIBLE")
        content_type, size = head
        if content_type not in MAX_BYTES:
            raise ApiError("ValidationException", f"{content_type} is not an MMS media type",
                           Reason="MEDIA_TYPE_NOT_SUPPORTED")
        if size > MAX_BYTES[content_type]:
            raise ApiError("ValidationException", f"{url} is too large for MMS", Reason="MAXIMUM_SIZE_EXCEEDED")
        return self._accepted(p, "mms", url)

    def op_RequestSenderId(self, p: dict) -> dict:
        key = (p["SenderId"], p["IsoCountryCode"].upper())
        if key in self.sender_ids:
            raise ApiError("ConflictException", f"{key[0]} exists for {key[1]}", Reason="RESOURCE_ALREADY_EXISTS")
        entry = self.add_sender_id(*key, message_types=p.get("MessageTypes") or ("TRANSACTIONAL",))
        return {**entry, "Tags": p.get("Tags") or []}

    def op_DescribeSenderIds(self, p: dict) -> dict:
        wanted = {(w["SenderId"], w["IsoCountryCode"].upper()) for w in p.get("SenderIds") or []}
        return {"SenderIds": [e for k, e in self.sender_ids.items() if not wanted or k in wanted]}

    def op_CreateConfigurationSet(self, p: dict) -> dict:
        name = p["ConfigurationSetName"]
        if name in self.configuration_sets:
            raise ApiError("ConflictException", f"{name} exists", Reason="RESOURCE_ALREADY_EXISTS")
        arn = f"arn:aws:sms-voice:{self.region}:{self.account}:configuration-set/{name}"
        self.configuration_sets[name] = {"ConfigurationSetName": name, "ConfigurationSetArn": arn,
                                         "EventDestinations": []}
        return {"ConfigurationSetName": name, "ConfigurationSetArn": arn}

    def op_DescribeConfigurationSets(self, p: dict) -> dict:
        names = p.get("ConfigurationSetNames") or list(self.configuration_sets)
        return {"ConfigurationSets": [self.configuration_sets[n] for n in names if n in self.configuration_sets]}

    def op_DescribePhoneNumbers(self, p: dict) -> dict:
        wanted = [self._number_or_pool(i, pools=False)[1] for i in p.get("PhoneNumberIds") or []]
        found = [e for e in wanted or self.phone_numbers.values() if matches(e, p.get("Filters"))]
        page, more = one_page(found, p)
        return {"PhoneNumbers": [only(e, "PhoneNumberInformation") for e in page], **more}

    def op_DescribePools(self, p: dict) -> dict:
        wanted = [self._pool(i) for i in p.get("PoolIds") or []]
        found = [e for e in wanted or self.pools.values() if matches(e, p.get("Filters"))]
        page, more = one_page(found, p)
        return {"Pools": [only(e, "PoolInformation") for e in page], **more}

    def _pool(self, identity: str) -> dict:
        kind, entry = self._number_or_pool(identity)
        if kind != "pool":
            raise ApiError("ResourceNotFoundException", f"No pool {identity}", 404, ResourceType="pool",
                           ResourceId=identity)
        return entry
