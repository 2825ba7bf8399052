"""Prints records read by examples/consume (one JSON line each) for a newcomer: the operation,
the key, and before/after with each value that Debezium encodes (decimals as bytes, dates as
days, timestamps as epoch counts) shown decoded beside its raw form, using the record's own
schema. Schema-change (DDL) records are shown as such."""
import base64
import datetime
import json
import sys

OPS = {"r": "read (snapshot)", "c": "create", "u": "update", "d": "delete", "t": "truncate"}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def decimal(raw, scale):
    n = int.from_bytes(base64.b64decode(raw), "big", signed=True)
    sign = "-" if n < 0 else ""
    digits = str(abs(n)).rjust(scale + 1, "0")
    return sign + (digits[:-scale] + "." + digits[-scale:] if scale else digits)


def decode(value, field):
    """The readable form of a value Debezium encodes, or None when it is readable as it is."""
    if value is None:
        return None
    name = field.get("name")
    params = field.get("parameters") or {}
    if name == "org.apache.kafka.connect.data.Decimal":
        return decimal(value, int(params.get("scale", 0)))
    if name == "io.debezium.data.VariableScaleDecimal":
        return decimal(value["value"], int(value["scale"]))
    if name in ("io.debezium.time.Date", "org.apache.kafka.connect.data.Date"):
        return (EPOCH + datetime.timedelta(days=value)).date().isoformat()
    if name in ("io.debezium.time.Timestamp", "org.apache.kafka.connect.data.Timestamp"):
        return (EPOCH + datetime.timedelta(milliseconds=value)).isoformat(timespec="milliseconds")
    if name == "io.debezium.time.MicroTimestamp":
        return (EPOCH + datetime.timedelta(microseconds=value)).isoformat()
    if name == "io.debezium.time.NanoTimestamp":
        return (EPOCH + datetime.timedelta(microseconds=value // 1000)).isoformat()
    if name == "io.debezium.time.MicroTime":
        return str(datetime.timedelta(microseconds=value))
    return None


def row_fields(schema, part):
    """The field schemas of `before`/`after` in an envelope schema, by name."""
    for f in (schema or {}).get("fields", []):
        if f.get("field") == part:
            return {c["field"]: c for c in f.get("fields", [])}
    return {}


def show_row(row, fields):
    if row is None:
        return "null"
    parts = []
    for k, v in row.items():
        readable = decode(v, fields.get(k, {}))
        if readable is None:
            parts.append(f"{k}={json.dumps(v)}")
        else:
            parts.append(f"{k}={readable} (sent as {json.dumps(v)})")
    return "{" + ", ".join(parts) + "}"


noted_identity = False
for line in sys.stdin:
    record = json.loads(line)
    topic = record["topic"]
    key = record["key"]
    if isinstance(key, dict):
        key = key.get("payload", key)
    value = record["value"]
    if value is None:
        print(f"{topic} key={json.dumps(key)}: tombstone (null value after a delete, for log compaction)")
        continue
    schema = value.get("schema") if "payload" in value else None
    payload = value.get("payload", value)
    source = payload.get("source", {})
    if "ddl" in payload or "tableChanges" in payload:
        print(f"{topic}: SCHEMA CHANGE (DDL) at binlog {source.get('file')}:{source.get('pos')}")
        print(f"    {payload.get('ddl')}")
        continue
    if "lsn" in source:
        where = f"lsn={source['lsn']}"
    else:
        where = f"binlog={source.get('file')}:{source.get('pos')}"
        if source.get("gtid"):
            where += f" gtid={source['gtid']}"
    op = payload.get("op")
    print(f"{topic} {OPS.get(op, op)} key={json.dumps(key)} {where}")
    print(f"    before={show_row(payload.get('before'), row_fields(schema, 'before'))}")
    print(f"    after ={show_row(payload.get('after'), row_fields(schema, 'after'))}")
    if "lsn" in source and op in ("u", "d") and not noted_identity:
        before = payload.get("before")
        key_columns = set(key) if isinstance(key, dict) else set()
        if before is None or all(v is None for k, v in before.items() if k not in key_columns):
            noted_identity = True
            print("    note: PostgreSQL sends the old row of an update or delete only as the table's REPLICA")
            print("          IDENTITY says: DEFAULT gives the key (or nothing), FULL the whole row")
            print("          (ALTER TABLE customers REPLICA IDENTITY FULL).")
