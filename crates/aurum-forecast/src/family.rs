//! The `forecast` model family: forecasting models as ordinary registry versions.
//!
//! A forecasting version is trained by the same job runner as every other family: the dataset is
//! read, its `date_column` and target column become a checked, regular series through the same
//! ingest as CSV files and request series ([`crate::read_csv`], so fill policies, frequency
//! inference and the time-index checks behave identically), the model is fitted (selected by
//! backtest for `model=auto`), and the fitted model with its data window is stored in the
//! standard artifact envelope. Serving goes through the [`Forecaster`] view: new observations
//! update the state with the parameters fixed, then the model forecasts with intervals.

use aurum_contract::{
    FamilySpec, FitContext, Forecaster, ModelError, ModelFamily, Params, SeriesForecast, Task,
    TrainingData,
};
use aurum_core::{ColumnData, ColumnType, Field, Metrics, Schema};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::spec::{ForecastSpec, check_spec, fit_series, parse_fill, parse_frequency, to_returns};
use crate::{ForecastError, Frequency};

/// The parameters the family accepts.
pub const PARAM_NAMES: &[&str] = &[
    "date_column",
    "model",
    "horizon",
    "season_period",
    "order",
    "seasonal_order",
    "window",
    "transform",
    "fill",
    "frequency",
    "date_format",
    "returns",
];

/// What the `forecast` family is.
pub const SPEC: FamilySpec = FamilySpec {
    name: "forecast",
    aliases: &["forecasting", "time_series"],
    task: Task::Forecast,
    summary: "Time-series forecasting (auto selection by backtest, auto-ARIMA, ARIMA, ETS, \
              baselines) with prediction intervals; the target column is the series and \
              `date_column` its time index.",
    params: PARAM_NAMES,
    trainable: true,
    importable: false,
};

/// The `forecast` family.
#[derive(Clone, Copy, Debug, Default)]
pub struct ForecastFamily;

/// Typed parameters: the spec plus the time column.
#[derive(Clone, Debug)]
struct ForecastParams {
    date_column: String,
    spec: ForecastSpec,
}

