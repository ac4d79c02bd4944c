"""moto's DynamoDB Query, made to read the key's partition instead of sorting the whole table.

moto 5.2's `Table.query` starts from `Table.all_items()`, which sorts EVERY item of the table
by (hash key, range key) comparing `DynamoType` objects — a Python `__lt__` that rebuilds each
value per comparison — and only then picks the items of the queried partition, sorts those
again and applies `Limit`. So a Query costs O(table x log table) Python comparisons whatever
the page: on the local stack, the first page of a 10,000-alert queue (one GSI Query, `Limit`
51) took 1.4 s on an idle machine, all of it inside moto, while the same Query on DynamoDB
reads the key's partition and stops after the page.

`install()` changes only how the candidates are found and how they are ordered, never which
items are returned or in what order:

* Within a Query the order of `all_items()` does not matter: the base-table path re-sorts the
  matching items by range key (unique within a partition) and the index path re-sorts them by
  (index keys, table keys) — both total orders. So during a Query `all_items()` returns the
  candidates unsorted; for a base-table Query, only the items of the key's partition (the
  items the `item.hash_key == hash_key` test keeps anyway), already in range-key order so the
  Query's own sort is a single pass.
* `sorted_items` (the index path's sort, also used by index Scans) sorts on the attributes'
  plain values (`cast_value`: str, Decimal or the base64 text of a binary) instead of on the
  `DynamoType` wrappers. For key attributes, whose type the table fixes, comparing the wrappers
  compares exactly those values, so the order is the same.

Scans, writes and everything else stay moto's own. `moto_query_check.py` runs random tables
and Queries through moto with and without this change and requires identical answers
(`infra/scripts/test.sh` runs it). Under `moto_server.py` every DynamoDB request holds one lock,
so the per-call override of `all_items` is never seen by another request.
"""

import inspect

from moto.dynamodb.models.table import Table

_moto_query = Table.query
_moto_sorted_items = Table.sorted_items
_query_parameters = inspect.signature(_moto_query)


def _query_candidates(table, index_name, hash_key):
    """The items a Query may return, as `Table.query` will filter and sort them."""
    if index_name is None and hash_key is not None:
        partition = table.items.get(hash_key)
        if partition is None:
            return []
        if not table.range_key_attr:
            return [partition]
        return sorted(partition.values(), key=lambda item: item.range_key.cast_value)
    items = []
    for partition in table.items.values():
        if table.range_key_attr:
            items.extend(partition.values())
        else:
            items.append(partition)
    return items


def _partition_query(self, *args, **kwargs):
    arguments = _query_parameters.bind(self, *args, **kwargs).arguments
    candidates = _query_candidates(self, arguments.get("index_name"), arguments.get("hash_key"))
    # An instance attribute shadows the method for this call only.
    self.all_items = lambda: candidates
    try:
        return _moto_query(self, *args, **kwargs)
    finally:
        del self.all_items


def _sorted_on_values(self, hash_key_attrs, range_key_attrs, items):
    attributes = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
    items.sort(key=lambda item: tuple(item.attrs[name].cast_value for name in attributes))
    return items


def install():
    """Replaces moto's Query candidate search and index sort (idempotent)."""
    Table.query = _partition_query
    Table.sorted_items = _sorted_on_values


def uninstall():
    """Puts moto's own back (for the differential check)."""
    Table.query = _moto_query
    Table.sorted_items = _moto_sorted_items
