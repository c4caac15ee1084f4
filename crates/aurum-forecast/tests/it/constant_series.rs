//! Degenerate inputs: constant and near-constant series forecast their constant with every model
//! name `model` accepts (zero residual variance must not break the likelihoods, the auto-ARIMA
//! search or `auto`'s MASE), and values too large to fit without overflow are named as such.

use aurum_forecast::spec::{ForecastSpec, fit};
use aurum_forecast::{
    ArimaMethod, ArimaOrder, ArimaSpec, AutoArimaSpec, EtsSpec, ForecastError, Forecaster as _,
    ModelSpec, auto_arima, fit_arima, fit_ets,
};

use crate::common::airline;

/// Every model name with the options it needs, for a series with seasonal periods `periods`.
fn specs(periods: &[usize]) -> Vec<ForecastSpec> {
    let seasonal = periods.iter().any(|p| *p > 1);
    let mut names = vec![
        "auto",
        "auto_arima",
        "arima",
        "ets",
        "naive",
        "seasonal_naive",
        "drift",
        "mean",
        "moving_average",
    ];
    if seasonal {
        names.extend(["mstl", "mstl_arima"]);
    }
    let mut out: Vec<ForecastSpec> = names
        .into_iter()
        .map(|name| ForecastSpec {
            model: name.into(),
            horizon: 12,
            order: (name == "arima").then_some([0, 0, 0]),
            window: (name == "moving_average").then_some(3),
            season_periods: periods.to_vec(),
            ..ForecastSpec::default()
        })
        .collect();
    // Fixed orders with differences, and a seasonal one, on the same data.
    for (order, seasonal_order) in [
        ([1, 1, 1], None),
        ([0, 1, 0], None),
        ([1, 0, 1], None),
        (
            [0, 0, 1],
            periods.first().filter(|p| **p > 1).map(|p| [0, 1, 1, *p]),
        ),
    ] {
        out.push(ForecastSpec {
            model: "arima".into(),
            horizon: 12,
            order: Some(order),
            seasonal_order,
            season_periods: periods.to_vec(),
            ..ForecastSpec::default()
        });
    }
    out
}

fn describe(spec: &ForecastSpec) -> String {
    format!(
        "model {} order {:?} seasonal {:?} periods {:?}",
        spec.model, spec.order, spec.seasonal_order, spec.season_periods
    )
}

