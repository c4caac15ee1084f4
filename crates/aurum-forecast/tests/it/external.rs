//! The external-forecaster extension point, with a small forecaster defined here (a moving
//! mean whose intervals are the empirical quantiles of its one-step errors, widened by √h): it
//! is registered by name, then fitted, selected by `auto` when asked, backtested and stored like
//! the built-in models.

use std::collections::BTreeMap;
use std::sync::Arc;

use aurum_forecast::spec::{ForecastSpec, fit, pipelines};
use aurum_forecast::{
    BacktestConfig, ExternalForecast, ExternalForecaster, ExternalModel, ExternalSpec, FittedModel,
    ForecastError, Forecaster as _, backtest, register, registered_names,
};
use serde::{Deserialize, Serialize};

use crate::common::consumption;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct MeanModel {
    window: usize,
    recent: Vec<f64>,
    /// One-step errors, sorted.
    errors: Vec<f64>,
}

impl ExternalModel for MeanModel {
    fn forecast(&self, h: usize, levels: &[f64]) -> Result<ExternalForecast, ForecastError> {
        let m = self.recent.iter().sum::<f64>() / self.recent.len() as f64;
        let q = |p: f64| self.errors[((self.errors.len() - 1) as f64 * p).round() as usize];
        let grow = |k: usize| ((k + 1) as f64).sqrt();
        let sd = (self.errors.iter().map(|e| e * e).sum::<f64>() / self.errors.len() as f64).sqrt();
        Ok(ExternalForecast {
            mean: vec![m; h],
            std_dev: (0..h).map(|k| sd * grow(k)).collect(),
            intervals: levels
                .iter()
                .map(|&l| {
                    let a = (1.0 - l / 100.0) / 2.0;
                    (
                        l,
                        (0..h).map(|k| m + q(a).min(0.0) * grow(k)).collect(),
                        (0..h).map(|k| m + q(1.0 - a).max(0.0) * grow(k)).collect(),
                    )
                })
                .collect(),
        })
    }

    fn update(&mut self, new: &[f64]) -> Result<(), ForecastError> {
        self.recent.extend_from_slice(new);
        let cut = self.recent.len() - self.window;
        self.recent.drain(..cut);
        Ok(())
    }

    fn state(&self) -> Result<serde_json::Value, ForecastError> {
        serde_json::to_value(self).map_err(|e| ForecastError::FitFailed(e.to_string()))
    }

    fn describe(&self) -> String {
        format!("MEAN[{}] (external)", self.window)
    }

    fn clone_model(&self) -> Box<dyn ExternalModel> {
        Box::new(self.clone())
    }
}

struct MeanForecaster;

fn window_of(options: &BTreeMap<String, String>) -> Result<usize, ForecastError> {
    match options.get("window").map(|w| w.parse::<usize>()) {
        None => Ok(4),
        Some(Ok(w)) if w >= 1 => Ok(w),
        Some(_) => Err(ForecastError::InvalidField {
            field: "model.window".into(),
            message: "window must be an integer of at least 1".into(),
        }),
    }
}

impl ExternalForecaster for MeanForecaster {
    fn name(&self) -> &str {
        "test_mean"
    }

    fn check(&self, options: &BTreeMap<String, String>) -> Result<(), ForecastError> {
        window_of(options).map(|_| ())
    }

    fn fit(&self, y: &[f64], spec: &ExternalSpec) -> Result<Box<dyn ExternalModel>, ForecastError> {
        let window = window_of(&spec.options)?;
        if y.len() < window + 2 {
            return Err(ForecastError::TooFewPoints {
                what: "test_mean".into(),
                needed: window + 2,
                got: y.len(),
            });
        }
        let mut errors: Vec<f64> = (window..y.len())
            .map(|t| y[t] - y[t - window..t].iter().sum::<f64>() / window as f64)
            .collect();
        errors.sort_by(f64::total_cmp);
        Ok(Box::new(MeanModel {
            window,
            recent: y[y.len() - window..].to_vec(),
            errors,
        }))
    }

