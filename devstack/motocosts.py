"""Five of moto's costs cut, its answers kept: DynamoDB Streams' ``GetRecords`` and SQS's ``ReceiveMessage``, the
calls the local stack's pollers make all the time, at a cost that does not grow with the account; the backend
its dispatcher finds for each request, looked up once per host; a KMS key's private key, made only for a key
that uses one; and every DynamoDB answer encoded as ``GetRecords``' records are.

Where the 500-message bulk test's time went (py-spy, only the threads holding the GIL, moto 5.2.5): the process
was busy, not waiting, and two thirds of the work was the embedded AWS. Two things there cost more the more the
account held:

- ``GetRecords``: moto hands its stream records to its generic response serializer, which looks every value
  up against the botocore model, field by field; about 0.5 ms a record. Two pollers read every record of the
  messages table's stream (the webhook fanout's and the report tally's), so a batch of 500 spent 13 s of CPU in
  it, a fifth of the test. ``serialized`` here writes the same answer along the same botocore shapes itself
  (``encode``: a structure's members by their names, a blob in base64, a timestamp as moto's serializer writes
  it); its status and headers are still moto's serializer's. A value it does not expect (a type or a key the
  shape does not have, a ``None``) sends the whole answer through moto's serializer instead, so an answer is
  always the one moto would give.
- ``ReceiveMessage``: for every message it hands out, moto checks the queue's retention period by computing
  every attribute of the queue (``get_queue_attributes``), three of which count the queue's messages, and it
  does it three times: a receive of 10 from a queue of N messages looked at 90 N messages, so draining a queue
  cost the square of its length (7 s of CPU for the batch of 500). The check here reads the queue's retention
  period itself, and decides the same way.

Once those were cut, the same test spent a fifth of its samples (py-spy, every thread) with threads queued on
the lock of moto's dispatcher (``DomainDispatcherApplication.get_application``). Every request takes that lock
to find its backend from the host it names (``dynamodb.us-east-1.amazonaws.com``), and the holder first lists
moto's 174 package folders with a ``stat`` each (``backends.list_of_moto_modules``), then tries moto's URL
patterns in turn: 0.2 to 0.4 ms a request, one request at a time. ``get_backend_for_host`` here asks moto once
per host and remembers its answer, which depends on nothing else (moto's folders and patterns do not change
while it runs). The local stack's clients name a handful of hosts; it remembers at most ``REMEMBERED_HOSTS``.

The API tests make the stack's resources afresh for every test (``tests/conftest.py``), and a fifth of that went
to KMS: moto gives every key an RSA 2048 private key, made when the key is, a symmetric key included (its
``generate_private_key`` falls back to RSA 2048 for any spec that is neither RSA nor ECC); about 70 ms a key.
KMS uses no private key for a symmetric key's encrypt or decrypt, and neither does moto.
``generate_private_key`` here hands such a key the same RSA 2048 key, made on its first use instead
(``KeyOnFirstUse``); a key whose spec is RSA or ECC gets moto's at once, as before.

The same bulk test, with those cut, still spent 45% of its CPU in moto's DynamoDB, and 14% in moto's serializer
writing DynamoDB's answers: an item of twenty attributes costs it about 2 ms (each value looked up against the
model), and every ``UpdateItem`` of the send path returns its item. The same ``serialized`` writes DynamoDB's
answers too; an error, or a value ``encode`` does not take (a member the model does not have, as moto's
``ConsumedCapacityUnits`` in a ``DeleteItem`` answer), goes through moto's serializer whole.

Each replaces a moto method whose source it was read against (moto 5.2.5, ``MOTO_SOURCES``: the sha256 of each
method's source); another moto keeps its own method, and the test says so. ``tests/test_standin_costs.py``
holds each to moto's own answers.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import inspect
import json
import logging
from typing import Any

from moto import settings as moto_settings
from moto.core.responses import ActionResult, BaseResponse, get_service_model
from moto.dynamodb.responses import DynamoHandler
from moto.core.serialize import TimestampSerializer
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.kms import models as kms_models
from moto.kms.utils import KeySpec
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sqs import models as sqs_models

# moto's own methods, kept, and the sha256 of the source of each as read (moto 5.2.5).
MOTO_RETENTION_CHECK = sqs_models.SQSBackend.is_message_valid_based_on_retention_period
MOTO_BACKEND_FOR_HOST = DomainDispatcherApplication.get_backend_for_host
MOTO_PRIVATE_KEY = kms_models.generate_private_key
MOTO_SERIALIZED = BaseResponse.serialized
MOTO_SOURCES = {
    "is_message_valid_based_on_retention_period": "cca23b94a5f3af9d9c5af1c09ee5e615017bdf6bd032301cb321c06c7e595d4b",
    "get_backend_for_host": "1f41972c1e4e660fbf4e4ddfeeed2fdff56dc105a8f8e1bf015640f710ef511a",
    "generate_private_key": "cdf2b67aac1401be485253470c133ba6b0be6479a3930db103ba9b991dd64bae",
    "serialized": "af486a0ef132716231d3a6484c32ae91a54b40fbc1d24fff01c78c813d251110",
}
# The handlers whose answers ``serialized`` writes: DynamoDB Streams' (GetRecords above all) and DynamoDB's.
SERIALIZED_FOR = (DynamoDBStreamsHandler, DynamoHandler)
# The most hosts one dispatcher remembers the backend of (a host is the caller's to name: bounded).
REMEMBERED_HOSTS = 256


class Unexpected(Exception):
    """A value ``encode`` does not take: the answer goes through moto's serializer."""


