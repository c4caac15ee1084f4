//! The one model interface: a [`Forecaster`] (a specification) fits values into a
//! [`FittedModel`], which forecasts `h` steps with intervals, absorbs new observations, and
//! round-trips through a versioned JSON artifact.
//!
//! The set of built-in families is closed ([`ModelSpec`]) so that a stored artifact can always be
//! loaded by matching on its tag; a new built-in family is a new variant, a new module and a new
//! arm in each match (no `_` arms). Families that need dependencies this crate must not have are
//! the one exception, and a single variant: [`ModelSpec::External`] names a forecaster registered
//! at run time ([`crate::external`]), whose state the artifact stores as the forecaster's JSON.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::arima::auto::{AutoArimaSpec, auto_arima};
use crate::arima::{ArimaFit, ArimaSpec, fit_arima};
use crate::baseline::{BaselineFit, BaselineKind, fit_baseline};
use crate::error::ForecastError;
use crate::ets::{EtsFit, EtsSpec, fit_ets};
use crate::external::{ExternalFit, ExternalSpec};
use crate::frequency::Frequency;
use crate::mstl_model::{MstlFit, MstlSpec, fit_mstl};
use crate::series::Series;
use crate::stats::interval_multiplier;
use crate::transform::{ResolvedTransform, Transform};

/// Interval levels used when the caller gives none.
pub const DEFAULT_LEVELS: [f64; 2] = [80.0, 95.0];

/// Version of the JSON artifact written by [`FittedModel::to_json`].
pub const FORMAT_VERSION: u32 = 1;

const ARTIFACT_KIND: &str = "aurum-forecast-model";

/// A model family and its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum ModelSpec {
    /// Mean of the history.
    Mean,
    /// Last value.
    Naive,
    /// Value one season ago.
    SeasonalNaive {
        /// Season length.
        period: usize,
    },
    /// Mean of the last `window` values.
    MovingAverage {
        /// Window length.
        window: usize,
    },
    /// Random walk with drift.
    Drift,
    /// Exponential smoothing (additive errors), components fixed or selected by AICc.
    Ets(EtsSpec),
    /// Seasonal ARIMA with fixed orders.
    Arima(ArimaSpec),
    /// Hyndman–Khandakar auto-ARIMA.
    AutoArima(AutoArimaSpec),
    /// MSTL decomposition with seasonal naive seasons and ETS/ARIMA on the adjusted series.
    Mstl(MstlSpec),
    /// A forecaster registered at run time ([`crate::external`]), such as `aurum-nn`'s LSTM.
    External(ExternalSpec),
}

impl ModelSpec {
    /// The seasonal period the specification implies (1 when none).
    pub fn period(&self) -> usize {
        match self {
            ModelSpec::SeasonalNaive { period } => *period,
            ModelSpec::Ets(s) => s.period,
            ModelSpec::Arima(s) => s.order.period,
            ModelSpec::AutoArima(s) => s.period,
            ModelSpec::Mstl(s) => s.periods.iter().copied().max().unwrap_or(1),
            ModelSpec::External(s) => s.period,
            ModelSpec::Mean
            | ModelSpec::Naive
            | ModelSpec::MovingAverage { .. }
            | ModelSpec::Drift => 1,
        }
    }

    /// A short name for reports.
    pub fn name(&self) -> String {
        match self {
            ModelSpec::Mean => "mean".into(),
            ModelSpec::Naive => "naive".into(),
            ModelSpec::SeasonalNaive { period } => format!("snaive[{period}]"),
            ModelSpec::MovingAverage { window } => format!("moving_average[{window}]"),
            ModelSpec::Drift => "drift".into(),
            ModelSpec::Ets(_) => "ets".into(),
            ModelSpec::Arima(s) => s.order.to_string(),
            ModelSpec::AutoArima(_) => "auto_arima".into(),
            ModelSpec::Mstl(s) => match s.trend {
                crate::MstlTrendModel::Ets => "mstl".into(),
                crate::MstlTrendModel::Arima => "mstl_arima".into(),
            },
            ModelSpec::External(s) => s.name.clone(),
        }
    }
}

/// A model specification plus the transform it is fitted under.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// The model.
    pub model: ModelSpec,
    /// Transform applied before fitting (and inverted on forecasts).
    #[serde(default)]
    pub transform: Transform,
    /// Back-transform the point forecast to the mean rather than the median.
    #[serde(default)]
    pub bias_adjust: bool,
}

impl From<ModelSpec> for Pipeline {
    fn from(model: ModelSpec) -> Self {
        Self {
            model,
            transform: Transform::None,
            bias_adjust: false,
        }
    }
}

