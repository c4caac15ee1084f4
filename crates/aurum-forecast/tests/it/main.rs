//! Integration tests for `aurum-forecast`, as one test binary (one link instead of one per file).
//!
//! `arima_reference` checks the ARIMA estimates, likelihood and forecasts against statsmodels
//! fixtures (`tests/fixtures`, written by `scripts/forecast-reference/arima_reference.py`);
//! `auto_arima` the Hyndman–Khandakar search on the airline data; `baselines` the benchmark
//! intervals against hand-computed values; `series_csv` ingest, frequency inference, fill policies
//! and every error case; `calendars` trading days, sessions, integer indexes and date forms; `backtest` the metric formulas; `ets`, `transforms` and `artifacts` the
//! rest of the public API; `constant_series` constant inputs with every model and values too
//! large to fit; `external` the extension point for forecasters defined elsewhere.

mod arima_reference;
mod artifacts;
mod auto_arima;
mod backtest;
mod baselines;
mod calendars;
mod common;
mod constant_series;
mod ets;
mod external;
mod long_season;
mod seasonal_test;
mod series_csv;
mod transforms;
