//! Forecasters implemented outside this crate: the extension point for model families whose
//! training needs dependencies this crate must not have (the recurrent networks of `aurum-nn`
//! are trained with burn, which only that crate may name).
//!
//! Why a registry rather than a generic parameter: a stored [`crate::FittedModel`] is loaded by
//! [`crate::FittedModel::from_json`] with no context but the JSON, and the forecasting service,
//! the `forecast` model family, `auto` selection and backtests all reach models through model
//! names (`model = "lstm"`). A process registers each external forecaster once at start-up
//! ([`register`]); from then on the name works everywhere the built-in names do:
//!
//! * `model = "lstm"` fits it alone, `model = "lstm:hidden=16,lookback=24"` with options (the
//!   forecaster checks them and names the bad one);
//! * `model = "auto+lstm"` (or `auto+lstm+gru`) adds it to `auto`'s candidates: external
//!   candidates are opt-in, so `auto` alone keeps its statistical candidates and its cost;
//! * [`crate::backtest`] and [`crate::select_by_backtest`] take it as any [`crate::Pipeline`];
//! * its fitted state is stored inside the ordinary model artifact (`family: external`, the
//!   forecaster's name and its own JSON state) and loaded back through the registry.
//!
//! Invariants: a name is registered at most once (a second registration replaces the first); an
//! external model's forecast is on the pipeline's transformed scale and its intervals are nested
//! and ordered (`lower ≤ mean ≤ upper`); its state is plain JSON that reloads to a model giving
//! the same bits.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ForecastError;

/// A forecasting method defined outside this crate (see the module docs).
pub trait ExternalForecaster: Send + Sync {
    /// The name `model` spells it with (`lstm`): lower-case letters, digits and `_`.
    fn name(&self) -> &str;

    /// Checks options before any data is read.
    ///
    /// # Errors
    ///
    /// [`ForecastError::InvalidField`] naming the option (`model.hidden`).
    fn check(&self, options: &BTreeMap<String, String>) -> Result<(), ForecastError>;

    /// Fits the series `y` (oldest first, already under the pipeline's transform).
    ///
    /// # Errors
    ///
    /// Bad options, too short a series, cancellation ([`crate::check_cancelled`]) or a failed fit.
    fn fit(&self, y: &[f64], spec: &ExternalSpec) -> Result<Box<dyn ExternalModel>, ForecastError>;

    /// Rebuilds a fitted model from [`ExternalModel::state`].
    ///
    /// # Errors
    ///
    /// [`ForecastError::BadArtifact`] for a state this forecaster cannot read.
    fn load(&self, state: &serde_json::Value) -> Result<Box<dyn ExternalModel>, ForecastError>;
}

/// A fitted external model.
pub trait ExternalModel: Send + Sync + fmt::Debug {
    /// Forecasts `h ≥ 1` steps with intervals at `levels` (percent, each in (0, 100)), on the
    /// scale the model was fitted on.
    ///
    /// # Errors
    ///
    /// A failed forecast (the caller has checked `h` and `levels`).
    fn forecast(&self, h: usize, levels: &[f64]) -> Result<ExternalForecast, ForecastError>;

    /// Absorbs observations that follow the fitted data, parameters fixed.
    ///
    /// # Errors
    ///
    /// Values the model cannot take.
    fn update(&mut self, new: &[f64]) -> Result<(), ForecastError>;

    /// The stored form, reloaded by [`ExternalForecaster::load`].
    ///
    /// # Errors
    ///
    /// A state that cannot be written (a non-finite value).
    fn state(&self) -> Result<serde_json::Value, ForecastError>;

    /// A description for reports, such as `LSTM(32) on 24 lags`.
    fn describe(&self) -> String;

    /// A copy (models are shared behind `Arc`; `update` works on a copy).
    fn clone_model(&self) -> Box<dyn ExternalModel>;
}

/// What an external model forecasts.
#[derive(Clone, Debug, PartialEq)]
pub struct ExternalForecast {
    /// Point forecasts, one per step.
    pub mean: Vec<f64>,
    /// A standard deviation per step (for reports and bias adjustment).
    pub std_dev: Vec<f64>,
    /// `(level, lower, upper)` per requested level, in the order requested.
    pub intervals: Vec<(f64, Vec<f64>, Vec<f64>)>,
}

/// Which external forecaster to fit, with its options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExternalSpec {
    /// The registered name.
    pub name: String,
    /// The seasonal period of the series (1 when none); a forecaster may size itself by it.
    pub period: usize,
    /// Options, checked by the forecaster.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

type Registry = BTreeMap<String, Arc<dyn ExternalForecaster>>;

static REGISTRY: RwLock<Registry> = RwLock::new(BTreeMap::new());

fn read_registry<R>(f: impl FnOnce(&Registry) -> R) -> R {
    match REGISTRY.read() {
        Ok(r) => f(&r),
        // A panic while registering cannot leave the map half-written: use it as it is.
        Err(poisoned) => f(&poisoned.into_inner()),
    }
}