impl Pipeline {
    /// A short name for reports, e.g. `log+ets`.
    pub fn name(&self) -> String {
        match self.transform {
            Transform::None => self.model.name(),
            Transform::Log => format!("log+{}", self.model.name()),
            Transform::BoxCox { .. } => format!("boxcox+{}", self.model.name()),
        }
    }
}

/// Anything that fits a series into a [`FittedModel`].
pub trait Forecaster {
    /// Fits the model to `y` (oldest first).
    ///
    /// # Errors
    ///
    /// The caller's data (non-finite values, too short for the model) or a failed fit.
    fn fit(&self, y: &[f64]) -> Result<FittedModel, ForecastError>;

    /// Fits to a [`Series`], remembering its last timestamp and frequency so forecasts carry
    /// timestamps.
    ///
    /// # Errors
    ///
    /// As [`Forecaster::fit`].
    fn fit_series(&self, series: &Series) -> Result<FittedModel, ForecastError> {
        let mut m = self.fit(&series.values)?;
        m.last_timestamp = series.timestamps.last().copied();
        m.frequency = Some(series.frequency);
        Ok(m)
    }
}

impl Forecaster for ModelSpec {
    fn fit(&self, y: &[f64]) -> Result<FittedModel, ForecastError> {
        Pipeline::from(self.clone()).fit(y)
    }
}

impl Forecaster for Pipeline {
    fn fit(&self, y: &[f64]) -> Result<FittedModel, ForecastError> {
        crate::error::check_finite(y)?;
        crate::cancel::check()?;
        let transform = self.transform.resolve(y, self.model.period())?;
        let x = transform.apply(y)?;
        let inner = match &self.model {
            ModelSpec::Mean => Fitted::Baseline(fit_baseline(&x, BaselineKind::Mean)?),
            ModelSpec::Naive => Fitted::Baseline(fit_baseline(&x, BaselineKind::Naive)?),
            ModelSpec::SeasonalNaive { period } => Fitted::Baseline(fit_baseline(
                &x,
                BaselineKind::SeasonalNaive { period: *period },
            )?),
            ModelSpec::MovingAverage { window } => Fitted::Baseline(fit_baseline(
                &x,
                BaselineKind::MovingAverage { window: *window },
            )?),
            ModelSpec::Drift => Fitted::Baseline(fit_baseline(&x, BaselineKind::Drift)?),
            ModelSpec::Ets(spec) => Fitted::Ets(fit_ets(&x, spec)?),
            ModelSpec::Arima(spec) => Fitted::Arima(fit_arima(&x, spec)?),
            ModelSpec::AutoArima(spec) => Fitted::Arima(auto_arima(&x, spec)?.best),
            ModelSpec::Mstl(spec) => Fitted::Mstl(fit_mstl(&x, spec)?),
            ModelSpec::External(spec) => Fitted::External(ExternalFit::fit(&x, spec)?),
        };
        // An optimiser stopped by cancellation returns its last point: never a model.
        crate::cancel::check()?;
        Ok(FittedModel {
            spec: self.clone(),
            transform,
            n_obs: y.len(),
            last_timestamp: None,
            frequency: None,
            inner,
        })
    }
}

/// The fitted state of one family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", content = "fit", rename_all = "snake_case")]
pub enum Fitted {
    /// A benchmark method.
    Baseline(BaselineFit),
    /// Exponential smoothing.
    Ets(EtsFit),
    /// (S)ARIMA, including auto-ARIMA's choice.
    Arima(ArimaFit),
    /// MSTL with a model of the seasonally adjusted series.
    Mstl(MstlFit),
    /// A model of a registered external forecaster.
    External(ExternalFit),
}

/// A fitted model, ready to forecast, update and store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FittedModel {
    /// What was asked for.
    pub spec: Pipeline,
    /// The transform, with λ resolved.
    pub transform: ResolvedTransform,
    /// Observations seen (fit plus updates).
    pub n_obs: usize,
    /// Timestamp of the last observation, when fitted from a [`Series`].
    pub last_timestamp: Option<NaiveDateTime>,
    /// Frequency, when fitted from a [`Series`].
    pub frequency: Option<Frequency>,
    /// The family's fitted state.
    pub inner: Fitted,
}

/// One prediction interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionInterval {
    /// Coverage in percent (e.g. 95).
    pub level: f64,
    /// Lower bounds, one per step.
    pub lower: Vec<f64>,
    /// Upper bounds, one per step.
    pub upper: Vec<f64>,
}

