"""End User Messaging's two-way messaging and keywords, played by the stand-in (tests/aws_docs/
sms-voice-opt-outs.json keeps the quotes).

- Every phone number and pool has two-way settings (``TwoWayEnabled``, ``TwoWayChannelArn``,
  ``SelfManagedOptOutsEnabled``, its opt-out list), set with ``UpdatePhoneNumber`` / ``UpdatePool``; a number
  in a pool goes by the pool's.
- Every phone number and pool has keywords: HELP and STOP from the start, which ``DeleteKeyword`` refuses to
  delete; ``PutKeyword`` sets the others.
- ``receive()`` is what End User Messaging does with a text a phone sends to one of the numbers: "When your
  number receives a message that begins with a keyword, AWS End User Messaging SMS responds with a
  customizable message"; keywords are case insensitive; the required opt-out keywords (ARRET, CANCEL, END,
  OPT-OUT, OPTOUT, QUIT, REMOVE, STOP, TD, UNSUBSCRIBE) opt the sender out. With
  ``SelfManagedOptOutsEnabled`` nothing is answered or listed: the owner does it.
"""
from __future__ import annotations

from .model import ApiError, e164, matches, only, one_page
from .opt_outs import DEFAULT_OPT_OUT_LIST

# The keywords that opt a sender out wherever End User Messaging manages opt-outs (the user guide's
# "Required opt-out keywords"); they answer with STOP's message.
REQUIRED_OPT_OUT_KEYWORDS = ("ARRET", "CANCEL", "END", "OPT-OUT", "OPTOUT", "QUIT", "REMOVE", "STOP", "TD",
                             "UNSUBSCRIBE")
# What a new number answers before anyone sets its keywords (AWS's own default texts are not documented;
# the local stack sets the stage's with PutKeyword at once).
DEFAULT_KEYWORDS = {
    "HELP": ("This number sends automated messages. Reply STOP to opt out.", "AUTOMATIC_RESPONSE"),
    "STOP": ("You are opted out and will receive no more messages from this number.", "OPT_OUT"),
}
UNDELETABLE_KEYWORDS = ("HELP", "STOP")
# Two-way fields UpdatePhoneNumber refuses on a number that belongs to a pool (the pool's own apply).
_POOL_MANAGED = ("TwoWayEnabled", "TwoWayChannelArn", "TwoWayChannelRole", "SelfManagedOptOutsEnabled",
                 "OptOutListName")


