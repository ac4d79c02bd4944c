"""Start moto server with DynamoDB requests serialised.

moto 5.2's TransactWriteItems snapshots the whole table and restores the snapshot when a
transaction is cancelled, which silently undoes writes that other requests committed in the
meantime. Real DynamoDB does not do that, and Vigil's exactly-once counting relies on
transactions, so every DynamoDB request goes through one lock here. Other services (SQS long
polls) stay concurrent. Usage is the same as moto_server: -H HOST -p PORT.
"""
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_lock = threading.RLock()
_call_action = DynamoHandler.call_action


def _serialised_call_action(self):
    with _lock:
        return _call_action(self)


DynamoHandler.call_action = _serialised_call_action

if __name__ == "__main__":
    main()
