"""DynamoDB's TransactWriteItems on the embedded AWS, at the cost of the items a transaction touches.

moto's ``DynamoDBBackend.transact_write_items`` (moto 5.2.5, ``moto/dynamodb/models/__init__.py``) deep-copies
every whole table a transaction names before it starts, to put the copy back if the transaction is cancelled.
The report tally writes one transaction per batch of stream records into a table that gains a marker per
record, so on the local stack a batch of N messages cost the square of N. ``transact_write_items`` here runs
moto's own method, with two things changed for the length of the call:

- the whole-table copy costs nothing. moto's module ``moto.dynamodb.models`` reads the name ``copy`` for
  ``copy.deepcopy(self.tables[name])``; for the call that name is bound to a stand-in whose ``deepcopy`` hands a
  ``Table`` back uncopied (to the transaction's own thread) and really deep-copies anything else. Safe because,
  in that module, the only deep copy of a ``Table`` is that backup, and moto uses it only to put it back
  (``self.tables[name] = backup``): with the live table as the backup, that puts the same object back, a no-op.
  The module's other use of the name, ``update_item``'s copy of an item (the stream's old image), still copies,
  as does every call from another thread. The real module is bound again in a ``finally``;
- a ``Journal`` notes each item the transaction's operations touch, before they read it: the backend's
  ``get_item``, ``put_item``, ``update_item`` and ``delete_item`` are wrapped on the backend for the call; called
  from another thread (another request), they wait until the transaction has ended, so that what it puts back
  is only its own (a stream is cut back to where it ended: another request's record after that would go too).
  When moto's method raises, whatever it raises, the journal puts back exactly those items and each table's
  stream end, then the error goes on. A write already under way to an item when the transaction reaches it
  ends first: the note is taken under the item's lock (``itemwrites``), as the operation is made.

What a write changes in moto, and so what is put back (moto 5.2.5):

- the item's place in ``Table.items`` (``{hash: Item}``, or ``{hash: {range: Item}}`` for a table with a sort
  key, whose inner dict a read of a missing partition creates). ``UpdateItem`` changes the stored ``Item`` in
  place, so the note holds a copy of it. An ``Update`` of a missing item puts the bare key first, then applies
  the expression: both steps are undone;
- the table's stream records (``StreamShard.items``, one appended per write, numbered by its place in the
  list): cut back to where the stream ended, so a cancelled transaction emits no record.

Nothing else: moto keeps no secondary index apart from the items (a query of an index reads ``Table.items``),
counts the items when asked (``len(Table)``) and says ``TableSizeBytes`` 0 always. (A Lambda function moto
itself would run from a stream, which the local stack does not use, is called as records are added; moto's
method could not call that back either.)

Two differences from moto's method, both towards AWS's all-or-nothing ("The actions are completed atomically so
that either all of them succeed, or all of them fail", botocore's model of TransactWriteItems;
tests/aws_docs/dynamodb-transactions-atomicity.json): an item with two operations
(``TransactWriteSingleOpException``, which moto raises without putting its copies back) and a table named by its
ARN (which moto does not copy) are rolled back too. And transactions run one at a time (a lock), so a cancelled
transaction never puts an item back over another transaction's commit (moto's method, with no lock, put its
copy of the whole table back over whatever had been written meanwhile), and the stand-in and the wrapped
methods are only ever those of one transaction.

This depends on moto's method's internals: that its only copy is ``copy.deepcopy(self.tables[...])`` through
its module's ``copy``, put back by assignment, and that each operation reaches its item through
``self.get_item``/``put_item``/``update_item``/``delete_item``. So it is installed only over the method whose
source it was read against (``MOTO_SOURCE_SHA256``); another moto keeps its own method, slow but whole.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import inspect
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

from . import itemwrites

# moto's own method: the one ``transact_write_items`` runs, and the one kept if it is not the one read.
MOTO_TRANSACT_WRITE_ITEMS = DynamoDBBackend.transact_write_items
# The sha256 of moto 5.2.5's method source, the one this module was read against. Another moto's method may
# differ: then moto's own stays in place (``install``), and the test says so.
MOTO_SOURCE_SHA256 = "81db2cb7d94e39c90b3a2077e1f4bb41a449c558ef9b1b1e2910fdaa39978ad4"
# The module whose name ``copy`` moto's method reads (moto.dynamodb.models).
MOTO_MODULE = sys.modules[MOTO_TRANSACT_WRITE_ITEMS.__module__]
# The backend's methods through which each operation reaches its item: its single-item ones.
JOURNALED = tuple(itemwrites.METHODS)

_LOCK = threading.RLock()
_MISSING = object()


def moto_source_sha256() -> str:
    return hashlib.sha256(inspect.getsource(MOTO_TRANSACT_WRITE_ITEMS).encode()).hexdigest()


class Journal:
    """What a transaction's writes changed, noted before each write, to put back if it is cancelled."""

    def __init__(self, backend: DynamoDBBackend):
        self.backend = backend
        self.items: dict[tuple, tuple] = {}  # (table id, hash, range) -> (table, hash, range, bucket?, old item)
        self.streams: dict[int, tuple] = {}  # table id -> (shard, its list of records, how many it held)

    def note(self, table_name: Any, key: Any) -> None:
        """Note the item at ``key`` (a key, or an item's attributes) of ``table_name`` as it is now, before an
        operation reads or writes it. A name or key moto cannot look up is not noted: the operation then fails
        on the same lookup before it can write."""
        try:
            table = self.backend.get_table(table_name)
            hash_key, range_key = self.backend.get_keys_value(table, key)
        except Exception:
            return
        place = (id(table), hash_key, range_key)
        if place in self.items:
            return
        if id(table) not in self.streams and table.stream_shard is not None:
            shard = table.stream_shard
            self.streams[id(table)] = (shard, shard.items, len(shard.items))
        stored = table.items  # a defaultdict: read with ``in`` and ``get`` only, which add nothing
        if table.range_key_attr is None:
            bucket = None
            old = stored.get(hash_key, _MISSING)
        else:
            bucket = hash_key in stored
            old = stored[hash_key].get(range_key, _MISSING) if bucket else _MISSING
        # a copy: UpdateItem changes the stored item in place
        self.items[place] = (table, hash_key, range_key, bucket, old if old is _MISSING else copy.deepcopy(old))

    def undo(self) -> None:
        """Put every noted item and stream back as it was, last noted first."""
        for table, hash_key, range_key, bucket, old in reversed(list(self.items.values())):
            stored = table.items
            if bucket is None:  # no sort key: the partition is the item
                if old is _MISSING:
                    stored.pop(hash_key, None)
                else:
                    stored[hash_key] = old
            elif not bucket:  # the partition did not exist: nothing in it is older than the transaction
                stored.pop(hash_key, None)
            elif old is _MISSING:
                stored[hash_key].pop(range_key, None)
            else:
                stored[hash_key][range_key] = old
        for shard, records, count in self.streams.values():
            del records[count:]
            shard.items = records  # the list moto had, should a Lambda mapping of moto's have swapped it


