"""Merges aurum.jsonl (credit_bench example) and python.jsonl (lgbm_bench.py) into one markdown
table; with --record appends it to BENCHMARKS.md. Standard library only.

    python3 bench/credit/report.py OUT_DIR COMMAND [--record BENCHMARKS_MD] [--note TEXT]
"""

import argparse
import datetime
import json
import os
import platform
import subprocess

HEADING = "## Credit models: aurum vs LightGBM and optbinning"
DATASETS = ("german_credit", "lending_club")


def read_jsonl(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def nproc():
    try:
        return subprocess.run(["nproc"], check=False, capture_output=True, text=True).stdout.strip()
    except OSError:
        return str(os.cpu_count())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("command")
    ap.add_argument("--record")
    ap.add_argument("--note", default="")
    ap.add_argument("--loadavg", default="")
    a = ap.parse_args()

    aurum = read_jsonl(os.path.join(a.out, "aurum.jsonl"))
    py = read_jsonl(os.path.join(a.out, "python.jsonl"))
    versions = next((r["versions"] for r in py if "versions" in r), {})
    results = [r for r in aurum + py if "dataset" in r]
    splits = {}
    for d in DATASETS:
        with open(os.path.join(a.out, f"split_{d}.json")) as fh:
            s = json.load(fh)
        splits[d] = (s["n_rows"] - len(s["test_rows"]), len(s["test_rows"]))

    out = []
    out.append(f"- Date: {datetime.date.today()}. Command: `{a.command}`.")
    out.append(
        f"- Machine: {nproc()} CPUs ({cpu_model()})"
        + (f", load average at start {a.loadavg}" if a.loadavg else "")
        + (f". {a.note}" if a.note else "")
        + "."
    )
    out.append(
        "- Splits: stratified 70/30, ChaCha8 seed 20240601, the same test rows on both sides ("
        + "; ".join(f"{d} {tr} train / {te} test" for d, (tr, te) in splits.items())
        + "). Fit time: median wall time of 3 fits (fit call only; loading, splitting, scoring "
        "excluded). aurum fits are single-threaded."
    )
    if versions:
        out.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    out.append("")
    out.append("| dataset | model | test AUC | train AUC | fit time s |")
    out.append("|---|---|---|---|---|")
    for d in DATASETS:
        for r in (r for r in results if r["dataset"] == d):
            label = r["model"]
            if "n_trees" in r:
                label += f" [{r['n_trees']} trees]"
            if "n_selected" in r:
                label += f" [{r['n_selected']} characteristics]"
            out.append(
                f"| {d} | {label} | {r['test_auc']:.4f} | {r['train_auc']:.4f} | {r['fit_s']:.3f} |"
            )
    text = "\n".join(out)
    print(text)
    if a.record:
        try:
            with open(a.record, "x") as fh:
                fh.write("# Benchmarks\n")
        except FileExistsError:
            pass
        with open(a.record, "a") as fh:
            fh.write(f"\n{HEADING}\n\n{text}\n")
        print(f"\nappended to {a.record}")


if __name__ == "__main__":
    main()
