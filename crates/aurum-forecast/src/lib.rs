//! Time-series forecasting for aurum: series ingest, benchmark methods, ETS, seasonal ARIMA with
//! auto-ARIMA, STL/MSTL, transforms, rolling-origin backtests and storable fitted models.
//!
//! Why a crate of its own: forecasting has its own input shape (a time index, a frequency, gaps)
//! and its own model contract (fit a history, forecast `h` steps with intervals, absorb new
//! observations without refitting), neither of which fits the tabular `aurum-models` trait. It is a
//! pure library: no HTTP, no async, no file-system IO — callers hand over bytes or values, and get
//! back values and JSON artifacts the registry stores.
//!
//! The pieces, in the order a forecasting request uses them:
//!
//! * [`read_csv`] turns CSV bytes into [`Series`] (wide, multi-column or long with an id column),
//!   checks the time index, infers the [`Frequency`], and applies the explicit [`FillPolicy`],
//!   reporting every filled or dropped point in a [`FillReport`];
//! * a [`ModelSpec`] (optionally wrapped in a [`Pipeline`] with a log/Box–Cox [`Transform`]) is a
//!   [`Forecaster`]: `fit` gives a [`FittedModel`] whose `forecast(h, levels)` returns point
//!   forecasts and intervals, whose `update` absorbs new observations with parameters fixed, and
//!   whose `to_json` / `from_json` round-trip a versioned artifact;
//! * [`backtest`] and [`select_by_backtest`] evaluate models by rolling origin;
//! * [`stl`] and [`mstl`] decompose a series on their own;
//! * [`external`] is the one extension point: forecasters that need dependencies this crate must
//!   not have (the burn-trained LSTM and GRU of `aurum-nn`) register by name and are then fitted,
//!   selected by `auto` (opt-in, `model = "auto+lstm"`), backtested and stored like the others.
//!
//! Numerical contracts are tested against references: the ARIMA estimates against statsmodels'
//! `SARIMAX` (fixtures written by `scripts/forecast-reference/arima_reference.py`), the OCSB
//! seasonal unit-root test that auto-ARIMA runs for its seasonal difference against R's
//! definition and pmdarima (`bench/forecast/ocsb_reference.py`), the benchmark intervals and
//! accuracy metrics against hand-computed values.

mod arima;
mod backtest;
mod baseline;
mod cancel;
mod decompose;
mod error;
mod ets;
pub mod external;
pub mod family;
mod frequency;
mod model;
mod mstl_model;
mod optim;
mod seasonal_test;
mod series;
pub mod spec;
mod stats;
mod transform;

pub use arima::auto::{
    AutoArimaResult, AutoArimaSpec, SearchStep, SeasonalTest, auto_arima, first_diffs,
    seasonal_diffs,
};
pub use arima::{ArimaFit, ArimaMethod, ArimaOrder, ArimaSpec, fit_arima};
pub use backtest::{
    BacktestConfig, BacktestReport, Metrics, Score, Selection, WindowResult, accuracy, backtest,
    default_candidates, mase_scale, select_by_backtest,
};
pub use baseline::{BaselineFit, BaselineKind, fit_baseline};
pub use cancel::{check as check_cancelled, with_cancel};
pub use decompose::{Decomposition, StlOptions, mstl, stl};
pub use error::{ForecastError, MAX_MAGNITUDE};
pub use ets::{EtsError, EtsFit, EtsSeason, EtsSpec, EtsTrend, fit_ets};
pub use external::{
    ExternalFit, ExternalForecast, ExternalForecaster, ExternalModel, ExternalSpec, register,
    registered, registered_names,
};
pub use frequency::Frequency;
pub use model::{
    DEFAULT_LEVELS, FORMAT_VERSION, Fitted, FittedModel, Forecast, Forecaster, ModelSpec, Pipeline,
    PredictionInterval,
};
pub use mstl_model::{AdjustedFit, MstlFit, MstlSpec, MstlTrendModel};
pub use seasonal_test::{OCSB_MAX_LAG, OcsbTest, ocsb_critical_value, ocsb_diffs, ocsb_test};
pub use series::{
    CsvOptions, FillPolicy, FillReason, FillReport, FilledPoint, MISSING_TOKENS, ParsedSeries,
    Series, TimeColumn, parse_timestamp, read_csv,
};
pub use stats::{interval_multiplier, kpss_statistic, normal_quantile};
pub use transform::{
    ResolvedTransform, ReturnKind, Transform, box_cox, guerrero, inv_box_cox, returns,
};
