"""DynamoDB's single-item operations on the embedded AWS, each whole: a condition holds when its write is made.

DynamoDB checks a write's condition against the item as it is when the write is applied: "If the condition
expression evaluates to true, the operation succeeds; otherwise, the operation fails" (Developer Guide, Condition
expressions; ``tests/aws_docs/dynamodb-condition-expressions.json``). Two conditional writes to one item never both
succeed where only one of them could.

moto's ``DynamoDBBackend.update_item`` (moto 5.2.5) reads the item, evaluates the condition, then writes, with
nothing to keep another thread out in between; so do ``put_item`` and ``delete_item``. The local stack serves
each request on a thread of its own, and the in-process tests run Lambda instances in threads: two updates
conditioned on one value (``#at = :seen``, the app's way to take a turn) could both pass, and an endpoint's
closed window was taken twice.

``install`` wraps the backend's ``get_item``, ``put_item``, ``update_item`` and ``delete_item`` so that each holds
the lock of its item's partition (a lock of ``STRIPES``, chosen by the table and the partition key's value) for
the length of the call. Writes to different items seldom share a lock, so they do not queue behind each other; a
read waits only for a write to its own item, which moto changes in place. The lock is taken around moto's whole
method and nothing inside it is assumed, so it holds for any moto.

A transaction (``transactions.transact_write_items``) takes each item's lock as its operations reach it, inside
its own lock, which a single-item call never waits for while it holds an item's: the locks are always taken in
that order."""
from __future__ import annotations

import functools
import inspect
import threading
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

STRIPES = 64
# The backend's single-item methods, moto's own, with their signatures (to find the table name and the key, or the
# item, whichever way they are passed).
METHODS = {name: getattr(DynamoDBBackend, name) for name in ("get_item", "put_item", "update_item", "delete_item")}
SIGNATURES = {name: inspect.signature(method) for name, method in METHODS.items()}

_LOCKS = [threading.RLock() for _ in range(STRIPES)]


def item_lock(backend: DynamoDBBackend, table_name: Any, key: Any) -> threading.RLock:
    """The lock of the item at ``key`` (a key, or an item's attributes) of ``table_name``: one per partition key
    value, shared with others' by chance. A name or key moto cannot look up gets a lock all the same (moto's
    method then fails on its own lookup)."""
    try:
        table = backend.get_table(table_name)
        partition = repr(key[table.hash_key_attr])
        table_name = table.name
    except Exception:
        partition = ""
    return _LOCKS[hash((str(table_name), partition)) % STRIPES]


def item_of(name: str, backend: DynamoDBBackend, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """The table name and the key (or the item) a call of the backend's method ``name`` (one of METHODS) is for,
    whichever way they are passed."""
    _, table_name, key, *_ = SIGNATURES[name].bind(backend, *args, **kwargs).arguments.values()
    return table_name, key


def _whole(name: str, method: Any) -> Any:
    @functools.wraps(method)
    def call(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        with item_lock(self, *item_of(name, self, *args, **kwargs)):
            return method(self, *args, **kwargs)
    call.moto_method = method
    return call


def installed() -> bool:
    return all(getattr(getattr(DynamoDBBackend, name), "moto_method", None) is method
               for name, method in METHODS.items())


def install() -> None:
    """Wrap the backend's single-item methods (every DynamoDB backend of this process). Idempotent."""
    if not installed():
        for name, method in METHODS.items():
            setattr(DynamoDBBackend, name, _whole(name, method))
