#!/usr/bin/env python3
"""Reads a topic as a read_committed consumer must see it, from the record batches themselves.

The test broker's fetch answer lists no aborted transactions, so a client library cannot drop
an aborted transaction's records. This reader fetches the raw record batches (Fetch v4,
uncompressed batches) and applies the transaction markers itself: a transactional record is
visible once a COMMIT marker of its producer follows it, dropped when an ABORT marker
follows, and not yet visible while its transaction is open.

stdin: {"servers": "host:port", "topic": "t", "partitions": 1}
stdout: {"records": [{"partition", "offset", "producer", "epoch", "key", "value"}...] (visible, in offset order per
partition), "aborted": n, "open": n, "commits": n, "aborts": n}
"""

import json
import socket
import struct
import sys


def varint(buf, i):
    shift = 0
    result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
    return (result >> 1) ^ -(result & 1), i


class Conn:
    def __init__(self, servers):
        host, port = servers.split(",")[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.correlation = 0

    def request(self, api_key, version, body):
        self.correlation += 1
        client = b"sluice-txn-reader"
        header = struct.pack(">hhih", api_key, version, self.correlation, len(client)) + client
        msg = header + body
        self.sock.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", self.recv(4))[0]
        data = self.recv(size)
        return data[4:]  # without the correlation id

    def recv(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise RuntimeError("broker closed the connection")
            out += chunk
        return out


def fetch(conn, topic, partition, offset):
    t = topic.encode()
    body = struct.pack(">iiiib", -1, 500, 1, 8 << 20, 0)  # read_uncommitted: everything
    body += struct.pack(">ih", 1, len(t)) + t
    body += struct.pack(">iiqi", 1, partition, offset, 8 << 20)
    data = conn.request(1, 4, body)
    i = 4  # throttle
    (ntopics,) = struct.unpack_from(">i", data, i)
    i += 4
    for _ in range(ntopics):
        (tl,) = struct.unpack_from(">h", data, i)
        i += 2 + tl
        (nparts,) = struct.unpack_from(">i", data, i)
        i += 4
        for _ in range(nparts):
            p, err, high, _lso = struct.unpack_from(">ihqq", data, i)
            i += 22
            (naborted,) = struct.unpack_from(">i", data, i)
            i += 4
            if naborted > 0:
                i += 16 * naborted
            (size,) = struct.unpack_from(">i", data, i)
            i += 4
            records = data[i : i + max(size, 0)]
            i += max(size, 0)
            if err == 3:
                return 0, b""  # no such topic (yet): nothing to read
            if err != 0:
                raise RuntimeError(f"fetch {topic}/{p}: error code {err}")
            return high, records
    return 0, b""


def batches(raw):
    i = 0
    while i + 61 <= len(raw):
        base, length = struct.unpack_from(">qi", raw, i)
        end = i + 12 + length
        if end > len(raw):
            break  # a partial batch at the end of the answer
        magic = raw[i + 16]
        if magic != 2:
            raise RuntimeError(f"record batch magic {magic} (only v2 is read)")
        (attributes,) = struct.unpack_from(">h", raw, i + 21)
        (last_delta,) = struct.unpack_from(">i", raw, i + 23)
        (producer,) = struct.unpack_from(">q", raw, i + 43)
        (epoch,) = struct.unpack_from(">h", raw, i + 51)
        (count,) = struct.unpack_from(">i", raw, i + 57)
        if attributes & 0x7:
            raise RuntimeError("compressed batch: set compression.type = none for this reader")
        records = []
        j = i + 61
        for _ in range(count):
            _len, j = varint(raw, j)
            j += 1  # attributes
            _ts, j = varint(raw, j)
            delta, j = varint(raw, j)
            kl, j = varint(raw, j)
            key = None if kl < 0 else raw[j : j + kl]
            j += max(kl, 0)
            vl, j = varint(raw, j)
            value = None if vl < 0 else raw[j : j + vl]
            j += max(vl, 0)
            nh, j = varint(raw, j)
            for _ in range(nh):
                hk, j = varint(raw, j)
                j += hk
                hv, j = varint(raw, j)
                j += max(hv, 0)
            records.append((base + delta, key, value, producer, epoch))
        yield {
            "base": base,
            "next": base + last_delta + 1,
            "transactional": bool(attributes & 0x10),
            "control": bool(attributes & 0x20),
            "producer": producer,
            "records": records,
        }
        i = end


def main():
    req = json.load(sys.stdin)
    conn = Conn(req["servers"])
    out = {"records": [], "aborted": 0, "open": 0, "commits": 0, "aborts": 0}
    for partition in range(req.get("partitions", 1)):
        offset = 0
        visible = []  # (offset, key, value)
        pending = {}  # producer id -> records of its open transaction
        while True:
            high, raw = fetch(conn, req["topic"], partition, offset)
            seen = False
            for b in batches(raw):
                if b["next"] <= offset:
                    continue
                seen = True
                offset = b["next"]
                if b["control"]:
                    for _, key, _, _, _ in b["records"]:
                        kind = struct.unpack_from(">hh", key)[1] if key else -1
                        held = pending.pop(b["producer"], [])
                        if kind == 1:
                            out["commits"] += 1
                            visible.extend(held)
                        else:
                            out["aborts"] += 1
                            out["aborted"] += len(held)
                elif b["transactional"]:
                    pending.setdefault(b["producer"], []).extend(b["records"])
                else:
                    visible.extend(b["records"])
            if not seen and offset >= high:
                break
            if not seen:
                offset += 1  # a gap (compaction); move on
        out["open"] += sum(len(v) for v in pending.values())
        visible.sort(key=lambda r: r[0])
        for off, key, value, producer, epoch in visible:
            out["records"].append(
                {
                    "partition": partition,
                    "offset": off,
                    "producer": producer,
                    "epoch": epoch,
                    "key": None if key is None else key.decode("utf-8", "replace"),
                    "value": None if value is None else value.decode("utf-8", "replace"),
                }
            )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
