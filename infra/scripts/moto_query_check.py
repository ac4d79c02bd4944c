"""Proves that `moto_query.py` changes how fast moto answers a Query, never what it answers.

    .tools/bin/python infra/scripts/moto_query_check.py [--seed N] [--queries N]

Builds tables like Vigil's (string hash and range keys with a string-ranged GSI, a table with a
numeric range key and a GSI without a range key, a hash-only table) in moto, in process, fills
them with random items (several partitions, some items without the index's keys), then runs
random Queries — base table and index, every key condition, both directions, `Limit`,
`FilterExpression`, every page through `ExclusiveStartKey` — and index Scans, each once with
moto's own code and once with `moto_query.install()`, and fails on the first answer that
differs. `infra/scripts/test.sh` runs it; exit 0 means every answer was identical.
"""

import argparse
import random
import sys

import boto3
from moto import mock_aws

import moto_query

TABLES = [
    {
        "TableName": "strings",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "changed", "AttributeType": "S"},
            {"AttributeName": "scope", "AttributeType": "S"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "by-change",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "changed", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "by-scope",
                "KeySchema": [{"AttributeName": "scope", "KeyType": "HASH"}, {"AttributeName": "changed", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]},
            },
        ],
    },
    {
        "TableName": "numbers",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "n", "AttributeType": "N"},
            {"AttributeName": "group", "AttributeType": "S"},
        ],
        "GlobalSecondaryIndexes": [
            {"IndexName": "by-group", "KeySchema": [{"AttributeName": "group", "KeyType": "HASH"}], "Projection": {"ProjectionType": "KEYS_ONLY"}},
        ],
    },
    {
        "TableName": "hash-only",
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}, {"AttributeName": "group", "AttributeType": "S"}],
        "GlobalSecondaryIndexes": [
            {"IndexName": "by-group", "KeySchema": [{"AttributeName": "group", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}},
        ],
    },
]

PARTITIONS = ["MSP#a", "MSP#b", "MSP#b#TENANT#1", "MSP#c"]
GROUPS = ["g1", "g2", "g3"]


def word(rng, prefixes=("ALERT#", "HIT#", "DELIVERY#", "")):
    return rng.choice(prefixes) + "".join(rng.choice("0123456789abcdef") for _ in range(rng.randint(1, 6)))


def fill(ddb, rng, items):
    for _ in range(items):
        status = {"S": rng.choice(["open", "resolved", "new"])}
        changed = {"S": f"2026-11-{rng.randint(1, 30):02}T{rng.randint(0, 23):02}:00:00.000Z#{word(rng, ('',))}"}
        item = {"pk": {"S": rng.choice(PARTITIONS)}, "sk": {"S": word(rng)}, "status": status}
        if rng.random() < 0.7:
            item["changed"] = changed
        if rng.random() < 0.5:
            item["scope"] = {"S": rng.choice(PARTITIONS) + "#TENANT#" + rng.choice("xyz")}
        ddb.put_item(TableName="strings", Item=item)
        number = {"pk": {"S": rng.choice(PARTITIONS)}, "n": {"N": str(rng.choice([rng.randint(-50, 50), round(rng.uniform(-5, 5), 2)]))}, "status": status}
        if rng.random() < 0.6:
            number["group"] = {"S": rng.choice(GROUPS)}
        ddb.put_item(TableName="numbers", Item=number)
        only = {"id": {"S": word(rng)}, "status": status}
        if rng.random() < 0.6:
            only["group"] = {"S": rng.choice(GROUPS)}
        ddb.put_item(TableName="hash-only", Item=only)


