"""Reads the outputs of bench/auth/run.sh from WORK, prints the tables and, with record=1, appends
them to BENCHMARKS.md.

    python3 report.py WORK BENCHMARKS_MD RECORD COMMAND MACHINE LOAD_START LOAD_END NOTE FLOOD_S NODIP_S QUICK
"""

import datetime
import os
import statistics
import sys

RSS_TARGET_MB = 300
P99_TARGET_MS = 50
TIMING_TOLERANCE = 0.20


class Wrk:
    """One wrk run: the RESULT, STATUS and SEC lines printed by client.lua."""

    def __init__(self, path: str):
        self.seconds: dict[int, int] = {}
        self.requests = 0
        self.duration = float("nan")
        self.p50 = self.p99 = self.mean = self.max = float("nan")
        self.socket_errors = 0
        self.n2xx = self.n401 = self.n429 = self.nother = 0
        self.raw = open(path).read() if os.path.exists(path) else ""
        for line in self.raw.splitlines():
            p = line.split()
            if not p:
                continue
            if p[0] == "SEC":
                self.seconds[int(p[1])] = self.seconds.get(int(p[1]), 0) + int(p[2])
            elif p[0] == "RESULT":
                self.requests, self.duration = int(p[1]), float(p[2])
                self.p50, self.p99, self.mean, self.max = map(float, p[3:7])
                self.socket_errors = int(p[7])
            elif p[0] == "STATUS":
                self.n2xx, self.n401, self.n429, self.nother = map(int, p[1:5])

    @property
    def rps(self) -> float:
        return self.requests / self.duration if self.duration else float("nan")

    @property
    def errors(self) -> int:
        return self.n401 + self.n429 + self.nother + self.socket_errors

    def per_second(self) -> list[int]:
        """Completions per whole second: the first (partial) second dropped, silent seconds as 0."""
        if len(self.seconds) < 3:
            return []
        lo, hi = min(self.seconds) + 1, max(self.seconds)
        return [self.seconds.get(s, 0) for s in range(lo, hi + 1)]


def mib(kib: str) -> float:
    return int(kib) / 1024 if kib and kib.isdigit() else float("nan")


