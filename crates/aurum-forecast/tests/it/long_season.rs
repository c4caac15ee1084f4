//! `auto` on an intraday series with long seasonal periods (half-hours: 48 a day, 336 a week)
//! takes the MSTL-based candidate list, finishes, and reports every candidate's backtest.

use std::time::Instant;

use aurum_forecast::spec::{ForecastSpec, MAX_DIRECT_SEASON, fit, pipelines};

use crate::common::series;

#[test]
fn auto_on_half_hourly_demand_uses_the_mstl_candidates() {
    // Five weeks of half-hourly demand: two full weekly seasons before the first inner origin.
    let y = series("taylor_halfhourly.csv", "demand_mw").values[..1680].to_vec();
    let spec = ForecastSpec {
        horizon: 48,
        ..ForecastSpec::default()
    };
    let periods = [48, 336];
    assert!(periods[0] > MAX_DIRECT_SEASON);
    let names: Vec<String> = pipelines(&spec, &periods)
        .expect("candidates")
        .iter()
        .map(|p| p.name())
        .collect();
    assert_eq!(
        names,
        ["naive", "snaive[48]", "snaive[336]", "drift", "mstl"]
    );

    let started = Instant::now();
    let (model, candidates) = fit(&spec, &y, &periods).expect("auto fits");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(
        candidates
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        names
    );
    for (name, mase) in &candidates {
        assert!(
            mase.is_some_and(|m| m.is_finite() && m > 0.0),
            "{name}: no backtest score ({mase:?})"
        );
    }
    // The winner is the lowest backtest MASE, and on this strongly seasonal series the seasonal
    // models beat the naive one.
    let best = candidates
        .iter()
        .filter_map(|(n, m)| m.map(|m| (n, m)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("scores");
    let naive = candidates[0].1.expect("naive scores");
    assert!(best.1 < 0.5 * naive, "best {best:?}, naive {naive}");
    let described = model.describe();
    match best.0.as_str() {
        "mstl" => assert!(described.starts_with("MSTL[48,336]"), "{described}"),
        other => assert!(
            described.to_lowercase().contains("naive"),
            "{other} won but fitted {described}"
        ),
    }
    // Generous bound (debug-built tests on a shared machine): the seasonal ARIMA / ETS list this
    // replaces took minutes on this slice.
    assert!(secs < 120.0, "auto took {secs:.1} s");
}