class TwoWay:
    """The two-way and keyword operations of ``SmsVoiceStandIn``: its ``keywords`` (number or pool id ->
    KEYWORD -> KeywordInformation), the two-way members of ``phone_numbers`` and ``pools``, and ``receive()``.
    Finds numbers and pools with ``sending``'s look-ups and lists opt-outs with ``opt_outs``'."""

    # -- what a new number or pool starts with --------------------------------------------------
    def _two_way_defaults(self) -> dict:
        """What a new number or pool has: two-way off, AWS-managed opt-outs on the Default list."""
        return {"TwoWayEnabled": False, "SelfManagedOptOutsEnabled": False, "OptOutListName": DEFAULT_OPT_OUT_LIST,
                "DeletionProtectionEnabled": False, "CreatedTimestamp": self.clock()}

    @staticmethod
    def _default_keywords() -> dict[str, dict]:
        return {k: {"Keyword": k, "KeywordMessage": m, "KeywordAction": a} for k, (m, a) in DEFAULT_KEYWORDS.items()}

    # -- two-way settings -----------------------------------------------------------------------
    def _update_two_way(self, entry: dict, p: dict) -> None:
        if "OptOutListName" in p:
            p = {**p, "OptOutListName": self._opt_out_list(p["OptOutListName"])["OptOutListName"]}
        enabled = p.get("TwoWayEnabled", entry["TwoWayEnabled"])
        if enabled and not p.get("TwoWayChannelArn", entry.get("TwoWayChannelArn")):
            raise ApiError("ValidationException", "Two-way needs a TwoWayChannelArn",
                           Reason="TWO_WAY_CHANNEL_NOT_PRESENT")
        for name in ("TwoWayEnabled", "TwoWayChannelArn", "TwoWayChannelRole", "SelfManagedOptOutsEnabled",
                     "OptOutListName", "DeletionProtectionEnabled", "InternationalSendingEnabled",
                     "SharedRoutesEnabled"):
            if name in p:
                entry[name] = p[name]

    def op_UpdatePhoneNumber(self, p: dict) -> dict:
        _, entry = self._number_or_pool(p["PhoneNumberId"], pools=False)
        pool = entry.get("PoolId")
        if pool and any(name in p for name in _POOL_MANAGED):
            raise ApiError("ConflictException", f"The phone number belongs to pool {pool}: update the pool", 400,
                           Reason="PHONE_NUMBER_ASSOCIATED_TO_POOL", ResourceType="phone-number",
                           ResourceId=p["PhoneNumberId"])
        self._update_two_way(entry, p)
        return only(entry, "UpdatePhoneNumberResult")

    def op_UpdatePool(self, p: dict) -> dict:
        entry = self._pool(p["PoolId"])
        self._update_two_way(entry, p)
        return only(entry, "UpdatePoolResult")

    # -- keywords -------------------------------------------------------------------------------
    def _keyword_owner(self, identity: str) -> tuple[dict, dict]:
        """(the number or pool, its keywords) for PutKeyword/DeleteKeyword/DescribeKeywords."""
        kind, entry = self._number_or_pool(identity)
        return entry, self.keywords[entry["PoolId"] if kind == "pool" else entry["PhoneNumberId"]]

    @staticmethod
    def _keyword_answer(entry: dict, identity: str, keyword: dict) -> dict:
        return {"OriginationIdentityArn": entry.get("PhoneNumberArn") or entry["PoolArn"], "OriginationIdentity": identity, **keyword}

    def op_PutKeyword(self, p: dict) -> dict:
        entry, keywords = self._keyword_owner(p["OriginationIdentity"])
        name = p["Keyword"].upper()  # "Keywords are case insensitive."
        action = p.get("KeywordAction") or keywords.get(name, {}).get("KeywordAction") or "AUTOMATIC_RESPONSE"
        keywords[name] = {"Keyword": name, "KeywordMessage": p["KeywordMessage"], "KeywordAction": action}
        return self._keyword_answer(entry, p["OriginationIdentity"], keywords[name])

    def op_DeleteKeyword(self, p: dict) -> dict:
        entry, keywords = self._keyword_owner(p["OriginationIdentity"])
        name = p["Keyword"].upper()
        if name in UNDELETABLE_KEYWORDS:
            raise ApiError("ConflictException", f"{name} is a required keyword and cannot be deleted", 400,
                           Reason="RESOURCE_DELETION_NOT_ALLOWED", ResourceType="keyword", ResourceId=name)
        if name not in keywords:
            raise ApiError("ResourceNotFoundException", f"No keyword {name}", 404, ResourceType="keyword",
                           ResourceId=name)
        return self._keyword_answer(entry, p["OriginationIdentity"], keywords.pop(name))

    def op_DescribeKeywords(self, p: dict) -> dict:
        entry, keywords = self._keyword_owner(p["OriginationIdentity"])
        wanted = [k.upper() for k in p.get("Keywords") or []]
        found = [keywords[k] for k in wanted or keywords if k in keywords and matches(keywords[k], p.get("Filters"))]
        page, more = one_page(found, p)
        arn = entry.get("PhoneNumberArn") or entry["PoolArn"]
        return {"OriginationIdentityArn": arn, "OriginationIdentity": p["OriginationIdentity"],
                "Keywords": [dict(k) for k in page], **more}

    # -- a text from a phone to one of the numbers ------------------------------------------------
    def receive(self, origination: str, destination: str, body: str) -> dict:
        """What End User Messaging does when ``origination`` texts ``body`` to the account's number
        ``destination``: applies the keyword the text begins with (opt-out, opt-in) unless opt-outs are
        self-managed, and says what to answer and where the text goes. Returns
        ``{"keyword": KEYWORD or None, "action", "answer": text or None, "channel": TwoWayChannelArn or None,
        "registered_keyword"}``: ``keyword`` is the one the text begins with, ``registered_keyword`` the
        number's own, whatever the text says (the two-way payload's ``messageKeyword``).
        ResourceNotFoundException when ``destination`` is none of the account's numbers."""
        with self._lock:
            number = next((e for e in self.phone_numbers.values() if e["PhoneNumber"] == e164(destination)), None)
            if number is None:
                raise ApiError("ResourceNotFoundException", "No such phone number in this account", 404,
                               ResourceType="phone-number", ResourceId="(destination)")
            owner = self.pools[number["PoolId"]] if number.get("PoolId") else number
            keywords = self.keywords[owner.get("PoolId") or owner["PhoneNumberId"]]
            keyword, action, answer = self._keyword_of(body, keywords)
            if owner["SelfManagedOptOutsEnabled"]:
                answer = None  # the owner answers and keeps the list
            elif action == "OPT_OUT":
                self._opt_out(self._opt_out_list(owner["OptOutListName"]), origination, end_user=True)
            elif action == "OPT_IN":
                self._opt_out_list(owner["OptOutListName"])["numbers"].pop(e164(origination), None)
            channel = owner.get("TwoWayChannelArn") if owner["TwoWayEnabled"] else None
            return {"keyword": keyword, "action": action, "answer": answer, "channel": channel,
                    "registered_keyword": number["registered_keyword"]}

    @staticmethod
    def _keyword_of(body: str, keywords: dict[str, dict]) -> tuple[str | None, str | None, str | None]:
        """The keyword ``body`` begins with (case insensitive, the longest one), its action and answer."""
        text = body.strip().upper()
        required = {k: {**keywords["STOP"], "Keyword": k, "KeywordAction": "OPT_OUT"} for k in REQUIRED_OPT_OUT_KEYWORDS}
        known = {**keywords, **required}  # the required opt-out keywords always opt out
        for name in sorted(known, key=len, reverse=True):
            if text == name or (text.startswith(name) and text[len(name)].isspace()):
                return name, known[name]["KeywordAction"], known[name]["KeywordMessage"]
        return None, None, None