fn invalid(name: &str, value: &str, expected: &str) -> ModelError {
    ModelError::InvalidParam {
        name: name.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

fn from_forecast(e: ForecastError) -> ModelError {
    match e {
        ForecastError::InvalidField { field, message } => ModelError::InvalidParam {
            name: field,
            value: String::new(),
            expected: message,
        },
        ForecastError::FitFailed(reason) => ModelError::Numerical { reason },
        ForecastError::Cancelled => ModelError::Cancelled,
        ForecastError::BadArtifact(reason) => ModelError::InvalidArtifact { reason },
        ForecastError::TooFewPoints { .. } => ModelError::NotEnoughData {
            reason: e.to_string(),
        },
        other => ModelError::InvalidTarget {
            reason: other.to_string(),
        },
    }
}

fn usize_list<const N: usize>(name: &str, v: &str) -> Result<[usize; N], ModelError> {
    let parts: Vec<usize> = v
        .split(',')
        .map(|p| p.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| invalid(name, v, &format!("{N} comma-separated integers")))?;
    parts
        .try_into()
        .map_err(|_| invalid(name, v, &format!("{N} comma-separated integers")))
}

/// One period or a comma-separated list (`12`, `288,2016`), each in 1..=100000.
fn period_list(v: &str) -> Result<Vec<usize>, ModelError> {
    let expected = "a season period or a comma-separated list of them, each 1 to 100000";
    v.split(',')
        .map(|p| match p.trim().parse::<usize>() {
            Ok(n) if (1..=100_000).contains(&n) => Ok(n),
            _ => Err(invalid("season_period", v, expected)),
        })
        .collect()
}

impl ForecastParams {
    fn parse(params: &Params) -> Result<Self, ModelError> {
        let r = aurum_contract::ParamReader::new("forecast", params, PARAM_NAMES)?;
        let date_column = r
            .str("date_column")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("date_column", "", "the name of the series' time column"))?
            .to_string();
        let d = ForecastSpec::default();
        let spec = ForecastSpec {
            model: r.str("model").unwrap_or(&d.model).to_string(),
            horizon: r.usize("horizon", 1..=10_000)?.unwrap_or(d.horizon),
            levels: d.levels,
            season_periods: r
                .str("season_period")
                .map(period_list)
                .transpose()?
                .unwrap_or_default(),
            order: r.str("order").map(|v| usize_list("order", v)).transpose()?,
            seasonal_order: r
                .str("seasonal_order")
                .map(|v| usize_list("seasonal_order", v))
                .transpose()?,
            window: r.usize("window", 1..=100_000)?,
            transform: r.str("transform").unwrap_or(&d.transform).to_string(),
            fill: r.str("fill").unwrap_or(&d.fill).to_string(),
            frequency: r.str("frequency").map(str::to_string),
            date_format: r.str("date_format").map(str::to_string),
            holidays: Vec::new(),
            session: None,
            returns: r.str("returns").map(str::to_string),
        };
        check_spec(&spec).map_err(from_forecast)?;
        // Check every option's spelling now, not after the dataset is read.
        parse_fill(&spec.fill).map_err(from_forecast)?;
        spec.frequency
            .as_deref()
            .map(parse_frequency)
            .transpose()
            .map_err(from_forecast)?;
        crate::spec::transform(&spec.transform).map_err(from_forecast)?;
        let periods = if spec.season_periods.is_empty() {
            vec![12]
        } else {
            spec.season_periods.clone()
        };
        crate::spec::pipelines(&spec, &periods).map_err(from_forecast)?;
        if let Some(r) = spec.returns.as_deref()
            && !matches!(r, "none" | "simple" | "log")
        {
            return Err(invalid("returns", r, "none, simple or log"));
        }
        Ok(Self { date_column, spec })
    }

    fn to_json(&self) -> serde_json::Value {
        let s = &self.spec;
        serde_json::json!({
            "date_column": self.date_column,
            "model": s.model,
            "horizon": s.horizon,
            "season_period": match s.season_periods.as_slice() {
                [] => serde_json::Value::Null,
                [p] => serde_json::json!(p),
                ps => serde_json::json!(ps),
            },
            "date_format": s.date_format,
            "order": s.order,
            "seasonal_order": s.seasonal_order,
            "window": s.window,
            "transform": s.transform,
            "fill": s.fill,
            "frequency": s.frequency,
            "returns": s.returns,
        })
    }
}

/// The family's parameters for fitting `spec` on the series indexed by `date_column` (the
/// inverse of the family's parameter parsing, for callers holding a [`ForecastSpec`]).
pub fn params_of(date_column: &str, spec: &ForecastSpec) -> Params {
    let mut params = Params::new();
    params.insert("date_column".into(), date_column.to_string());
    params.insert("model".into(), spec.model.clone());
    params.insert("horizon".into(), spec.horizon.to_string());
    params.insert("transform".into(), spec.transform.clone());
    params.insert("fill".into(), spec.fill.clone());
    let list = |v: &[usize]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    if !spec.season_periods.is_empty() {
        params.insert("season_period".into(), list(&spec.season_periods));
    }
    if let Some(f) = &spec.date_format {
        params.insert("date_format".into(), f.clone());
    }
    if let Some(o) = spec.order {
        params.insert("order".into(), list(&o));
    }
    if let Some(o) = spec.seasonal_order {
        params.insert("seasonal_order".into(), list(&o));
    }
    if let Some(w) = spec.window {
        params.insert("window".into(), w.to_string());
    }
    if let Some(f) = &spec.frequency {
        params.insert("frequency".into(), f.clone());
    }
    if let Some(r) = &spec.returns {
        params.insert("returns".into(), r.clone());
    }
    params
}

/// The stored form: the canonical parameters, the time column's type, the fitted model with
/// its data window, and what the fit measured.
#[derive(Serialize, Deserialize)]
struct StoredForecast {
    payload_version: u32,
    params: serde_json::Value,
    date_type: ColumnType,
    frequency: Frequency,
    last_timestamp: NaiveDateTime,
    model_json: String,
    history_points: usize,
    filled_points: usize,
    candidates: Vec<(String, Option<f64>)>,
}

const PAYLOAD_VERSION: u32 = 1;

/// A fitted forecasting model with its data window.
#[derive(Debug)]
pub struct ForecastModel {
    params: serde_json::Value,
    schema: Schema,
    date_type: ColumnType,
    frequency: Frequency,
    last_timestamp: NaiveDateTime,
    fitted: crate::FittedModel,
    history_points: usize,
    filled_points: usize,
    candidates: Vec<(String, Option<f64>)>,
}

impl ForecastModel {
    /// The candidates `model=auto` compared, with their backtest MASE.
    pub fn candidates(&self) -> &[(String, Option<f64>)] {
        &self.candidates
    }
}

/// The time cells of `column` as the text the series ingest reads.
fn time_cells(data: &ColumnData) -> Vec<String> {
    fn cells<T>(v: &[Option<T>], f: impl Fn(&T) -> String) -> Vec<String> {
        v.iter()
            .map(|c| c.as_ref().map(&f).unwrap_or_default())
            .collect()
    }
    match data {
        ColumnData::Date(v) => cells(v, |d| d.format("%Y-%m-%d").to_string()),
        ColumnData::DateTime(v) => cells(v, |d| d.format("%Y-%m-%d %H:%M:%S").to_string()),
        ColumnData::Text(v) | ColumnData::Categorical(v) => cells(v, |s| s.replace(',', " ")),
        ColumnData::Integer(v) => cells(v, i64::to_string),
        ColumnData::Float(v) => cells(v, f64::to_string),
        ColumnData::Boolean(v) => cells(v, bool::to_string),
    }
}

impl ModelFamily for ForecastFamily {
    fn spec(&self) -> &FamilySpec {
        &SPEC
    }

    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError> {
        ForecastParams::parse(params).map(|p| p.to_json())
    }

    fn fit(
        &self,
        data: &TrainingData<'_>,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn aurum_contract::FittedModel>, ModelError> {
        let p = ForecastParams::parse(params)?;
        let target = data.numeric()?;
        let column = data.features.column(&p.date_column).ok_or_else(|| {
            invalid(
                "date_column",
                &p.date_column,
                &format!(
                    "a column of the dataset other than the target (columns: {})",
                    data.features
                        .columns()
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        let date_type = column.data.column_type();
        // The same ingest as files and request series: render the two columns and read them back.
        let mut csv = String::from("timestamp,value\n");
        for (t, v) in time_cells(&column.data).iter().zip(&target.y) {
            csv.push_str(t);
            csv.push(',');
            if v.is_finite() {
                csv.push_str(&format!("{v:?}"));
            }
            csv.push('\n');
        }
        // Date and datetime columns were parsed at import and are rendered in ISO form; an
        // explicit `date_format` applies to text columns only.
        let mut read_spec = p.spec.clone();
        if !matches!(date_type, ColumnType::Text | ColumnType::Categorical)
            && read_spec.date_format.as_deref() != Some("index")
        {
            read_spec.date_format = None;
        }
        let opts = crate::spec::csv_options(&read_spec, "timestamp".into(), "value".into())
            .map_err(from_forecast)?;
        ctx.check_cancelled()?;
        let series = crate::read_csv(csv.as_bytes(), &opts)
            .map_err(from_forecast)?
            .pop()
            .ok_or_else(|| ModelError::NotEnoughData {
                reason: "the series is empty".into(),
            })?;
        let series = to_returns(series, p.spec.returns.as_deref()).map_err(from_forecast)?;
        ctx.progress.report("fit", 0.1);
        let (fitted, candidates) =
            crate::cancel::with_cancel(ctx.cancel, || fit_series(&p.spec, &series))
                .map_err(from_forecast)?;
        ctx.progress.report("fit", 1.0);
        let last_timestamp =
            *series
                .series
                .timestamps
                .last()
                .ok_or_else(|| ModelError::NotEnoughData {
                    reason: "the series is empty".into(),
                })?;
        Ok(Box::new(ForecastModel {
            params: p.to_json(),
            schema: Schema {
                fields: vec![Field::new(p.date_column.clone(), date_type)],
            },
            date_type,
            frequency: series.series.frequency,
            last_timestamp,
            fitted,
            history_points: series.series.values.len(),
            filled_points: series.report.filled.len(),
            candidates,
        }))
    }

    fn load_payload(
        &self,
        payload: &[u8],
    ) -> Result<Box<dyn aurum_contract::FittedModel>, ModelError> {
        let stored: StoredForecast = serde_json::from_slice(payload)
            .map_err(|e| ModelError::invalid_artifact(format!("forecast payload: {e}")))?;
        if stored.payload_version != PAYLOAD_VERSION {
            return Err(ModelError::invalid_artifact(format!(
                "forecast payload version {} is not supported (this aurum reads {PAYLOAD_VERSION})",
                stored.payload_version
            )));
        }
        let date_column = stored.params["date_column"]
            .as_str()
            .ok_or_else(|| ModelError::invalid_artifact("forecast payload has no date_column"))?
            .to_string();
        let fitted = crate::FittedModel::from_json(&stored.model_json)
            .map_err(|e| ModelError::invalid_artifact(e.to_string()))?;
        Ok(Box::new(ForecastModel {
            params: stored.params,
            schema: Schema {
                fields: vec![Field::new(date_column, stored.date_type)],
            },
            date_type: stored.date_type,
            frequency: stored.frequency,
            last_timestamp: stored.last_timestamp,
            fitted,
            history_points: stored.history_points,
            filled_points: stored.filled_points,
            candidates: stored.candidates,
        }))
    }
}

impl aurum_contract::FittedModel for ForecastModel {
    fn family(&self) -> &str {
        SPEC.name
    }

    fn task(&self) -> Task {
        Task::Forecast
    }

    fn input_schema(&self) -> &Schema {
        &self.schema
    }

    fn params(&self) -> serde_json::Value {
        self.params.clone()
    }

    fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "model": self.fitted.describe(),
            "frequency": self.frequency.to_string(),
            "last_timestamp": self.last_timestamp.to_string(),
            "history_points": self.history_points,
            "filled_points": self.filled_points,
            "aicc": self.fitted.aicc(),
            "candidates": self.candidates.iter().map(|(name, mase)| {
                serde_json::json!({"model": name, "backtest_mase": mase})
            }).collect::<Vec<_>>(),
        })
    }

    fn payload(&self) -> Result<Vec<u8>, ModelError> {
        let stored = StoredForecast {
            payload_version: PAYLOAD_VERSION,
            params: self.params.clone(),
            date_type: self.date_type,
            frequency: self.frequency,
            last_timestamp: self.last_timestamp,
            model_json: self
                .fitted
                .to_json()
                .map_err(|e| ModelError::Serialization {
                    reason: e.to_string(),
                })?,
            history_points: self.history_points,
            filled_points: self.filled_points,
            candidates: self.candidates.clone(),
        };
        serde_json::to_vec(&stored).map_err(|e| ModelError::Serialization {
            reason: e.to_string(),
        })
    }

    fn fit_metrics(&self) -> Metrics {
        let mut m = Metrics::new();
        m.insert("history_points".into(), self.history_points as f64);
        if let Some(aicc) = self.fitted.aicc().filter(|a| a.is_finite()) {
            m.insert("aicc".into(), aicc);
        }
        let best = self
            .candidates
            .iter()
            .filter_map(|(_, mase)| *mase)
            .filter(|m| m.is_finite())
            .fold(f64::INFINITY, f64::min);
        if best.is_finite() {
            m.insert("backtest_mase".into(), best);
        }
        m
    }

    fn as_forecaster(&self) -> Option<&dyn Forecaster> {
        Some(self)
    }
}

impl Forecaster for ForecastModel {
    fn forecast(
        &self,
        horizon: usize,
        levels: &[f64],
        new_values: &[f64],
    ) -> Result<SeriesForecast, ModelError> {
        let spec = ForecastSpec {
            horizon,
            levels: levels.to_vec(),
            ..ForecastSpec::default()
        };
        check_spec(&spec).map_err(from_forecast)?;
        if let Some((i, _)) = new_values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ModelError::InvalidInput {
                feature: format!("new_values[{i}]"),
                row: None,
                reason: "values must be finite numbers".into(),
            });
        }
        let mut fitted = self.fitted.clone();
        if !new_values.is_empty() {
            fitted.update(new_values).map_err(from_forecast)?;
        }
        let mut last = self.last_timestamp;
        for _ in 0..new_values.len() {
            last = self.frequency.next(last);
        }
        let f = fitted.forecast(horizon, levels).map_err(from_forecast)?;
        Ok(SeriesForecast {
            model: fitted.describe(),
            frequency: self.frequency.to_string(),
            last_timestamp: last,
            timestamps: self.frequency.future(last, horizon),
            mean: f.mean,
            intervals: f
                .intervals
                .into_iter()
                .map(|i| (i.level, i.lower, i.upper))
                .collect(),
            aicc: fitted.aicc(),
        })
    }
}

