"""Timing equality for bench/auth/run.sh: a known key id vs an unknown one, both with wrong secrets.

    python3 timing.py HOST PORT KNOWN_KEY_ID N PATH

Sends N requests of each kind on one keep-alive connection, one at a time, interleaved in random
pair order (known, unknown or unknown, known) so that load from elsewhere on the machine falls on
both kinds alike. Every request carries a fresh random secret. Prints one line per kind:
`TIMING <kind> <n> <mean ms> <median ms> <p90 ms> <statuses>`.
"""

import http.client
import random
import secrets
import statistics
import string
import sys
import time

ALPHABET = string.ascii_lowercase + string.digits


def main() -> None:
    host, port, known, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    unknown = known
    while unknown == known:
        unknown = "".join(random.choice(ALPHABET) for _ in range(12))
    conn = http.client.HTTPConnection(host, port)

    def once(key_id: str) -> tuple[float, int]:
        headers = {"Authorization": f"Bearer aurum_{key_id}_{secrets.token_hex(32)}"}
        t0 = time.perf_counter_ns()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return (time.perf_counter_ns() - t0) / 1e6, resp.status

    for _ in range(100):  # warm-up: connection, allocator, branch predictors
        once(known)
        once(unknown)
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    statuses: dict[str, dict[int, int]] = {"known": {}, "unknown": {}}
    for _ in range(n):
        order = [("known", known), ("unknown", unknown)]
        random.shuffle(order)
        for kind, key_id in order:
            ms, status = once(key_id)
            times[kind].append(ms)
            statuses[kind][status] = statuses[kind].get(status, 0) + 1
    for kind in ("known", "unknown"):
        t = sorted(times[kind])
        st = ",".join(f"{k}:{v}" for k, v in sorted(statuses[kind].items()))
        print(
            f"TIMING {kind} {len(t)} {statistics.fmean(t):.4f} {statistics.median(t):.4f} "
            f"{t[int(0.9 * (len(t) - 1))]:.4f} {st}"
        )


if __name__ == "__main__":
    main()
