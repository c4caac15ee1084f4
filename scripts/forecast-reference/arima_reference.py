#!/usr/bin/env python3
"""Reference ARIMA fits from statsmodels for the aurum-forecast tests.

Run from the repository root:

    python3 scripts/forecast-reference/arima_reference.py

The script creates (once) a virtual environment in target/forecast-reference-venv, installs
statsmodels, numpy and pandas from PyPI into it, re-runs itself inside it, and writes
crates/aurum-forecast/tests/fixtures/arima_*.json. The fixtures are committed, so the Rust tests
never need Python.

Both fits use FIXED orders and statsmodels' exact Gaussian likelihood:

* `SARIMAX` with `simple_differencing=False`: the integrated states get statsmodels' exact diffuse
  initialisation and the stationary ARMA states the exact stationary covariance, so the
  log-likelihood equals the exact likelihood of the differenced series (aurum's formulation);
* `enforce_stationarity=True`, `enforce_invertibility=True` (the defaults: only the optimiser's
  parameter space changes, not the optimum);
* `concentrate_scale=False` (sigma2 is a parameter, as in R's `arima`); at the optimum sigma2 equals
  the concentrated estimate aurum uses;
* the mean of a d = 0 model is a regression constant (`exog` column of ones, `mle_regression=True`),
  i.e. statsmodels' `ARIMA(..., trend="c")` parameterisation, which is R's "mean", not SARIMAX's
  `trend="c"` intercept;
* L-BFGS with tight tolerances, restarted from the first optimum, so the fixture holds the optimum
  rather than wherever a default stopping rule left the optimiser.
"""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV = ROOT / "target" / "forecast-reference-venv"
FIXTURES = ROOT / "crates" / "aurum-forecast" / "tests" / "fixtures"
DATA = ROOT / "data" / "timeseries"
PACKAGES = ["statsmodels==0.15.0", "numpy==2.4.6", "pandas==3.1.1", "scipy==1.17.1"]


def ensure_venv():
    python = VENV / "bin" / "python"
    if pathlib.Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not python.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        subprocess.check_call([str(python), "-m", "pip", "install", "-q", *PACKAGES])
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


def fit_tight(model):
    res = model.fit(method="lbfgs", maxiter=5000, disp=False, factr=1e1, pgtol=1e-12)
    # Restart from the optimum: L-BFGS's first stop can be a little short of it.
    res = model.fit(
        start_params=res.params, method="lbfgs", maxiter=5000, disp=False, factr=1e1, pgtol=1e-12
    )
    return res


def summarise(name, description, res, h, exog_future=None):
    import numpy as np

    fc = res.get_forecast(h, exog=exog_future)
    mean = np.asarray(fc.predicted_mean)
    var = np.asarray(fc.var_pred_mean)
    intervals = {}
    for level in (80, 95):
        ci = np.asarray(fc.conf_int(alpha=1 - level / 100))
        intervals[str(level)] = {"lower": ci[:, 0].tolist(), "upper": ci[:, 1].tolist()}
    params = {k: float(v) for k, v in zip(res.model.param_names, res.params)}
    out = {
        "name": name,
        "description": description,
        "statsmodels_version": __import__("statsmodels").__version__,
        "params": params,
        "sigma2": params["sigma2"],
        "loglik": float(res.llf),
        "aic": float(res.aic),
        "aicc": float(res.aicc),
        "bic": float(res.bic),
        "nobs": int(res.nobs),
        "nobs_effective": int(res.nobs_effective),
        "k_params": int(len(res.params)),
        "forecast": {"h": h, "mean": mean.tolist(), "variance": var.tolist(), "intervals": intervals},
    }
    path = FIXTURES / f"{name}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    print(res.summary().tables[1])


def main():
    ensure_venv()
    import numpy as np
    import pandas as pd
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    FIXTURES.mkdir(parents=True, exist_ok=True)

    air = pd.read_csv(DATA / "airline_passengers.csv")
    y = np.log(air["Passengers"].to_numpy(dtype=float))
    model = SARIMAX(
        y,
        order=(0, 1, 1),
        seasonal_order=(0, 1, 1, 12),
        trend="n",
        simple_differencing=False,
        enforce_stationarity=True,
        enforce_invertibility=True,
        concentrate_scale=False,
    )
    summarise(
        "arima_airline_log",
        "log(airline passengers), ARIMA(0,1,1)(0,1,1)[12], no constant, exact diffuse ML",
        fit_tight(model),
        12,
    )

    us = pd.read_csv(DATA / "us_change.csv")
    y = us["Consumption"].to_numpy(dtype=float)
    exog = np.ones((len(y), 1))
    model = SARIMAX(
        y,
        exog=exog,
        order=(1, 0, 3),
        trend="n",
        mle_regression=True,
        enforce_stationarity=True,
        enforce_invertibility=True,
        concentrate_scale=False,
    )
    res = fit_tight(model)
    summarise(
        "arima_us_change_consumption",
        "us_change Consumption, ARIMA(1,0,3) with non-zero mean (x1 = mean), exact ML",
        res,
        12,
        exog_future=np.ones((12, 1)),
    )


if __name__ == "__main__":
    main()