def _blob(value: str | bytes) -> str:
    """moto's JSON serializer's ``_base64``: a str is taken as its UTF-8 bytes."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return base64.b64encode(value).strip().decode("utf-8")


def encode(value: Any, shape) -> Any:
    """``value`` along the botocore ``shape`` as moto's JSON serializer writes it, for the values moto's stream
    records and DynamoDB answers hold (dicts keyed by member names, lists, str, int, float, bool, bytes,
    datetime); anything else raises ``Unexpected``."""
    kind = shape.type_name
    if kind == "structure":
        if type(value) is not dict or not value.keys() <= shape.members.keys():
            raise Unexpected(shape.name)
        # moto leaves a member out when it is None
        return {name: encode(member, shape.members[name]) for name, member in value.items() if member is not None}
    if kind == "map":
        if type(value) is not dict or any(type(key) is not str for key in value):
            raise Unexpected(shape.name)
        return {key: encode(member, shape.value) for key, member in value.items()}
    if kind == "list":
        if type(value) is not list:
            raise Unexpected(shape.name)
        return [encode(member, shape.member) for member in value]
    if kind == "string" and type(value) is str:
        return value
    if kind in ("long", "integer") and type(value) is int:
        return value
    if kind == "boolean" and type(value) is bool:
        return value
    if kind in ("double", "float") and type(value) in (int, float):
        return float(value)
    if kind == "blob" and type(value) in (bytes, str):
        return _blob(value)
    if kind == "timestamp" and type(value) is datetime.datetime and "timestampFormat" not in shape.serialization:
        return TimestampSerializer._timestamp_unixtimestamp(value)
    raise Unexpected(f"{shape.name}: {type(value).__name__}")


def is_message_valid_based_on_retention_period(self: sqs_models.SQSBackend, queue_name: str,
                                               message: sqs_models.Message) -> bool:
    """moto's check, on the queue's retention period itself rather than on all its attributes."""
    retention_period = self.get_queue(queue_name).message_retention_period
    retain_until = retention_period + message.sent_timestamp / 1000
    return retain_until > sqs_models.unix_time()


def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
    """moto's answer for ``host``, asked once per dispatcher and host."""
    remembered = self.__dict__.setdefault("_backend_for_host", {})
    try:
        return remembered[host]
    except KeyError:
        found = MOTO_BACKEND_FOR_HOST(self, host)
        if len(remembered) < REMEMBERED_HOSTS:
            remembered[host] = found
        return found


