"""Prints records read by examples/consume (one JSON line each) as op / key / before / after."""
import json
import sys

for line in sys.stdin:
    record = json.loads(line)
    topic = record["topic"]
    key = record["key"]
    if isinstance(key, dict):
        key = key.get("payload", key)
    value = record["value"]
    if value is None:
        print(f"{topic} key={json.dumps(key)} (tombstone)")
        continue
    payload = value.get("payload", value)
    source = payload["source"]
    print(f"{topic} op={payload['op']} key={json.dumps(key)} snapshot={source['snapshot']} lsn={source['lsn']}")
    print(f"    before={json.dumps(payload['before'])}")
    print(f"    after={json.dumps(payload['after'])}")
