//! Benchmark methods against hand-computed forecasts and fpp3 §5.5 intervals on
//! y = 1, 3, 2, 5, 4, 6 (T = 6).

use aurum_forecast::{Forecast, ForecastError, Forecaster, ModelSpec};

const Y: [f64; 6] = [1.0, 3.0, 2.0, 5.0, 4.0, 6.0];
const Z80: f64 = 1.281_551_565_544_600_4;
const Z95: f64 = 1.959_963_984_540_054;

fn forecast(spec: ModelSpec, h: usize) -> Forecast {
    spec.fit(&Y)
        .expect("fits")
        .forecast(h, &[80.0, 95.0])
        .expect("forecasts")
}

/// Checks means and variances, and that the intervals are mean ± z·sd.
fn check(fc: &Forecast, means: &[f64], variances: &[f64]) {
    for i in 0..means.len() {
        let sd = variances[i].sqrt();
        assert!(
            (fc.mean[i] - means[i]).abs() < 1e-12,
            "mean[{i}] = {}",
            fc.mean[i]
        );
        assert!(
            (fc.std_dev[i] - sd).abs() < 1e-12,
            "sd[{i}] = {} vs {sd}",
            fc.std_dev[i]
        );
        for (level, z) in [(80.0, Z80), (95.0, Z95)] {
            let Some(iv) = fc.interval(level) else {
                continue;
            };
            assert!((iv.lower[i] - (means[i] - z * sd)).abs() < 1e-12);
            assert!((iv.upper[i] - (means[i] + z * sd)).abs() < 1e-12);
        }
    }
}

#[test]
fn naive_sigma_sqrt_h() {
    // residuals 2, −1, 3, −1, 2: σ² = 19 / 5
    let s2 = 19.0 / 5.0;
    check(
        &forecast(ModelSpec::Naive, 3),
        &[6.0; 3],
        &[s2, 2.0 * s2, 3.0 * s2],
    );
}

#[test]
fn mean_sigma_sqrt_one_plus_one_over_t() {
    // mean 3.5, Σ(y − ȳ)² = 17.5, σ² = 17.5 / 5
    let v = 17.5 / 5.0 * (1.0 + 1.0 / 6.0);
    check(&forecast(ModelSpec::Mean, 2), &[3.5, 3.5], &[v, v]);
}

#[test]
fn drift_sigma_sqrt_h_one_plus_h_over_t_minus_one() {
    // slope (6 − 1)/5 = 1; residuals 1, −2, 2, −2, 1: σ² = 14 / (5 − 1)
    let s2 = 14.0 / 4.0;
    let var = |h: f64| s2 * h * (1.0 + h / 5.0);
    check(
        &forecast(ModelSpec::Drift, 3),
        &[7.0, 8.0, 9.0],
        &[var(1.0), var(2.0), var(3.0)],
    );
}

#[test]
fn seasonal_naive_sigma_sqrt_k_plus_one() {
    // m = 2; residuals 1, 2, 2, 1: σ² = 10 / 4; k = ⌊(h − 1)/2⌋
    let s2 = 10.0 / 4.0;
    check(
        &forecast(ModelSpec::SeasonalNaive { period: 2 }, 5),
        &[4.0, 6.0, 4.0, 6.0, 4.0],
        &[s2, s2, 2.0 * s2, 2.0 * s2, 3.0 * s2],
    );
}

#[test]
fn moving_average_is_the_mean_method_on_the_window() {
    // window 5, 4, 6: mean 5, sample variance 1; variance 1 · (1 + 1/3)
    check(
        &forecast(ModelSpec::MovingAverage { window: 3 }, 2),
        &[5.0, 5.0],
        &[4.0 / 3.0, 4.0 / 3.0],
    );
}

#[test]
fn update_moves_the_window_and_keeps_sigma() {
    let mut naive = ModelSpec::Naive.fit(&Y).expect("fits");
    naive.update(&[7.0, 8.0]).expect("updates");
    check(
        &naive.forecast(1, &[95.0]).expect("fc"),
        &[8.0],
        &[19.0 / 5.0],
    );

    let mut ma = ModelSpec::MovingAverage { window: 3 }
        .fit(&Y)
        .expect("fits");
    ma.update(&[9.0]).expect("updates");
    // window 4, 6, 9: mean 19/3, sample variance ((−7/3)² + (−1/3)² + (8/3)²)/2 = 19/3
    let fc = ma.forecast(1, &[95.0]).expect("fc");
    assert!((fc.mean[0] - 19.0 / 3.0).abs() < 1e-12);
    assert!((fc.std_dev[0].powi(2) - 19.0 / 3.0 * (4.0 / 3.0)).abs() < 1e-12);

    let mut sn = ModelSpec::SeasonalNaive { period: 2 }
        .fit(&Y)
        .expect("fits");
    sn.update(&[10.0]).expect("updates");
    assert_eq!(sn.forecast(2, &[]).expect("fc").mean, vec![6.0, 10.0]);
}

#[test]
fn too_short_and_invalid_inputs_are_errors() {
    let err = ModelSpec::SeasonalNaive { period: 12 }
        .fit(&Y)
        .expect_err("too short");
    assert_eq!(
        err,
        ForecastError::TooFewPoints {
            what: "seasonal naive with period 12".into(),
            needed: 13,
            got: 6
        }
    );
    assert_eq!(
        err.to_string(),
        "seasonal naive with period 12 needs at least 13 observations, the series has 6"
    );
    assert!(matches!(
        ModelSpec::MovingAverage { window: 0 }.fit(&Y),
        Err(ForecastError::InvalidParameter(_))
    ));
    let err = ModelSpec::Naive
        .fit(&[1.0, f64::NAN, 2.0])
        .expect_err("NaN");
    assert_eq!(
        err.to_string(),
        "value 1 of the series is NaN; models need finite values"
    );
    let fitted = ModelSpec::Naive.fit(&Y).expect("fits");
    assert!(matches!(
        fitted.forecast(3, &[100.0]),
        Err(ForecastError::InvalidParameter(_))
    ));
    assert!(fitted.forecast(0, &[95.0]).is_err());
}