class KeyOnFirstUse:
    """The private key moto gives a key of ``spec``, made on its first use (any attribute asked for)."""

    def __init__(self, spec: str):
        self.spec, self.made = spec, None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("spec", "made"):  # copy and pickle probe these before __init__
            raise AttributeError(name)
        if self.made is None:
            self.made = MOTO_PRIVATE_KEY(self.spec)
        return getattr(self.made, name)


def generate_private_key(key_spec: str) -> Any:
    """moto's ``generate_private_key``: at once for an RSA or ECC spec, on first use for the others (a symmetric
    or HMAC key, which moto backs with an RSA 2048 key all the same)."""
    if key_spec in KeySpec.rsa_key_specs() or key_spec in KeySpec.ecc_key_specs():
        return MOTO_PRIVATE_KEY(key_spec)
    return KeyOnFirstUse(key_spec)


def serialized(self: BaseResponse, action_result: ActionResult):
    """moto's ``serialized`` for a DynamoDB or DynamoDB Streams answer: the body by ``encode`` along the operation's
    output shape, the status and headers from moto's serializer; an error, or a value ``encode`` does not take, by
    moto's whole."""
    result = action_result.result
    if (type(result) is not dict or moto_settings.PRETTIFY_RESPONSES
            or type(action_result).execute_result is not ActionResult.execute_result
            or getattr(self, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)):
        return MOTO_SERIALIZED(self, action_result)
    shape = get_service_model(self.boto3_service_name).operation_model(self._get_action()).output_shape
    if shape is None:  # an operation that answers nothing
        return MOTO_SERIALIZED(self, action_result)
    try:
        body = encode(result, shape)
    except Unexpected:
        return MOTO_SERIALIZED(self, action_result)
    status, headers, _ = MOTO_SERIALIZED(self, ActionResult({}))
    return status, headers, json.dumps(body)


# Each replacement: where it goes (an owner of moto's method of the same name), moto's method, the replacement.
REPLACEMENTS = {
    "is_message_valid_based_on_retention_period": ((sqs_models.SQSBackend,), MOTO_RETENTION_CHECK,
                                                   is_message_valid_based_on_retention_period),
    "get_backend_for_host": ((DomainDispatcherApplication,), MOTO_BACKEND_FOR_HOST, get_backend_for_host),
    "generate_private_key": ((kms_models,), MOTO_PRIVATE_KEY, generate_private_key),
    "serialized": (SERIALIZED_FOR, MOTO_SERIALIZED, serialized),
}


def source_sha256(method) -> str:
    return hashlib.sha256(inspect.getsource(method).encode()).hexdigest()


def moto_source_sha256(name: str) -> str:
    return source_sha256(REPLACEMENTS[name][1])


def replace(owner, name: str, moto_method, replacement, read_against: str, by: str) -> bool:
    """Put ``replacement`` in place of moto's ``owner.name``, if moto's is the method it was read against (the
    sha256 of its source is ``read_against``); says whether it is in place. Idempotent. ``by``: the module that
    wrote the replacement, for the warning when moto's is another."""
    if getattr(owner, name) is replacement:
        return True
    if source_sha256(moto_method) != read_against:
        logging.getLogger(__name__).warning(
            "moto's %s.%s is not the one %s was read against: kept moto's", owner.__name__, name, by)
        return False
    setattr(owner, name, replacement)
    return True


def install() -> dict[str, bool]:
    """Put each replacement in place of moto's method, if moto's is the one it was read against; says which
    are in place. Idempotent."""
    return {name: all([replace(owner, name, moto_method, replacement, MOTO_SOURCES[name], "devstack/motocosts.py")
                       for owner in owners])
            for name, (owners, moto_method, replacement) in REPLACEMENTS.items()}
