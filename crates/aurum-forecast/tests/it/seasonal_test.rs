//! The OCSB seasonal unit-root test on real series, against reference values.
//!
//! Expected statistics: `bench/forecast/ocsb_reference.py` (pmdarima 2.1.1, statsmodels 0.14,
//! numpy 2.4), which computes R's `forecast::ocsb.test` (lags 0..3 by AIC, as
//! `nsdiffs(test = "ocsb")` asks) with statsmodels OLS on time-aligned regressors, and pmdarima's
//! own `OCSBTest` statistic and `nsdiffs(test="ocsb")`. pmdarima aligns the filtered regressors by
//! position rather than by time, so its statistic differs a little from R's definition (which
//! aurum follows); the decisions agree.

use aurum_forecast::{
    AutoArimaSpec, SeasonalTest, auto_arima, ocsb_critical_value, ocsb_diffs, ocsb_test,
};

use crate::common::{airline, consumption, log_airline, series};

/// (series, m, R-definition statistic, lag chosen, pmdarima statistic, pmdarima nsdiffs).
fn cases() -> Vec<(&'static str, Vec<f64>, usize, f64, usize, f64, usize)> {
    let taylor = series("taylor_halfhourly.csv", "demand_mw").values[..1000].to_vec();
    vec![
        (
            "airline",
            airline(),
            12,
            2.777_726_851_393_194,
            1,
            2.770_134_114_254_011_7,
            1,
        ),
        (
            "log airline",
            log_airline(),
            12,
            -1.422_865_403_323_995_4,
            1,
            -1.424_030_691_253_650_4,
            1,
        ),
        (
            "us_change Consumption",
            consumption(),
            4,
            -12.363_757_363_550_048,
            2,
            -11.786_791_214_296_311,
            0,
        ),
        (
            "taylor, first 1000 half-hours",
            taylor,
            48,
            -9.765_321_401_015_346,
            3,
            -9.877_853_137_492_275,
            0,
        ),
    ]
}

#[test]
fn ocsb_statistics_match_the_reference() {
    for (name, y, m, stat, lag, pm_stat, pm_d) in cases() {
        let t = ocsb_test(&y, m, 3).unwrap_or_else(|| panic!("{name}: testable"));
        assert_eq!(t.lag, lag, "{name}: lag order");
        assert!(
            (t.statistic - stat).abs() < 1e-6 * stat.abs().max(1.0),
            "{name}: statistic {} vs reference {stat}",
            t.statistic
        );
        // pmdarima's positional alignment moves the statistic by at most 5 % here.
        assert!(
            (t.statistic - pm_stat).abs() < 0.05 * pm_stat.abs(),
            "{name}: {} vs pmdarima {pm_stat}",
            t.statistic
        );
        assert_eq!(
            ocsb_diffs(&y, m, 1),
            pm_d,
            "{name}: D as pmdarima's nsdiffs"
        );
        assert!((t.critical - ocsb_critical_value(m)).abs() < 1e-15);
    }
    // The critical values the reference printed.
    assert!((ocsb_critical_value(12) + 1.802_962_791_181_570_4).abs() < 1e-9);
    assert!((ocsb_critical_value(4) + 1.892_699_924_655_765_6).abs() < 1e-9);
    assert!((ocsb_critical_value(48) + 1.720_253_122_786_464_1).abs() < 1e-9);
}

#[test]
fn auto_arima_takes_its_seasonal_difference_from_ocsb() {
    // Log airline: OCSB does not reject a seasonal unit root, so D = 1 under both tests.
    let y = log_airline();
    for test in [SeasonalTest::Ocsb, SeasonalTest::Strength] {
        let r = auto_arima(
            &y,
            &AutoArimaSpec {
                period: 12,
                seasonal_test: test,
                ..AutoArimaSpec::default()
            },
        )
        .expect("fits");
        assert_eq!(
            r.best.order.seasonal_d,
            1,
            "{test:?}: {}",
            r.best.describe()
        );
    }
    // Quarterly consumption changes: OCSB rejects (statistic −12.4 against −1.89), D = 0.
    let r = auto_arima(
        &consumption(),
        &AutoArimaSpec {
            period: 4,
            ..AutoArimaSpec::default()
        },
    )
    .expect("fits");
    assert_eq!(r.best.order.seasonal_d, 0, "{}", r.best.describe());
}