/// Fits every model on `y` and checks each forecasts `level` within `tol`, with intervals no
/// wider than `width`.
fn assert_forecasts_constant(y: &[f64], periods: &[usize], level: f64, tol: f64, width: f64) {
    for spec in specs(periods) {
        let what = describe(&spec);
        let (model, _) =
            fit(&spec, y, periods).unwrap_or_else(|e| panic!("{what}: {e} ({})", e.code()));
        let f = model
            .forecast(spec.horizon, &spec.levels)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let described = model.describe();
        for (h, m) in f.mean.iter().enumerate() {
            assert!(
                (m - level).abs() <= tol,
                "{what} ({described}): step {h} forecasts {m}, not {level}"
            );
        }
        for iv in &f.intervals {
            for (lo, hi) in iv.lower.iter().zip(&iv.upper) {
                assert!(
                    lo.is_finite() && hi.is_finite() && *lo <= level + tol && *hi >= level - tol,
                    "{what} ({described}): {}% interval [{lo}, {hi}] misses {level}",
                    iv.level
                );
                assert!(
                    hi - lo <= width,
                    "{what} ({described}): {}% interval [{lo}, {hi}] wider than {width}",
                    iv.level
                );
            }
        }
        // The stored form round-trips (no non-finite statistic in the artifact).
        let json = model.to_json().unwrap_or_else(|e| panic!("{what}: {e}"));
        aurum_forecast::FittedModel::from_json(&json).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}

#[test]
fn constant_series_forecast_their_constant_with_every_model() {
    for level in [5.0, 0.0, -3.25] {
        let y = vec![level; 40];
        assert_forecasts_constant(&y, &[1], level, 1e-9, 1e-6);
        assert_forecasts_constant(&y, &[4], level, 1e-9, 1e-6);
    }
}

#[test]
fn constant_airline_shaped_series_forecast_their_constant_with_every_model() {
    let y = vec![5.0; airline().len()];
    assert_forecasts_constant(&y, &[12], 5.0, 1e-9, 1e-6);
}

#[test]
fn near_constant_series_forecast_close_to_their_level() {
    // One tiny change: the in-sample naive error is zero on some backtest windows only.
    let mut y = vec![5.0; airline().len()];
    y[100] = 5.000_001;
    assert_forecasts_constant(&y, &[12], 5.0, 1e-5, 1e-3);
    let mut y = vec![5.0; 40];
    y[7] = 5.0 + 1e-9;
    assert_forecasts_constant(&y, &[1], 5.0, 1e-7, 1e-5);
}

#[test]
fn auto_arima_on_a_constant_series_fits_its_mean_with_zero_variance() {
    let y = vec![5.0; 40];
    let fit = auto_arima(&y, &AutoArimaSpec::default())
        .expect("fits")
        .best;
    assert_eq!(fit.order, ArimaOrder::new(0, 0, 0));
    assert_eq!(fit.constant, Some(5.0));
    assert_eq!(fit.sigma2, 0.0);
    assert!(fit.aicc.is_finite() && fit.loglik.is_finite(), "{fit:?}");

    let zeros = vec![0.0; 40];
    let fit = auto_arima(&zeros, &AutoArimaSpec::default())
        .expect("fits")
        .best;
    assert_eq!(fit.sigma2, 0.0);
    assert_eq!(fit.constant.unwrap_or(0.0), 0.0);
}

#[test]
fn fixed_order_arima_fits_a_constant_series_exactly() {
    let y = vec![5.0; 40];
    for (order, constant) in [
        (ArimaOrder::new(0, 0, 0), true),
        (ArimaOrder::new(2, 0, 1), true),
        (ArimaOrder::new(0, 1, 1), false),
        (ArimaOrder::new(1, 1, 0), true),
        (ArimaOrder::new(0, 1, 1).seasonal(0, 1, 1, 4), false),
    ] {
        for method in [ArimaMethod::CssMl, ArimaMethod::Ml, ArimaMethod::Css] {
            let spec = ArimaSpec {
                order,
                constant,
                method,
            };
            let fit = fit_arima(&y, &spec).unwrap_or_else(|e| panic!("{order} {method:?}: {e}"));
            assert_eq!(fit.sigma2, 0.0, "{order} {method:?}");
            assert!(fit.aicc.is_finite(), "{order} {method:?}: {fit:?}");
            let model = ModelSpec::Arima(spec).fit(&y).expect("fits");
            let f = model.forecast(6, &[95.0]).expect("forecasts");
            assert!(f.mean.iter().all(|m| (m - 5.0).abs() < 1e-12), "{f:?}");
            assert!(f.std_dev.iter().all(|s| *s == 0.0), "{f:?}");
        }
    }
}

#[test]
fn values_too_large_to_fit_are_named_as_such() {
    let y: Vec<f64> = airline().iter().map(|v| v * 1e200).collect();
    let too_large = |e: &ForecastError| {
        matches!(e, ForecastError::ValueTooLarge { index: 0, .. })
            && e.is_user_error()
            && e.code() == "forecast_value_too_large"
    };
    let e = fit_ets(&y, &EtsSpec::auto(12)).expect_err("overflows");
    assert!(too_large(&e), "{e:?}");
    assert!(e.to_string().contains("too large"), "{e}");
    for name in ["ets", "auto", "auto_arima", "naive", "mean"] {
        let spec = ForecastSpec {
            model: name.into(),
            ..ForecastSpec::default()
        };
        let e = fit(&spec, &y, &[12]).expect_err("overflows");
        assert!(too_large(&e), "{name}: {e:?}");
    }
    let e = auto_arima(&y, &AutoArimaSpec::default()).expect_err("overflows");
    assert!(too_large(&e), "{e:?}");
    // On the log scale the same data is ordinary: the check applies to what the model sees.
    let spec = ForecastSpec {
        model: "ets".into(),
        transform: "log".into(),
        ..ForecastSpec::default()
    };
    let (model, _) = fit(&spec, &y, &[12]).expect("log scale fits");
    let f = model.forecast(12, &[95.0]).expect("forecasts");
    assert!(f.mean.iter().all(|m| m.is_finite() && *m > 1e201), "{f:?}");
}

/// Small movements on a large level are data: a counter near 1e12 rising by about 2 a step once
/// passed the "constant to rounding" test (a tolerance of 1e-10 of the level is 100 here) and was
/// fitted as a flat ARIMA(0,0,0).
#[test]
fn a_small_trend_on_a_large_level_is_data_not_a_constant() {
    let y: Vec<f64> = (0..40)
        .map(|t| 1e12 + 2.0 * t as f64 + [-1.0, 0.0, 1.0][t % 3])
        .collect();
    let fit = auto_arima(&y, &AutoArimaSpec::default())
        .expect("fits")
        .best;
    assert_ne!(fit.order, ArimaOrder::new(0, 0, 0), "{fit:?}");
    assert!(fit.sigma2 > 0.0, "{fit:?}");
}