def main() -> None:
    (work, bench_md, record, command, machine, load_start, load_end, note, flood_s, nodip_s,
     quick) = sys.argv[1:]
    w = lambda name: Wrk(os.path.join(work, name))  # noqa: E731
    alone = w("alone.txt")
    runs = {
        "nolimit": (w("nolimit.flood.txt"), w("nolimit.legit.txt")),
        "limited": (w("limited.flood.txt"), w("limited.legit.txt")),
    }
    rss = {}
    for line in open(os.path.join(work, "rss.txt")):
        tag, sampled, hwm = line.split()
        rss[tag] = (mib(sampled), mib(hwm))
    timing = {}
    for line in open(os.path.join(work, "timing.txt")):
        p = line.split()
        if p and p[0] == "TIMING":
            timing[p[1]] = (int(p[2]), float(p[3]), float(p[4]), float(p[5]), p[6])

    out = []
    out.append(f"- Date: {datetime.date.today()}. Command: `{command}`.")
    extra = f" {note}" if note else ""
    out.append(
        f"- Machine: {machine}, load average at start {load_start}, at end {load_end}. The machine "
        f"is shared with other engineers' builds and tests: the server, wrk and Python share its "
        f"cores, so latencies include CPU contention.{extra}"
    )
    out.append(
        "- Server: release `aurum serve` on 127.0.0.1, fresh data dir, German credit logistic "
        "model `credit` (alias champion), one client key; default config apart from "
        "`AURUM_AUTH_FAILURES_PER_MINUTE` where stated. Clients: wrk with `bench/auth/client.lua` "
        "(closed loop, keep-alive), `bench/auth/timing.py` for scenario 2."
        + (" **Quick run** (shortened durations)." if quick == "1" else "")
    )
    out.append("")
    out.append(
        f"**1. Flood.** {flood_s} s of `POST /v1/models/credit/predict` presenting the known key id "
        "with a fresh wrong secret on every request (wrk, 2 threads, 128 connections), while a "
        "legitimate client predicts one record with the valid key (wrk, 1 thread, 2 connections). "
        "Same address for both. Peak RSS: VmRSS sampled every 100 ms / VmHWM."
    )
    out.append("")
    out.append(
        "| run | flood req/s | flood 2xx / 401 / 429 / other / socket err | server peak RSS MiB | "
        "legit req/s | legit p50 ms | legit p99 ms | legit max ms | legit errors |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|")
    out.append(
        f"| legit alone (no flood) | - | - | - | {alone.rps:,.0f} | {alone.p50:.2f} | "
        f"{alone.p99:.2f} | {alone.max:.1f} | {alone.errors} |"
    )
    labels = {
        "nolimit": "flood, failure limit 10^9/min (verification cost)",
        "limited": "flood, default failure limit (60/min)",
    }
    for tag, (flood, legit) in runs.items():
        s, h = rss.get(tag, (float("nan"), float("nan")))
        out.append(
            f"| {labels[tag]} | {flood.rps:,.0f} | {flood.n2xx} / {flood.n401} / {flood.n429} / "
            f"{flood.nother} / {flood.socket_errors} | {s:.0f} / {h:.0f} | {legit.rps:,.0f} | "
            f"{legit.p50:.2f} | {legit.p99:.2f} | {legit.max:.1f} | {legit.errors} |"
        )
    out.append("")
    worst_rss = max(v[1] for k, v in rss.items() if k in runs)
    legit_err = sum(legit.errors for _, legit in runs.values())
    p99_limited, p99_nolimit = runs["limited"][1].p99, runs["nolimit"][1].p99
    out.append(
        f"- Targets: server peak RSS < {RSS_TARGET_MB} MB: **{worst_rss:.0f} MiB** "
        f"({'met' if worst_rss * 1.048576 < RSS_TARGET_MB else 'MISSED'}); legitimate p99 under "
        f"flood < {P99_TARGET_MS} ms at the default limit: **{p99_limited:.2f} ms** "
        f"({'met' if p99_limited < P99_TARGET_MS else 'MISSED'}), with the limit out of the way: "
        f"**{p99_nolimit:.2f} ms** ({'met' if p99_nolimit < P99_TARGET_MS else 'MISSED'}); "
        f"legitimate errors: **{legit_err}**."
    )
    out.append("")

    out.append(
        "**2. Timing equality.** `GET /v1/models/credit` with a wrong secret, known key id vs an "
        "unknown (well-formed) key id, one request at a time on one keep-alive connection, the two "
        "kinds interleaved in random pair order; client-side round trip (Python `http.client`, "
        "so it includes the client's own per-request overhead, equal for both kinds)."
    )
    out.append("")
    out.append("| key presented | requests | mean ms | median ms | p90 ms | statuses |")
    out.append("|---|---|---|---|---|---|")
    for kind in ("known", "unknown"):
        if kind in timing:
            n, mean, med, p90, st = timing[kind]
            out.append(f"| {kind} id, wrong secret | {n} | {mean:.3f} | {med:.3f} | {p90:.3f} | {st} |")
    out.append("")
    if "known" in timing and "unknown" in timing:
        r_mean = timing["known"][1] / timing["unknown"][1]
        r_med = timing["known"][2] / timing["unknown"][2]
        ok = abs(r_mean - 1) <= TIMING_TOLERANCE and abs(r_med - 1) <= TIMING_TOLERANCE
        out.append(
            f"- Ratio known / unknown: mean **{r_mean:.3f}**, median **{r_med:.3f}** (target within "
            f"{TIMING_TOLERANCE * 100:.0f} %: {'met' if ok else 'MISSED'})."
        )
    out.append("")

    out.append(
        f"**3. No dip.** {nodip_s} s at concurrency 64 (wrk, 2 threads) on the one valid key; "
        "responses counted per wall-clock second (first, partial second dropped). One server, the "
        "predict run then the GET run."
    )
    out.append("")
    out.append(
        "| endpoint | req/s overall | median second | min second | max second | seconds < ½ median "
        "| p50 ms | p99 ms | max ms | errors |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    dips_total = 0
    per_second_lines = []
    for name, label in (("nodip.predict.txt", "POST /v1/models/credit/predict"),
                        ("nodip.get.txt", "GET /v1/models/credit")):
        r = w(name)
        secs = r.per_second()
        if secs:
            med = statistics.median(secs)
            dips = [i for i, v in enumerate(secs) if v < med / 2]
            dips_total += len(dips)
            out.append(
                f"| {label} | {r.rps:,.0f} | {med:,.0f} | {min(secs):,} | {max(secs):,} | "
                f"{len(dips)} of {len(secs)} | {r.p50:.2f} | {r.p99:.2f} | {r.max:.1f} | {r.errors} |"
            )
            per_second_lines.append(f"- Per second, {label}: {' '.join(map(str, secs))}")
    s, h = rss.get("nodip", (float("nan"), float("nan")))
    out.append("")
    out.extend(per_second_lines)
    out.append(
        f"- Seconds below half the median: **{dips_total}** (target none: "
        f"{'met' if dips_total == 0 else 'MISSED'}). Server peak RSS over both runs: **{s:.0f} MiB** "
        f"sampled / **{h:.0f} MiB** VmHWM."
    )
    text = "\n".join(out)
    print(text)
    if record == "1":
        with open(bench_md, "a") as fh:
            fh.write("\n## Authentication under attack: flood, timing, no dip\n\n" + text + "\n")


if __name__ == "__main__":
    main()
