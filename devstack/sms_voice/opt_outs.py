"""End User Messaging's opt-out lists, played by the stand-in (tests/aws_docs/sms-voice-opt-outs.json keeps
the quotes).

- Every phone number and pool sends under an opt-out list: ``Default`` until ``UpdatePhoneNumber`` /
  ``UpdatePool`` names another (``CreateOptOutList`` makes one).
- A send to a number on the sending identity's opt-out list is refused with ``ConflictException``
  ``DESTINATION_PHONE_NUMBER_OPTED_OUT`` (dry runs too: they check the opt-out).
- ``PutOptedOutNumber`` adds a number as the owner does; a recipient's opt-out keyword adds it as
  ``EndUserOptedOut`` (``two_way``).
- ``DeleteOptedOutNumber``: "Each destination phone number can only be deleted once every 30 days." A
  second deletion within 30 days is ``ValidationException`` ``PHONE_NUMBER_CANNOT_BE_OPTED_IN``, the model's
  reason for a number that cannot be opted in.
"""
from __future__ import annotations

from .model import ApiError, e164, matches, one_page

OPT_IN_INTERVAL = 30 * 24 * 3600  # DeleteOptedOutNumber: once every 30 days per number
DEFAULT_OPT_OUT_LIST = "Default"


class OptOutLists:
    """The opt-out list operations of ``SmsVoiceStandIn``: its ``opt_out_lists`` (name -> the list, with
    ``numbers`` and ``opted_in``) and ``clock``."""

    def _new_opt_out_list(self, name: str) -> dict:
        entry = {"OptOutListName": name, "CreatedTimestamp": self.clock(),
                 "OptOutListArn": f"arn:aws:sms-voice:{self.region}:{self.account}:opt-out-list/{name}",
                 "numbers": {}, "opted_in": {}}
        self.opt_out_lists[name] = entry
        return entry

    def _opt_out_list(self, name_or_arn: str) -> dict:
        for entry in self.opt_out_lists.values():
            if name_or_arn in (entry["OptOutListName"], entry["OptOutListArn"]):
                return entry
        raise ApiError("ResourceNotFoundException", f"No opt-out list {name_or_arn}", 404,
                       ResourceType="opt-out-list", ResourceId=name_or_arn)

    @staticmethod
    def _list_info(entry: dict) -> dict:
        return {k: entry[k] for k in ("OptOutListArn", "OptOutListName")}

    def opted_out(self, list_name: str, number: str) -> bool:
        return e164(number) in self._opt_out_list(list_name)["numbers"]

    def _not_opted_out(self, owner: dict | None, destination: str) -> None:
        """End User Messaging "doesn't attempt to send the message" to a number on the opt-out list of
        the identity it goes from."""
        if owner is not None and self.opted_out(owner["OptOutListName"], destination):
            raise ApiError("ConflictException", "The destination phone number is opted out", 400,
                           Reason="DESTINATION_PHONE_NUMBER_OPTED_OUT", ResourceType="opted-out-number",
                           ResourceId=e164(destination))

    def op_CreateOptOutList(self, p: dict) -> dict:
        name = p["OptOutListName"]
        if name in self.opt_out_lists:
            raise ApiError("ConflictException", f"{name} exists", 400, Reason="RESOURCE_ALREADY_EXISTS",
                           ResourceType="opt-out-list", ResourceId=name)
        entry = self._new_opt_out_list(name)
        return {**self._list_info(entry), "CreatedTimestamp": entry["CreatedTimestamp"], "Tags": p.get("Tags") or []}

    def op_DescribeOptOutLists(self, p: dict) -> dict:
        lists = [self._opt_out_list(n) for n in p.get("OptOutListNames") or []] or list(self.opt_out_lists.values())
        page, more = one_page(lists, p)
        return {"OptOutLists": [{**self._list_info(e), "CreatedTimestamp": e["CreatedTimestamp"]} for e in page],
                **more}

    def op_DescribeOptedOutNumbers(self, p: dict) -> dict:
        entry = self._opt_out_list(p["OptOutListName"])
        numbers = entry["numbers"]
        wanted = [e164(n) for n in p.get("OptedOutNumbers") or []]
        found = [numbers[n] for n in wanted or numbers if n in numbers and matches(numbers[n], p.get("Filters"))]
        page, more = one_page(found, p)
        return {**self._list_info(entry), "OptedOutNumbers": [dict(n) for n in page], **more}

    def _opt_out(self, entry: dict, number: str, *, end_user: bool) -> dict:
        number = e164(number)
        if number not in entry["numbers"]:
            entry["numbers"][number] = {"OptedOutNumber": number, "OptedOutTimestamp": self.clock(),
                                        "EndUserOptedOut": end_user}
        return entry["numbers"][number]

    def op_PutOptedOutNumber(self, p: dict) -> dict:
        entry = self._opt_out_list(p["OptOutListName"])
        return {**self._list_info(entry), **self._opt_out(entry, p["OptedOutNumber"], end_user=False)}

    def op_DeleteOptedOutNumber(self, p: dict) -> dict:
        entry = self._opt_out_list(p["OptOutListName"])
        number = e164(p["OptedOutNumber"])
        if number not in entry["numbers"]:
            raise ApiError("ResourceNotFoundException", "The number is not on the opt-out list", 404,
                           ResourceType="opted-out-number", ResourceId=number)
        now, last = self.clock(), entry["opted_in"].get(number)
        if last is not None and now - last < OPT_IN_INTERVAL:
            raise ApiError("ValidationException", "Each destination phone number can only be deleted once every "
                           "30 days", Reason="PHONE_NUMBER_CANNOT_BE_OPTED_IN")
        removed = entry["numbers"].pop(number)
        entry["opted_in"][number] = now
        return {**self._list_info(entry), **removed, "OptedOutTimestamp": now}
