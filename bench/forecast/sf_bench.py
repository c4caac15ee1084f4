"""statsforecast side of the forecasting benchmark: reads OUT/tasks.json (written by the
forecast_bench example), fits AutoARIMA and AutoETS to every task with statsforecast defaults
(single-threaded, one task at a time, fit + predict timed), runs StatsForecast.cross_validation
on the backtest series, and writes OUT/forecasts_statsforecast.json in the example's format.

    python bench/forecast/sf_bench.py OUT_DIR

Log tasks are fitted on ln(y); the mean and the interval bounds are exponentiated, exactly what
aurum's log Pipeline does (median forecast, no bias adjustment).
"""

import json
import os
import sys
import time
from importlib.metadata import version

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import AutoARIMA, AutoETS

LEVELS = [80, 95]
MODELS = {
    "AutoARIMA": lambda m: AutoARIMA(season_length=m),
    "AutoETS": lambda m: AutoETS(season_length=m),
}


def describe(name, model):
    """The chosen model in aurum's notation, e.g. ARIMA(0,1,1)(0,1,1)[12] or ETS(A,N,N)."""
    fit = model.model_
    if name == "AutoETS":
        return fit["method"]
    p, q, sp, sq, m, d, sd = (int(v) for v in fit["arma"])
    s = f"ARIMA({p},{d},{q})"
    if m > 1 and sp + sd + sq > 0:
        s += f"({sp},{sd},{sq})[{m}]"
    coef = fit.get("coef", {})
    if "drift" in coef:
        s += " with drift"
    elif "intercept" in coef:
        s += " with non-zero mean"
    return s


def to_fc(pred, log):
    back = np.exp if log else (lambda v: v)
    return {
        "mean": back(np.asarray(pred["mean"], dtype=float)).tolist(),
        "lo80": back(np.asarray(pred["lo-80"], dtype=float)).tolist(),
        "hi80": back(np.asarray(pred["hi-80"], dtype=float)).tolist(),
        "lo95": back(np.asarray(pred["lo-95"], dtype=float)).tolist(),
        "hi95": back(np.asarray(pred["hi-95"], dtype=float)).tolist(),
    }


def fit_predict(name, task):
    y = np.asarray(task["train"], dtype=float)
    if task["log"]:
        y = np.log(y)
    model = MODELS[name](task["period"])
    model.fit(y)
    pred = model.predict(h=task["horizon"], level=LEVELS)
    return model, pred


def run_tasks(tasks, name):
    results = []
    for task in tasks:
        start = time.perf_counter()
        try:
            model, pred = fit_predict(name, task)
            fc = to_fc(pred, task["log"])
            seconds = time.perf_counter() - start
            results.append(
                {"id": task["id"], "seconds": seconds, "model": describe(name, model), "forecast": fc}
            )
        except Exception as e:  # a failed fit is a result, not a crash
            seconds = time.perf_counter() - start
            results.append({"id": task["id"], "seconds": seconds, "error": f"{type(e).__name__}: {e}"})
    return results


def run_backtest(bt, name):
    y = np.asarray(bt["values"], dtype=float)
    if bt["log"]:
        y = np.log(y)
    df = pd.DataFrame({"unique_id": "s", "ds": np.arange(1, len(y) + 1), "y": y})
    sf = StatsForecast(models=[MODELS[name](bt["period"])], freq=1, n_jobs=1)
    start = time.perf_counter()
    try:
        cv = sf.cross_validation(
            h=bt["horizon"], df=df, n_windows=bt["windows"], step_size=bt["step"], level=LEVELS
        )
    except Exception as e:
        return {"seconds": time.perf_counter() - start, "error": f"{type(e).__name__}: {e}"}
    seconds = time.perf_counter() - start
    windows = []
    # ds runs 1..n, so a cutoff at ds = c means c training values: the origin.
    for cutoff, g in cv.sort_values(["cutoff", "ds"]).groupby("cutoff", sort=True):
        pred = {
            "mean": g[name].to_numpy(),
            **{f"{s}-{lv}": g[f"{name}-{s}-{lv}"].to_numpy() for s in ("lo", "hi") for lv in LEVELS},
        }
        windows.append({"origin": int(cutoff), "forecast": to_fc(pred, bt["log"])})
    return {"seconds": seconds, "windows": windows}


def main():
    out = sys.argv[1]
    with open(os.path.join(out, "tasks.json")) as fh:
        spec = json.load(fh)
    tasks, backtests = spec["tasks"], spec["backtests"]

    # Warm-up, reported separately: the first call of each model on a small seasonal and a small
    # non-seasonal task (one-off import and initialisation costs; numba JIT in statsforecast < 2).
    warm = [
        {"train": tasks[0]["train"][:48], "period": 12, "horizon": 12, "log": False},
        {"train": tasks[-1]["train"][:60], "period": 1, "horizon": 10, "log": False},
    ]
    warmup = {}
    for name in MODELS:
        start = time.perf_counter()
        for t in warm:
            fit_predict(name, t)
        warmup[name] = time.perf_counter() - start
        print(f"statsforecast {name:<9}: warm-up {warmup[name]:.3f} s", file=sys.stderr)

    models = {}
    for name in MODELS:
        models[name] = run_tasks(tasks, name)
        total = sum(r["seconds"] for r in models[name])
        failed = sum("error" in r for r in models[name])
        print(
            f"statsforecast {name:<9}: {len(tasks)} tasks in {total:.3f} s ({failed} failed)",
            file=sys.stderr,
        )

    bts = {}
    for bt in backtests:
        bts[bt["id"]] = {}
        for name in MODELS:
            r = run_backtest(bt, name)
            bts[bt["id"]][name] = r
            print(
                f"statsforecast {name:<9}: cross_validation {bt['id']} in {r['seconds']:.3f} s",
                file=sys.stderr,
            )

    versions = {
        "statsforecast": version("statsforecast"),
        "numpy": version("numpy"),
        "pandas": version("pandas"),
        "python": sys.version.split()[0],
    }
    with open(os.path.join(out, "forecasts_statsforecast.json"), "w") as fh:
        json.dump(
            {
                "side": "statsforecast",
                "versions": versions,
                "warmup_seconds": warmup,
                "models": models,
                "backtests": bts,
            },
            fh,
        )


if __name__ == "__main__":
    main()
