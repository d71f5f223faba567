"""The local stack's single-item writes (devstack/itemwrites.py): a conditional write is whole, as on AWS.

"If the condition expression evaluates to true, the operation succeeds; otherwise, the operation fails" (the
Developer Guide; tests/aws_docs/dynamodb-condition-expressions.json, whose API reference quotes are found in
botocore's model). So of two writes conditioned on one value of one item, one succeeds and the other fails.

Each test makes two writes race in threads, at the worst moment: the first write's condition has been evaluated
and its write is not yet made (the test holds it there, at moto's condition check) when the second write is made.
With moto's own methods both writes succeed, which is what once took a webhook endpoint's closed window twice
(tests/test_webhook_delivery.py); with the local stack's, the second waits for the first and fails its condition.
"""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.loaders import Loader
from moto import mock_aws
from moto.dynamodb import models as moto_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models import table as moto_table

from devstack import itemwrites

REGION = "us-east-1"
DOCS = json.loads((Path(__file__).parent / "aws_docs" / "dynamodb-condition-expressions.json").read_text())
# How long the first write waits at its condition for the second to evaluate its own: the second never can while
# the first holds the item's lock, so with the lock the wait runs out. Without it, the second gets there at once.
LOCKED_WAIT, RACE_WAIT = 0.5, 30.0


