"""Start moto server with DynamoDB requests serialised and item-level transaction rollback.

moto 5.2's TransactWriteItems snapshots the whole table and restores the snapshot when a
transaction is cancelled, which silently undoes writes that other requests committed in the
meantime. Real DynamoDB does not do that, and Vigil's exactly-once counting relies on
transactions, so every DynamoDB request goes through one lock here. Other services (SQS long
polls) stay concurrent.

The snapshot is also a deep copy of the whole table for every item of the transaction, so a
transaction costs O(items x table size): a storm of 10,000 alert hits (100 transactions against a
table of 10,000 hit markers) took minutes. Under the lock, a rollback only has to restore the
items the transaction touched, so the table copy is replaced by a copy of those items.

And a Query reads the key's partition instead of sorting the whole table first
(`moto_query.py`, which says why and how the answers are proved unchanged);
`VIGIL_MOTO_QUERY=stock` keeps moto's own Query, to compare.
Usage is the same as moto_server: -H HOST -p PORT.
"""
import copy
import os
import threading
import types

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

import moto_query

_lock = threading.RLock()
_call_action = DynamoHandler.call_action


def _serialised_call_action(self):
    with _lock:
        return _call_action(self)


DynamoHandler.call_action = _serialised_call_action


def _deepcopy_except_tables(value, memo=None):
    # The whole-table snapshot becomes the table itself; _transact restores items instead.
    if isinstance(value, Table):
        return value
    return copy.deepcopy(value, memo)


dynamodb_models.copy = types.SimpleNamespace(deepcopy=_deepcopy_except_tables, copy=copy.copy)
_transact_write_items = DynamoDBBackend.transact_write_items


def _key_of(backend, op_type, op):
    table = backend.tables.get(op.get("TableName"))
    if table is None:
        return None
    if op_type == "Put":
        attrs = op.get("Item", {})
        key = {table.hash_key_attr: attrs.get(table.hash_key_attr)}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs.get(table.range_key_attr)
        return key
    return op.get("Key")


def _transact(self, transact_items):
    saved = []
    for item in transact_items:
        op_type, op = next(iter(item.items()))
        key = _key_of(self, op_type, op)
        if key is None or any(v is None for v in key.values()):
            continue
        try:
            current = self.get_item(op["TableName"], key)
        except Exception:  # noqa: BLE001 - an invalid key fails in the real call below
            current = None
        saved.append((op["TableName"], key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        for table_name, key, attributes in reversed(saved):
            try:
                self.delete_item(table_name, key)
            except Exception:  # noqa: BLE001 - nothing to delete
                pass
            if attributes is not None:
                self.put_item(table_name, attributes)
        raise


DynamoDBBackend.transact_write_items = _transact
if os.environ.get("VIGIL_MOTO_QUERY") != "stock":
    moto_query.install()

if __name__ == "__main__":
    main()
