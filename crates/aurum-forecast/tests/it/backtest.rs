//! Accuracy metrics and rolling-origin backtests against hand-computed cases.

use aurum_forecast::{
    BacktestConfig, ModelSpec, Pipeline, Score, accuracy, backtest, mase_scale, select_by_backtest,
};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn metric_formulas() {
    let actual = [10.0, 20.0, 30.0];
    let predicted = [12.0, 18.0, 33.0];
    let scales = [2.0, 2.0, 4.0];
    let bounds = vec![(80.0, vec![(11.0, 13.0), (15.0, 19.0), (25.0, 35.0)])];
    let m = accuracy(&actual, &predicted, &scales, &bounds);
    assert_eq!(m.n, 3);
    assert!(close(m.mae, 7.0 / 3.0));
    assert!(close(m.rmse, (17.0f64 / 3.0).sqrt()));
    assert!(close(m.mape.expect("no zeros"), 40.0 / 3.0));
    let smape = 200.0 / 3.0 * (2.0 / 22.0 + 2.0 / 38.0 + 3.0 / 63.0);
    assert!(close(m.smape.expect("defined"), smape));
    assert!(close(m.mase.expect("positive scales"), 2.75 / 3.0));
    assert_eq!(m.coverage.len(), 1);
    assert!(close(m.coverage[0].1, 1.0 / 3.0));

    // A zero actual makes MAPE undefined; a zero scale makes MASE undefined.
    let m = accuracy(&[0.0, 1.0], &[0.0, 2.0], &[0.0, 1.0], &[]);
    assert_eq!(m.mape, None);
    assert_eq!(m.mase, None);
    assert!(close(m.smape.expect("defined"), 100.0 * (0.0 + 1.0 / 3.0)));
}

#[test]
fn mase_scale_is_in_sample_seasonal_naive_mae() {
    assert!(close(
        mase_scale(&[1.0, 3.0, 2.0, 5.0], 1).expect("long enough"),
        2.0
    ));
    assert!(close(
        mase_scale(&[1.0, 3.0, 2.0, 5.0], 2).expect("long enough"),
        1.5
    ));
    assert_eq!(mase_scale(&[1.0, 3.0], 2), None);
}

#[test]
fn rolling_origin_naive_on_a_line() {
    let y: Vec<f64> = (1..=10).map(f64::from).collect();
    let cfg = BacktestConfig {
        horizon: 2,
        step: 1,
        windows: 3,
        levels: vec![80.0, 95.0],
        season_period: 1,
    };
    let report = backtest(&y, &ModelSpec::Naive, "naive", &cfg).expect("runs");
    let origins: Vec<usize> = report.windows.iter().map(|w| w.origin).collect();
    assert_eq!(origins, [6, 7, 8]);
    assert_eq!(report.windows[0].actual, [7.0, 8.0]);
    assert_eq!(report.windows[0].forecast.mean, [6.0, 6.0]);
    let m = &report.metrics;
    assert_eq!(m.n, 6);
    assert!(close(m.mae, 1.5));
    assert!(close(m.rmse, 2.5f64.sqrt()));
    assert!(close(m.mase.expect("scale 1"), 1.5));
    let mape = 100.0 / 6.0 * (1.0 / 7.0 + 2.0 / 8.0 + 1.0 / 8.0 + 2.0 / 9.0 + 1.0 / 9.0 + 0.2);
    assert!(close(m.mape.expect("no zeros"), mape));
    // σ = 1: |e| = 1 at h = 1 is inside both intervals; |e| = 2 at h = 2 is outside the 80 %
    // interval (1.28·√2 = 1.81) and inside the 95 % one (1.96·√2 = 2.77).
    assert_eq!(m.coverage, vec![(80.0, 0.5), (95.0, 1.0)]);
}

#[test]
fn selection_picks_the_lowest_score() {
    let y: Vec<f64> = (1..=30)
        .map(|t| 2.0 * f64::from(t) + f64::from(t % 3))
        .collect();
    let candidates: Vec<Pipeline> = vec![
        ModelSpec::Naive.into(),
        ModelSpec::Drift.into(),
        ModelSpec::SeasonalNaive { period: 40 }.into(),
    ];
    let cfg = BacktestConfig {
        horizon: 3,
        step: 2,
        windows: 4,
        ..BacktestConfig::default()
    };
    let sel = select_by_backtest(&y, &candidates, &cfg, Score::Mase).expect("selects");
    assert_eq!(sel.best, 1, "drift follows the trend");
    assert!(
        sel.reports[2].is_err(),
        "a 40-period seasonal naive cannot fit 20 points"
    );
    let naive = sel.reports[0].as_ref().expect("naive ran");
    let drift = sel.reports[1].as_ref().expect("drift ran");
    assert!(drift.metrics.mase < naive.metrics.mase);
}

#[test]
fn selection_falls_back_to_mae_when_mase_is_undefined() {
    // Constant training windows have no in-sample naive error: MASE is undefined for every
    // candidate alike, and MAE decides (the perfect fits tie; the earlier one wins).
    let mut y = vec![5.0; 30];
    y[29] = 6.0;
    let candidates: Vec<Pipeline> = vec![
        ModelSpec::Mean.into(),
        ModelSpec::Naive.into(),
        ModelSpec::Drift.into(),
    ];
    let cfg = BacktestConfig {
        horizon: 2,
        step: 2,
        windows: 3,
        ..BacktestConfig::default()
    };
    let sel = select_by_backtest(&y, &candidates, &cfg, Score::Mase).expect("selects");
    assert_eq!(sel.score, Score::Mae);
    for r in &sel.reports {
        let r = r.as_ref().expect("ran");
        assert_eq!(r.metrics.mase, None, "{}", r.model);
        assert!(r.metrics.mae.is_finite(), "{}", r.model);
    }
    let mae = |i: usize| sel.reports[i].as_ref().expect("ran").metrics.mae;
    assert!((0..3).all(|i| mae(sel.best) <= mae(i)));

    // Where MASE is defined it is still the score.
    let y: Vec<f64> = (1..=30).map(|t| f64::from(t % 7)).collect();
    let sel = select_by_backtest(&y, &candidates, &cfg, Score::Mase).expect("selects");
    assert_eq!(sel.score, Score::Mase);
}

#[test]
fn backtest_rejects_impossible_configurations() {
    let y = [1.0, 2.0, 3.0, 4.0];
    let cfg = BacktestConfig {
        horizon: 3,
        windows: 2,
        ..BacktestConfig::default()
    };
    let err = backtest(&y, &ModelSpec::Naive, "naive", &cfg).expect_err("too short");
    assert_eq!(
        err.to_string(),
        "a backtest with 2 windows of horizon 3 and step 1 needs at least 6 observations, the \
         series has 4"
    );
}