/// Forecasts for `h` steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Timestamps of the forecast periods, when the model knows its series' calendar.
    pub timestamps: Option<Vec<NaiveDateTime>>,
    /// Point forecasts (back-transformed median, or mean with bias adjustment).
    pub mean: Vec<f64>,
    /// Standard deviation of the forecast on the model's (transformed) scale.
    pub std_dev: Vec<f64>,
    /// One interval per requested level, in the order requested.
    pub intervals: Vec<PredictionInterval>,
}

impl Forecast {
    /// The interval at `level`, if it was requested.
    pub fn interval(&self, level: f64) -> Option<&PredictionInterval> {
        self.intervals
            .iter()
            .find(|i| (i.level - level).abs() < 1e-9)
    }
}

impl FittedModel {
    /// A description such as `ARIMA(0,1,1)(0,1,1)[12]` or `ETS(A,Ad,N)` with its transform.
    pub fn describe(&self) -> String {
        let base = match &self.inner {
            Fitted::Baseline(b) => match b.kind {
                BaselineKind::Mean => "MEAN".to_string(),
                BaselineKind::Naive => "NAIVE".to_string(),
                BaselineKind::SeasonalNaive { period } => format!("SNAIVE[{period}]"),
                BaselineKind::MovingAverage { window } => format!("MA[{window}]"),
                BaselineKind::Drift => "RW with drift".to_string(),
            },
            Fitted::Ets(e) => e.to_string(),
            Fitted::Arima(a) => a.describe(),
            Fitted::Mstl(m) => m.to_string(),
            Fitted::External(e) => e.model().describe(),
        };
        match self.transform.lambda {
            None => base,
            Some(0.0) => format!("{base} on log"),
            Some(l) => format!("{base} on Box-Cox(λ={l:.4})"),
        }
    }

    /// The fitted ARIMA, if this is one.
    pub fn arima(&self) -> Option<&ArimaFit> {
        match &self.inner {
            Fitted::Arima(a) => Some(a),
            Fitted::Baseline(_) | Fitted::Ets(_) | Fitted::Mstl(_) | Fitted::External(_) => None,
        }
    }

    /// The fitted ETS, if this is one.
    pub fn ets(&self) -> Option<&EtsFit> {
        match &self.inner {
            Fitted::Ets(e) => Some(e),
            Fitted::Baseline(_) | Fitted::Arima(_) | Fitted::Mstl(_) | Fitted::External(_) => None,
        }
    }

    /// AICc where the family has a likelihood (ETS, ARIMA), on the transformed scale.
    pub fn aicc(&self) -> Option<f64> {
        match &self.inner {
            Fitted::Ets(e) => Some(e.aicc),
            Fitted::Arima(a) => Some(a.aicc),
            Fitted::Mstl(m) => Some(m.aicc()),
            Fitted::Baseline(_) | Fitted::External(_) => None,
        }
    }

    /// Forecasts `h` steps with intervals at `levels` (percent, each in (0, 100)).
    ///
    /// # Errors
    ///
    /// `h = 0` or a level outside (0, 100).
    pub fn forecast(&self, h: usize, levels: &[f64]) -> Result<Forecast, ForecastError> {
        if h == 0 {
            return Err(ForecastError::InvalidParameter(
                "the horizon must be at least 1".into(),
            ));
        }
        if let Some(l) = levels.iter().find(|l| !(**l > 0.0 && **l < 100.0)) {
            return Err(ForecastError::InvalidParameter(format!(
                "interval levels are percentages in (0, 100), got {l}"
            )));
        }
        let t = self.transform;
        let timestamps = match (self.last_timestamp, self.frequency) {
            (Some(ts), Some(f)) => Some(f.future(ts, h)),
            _ => None,
        };
        let (mu, var) = match &self.inner {
            Fitted::Baseline(b) => b.forecast_moments(h),
            Fitted::Ets(e) => e.forecast_moments(h),
            Fitted::Arima(a) => a.forecast_moments(h),
            Fitted::Mstl(m) => m.forecast_moments(h),
            Fitted::External(e) => {
                // External models give their own intervals (a bootstrap, quantile heads): only
                // the transform is inverted here, which keeps their order.
                let f = e.model().forecast(h, levels)?;
                crate::external::check_forecast(&f, h, levels, e.name())?;
                let mean = f
                    .mean
                    .iter()
                    .zip(&f.std_dev)
                    .map(|(m, s)| {
                        if self.spec.bias_adjust {
                            t.mean(*m, s * s)
                        } else {
                            t.invert(*m)
                        }
                    })
                    .collect();
                let intervals = f
                    .intervals
                    .into_iter()
                    .map(|(level, lower, upper)| PredictionInterval {
                        level,
                        lower: lower.iter().map(|v| t.invert(*v)).collect(),
                        upper: upper.iter().map(|v| t.invert(*v)).collect(),
                    })
                    .collect();
                return Ok(Forecast {
                    timestamps,
                    mean,
                    std_dev: f.std_dev,
                    intervals,
                });
            }
        };
        let sd: Vec<f64> = var.iter().map(|v| v.max(0.0).sqrt()).collect();
        let mean = mu
            .iter()
            .zip(&var)
            .map(|(m, v)| {
                if self.spec.bias_adjust {
                    t.mean(*m, *v)
                } else {
                    t.invert(*m)
                }
            })
            .collect();
        let intervals = levels
            .iter()
            .map(|&level| {
                let z = interval_multiplier(level);
                PredictionInterval {
                    level,
                    lower: mu
                        .iter()
                        .zip(&sd)
                        .map(|(m, s)| t.invert(m - z * s))
                        .collect(),
                    upper: mu
                        .iter()
                        .zip(&sd)
                        .map(|(m, s)| t.invert(m + z * s))
                        .collect(),
                }
            })
            .collect();
        Ok(Forecast {
            timestamps,
            mean,
            std_dev: sd,
            intervals,
        })
    }

