#!/usr/bin/env python3
"""Benchmark helper (not a test): an incremental snapshot of a table while a writer changes
it at a steady rate. Used by scripts/bench-pg and scripts/bench-mysql.

  bench-incremental.py DIR SLUICE API_PORT CONNECTOR TABLE ROWS RATE -- WRITER_CMD...

DIR holds sluice.toml (stdout sink, admin API on API_PORT) and connectors/. WRITER_CMD is a
SQL client reading statements from stdin (psql / mariadb); RATE updates per second of
`UPDATE <table> SET qty = qty + 1 WHERE id = <random>` are written to it. Prints the time the
snapshot took, the rate of streamed updates published meanwhile, and Sluice's peak RSS."""

import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request


def main():
    sep = sys.argv.index("--")
    d, sluice, port, name, table, rows, rate = sys.argv[1:sep]
    writer_cmd = sys.argv[sep + 1:]
    port, rows, rate = int(port), int(rows), int(rate)
    api = f"http://127.0.0.1:{port}"
    out = open(os.path.join(d, "out.jsonl"), "wb")
    log = open(os.path.join(d, "log"), "wb")
    proc = subprocess.Popen([sluice, "run", "--config", "sluice.toml"], cwd=d, stdout=out, stderr=log)
    peak = [0]

    def rss():
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM"):
                        peak[0] = max(peak[0], int(line.split()[1]))
        except OSError:
            pass

    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{api}/sluice/connectors/{name}", timeout=2) as r:
                if json.load(r).get("state") == "streaming":
                    break
        except Exception:
            pass
        if time.time() > deadline or proc.poll() is not None:
            sys.exit("sluice did not start streaming; see " + os.path.join(d, "log"))
        time.sleep(0.1)

    writer = subprocess.Popen(writer_cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    stop = threading.Event()
    written = [0]

    def write():
        start = time.time()
        while not stop.is_set():
            due = int((time.time() - start) * rate)
            lines = []
            while written[0] < due:
                lines.append(f"UPDATE {table} SET qty = qty + 1 WHERE id = {random.randint(1, rows)};\n")
                written[0] += 1
            if lines:
                writer.stdin.write("".join(lines).encode())
                writer.stdin.flush()
            time.sleep(0.005)

    t = threading.Thread(target=write)
    t.start()
    time.sleep(1)
    body = json.dumps({"type": "execute-snapshot", "data": {"data-collections": [table.replace("`", "")]}}).encode()
    req = urllib.request.Request(f"{api}/connectors/{name}/signals", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req).read()
    t0 = time.time()
    u_at_start = count_updates(d)
    logpath = os.path.join(d, "log")
    while True:
        rss()
        with open(logpath, "rb") as f:
            if b"incremental snapshot finished" in f.read():
                break
        if time.time() - t0 > 600 or proc.poll() is not None:
            sys.exit("the incremental snapshot did not finish; see " + logpath)
        time.sleep(0.05)
    t1 = time.time()
    u_during = count_updates(d) - u_at_start
    stop.set()
    t.join()
    writer.stdin.close()
    writer.wait()
    proc.terminate()
    proc.wait()
    reads = 0
    with open(os.path.join(d, "out.jsonl"), "rb") as f:
        for line in f:
            if b'"op":"r"' in line:
                reads += 1
    secs = t1 - t0
    print(f"  incremental snapshot ({rows:,} rows, {reads:,} read records) while {rate:,} updates/s stream: "
          f"{secs:.2f} s, {reads / secs:,.0f} rows/s; streamed updates published meanwhile "
          f"{u_during / secs:,.0f}/s; peak RSS {peak[0] / 1024:.1f} MiB")


def count_updates(d):
    n = 0
    with open(os.path.join(d, "out.jsonl"), "rb") as f:
        for line in f:
            if b'"op":"u"' in line:
                n += 1
    return n


if __name__ == "__main__":
    main()
