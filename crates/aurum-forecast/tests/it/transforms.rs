//! Box–Cox / log transforms around models, Guerrero's λ, returns, and STL / MSTL.

use aurum_forecast::{
    ArimaMethod, ArimaOrder, ArimaSpec, Forecaster, ModelSpec, Pipeline, ReturnKind, StlOptions,
    Transform, guerrero, mstl, returns, stl,
};

use crate::common::{airline, fixture, fvec};

#[test]
fn guerrero_lambda_for_air_passengers_matches_r() {
    // R: forecast::BoxCox.lambda(AirPassengers) = -0.2947156 (optimize's tolerance ≈ 1e-4).
    let lambda = guerrero(&airline(), 12).expect("positive data");
    assert!((lambda + 0.2947).abs() < 2e-3, "λ = {lambda}");
}

#[test]
fn log_transform_back_transforms_arima_intervals() {
    let fx = fixture("arima_airline_log.json");
    let pipeline = Pipeline {
        model: ModelSpec::Arima(ArimaSpec {
            order: ArimaOrder::new(0, 1, 1).seasonal(0, 1, 1, 12),
            constant: false,
            method: ArimaMethod::CssMl,
        }),
        transform: Transform::Log,
        bias_adjust: false,
    };
    let model = pipeline.fit(&airline()).expect("fits");
    assert_eq!(model.describe(), "ARIMA(0,1,1)(0,1,1)[12] on log");
    let fc = model.forecast(12, &[95.0]).expect("forecasts");
    let want_mean = fvec(&fx["forecast"]["mean"]);
    let want_lo = fvec(&fx["forecast"]["intervals"]["95"]["lower"]);
    let want_hi = fvec(&fx["forecast"]["intervals"]["95"]["upper"]);
    for i in 0..12 {
        // Median forecast = exp(log-scale mean); bounds = exp(log-scale bounds).
        assert!((fc.mean[i] / want_mean[i].exp() - 1.0).abs() < 1e-3);
        let iv = &fc.intervals[0];
        assert!((iv.lower[i] / want_lo[i].exp() - 1.0).abs() < 1e-3);
        assert!((iv.upper[i] / want_hi[i].exp() - 1.0).abs() < 1e-3);
    }
    let adjusted = Pipeline {
        bias_adjust: true,
        ..pipeline
    }
    .fit(&airline())
    .expect("fits")
    .forecast(12, &[95.0])
    .expect("forecasts");
    for i in 0..12 {
        let sd = fc.std_dev[i];
        let want = fc.mean[i] * (1.0 + sd * sd / 2.0);
        assert!(
            (adjusted.mean[i] - want).abs() < 1e-9 * want,
            "mean = median · (1 + σ²/2)"
        );
    }
}

#[test]
fn box_cox_with_guerrero_lambda_round_trips() {
    let model = Pipeline {
        model: ModelSpec::SeasonalNaive { period: 12 },
        transform: Transform::BoxCox { lambda: None },
        bias_adjust: false,
    }
    .fit(&airline())
    .expect("fits");
    let lambda = model.transform.lambda.expect("resolved");
    assert!((lambda + 0.2947).abs() < 2e-3);
    // Seasonal naive's point forecast survives the round trip exactly (up to rounding).
    let fc = model.forecast(12, &[80.0]).expect("forecasts");
    let y = airline();
    for i in 0..12 {
        assert!((fc.mean[i] - y[132 + i]).abs() < 1e-9 * y[132 + i]);
        assert!(fc.intervals[0].lower[i] < fc.mean[i] && fc.mean[i] < fc.intervals[0].upper[i]);
    }
    let err = Pipeline {
        model: ModelSpec::Naive,
        transform: Transform::Log,
        bias_adjust: false,
    }
    .fit(&[1.0, -2.0, 3.0])
    .expect_err("log of a negative");
    assert_eq!(
        err.to_string(),
        "invalid parameter: log and Box–Cox transforms need positive values; value 1 is -2"
    );
}

#[test]
fn log_returns_of_msft_close() {
    let close = {
        let bytes = crate::common::data("msft_daily.csv");
        aurum_forecast::read_csv(
            &bytes,
            &aurum_forecast::CsvOptions {
                value_columns: vec!["Close".into()],
                fill: aurum_forecast::FillPolicy::Drop,
                ..Default::default()
            },
        )
        .expect("parses")
        .remove(0)
        .series
        .values
    };
    let r = returns(&close, ReturnKind::Log).expect("positive prices");
    assert_eq!(r.len(), close.len() - 1);
    let total: f64 = r.iter().sum();
    assert!((total - (close[close.len() - 1] / close[0]).ln()).abs() < 1e-9);
}

#[test]
fn stl_decomposes_log_airline() {
    let y: Vec<f64> = airline().iter().map(|v| v.ln()).collect();
    let d = stl(&y, 12, &StlOptions::default()).expect("decomposes");
    for (i, v) in y.iter().enumerate() {
        let sum = d.trend[i] + d.seasonal[0][i] + d.remainder[i];
        assert!((sum - v).abs() < 1e-5, "components add up");
    }
    assert!(d.seasonal_strength[0] > 0.9, "{}", d.seasonal_strength[0]);
    assert!(d.trend_strength > 0.9, "{}", d.trend_strength);
    let err = stl(&y[..20], 12, &StlOptions::default()).expect_err("too short");
    assert_eq!(
        err.to_string(),
        "STL with period 12 needs at least 24 observations, the series has 20"
    );

    // MSTL with two periods on an hourly-like synthetic series.
    let x: Vec<f64> = (0..24 * 14)
        .map(|t| {
            let t = f64::from(t);
            10.0 + 0.01 * t
                + (2.0 * std::f64::consts::PI * t / 24.0).sin()
                + 0.5 * (2.0 * std::f64::consts::PI * t / 168.0).cos()
        })
        .collect();
    let d = mstl(&x, &[168, 24], &StlOptions::default()).expect("decomposes");
    assert_eq!(d.periods, [24, 168]);
    assert_eq!(d.seasonal.len(), 2);
    assert!(
        d.seasonal_strength.iter().all(|s| *s > 0.8),
        "{:?}",
        d.seasonal_strength
    );
}
