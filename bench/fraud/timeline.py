#!/usr/bin/env python3
"""Folds a `live_load` TRACE file (lines `SENT_MS LATENCY_MS`) into windows of WINDOW_MS (default
250): for each window (its UTC time when the trace has its start line) the requests sent in it, their p50, p99 and max latency. Windows whose max
is at least SLOW_MS (default 20) are marked, to line them up with the server's log.

    python3 bench/fraud/timeline.py TRACE [WINDOW_MS] [SLOW_MS]
"""
import datetime
import signal
import sys

# Piped into `head` or `grep -m`: stop quietly when the reader does.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def main():
    path = sys.argv[1]
    window = float(sys.argv[2]) if len(sys.argv) > 2 else 250.0
    slow = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
    buckets = {}
    start = None
    with open(path) as f:
        for line in f:
            if line.startswith("# start_unix_ms"):
                start = int(line.split()[2]) / 1e3
                continue
            sent, lat = map(float, line.split())
            buckets.setdefault(int(sent // window), []).append(lat)
    for k in sorted(buckets):
        lat = sorted(buckets[k])
        q = lambda p: lat[min(int(p * len(lat)), len(lat) - 1)]
        mark = "  <-- slow" if lat[-1] >= slow else ""
        at = k * window / 1e3
        wall = ""
        if start is not None:
            wall = datetime.datetime.fromtimestamp(start + at, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3] + "  "
        print(f"{wall}{at:8.2f} s  n {len(lat):5d}  p50 {q(0.5):7.2f}  p99 {q(0.99):7.2f}  max {lat[-1]:7.2f}{mark}")


if __name__ == "__main__":
    main()