#[cfg(test)]
mod tests {
    use aurum_core::{CancelToken, Column, NoProgress, NumericTarget, Table, Target};

    use super::*;

    #[test]
    fn parameters_round_trip_and_a_fit_reloads_with_the_same_forecast() {
        let spec = ForecastSpec {
            model: "arima".into(),
            order: Some([1, 1, 0]),
            fill: "linear".into(),
            ..ForecastSpec::default()
        };
        let params = params_of("month", &spec);
        let typed = ForecastParams::parse(&params).unwrap();
        assert_eq!(typed.to_json()["order"], serde_json::json!([1, 1, 0]));
        assert_eq!(typed.to_json()["fill"], "linear");

        let months: Vec<Option<String>> = (0..60)
            .map(|i| Some(format!("{}-{:02}", 2015 + i / 12, i % 12 + 1)))
            .collect();
        let y: Vec<f64> = (0..60)
            .map(|i| {
                100.0 + f64::from(i) + 10.0 * (f64::from(i) * std::f64::consts::FRAC_PI_6).sin()
            })
            .collect();
        let table = Table::new(vec![Column {
            name: "month".into(),
            data: ColumnData::Text(months),
        }])
        .unwrap();
        let target = Target::Numeric(NumericTarget {
            column: "value".into(),
            y,
        });
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 0,
        };
        let m = ForecastFamily
            .fit(&TrainingData::new(&table, &target), &params, &ctx)
            .unwrap();
        assert_eq!(m.task(), Task::Forecast);
        let f = m
            .as_forecaster()
            .unwrap()
            .forecast(6, &[80.0], &[])
            .unwrap();
        assert_eq!(f.timestamps.len(), 6);
        assert_eq!(f.frequency, "monthly");
        let back = ForecastFamily.load_payload(&m.payload().unwrap()).unwrap();
        assert_eq!(back.params(), m.params());
        assert_eq!(
            back.as_forecaster()
                .unwrap()
                .forecast(6, &[80.0], &[])
                .unwrap(),
            f
        );
        let missing = ForecastParams::parse(&Params::new()).unwrap_err();
        assert_eq!(missing.code(), "invalid_param");
    }
}