def random_query(rng):
    """One Query's parameters (without ExclusiveStartKey)."""
    table = rng.choice(["strings", "strings", "numbers", "hash-only"])
    params = {"TableName": table, "ScanIndexForward": rng.random() < 0.5}
    values = {}
    if table == "strings":
        index = rng.choice([None, "by-change", "by-scope"])
        hash_name, range_name = {None: ("pk", "sk"), "by-change": ("pk", "changed"), "by-scope": ("scope", "changed")}[index]
        hash_value = rng.choice(PARTITIONS) + ("#TENANT#" + rng.choice("xyz") if index == "by-scope" else "")
        low, high = sorted([word(rng, ("ALERT#", "HIT#", "2026-11-1", "2026-11-2")), word(rng, ("ALERT#", "HIT#", "2026-11-1", "2026-11-2"))])
        range_type = "S"
    elif table == "numbers":
        index = rng.choice([None, "by-group"])
        hash_name, range_name = ("pk", "n") if index is None else ("group", None)
        hash_value = rng.choice(PARTITIONS) if index is None else rng.choice(GROUPS)
        low, high = sorted([str(rng.randint(-60, 60)), str(rng.randint(-60, 60))], key=int)
        range_type = "N"
    else:
        index = rng.choice([None, "by-group"])
        hash_name, range_name = ("id", None) if index is None else ("group", None)
        hash_value = word(rng) if index is None else rng.choice(GROUPS)
        low = high = None
        range_type = "S"
    if index:
        params["IndexName"] = index
    condition = "#h = :h"
    names = {"#h": hash_name}
    values[":h"] = {"S": hash_value}
    if range_name and rng.random() < 0.7:
        names["#r"] = range_name
        operator = rng.choice(["=", "<", "<=", ">", ">=", "BETWEEN", "begins_with"] if range_type == "S" else ["=", "<", "<=", ">", ">=", "BETWEEN"])
        if operator == "BETWEEN":
            condition += " AND #r BETWEEN :lo AND :hi"
            values[":lo"], values[":hi"] = {range_type: low}, {range_type: high}
        elif operator == "begins_with":
            condition += " AND begins_with(#r, :lo)"
            values[":lo"] = {"S": low[: rng.randint(1, 7)]}
        else:
            condition += f" AND #r {operator} :lo"
            values[":lo"] = {range_type: low}
    params["KeyConditionExpression"] = condition
    if rng.random() < 0.3:
        params["FilterExpression"] = "#s = :s"
        names["#s"] = "status"
        values[":s"] = {"S": rng.choice(["open", "resolved"])}
    params["ExpressionAttributeNames"] = names
    params["ExpressionAttributeValues"] = values
    if rng.random() < 0.8:
        params["Limit"] = rng.randint(1, 25)
    return params


def every_page(ddb, operation, params):
    """Every page of a Query or Scan, as moto answers them."""
    pages = []
    start = None
    while True:
        call = dict(params)
        if start:
            call["ExclusiveStartKey"] = start
        response = getattr(ddb, operation)(**call)
        response.pop("ResponseMetadata", None)
        pages.append(response)
        start = response.get("LastEvaluatedKey")
        if not start or len(pages) > 500:
            return pages


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        for table in TABLES:
            ddb.create_table(BillingMode="PAY_PER_REQUEST", **table)
        fill(ddb, rng, args.items)
        checks = [("query", random_query(rng)) for _ in range(args.queries)]
        checks += [("scan", {"TableName": t["TableName"], "IndexName": i["IndexName"], "Limit": rng.randint(1, 30)}) for t in TABLES for i in t["GlobalSecondaryIndexes"]]
        returned = 0
        for number, (operation, params) in enumerate(checks, 1):
            moto_query.uninstall()
            expected = every_page(ddb, operation, params)
            moto_query.install()
            actual = every_page(ddb, operation, params)
            if actual != expected:
                print(f"moto_query_check: {operation} {number} differs\n  params: {params}\n  moto:    {expected}\n  patched: {actual}", file=sys.stderr)
                return 1
            returned += sum(len(page.get("Items", [])) for page in expected)
        moto_query.uninstall()
    print(f"moto_query_check: {len(checks)} Queries and index Scans ({returned} items over every page) answered identically with and without moto_query")
    return 0


if __name__ == "__main__":
    sys.exit(main())