class _TablesUncopied:
    """Stands in for the module ``copy`` in moto's module during one transaction: a ``Table`` asked for by the
    transaction's thread comes back uncopied (moto's backup is then the live table); everything else is copied."""

    def __init__(self, thread: int):
        self.thread = thread

    def deepcopy(self, x: Any, memo: dict | None = None) -> Any:
        if isinstance(x, Table) and threading.get_ident() == self.thread:
            return x
        return copy.deepcopy(x, memo)

    def __getattr__(self, name: str) -> Any:  # copy.copy and the rest, should moto's module read them
        return getattr(copy, name)


@contextlib.contextmanager
def _journaling(backend: DynamoDBBackend, journal: Journal, thread: int) -> Iterator[None]:
    """The backend's ``JOURNALED`` methods note their item in ``journal`` first, when called from ``thread``; from
    another thread (another request's GetItem, PutItem, ...) they wait for the transaction to end, so that
    nothing it puts back (an item, the stream's end) is another request's."""
    def noting(name: str, method: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != thread:
                with _LOCK:
                    return method(*args, **kwargs)
            table_name, key = itemwrites.item_of(name, backend, *args, **kwargs)
            with itemwrites.item_lock(backend, table_name, key):  # a write under way to the item ends first
                journal.note(table_name, key)
                return method(*args, **kwargs)
        return call

    saved = {name: backend.__dict__.get(name, _MISSING) for name in JOURNALED}
    for name in JOURNALED:
        setattr(backend, name, noting(name, getattr(backend, name)))
    try:
        yield
    finally:
        for name, was in saved.items():
            if was is _MISSING:
                delattr(backend, name)
            else:
                setattr(backend, name, was)


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's ``DynamoDBBackend.transact_write_items``, one at a time, with its tables uncopied and a ``Journal``
    of the items its operations touch put back when it raises."""
    with _LOCK:
        thread = threading.get_ident()
        journal = Journal(self)
        bound = MOTO_MODULE.copy
        MOTO_MODULE.copy = _TablesUncopied(thread)
        try:
            with _journaling(self, journal, thread):
                MOTO_TRANSACT_WRITE_ITEMS(self, transact_items)
        except BaseException:
            journal.undo()
            raise
        finally:
            MOTO_MODULE.copy = bound


def install() -> bool:
    """Put ``transact_write_items`` in place of moto's method (for every DynamoDB backend in this process), if
    moto's is the one it was read against; True if it is in place. Idempotent."""
    if DynamoDBBackend.transact_write_items is transact_write_items:
        return True
    if moto_source_sha256() != MOTO_SOURCE_SHA256 or getattr(MOTO_MODULE, "copy", None) is not copy:
        logging.getLogger(__name__).warning(
            "moto's DynamoDBBackend.transact_write_items is not the one devstack/transactions.py was read "
            "against: kept moto's (each transaction copies the tables it names)")
        return False
    DynamoDBBackend.transact_write_items = transact_write_items
    return True
