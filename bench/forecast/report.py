"""Renders OUT/results.json (written by `forecast_bench score`) as markdown with the command,
machine and date; with --record appends it to BENCHMARKS.md. Standard library only.

    python3 bench/forecast/report.py OUT_DIR COMMAND [--record BENCHMARKS_MD] [--note TEXT]
                                     [--loadavg "1.0 1.0 1.0"]
"""

import argparse
import datetime
import fcntl
import json
import os
import platform

HEADING = "## Forecasting: aurum vs statsforecast"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def f(v, digits=3):
    return "–" if v is None else f"{v:.{digits}f}"


def pct(v):
    return "–" if v is None else f"{100 * v:.1f}"


def render(r, command, note, loadavg):
    versions = r["versions"]
    by = {(m["model"], m["side"]): m for m in r["main"]}
    out = []
    out.append(f"- Date: {datetime.date.today()}. Command: `{command}`.")
    out.append(
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()})"
        + (f", load average at start {loadavg}" if loadavg else "")
        + (f". {note}" if note else "")
        + "."
    )
    out.append(
        f"- Tasks: {r['tasks_total']} (series id, training values, season period, horizon, test "
        "values), written once to `tasks.json` by the `forecast_bench` example and read by both "
        "sides: " + "; ".join(r["notes"]) + ". `log` tasks are fitted on ln(y) on both sides and "
        "the median and interval bounds exponentiated; accuracy is on the original scale."
    )
    out.append(
        "- Metrics: one scorer for both sides (aurum's `accuracy` and `mase_scale`): per task MASE "
        "(scaled by the in-sample seasonal-naive MAE of the task's training values; naive for "
        "period 1) and sMAPE (%), averaged over tasks; coverage = share of test values inside the "
        "80 / 95 % intervals, averaged over tasks. Defaults on both sides (aurum `AutoArimaSpec` "
        "/ `EtsSpec::auto`, statsforecast `AutoARIMA(season_length=m)` / `AutoETS(season_length=m)`)."
    )
    warm = ", ".join(
        f"{m} {by[(m, 'statsforecast')]['warmup_seconds']:.3f} s"
        for m in ("AutoARIMA", "AutoETS")
        if by[(m, "statsforecast")].get("warmup_seconds") is not None
    )
    out.append(
        "- Time: wall time of fit + forecast summed over the tasks, one task at a time on one "
        "thread on both sides (statsforecast model objects' `fit` + `predict`; aurum "
        "`Pipeline::fit` + `forecast`). statsforecast's first calls (warm-up, excluded above): "
        + warm
        + "."
    )
    out.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    out.append("")
    out.append(
        "| model | side | tasks | MASE | sMAPE % | coverage 80 / 95 % | total s | ms/series |"
    )
    out.append("|---|---|---|---|---|---|---|---|")
    for m in r["main"]:
        tasks = f"{m['tasks_scored']}"
        if m["tasks_ok"] != m["tasks_total"]:
            tasks += f" ({m['tasks_total'] - m['tasks_ok']} failed)"
        out.append(
            f"| {m['model']} | {m['side']} | {tasks} | {f(m['mase'])} | {f(m['smape'], 2)} | "
            f"{pct(m['cov80'])} / {pct(m['cov95'])} | {f(m['seconds'], 2)} | "
            f"{f(m['ms_per_series'], 1)} |"
        )
    agree = "; ".join(
        f"{a['model']} {a['same']}/{a['tasks']}" for a in r["agreement"]
    )
    out.append("")
    out.append(f"Same model chosen by both sides: {agree} tasks.")

    out.append("")
    out.append("By data set (aurum / statsforecast):")
    out.append("")
    out.append(
        "| data set | model | tasks | MASE | sMAPE % | coverage 80 % | coverage 95 % | total s |"
    )
    out.append("|---|---|---|---|---|---|---|---|")
    groups = {}
    for g in r["groups"]:
        groups.setdefault((g["group"], g["model"]), {})[g["side"]] = g
    for (group, model), s in groups.items():
        a, b = s["aurum"], s["statsforecast"]
        out.append(
            f"| {group} | {model} | {a['tasks']} | {f(a['mase'])} / {f(b['mase'])} | "
            f"{f(a['smape'], 2)} / {f(b['smape'], 2)} | {pct(a['cov80'])} / {pct(b['cov80'])} | "
            f"{pct(a['cov95'])} / {pct(b['cov95'])} | {f(a['seconds'], 2)} / {f(b['seconds'], 2)} |"
        )

    out.append("")
    out.append(
        "Rolling-origin backtests (aurum `backtest` vs statsforecast `cross_validation`, same "
        "origins, refit at each; errors pooled over windows, MASE scaled per window):"
    )
    out.append("")
    out.append(
        "| series | windows × h (step) | model | side | MASE | sMAPE % | coverage 80 / 95 % | "
        "total s |"
    )
    out.append("|---|---|---|---|---|---|---|---|")
    for b in r["backtests"]:
        if b["error"]:
            out.append(
                f"| {b['series']} | {b['windows']} × {b['horizon']} ({b['step']}) | {b['model']} | "
                f"{b['side']} `{b['call']}` | failed: {b['error']} | | | {f(b['seconds'], 2)} |"
            )
            continue
        out.append(
            f"| {b['series']} | {b['windows']} × {b['horizon']} ({b['step']}) | {b['model']} | "
            f"{b['side']} `{b['call']}` | {f(b['mase'])} | {f(b['smape'], 2)} | "
            f"{pct(b['cov80'])} / {pct(b['cov95'])} | {f(b['seconds'], 2)} |"
        )
    return "\n".join(out)


def record(path, text):
    try:
        with open(path, "x") as fh:
            fh.write("# Benchmarks\n")
    except FileExistsError:
        pass
    # One locked append: other benchmarks may be appending their own sections at the same time.
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.write(f"\n{HEADING}\n\n{text}\n")
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("command")
    ap.add_argument("--record")
    ap.add_argument("--note", default="")
    ap.add_argument("--loadavg", default="")
    a = ap.parse_args()
    with open(os.path.join(a.out, "results.json")) as fh:
        r = json.load(fh)
    text = render(r, a.command, a.note, a.loadavg)
    print(text)
    if a.record:
        record(a.record, text)
        print(f"\nappended to {a.record}")


if __name__ == "__main__":
    main()
