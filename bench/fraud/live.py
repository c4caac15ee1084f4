"""Live event scoring over REST: 8 client threads post events, in time order from a shared
cursor (the model's spec allows 1 h out of order, since 8 racing clients reorder by
milliseconds), one event per request or BATCH events per request (`{"events": [...]}`, scored
and applied all or nothing). Prints events/s, request latency percentiles and the state's memory
per entity.

    python bench/fraud/live.py BASE_URL KEY EVENTS_CSV SECONDS [CONCURRENCY] [BATCH]
"""
import csv
import http.client
import json
import sys
import threading
import time
from urllib.parse import urlparse


def main():
    base, key, path, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    conc = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    batch = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    with open(path) as f:
        rows = list(csv.DictReader(f))
    fields = [
        {
            "TRANSACTION_ID": int(r["TRANSACTION_ID"]), "TX_DATETIME": r["TX_DATETIME"],
            "CUSTOMER_ID": int(r["CUSTOMER_ID"]), "TERMINAL_ID": int(r["TERMINAL_ID"]),
            "TX_AMOUNT": float(r["TX_AMOUNT"]), "TX_TIME_SECONDS": int(r["TX_TIME_SECONDS"]),
        }
        for r in rows
    ]
    if batch == 1:
        events = [json.dumps({"event": e}).encode() for e in fields]
    else:
        events = [json.dumps({"events": fields[i:i + batch]}).encode()
                  for i in range(0, len(fields) - batch + 1, batch)]
    u = urlparse(base)
    lock = threading.Lock()
    cursor = [0]
    lat, errors = [], []
    deadline = time.time() + seconds

    def worker():
        conn = http.client.HTTPConnection(u.hostname, u.port)
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        while time.time() < deadline:
            with lock:
                i = cursor[0]
                cursor[0] += 1
            if i >= len(events):
                return
            t = time.perf_counter()
            conn.request("POST", "/v1/models/fraud/events", events[i], headers)
            r = conn.getresponse()
            body = r.read()
            dt = time.perf_counter() - t
            with lock:
                if r.status == 200:
                    lat.append(dt)
                else:
                    errors.append((r.status, body[:200]))

    # Warm-up: the first call recovers the state and decodes the model; keep it out of the figures.
    warm = http.client.HTTPConnection(u.hostname, u.port)
    warm.request("GET", "/v1/models/fraud/events/state", headers={"authorization": f"Bearer {key}"})
    warm.getresponse().read()
    deadline = time.time() + seconds
    started = time.time()
    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - started
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3
    n = len(lat) * batch
    print(f"concurrency {conc}, {batch} event(s) per request: {n} events in {wall:.1f} s = {n / wall:.0f} events/s, "
          f"{len(lat) / wall:.0f} requests/s; request "
          f"latency p50 {q(0.50):.2f} ms, p99 {q(0.99):.2f} ms, max {lat[-1] * 1e3:.2f} ms; errors {len(errors)}"
          + (f" (first: {errors[0]})" if errors else ""))
    conn = http.client.HTTPConnection(u.hostname, u.port)
    conn.request("GET", "/v1/models/fraud/events/state", headers={"authorization": f"Bearer {key}"})
    print("state:", conn.getresponse().read().decode())


if __name__ == "__main__":
    main()
