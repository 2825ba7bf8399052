"""Decodes Confluent-framed Avro records with fastavro, an Avro implementation independent of
the one Sluice encodes with, and prints them the way Debezium JSON renders the same values
(bytes and decimals as base64 of the unscaled two's-complement value), for comparison.

stdin: one JSON object per line, {"schema": "<Avro schema JSON>", "data": "<base64 record>"}.
stdout: one JSON object per line, {"schema_id": N, "value": <decoded>}.
"""
import base64
import datetime
import decimal
import io
import json
import struct
import sys

import fastavro


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def normalize(v):
    # Connect's logical types (date, time-millis, timestamp-millis) back to their numbers.
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        delta = v - EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    if isinstance(v, datetime.date):
        return (v - EPOCH.date()).days
    if isinstance(v, datetime.time):
        return ((v.hour * 60 + v.minute) * 60 + v.second) * 1000 + v.microsecond // 1000
    if isinstance(v, dict):
        return {k: normalize(x) for k, x in v.items()}
    if isinstance(v, list):
        return [normalize(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, decimal.Decimal):
        scale = -v.as_tuple().exponent
        # The unscaled integer, exactly (the default context would round beyond 28 digits).
        n = int(v.scaleb(scale, decimal.Context(prec=100)))
        bits = (n if n >= 0 else ~n).bit_length()
        return base64.b64encode(n.to_bytes(bits // 8 + 1, "big", signed=True)).decode()
    return v


for line in sys.stdin:
    req = json.loads(line)
    data = base64.b64decode(req["data"])
    assert data[0] == 0, "magic byte"
    (schema_id,) = struct.unpack(">I", data[1:5])
    schema = fastavro.parse_schema(json.loads(req["schema"]))
    value = fastavro.schemaless_reader(io.BytesIO(data[5:]), schema)
    print(json.dumps({"schema_id": schema_id, "value": normalize(value)}))