    fn load(&self, state: &serde_json::Value) -> Result<Box<dyn ExternalModel>, ForecastError> {
        serde_json::from_value::<MeanModel>(state.clone())
            .map(|m| Box::new(m) as Box<dyn ExternalModel>)
            .map_err(|e| ForecastError::BadArtifact(e.to_string()))
    }
}

fn spec(model: &str) -> ForecastSpec {
    ForecastSpec {
        model: model.into(),
        horizon: 4,
        ..ForecastSpec::default()
    }
}

#[test]
fn a_registered_forecaster_is_fitted_selected_backtested_and_stored() {
    // Before registration the name is unknown, and `auto+` says what is registered.
    let e = pipelines(&spec("auto+test_mean"), &[4]).unwrap_err();
    assert!(
        matches!(&e, ForecastError::InvalidField { field, .. } if field == "model"),
        "{e}"
    );
    register(Arc::new(MeanForecaster)).unwrap();
    assert!(registered_names().contains(&"test_mean".to_string()));
    // Built-in names cannot be taken.
    struct Impostor;
    impl ExternalForecaster for Impostor {
        fn name(&self) -> &str {
            "ets"
        }
        fn check(&self, _: &BTreeMap<String, String>) -> Result<(), ForecastError> {
            Ok(())
        }
        fn fit(
            &self,
            _: &[f64],
            _: &ExternalSpec,
        ) -> Result<Box<dyn ExternalModel>, ForecastError> {
            Err(ForecastError::FitFailed("never".into()))
        }
        fn load(&self, _: &serde_json::Value) -> Result<Box<dyn ExternalModel>, ForecastError> {
            Err(ForecastError::FitFailed("never".into()))
        }
    }
    assert!(register(Arc::new(Impostor)).is_err());

    // Options are checked by the forecaster and name the option.
    let e = pipelines(&spec("test_mean:window=0"), &[4]).unwrap_err();
    assert!(
        matches!(&e, ForecastError::InvalidField { field, .. } if field == "model.window"),
        "{e}"
    );

    let y = consumption();
    let one = pipelines(&spec("test_mean:window=8"), &[4])
        .unwrap()
        .remove(0);
    assert_eq!(one.name(), "test_mean");
    let fitted = one.fit(&y).unwrap();
    assert_eq!(fitted.describe(), "MEAN[8] (external)");
    let f = fitted.forecast(4, &[80.0, 95.0]).unwrap();
    let expected = y[y.len() - 8..].iter().sum::<f64>() / 8.0;
    assert!(f.mean.iter().all(|m| (m - expected).abs() < 1e-12));
    let w95 = |k: usize| f.intervals[1].upper[k] - f.intervals[1].lower[k];
    assert!(w95(3) > w95(0));

    // Stored and loaded through the ordinary artifact; updates work on the loaded copy.
    let json = fitted.to_json().unwrap();
    assert!(json.contains("\"family\":\"external\""), "{json}");
    let mut back = FittedModel::from_json(&json).unwrap();
    assert_eq!(back, fitted);
    back.update(&[10.0]).unwrap();
    assert_ne!(back.forecast(1, &[]).unwrap().mean, f.mean[..1]);

    // A backtest through the ordinary path reports coverage of the external intervals.
    let cfg = BacktestConfig {
        horizon: 4,
        step: 4,
        windows: 8,
        levels: vec![80.0],
        season_period: 4,
    };
    let r = backtest(&y, &one, "test_mean", &cfg).unwrap();
    assert_eq!(r.metrics.n, 32);
    assert!(r.metrics.coverage[0].1 > 0.5, "{:?}", r.metrics.coverage);

    // `auto` takes it only when asked.
    let plain: Vec<String> = pipelines(&spec("auto"), &[4])
        .unwrap()
        .iter()
        .map(|p| p.name())
        .collect();
    assert!(!plain.contains(&"test_mean".to_string()));
    let (_, candidates) = fit(&spec("auto+test_mean"), &y, &[4]).unwrap();
    assert_eq!(candidates.len(), plain.len() + 1);
    let (name, mase) = candidates.last().unwrap();
    assert_eq!(name, "test_mean");
    assert!(mase.is_some_and(f64::is_finite));
}
