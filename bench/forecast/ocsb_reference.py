"""Reference values for aurum-forecast's OCSB seasonal unit-root test
(crates/aurum-forecast/tests/it/seasonal_test.rs).

Prints, per series, pmdarima's OCSB statistic and `nsdiffs(test="ocsb")`, and the statistic of
R's `forecast::ocsb.test` (lag order 0..3 by AIC, as `nsdiffs` asks) computed here with
statsmodels OLS on time-aligned regressors. The two differ slightly: pmdarima aligns the filtered
regressors Z4 and Z5 by position (truncating from the front) where R aligns them by time
(`lag(Z4, -1)`, `lag(Z5, -m)`), and its AIC search compares lag orders 1..3 and then refits
with the order `index - 1` of the best one, not the order itself. aurum follows R's definition; its decisions (D) agree with pmdarima's on these series.

    python -m venv /tmp/ocsb && /tmp/ocsb/bin/pip install pmdarima
    /tmp/ocsb/bin/python bench/forecast/ocsb_reference.py
"""

import json
import pathlib

import numpy as np
import pandas as pd
import statsmodels.api as sm
from pmdarima.arima import OCSBTest, nsdiffs

DATA = pathlib.Path(__file__).resolve().parents[2] / "data" / "timeseries"


def r_ocsb_fit(x, m, lag, maxlag):
    """One regression of R's fitOCSB, indexed by time t of the original series."""
    n = len(x)

    def dm(t):
        return x[t] - x[t - m]

    def d1(t):
        return x[t] - x[t - 1]

    def dd(t):
        return dm(t) - dm(t - 1)

    rows = range(m + 1 + max(maxlag, lag), n)
    y = np.array([dd(t) for t in rows])
    lags = np.array([[dd(t - k) for k in range(1, lag + 1)] for t in rows]).reshape(len(y), lag)
    phi = sm.OLS(y, lags).fit().params if lag > 0 else np.zeros(0)

    def filt(f, t):
        return f(t) - sum(phi[k] * f(t - k - 1) for k in range(lag))

    z4 = np.array([filt(dm, t - 1) for t in rows])
    z5 = np.array([filt(d1, t - m) for t in rows])
    fit = sm.OLS(y, np.column_stack([lags, z4, z5])).fit()
    return fit.tvalues[-1], fit.aic


def r_ocsb(x, m, maxlag=3):
    aics = [r_ocsb_fit(x, m, lag, maxlag)[1] for lag in range(maxlag + 1)]
    lag = int(np.argmin(aics))
    return r_ocsb_fit(x, m, lag, lag)[0], lag


def column(file, col):
    return pd.read_csv(DATA / file)[col].to_numpy(dtype=float)


def main():
    air = column("airline_passengers.csv", "Passengers")
    series = {
        "airline": (air, 12),
        "log_airline": (np.log(air), 12),
        "us_change_consumption": (column("us_change.csv", "Consumption"), 4),
        "taylor_first_1000": (column("taylor_halfhourly.csv", "demand_mw")[:1000], 48),
    }
    for name, (x, m) in series.items():
        stat, lag = r_ocsb(x, m)
        print(
            json.dumps(
                {
                    "series": name,
                    "m": m,
                    "r_statistic": float(stat),
                    "r_lag": lag,
                    "critical": float(OCSBTest._calc_ocsb_crit_val(m)),
                    "pmdarima_statistic": float(OCSBTest(m=m)._compute_test_statistic(x)),
                    "pmdarima_nsdiffs": int(nsdiffs(x, m=m, max_D=1, test="ocsb")),
                }
            )
        )


if __name__ == "__main__":
    main()