/// Registers `forecaster` under its name, replacing an earlier one of that name.
///
/// # Errors
///
/// [`ForecastError::InvalidParameter`] for a name that is empty, not `[a-z0-9_]`, or one of the
/// built-in model names.
pub fn register(forecaster: Arc<dyn ExternalForecaster>) -> Result<(), ForecastError> {
    let name = forecaster.name().to_string();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid || crate::spec::BUILT_IN_MODELS.contains(&name.as_str()) {
        return Err(ForecastError::InvalidParameter(format!(
            "cannot register an external forecaster named `{name}`: names are [a-z0-9_] and \
             not a built-in model"
        )));
    }
    let mut map = match REGISTRY.write() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.insert(name, forecaster);
    Ok(())
}

/// The forecaster registered as `name`.
pub fn registered(name: &str) -> Option<Arc<dyn ExternalForecaster>> {
    read_registry(|r| r.get(name).cloned())
}

/// The registered names, sorted.
pub fn registered_names() -> Vec<String> {
    read_registry(|r| r.keys().cloned().collect())
}

fn not_registered(name: &str) -> ForecastError {
    let known = registered_names();
    ForecastError::InvalidField {
        field: "model".into(),
        message: format!(
            "forecaster `{name}` is not registered in this process (registered: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ),
    }
}

/// `lstm` or `lstm:hidden=16,lookback=24` → the spec, checked by the registered forecaster.
pub(crate) fn parse_model(
    text: &str,
    period: usize,
) -> Option<Result<ExternalSpec, ForecastError>> {
    let (name, opts) = match text.split_once(':') {
        Some((n, o)) => (n.trim(), Some(o)),
        None => (text.trim(), None),
    };
    let forecaster = registered(name)?;
    let mut options = BTreeMap::new();
    for part in opts
        .unwrap_or("")
        .split(',')
        .filter(|p| !p.trim().is_empty())
    {
        let Some((k, v)) = part.split_once('=') else {
            return Some(Err(ForecastError::InvalidField {
                field: "model".into(),
                message: format!(
                    "model option `{part}` must be key=value (as in `{name}:hidden=16,lookback=24`)"
                ),
            }));
        };
        options.insert(k.trim().to_string(), v.trim().to_string());
    }
    Some(forecaster.check(&options).map(|()| ExternalSpec {
        name: name.to_string(),
        period,
        options,
    }))
}

/// The fitted state of an external model inside a [`crate::FittedModel`]: the forecaster's
/// name and the model, stored as `{"name": …, "state": …}`.
#[derive(Clone, Debug)]
pub struct ExternalFit {
    name: String,
    model: Arc<dyn ExternalModel>,
}

impl ExternalFit {
    pub(crate) fn fit(y: &[f64], spec: &ExternalSpec) -> Result<Self, ForecastError> {
        let forecaster = registered(&spec.name).ok_or_else(|| not_registered(&spec.name))?;
        forecaster.check(&spec.options)?;
        Ok(Self {
            name: spec.name.clone(),
            model: Arc::from(forecaster.fit(y, spec)?),
        })
    }

    /// The forecaster's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fitted model.
    pub fn model(&self) -> &dyn ExternalModel {
        self.model.as_ref()
    }

    pub(crate) fn update(&mut self, new: &[f64]) -> Result<(), ForecastError> {
        let mut m = self.model.clone_model();
        m.update(new)?;
        self.model = Arc::from(m);
        Ok(())
    }
}

impl PartialEq for ExternalFit {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && match (self.model.state(), other.model.state()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredExternal {
    name: String,
    state: serde_json::Value,
}

impl Serialize for ExternalFit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let state = self.model.state().map_err(serde::ser::Error::custom)?;
        StoredExternal {
            name: self.name.clone(),
            state,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ExternalFit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = StoredExternal::deserialize(d)?;
        let forecaster = registered(&stored.name)
            .ok_or_else(|| serde::de::Error::custom(not_registered(&stored.name)))?;
        let model = forecaster
            .load(&stored.state)
            .map_err(serde::de::Error::custom)?;
        Ok(Self {
            name: stored.name,
            model: Arc::from(model),
        })
    }
}

/// Checks an external forecast's shape: `h` steps, one interval per level, ordered bounds.
pub(crate) fn check_forecast(
    f: &ExternalForecast,
    h: usize,
    levels: &[f64],
    name: &str,
) -> Result<(), ForecastError> {
    let bad = |why: &str| ForecastError::FitFailed(format!("forecaster `{name}`: {why}"));
    if f.mean.len() != h || f.std_dev.len() != h || f.intervals.len() != levels.len() {
        return Err(bad("the forecast does not have the requested shape"));
    }
    for ((level, lower, upper), want) in f.intervals.iter().zip(levels) {
        if (level - want).abs() > 1e-9 || lower.len() != h || upper.len() != h {
            return Err(bad("an interval does not have the requested shape"));
        }
        if lower
            .iter()
            .zip(upper)
            .zip(&f.mean)
            .any(|((l, u), m)| !(l <= m && m <= u))
        {
            return Err(bad("an interval does not contain its point forecast"));
        }
    }
    if f.mean.iter().chain(&f.std_dev).any(|v| !v.is_finite()) {
        return Err(bad("the forecast is not finite"));
    }
    Ok(())
}
