"""Calls one method of kafka-connect-py (a Kafka Connect REST client from PyPI) on Sluice's
admin API and prints what it returned as JSON: `connect_client.py URL METHOD [JSON ARGS]`.
An HTTP error prints {"http_error": status, "body": ...}."""
import json
import sys

from kafka_connect import KafkaConnect
from requests.exceptions import HTTPError

url, method = sys.argv[1], sys.argv[2]
args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else []
client = KafkaConnect(url=url)
try:
    result = getattr(client, method)(*args)
except HTTPError as e:
    response = e.response
    if response is None:
        result = {"http_error": None, "body": str(e)}
    else:
        result = {"http_error": response.status_code, "body": response.text}
print(json.dumps(result))
