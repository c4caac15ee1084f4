"""statsforecast side of the real-series benchmark (bench/forecast/series.sh): rolling-origin
cross-validation of AutoARIMA, AutoETS, MSTL, Naive and SeasonalNaive on one CSV column as it is
(positional: trading days are consecutive steps), on the same origins as aurum's `series_bench`
example, scored the same way: MASE pools |e| / Q_w, Q_w the in-sample seasonal-naive MAE (first
period) of window w's training data. Prints one JSON object per model.

    python series_sf.py FILE DATE VALUE HORIZON WINDOWS PERIODS [MODELS]

MODELS (optional) is a comma-separated subset of the model names, e.g. `AutoETS,MSTL` to run
them apart from a slow AutoARIMA.
"""

import json
import sys
import time

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import MSTL, AutoARIMA, AutoETS, Naive, SeasonalNaive


def main():
    file, date, value, h, windows, periods = sys.argv[1:7]
    h, windows = int(h), int(windows)
    periods = [int(p) for p in periods.split(",")]
    m = periods[0]
    y = pd.read_csv(file)[value].to_numpy(dtype=float)
    n = len(y)
    df = pd.DataFrame({"unique_id": "s", "ds": np.arange(n), "y": y})
    models = {
        "AutoARIMA": AutoARIMA(season_length=m),
        "AutoETS": AutoETS(season_length=m),
        "MSTL": MSTL(season_length=periods if len(periods) > 1 else m),
        "Naive": Naive(),
        "SeasonalNaive": SeasonalNaive(season_length=m),
    }
    if len(sys.argv) > 7:
        wanted = sys.argv[7].split(",")
        models = {k: v for k, v in models.items() if k in wanted}
    origins = [n - h - (windows - 1 - i) * h for i in range(windows)]
    for name, model in models.items():
        started = time.perf_counter()
        cpu_started = time.process_time()
        try:
            cv = StatsForecast(models=[model], freq=1, n_jobs=1).cross_validation(
                df=df, h=h, step_size=h, n_windows=windows
            )
        except Exception as e:  # noqa: BLE001 - report and go on with the next model
            print(json.dumps({"model": name, "error": str(e)}), flush=True)
            continue
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        col = [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y")][0]
        ratios = []
        for origin in origins:
            train = y[:origin]
            scale = np.mean(np.abs(train[m:] - train[:-m]))
            part = cv[(cv["ds"] >= origin) & (cv["ds"] < origin + h)]
            ratios.extend(np.abs(part["y"].to_numpy() - part[col].to_numpy()) / scale)
        print(
            json.dumps(
                {
                    "model": name,
                    "mase": float(np.mean(ratios)),
                    "seconds": seconds,
                    "cpu_seconds": cpu_seconds,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
