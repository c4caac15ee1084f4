//! Hyndman–Khandakar auto-ARIMA on the standard examples.

use aurum_forecast::{
    ArimaMethod, ArimaOrder, ArimaSpec, AutoArimaSpec, auto_arima, first_diffs, fit_arima,
    seasonal_diffs,
};

use crate::common::{consumption, log_airline};

#[test]
fn log_airline_selects_the_airline_model_or_better() {
    let y = log_airline();
    assert_eq!(seasonal_diffs(&y, 12, 1), 1, "strong seasonality ⇒ D = 1");
    let result = auto_arima(
        &y,
        &AutoArimaSpec {
            period: 12,
            ..AutoArimaSpec::default()
        },
    )
    .expect("search succeeds");
    let best = &result.best;
    let airline = fit_arima(
        &y,
        &ArimaSpec {
            order: ArimaOrder::new(0, 1, 1).seasonal(0, 1, 1, 12),
            constant: false,
            method: ArimaMethod::CssMl,
        },
    )
    .expect("fits");
    assert_eq!(
        (best.order.d, best.order.seasonal_d),
        (1, 1),
        "{}",
        best.describe()
    );
    assert!(
        best.order == airline.order || best.aicc <= airline.aicc + 1e-9,
        "selected {} with AICc {} but the airline model has {}",
        best.describe(),
        best.aicc,
        airline.aicc
    );
    assert!(result.trace.len() <= 94);
    assert!(
        result
            .trace
            .iter()
            .any(|s| s.order == airline.order && !s.constant)
    );
}

#[test]
fn us_change_consumption_selects_a_model_at_least_as_good_as_fpp2() {
    let y = consumption();
    assert_eq!(first_diffs(&y, 2), 0, "quarterly % changes are stationary");
    let result = auto_arima(&y, &AutoArimaSpec::default()).expect("search succeeds");
    let fpp2 = fit_arima(
        &y,
        &ArimaSpec {
            order: ArimaOrder::new(1, 0, 3),
            constant: true,
            method: ArimaMethod::CssMl,
        },
    )
    .expect("fits");
    assert!(result.best.constant.is_some(), "{}", result.best.describe());
    assert!(
        result.best.aicc <= fpp2.aicc + 1e-9,
        "selected {} (AICc {}) but fpp2's ARIMA(1,0,3) with mean has {}",
        result.best.describe(),
        result.best.aicc,
        fpp2.aicc
    );
}

#[test]
fn random_walk_gets_one_difference() {
    // A deterministic pseudo-random walk (LCG increments).
    let mut state = 12345u64;
    let mut level = 0.0;
    let y: Vec<f64> = (0..200)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            level += ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
            level
        })
        .collect();
    assert_eq!(first_diffs(&y, 2), 1);
}