    /// Absorbs observations that follow the fitted data, keeping every estimated parameter fixed
    /// (ARIMA re-runs the Kalman filter from its stored state; ETS runs its recursions; the
    /// benchmarks move their data window).
    ///
    /// # Errors
    ///
    /// Non-finite values, or non-positive values under a log/Box–Cox transform.
    pub fn update(&mut self, new: &[f64]) -> Result<(), ForecastError> {
        crate::error::check_finite(new)?;
        let x = self.transform.apply(new)?;
        match &mut self.inner {
            Fitted::Baseline(b) => b.update(&x)?,
            Fitted::Ets(e) => e.update(&x)?,
            Fitted::Arima(a) => a.update(&x)?,
            Fitted::Mstl(m) => m.update(&x)?,
            Fitted::External(e) => e.update(&x)?,
        }
        self.n_obs += new.len();
        if let (Some(ts), Some(f)) = (self.last_timestamp, self.frequency)
            && let Some(last) = f.future(ts, new.len()).last()
        {
            self.last_timestamp = Some(*last);
        }
        Ok(())
    }

    /// The stored form: a JSON object with `format_version`, `kind`, the aurum version that wrote
    /// it, and the model (specification, transform, parameters, and the data window or filter
    /// state needed to forecast and update).
    ///
    /// # Errors
    ///
    /// [`ForecastError::FitFailed`] if serialisation fails (a non-finite parameter).
    pub fn to_json(&self) -> Result<String, ForecastError> {
        let artifact = ArtifactRef {
            format_version: FORMAT_VERSION,
            kind: ARTIFACT_KIND,
            aurum_version: aurum_core::AURUM_VERSION,
            model: self,
        };
        serde_json::to_string(&artifact)
            .map_err(|e| ForecastError::FitFailed(format!("cannot serialise the model: {e}")))
    }

    /// Loads an artifact written by [`FittedModel::to_json`].
    ///
    /// # Errors
    ///
    /// [`ForecastError::BadArtifact`] for invalid JSON, another kind of artifact, a format version
    /// this build does not read (newer or older: no migration exists yet), or a malformed model.
    pub fn from_json(json: &str) -> Result<Self, ForecastError> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| ForecastError::BadArtifact(format!("not JSON: {e}")))?;
        let kind = value.get("kind").and_then(serde_json::Value::as_str);
        if kind != Some(ARTIFACT_KIND) {
            return Err(ForecastError::BadArtifact(format!(
                "expected kind `{ARTIFACT_KIND}`, found {}",
                kind.map_or("none".to_string(), |k| format!("`{k}`"))
            )));
        }
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(FORMAT_VERSION)) {
            return Err(ForecastError::BadArtifact(format!(
                "format_version {} is not supported by this build (it reads version \
                 {FORMAT_VERSION})",
                version.map_or("missing".to_string(), |v| v.to_string())
            )));
        }
        let model = value
            .get("model")
            .cloned()
            .ok_or_else(|| ForecastError::BadArtifact("no `model` field".into()))?;
        serde_json::from_value(model)
            .map_err(|e| ForecastError::BadArtifact(format!("malformed model: {e}")))
    }
}

#[derive(Serialize)]
struct ArtifactRef<'a> {
    format_version: u32,
    kind: &'a str,
    aurum_version: &'a str,
    model: &'a FittedModel,
}