@pytest.fixture
def table():
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(TableName="endpoints", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        yield client


class HeldAtTheCondition:
    """Holds the first write that evaluates a condition between its check and its write, until a second write
    has evaluated its own (or ``wait`` runs out); the second write starts once the first is held."""

    def __init__(self, patch: pytest.MonkeyPatch, wait: float):
        self.first_checked = threading.Event()
        self.both = threading.Barrier(2, timeout=wait)
        for module, name in ((moto_models, "create_condition_expression_parser"),
                             (moto_models, "get_filter_expression"), (moto_table, "get_filter_expression")):
            patch.setattr(module, name, self.holding(getattr(module, name)))

    def holding(self, make):
        held = self

        class Op:
            def __init__(self, op):
                self.op = op

            def parse(self):  # a condition expression parser: its op, held
                return Op(self.op.parse())

            def expr(self, item):
                result = self.op.expr(item)
                held.first_checked.set()
                try:
                    held.both.wait()
                except threading.BrokenBarrierError:
                    pass  # the other write could not get here: it waits for this one
                return result

        return lambda *args, **kwargs: Op(make(*args, **kwargs))


def race(wait: float, first, second) -> list[str]:
    """``first`` and ``second`` (calls), ``second`` made while ``first`` is held at its condition; each one's
    outcome: "ok" or its error code. moto's condition checks are held for this race only."""
    with pytest.MonkeyPatch.context() as patch:
        return _race(HeldAtTheCondition(patch, wait), first, second)


def _race(held: HeldAtTheCondition, first, second) -> list[str]:
    outcomes: dict[str, str] = {}

    def run(name, call):
        try:
            call()
            outcomes[name] = "ok"
        except ClientError as err:
            outcomes[name] = err.response["Error"]["Code"]

    one = threading.Thread(target=run, args=("first", first))
    one.start()
    assert held.first_checked.wait(timeout=60)
    two = threading.Thread(target=run, args=("second", second))
    two.start()
    for thread in (one, two):
        thread.join(timeout=120)
    return [outcomes["first"], outcomes["second"]]


def take_the_turn(table, value: str):
    """The app's way to take a turn: move ``at`` on, only from the value it read."""
    return lambda: table.update_item(
        TableName="endpoints", Key={"pk": {"S": "hook"}}, UpdateExpression="SET #at = :next",
        ConditionExpression="#at = :seen", ExpressionAttributeNames={"#at": "at"},
        ExpressionAttributeValues={":seen": {"S": "0"}, ":next": {"S": value}})


def claim(table, owner: str):
    """A claim that only the first may make: a put where no item is."""
    return lambda: table.put_item(TableName="endpoints", Item={"pk": {"S": "claim"}, "owner": {"S": owner}},
                                  ConditionExpression="attribute_not_exists(pk)")


def moto_alone(monkeypatch):
    for name, method in itemwrites.METHODS.items():
        monkeypatch.setattr(DynamoDBBackend, name, method)


def test_of_two_updates_conditioned_on_one_value_one_succeeds(table):
    table.put_item(TableName="endpoints", Item={"pk": {"S": "hook"}, "at": {"S": "0"}})
    assert race(LOCKED_WAIT, take_the_turn(table, "1"), take_the_turn(table, "2")) == [
        "ok", "ConditionalCheckFailedException"]
    assert table.get_item(TableName="endpoints", Key={"pk": {"S": "hook"}})["Item"]["at"] == {"S": "1"}


def test_of_two_claims_of_one_item_one_succeeds(table):
    assert race(LOCKED_WAIT, claim(table, "first"), claim(table, "second")) == [
        "ok", "ConditionalCheckFailedException"]
    assert table.get_item(TableName="endpoints", Key={"pk": {"S": "claim"}})["Item"]["owner"] == {"S": "first"}


def test_a_conditional_delete_waits_for_the_write_under_way(table):
    table.put_item(TableName="endpoints", Item={"pk": {"S": "hook"}, "at": {"S": "0"}})
    delete = lambda: table.delete_item(  # noqa: E731
        TableName="endpoints", Key={"pk": {"S": "hook"}}, ConditionExpression="#at = :seen",
        ExpressionAttributeNames={"#at": "at"}, ExpressionAttributeValues={":seen": {"S": "0"}})
    assert race(LOCKED_WAIT, take_the_turn(table, "1"), delete) == [
        "ok", "ConditionalCheckFailedException"]
    assert table.get_item(TableName="endpoints", Key={"pk": {"S": "hook"}})["Item"]["at"] == {"S": "1"}


def test_with_moto_s_own_methods_both_succeed(table, monkeypatch):
    """The race the tests above hold shut is real: moto alone lets both writes through, and the second overwrites
    the first."""
    moto_alone(monkeypatch)
    table.put_item(TableName="endpoints", Item={"pk": {"S": "hook"}, "at": {"S": "0"}})
    assert race(RACE_WAIT, take_the_turn(table, "1"), take_the_turn(table, "2")) == ["ok", "ok"]
    assert race(RACE_WAIT, claim(table, "first"), claim(table, "second")) == ["ok", "ok"]


def test_writes_to_other_items_do_not_wait(table):
    """A write held at its condition does not hold up a write to another item (they do not share a lock)."""
    table.put_item(TableName="endpoints", Item={"pk": {"S": "hook"}, "at": {"S": "0"}})
    other = next(f"other-{n}" for n in range(1000)  # an item whose lock is not the held one's
                 if itemwrites.item_lock(moto_models.dynamodb_backends["123456789012"][REGION], "endpoints",
                                         {"pk": {"S": f"other-{n}"}})
                 is not itemwrites.item_lock(moto_models.dynamodb_backends["123456789012"][REGION], "endpoints",
                                             {"pk": {"S": "hook"}}))
    table.put_item(TableName="endpoints", Item={"pk": {"S": other}, "at": {"S": "0"}})
    second = lambda: table.update_item(  # noqa: E731
        TableName="endpoints", Key={"pk": {"S": other}}, UpdateExpression="SET #at = :next",
        ConditionExpression="#at = :seen", ExpressionAttributeNames={"#at": "at"},
        ExpressionAttributeValues={":seen": {"S": "0"}, ":next": {"S": "1"}})
    # Both evaluate while the first is held: the barrier is met, not run out.
    assert race(RACE_WAIT, take_the_turn(table, "1"), second) == ["ok", "ok"]


def test_the_api_reference_quotes_are_in_botocore_s_model():
    model = Loader().load_service_model("dynamodb", "service-2")
    text = " ".join([model["shapes"][shape]["members"]["ConditionExpression"]["documentation"]
                     for shape in ("UpdateItemInput", "PutItemInput", "DeleteItemInput")]
                    + [model["shapes"]["ConditionalCheckFailedException"]["documentation"]])
    text = re.sub(r"\s+", " ", re.sub(r"</?p>", "", text))
    quoted = [q for source in DOCS["sources"] if source["in_botocore_model"] for q in source["quotes"]]
    assert quoted and all(source["url"].startswith("https://docs.aws.amazon.com/") for source in DOCS["sources"])
    for quote in quoted:
        assert quote in text, quote


def test_every_process_with_moto_has_them(monkeypatch):
    """The in-process tests (tests/conftest.py) and the local stack's emulator both install them."""
    from devstack.emulator import Emulator

    assert itemwrites.installed()
    moto_alone(monkeypatch)
    assert not itemwrites.installed()
    Emulator()
    assert itemwrites.installed()
