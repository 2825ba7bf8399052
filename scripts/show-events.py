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
    if "lsn" in source:
        where = f"lsn={source['lsn']}"
    else:
        where = f"binlog={source['file']}:{source['pos']} gtid={source.get('gtid')}"
    print(f"{topic} op={payload.get('op')} key={json.dumps(key)} snapshot={source['snapshot']} {where}")
    if "ddl" in payload:
        print(f"    ddl={payload['ddl']}")
        continue
    print(f"    before={json.dumps(payload['before'])}")
    print(f"    after={json.dumps(payload['after'])}")
