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

/// One reference case.
struct Case {
    name: &'static str,
    y: Vec<f64>,
    m: usize,
    /// The statistic by R's definition.
    stat: f64,
    /// The lag order chosen by AIC.
    lag: usize,
    /// pmdarima's statistic.
    pm_stat: f64,
    /// pmdarima's `nsdiffs(test="ocsb")`.
    pm_d: usize,
}

fn cases() -> Vec<Case> {
    let taylor = series("taylor_halfhourly.csv", "demand_mw").values[..1000].to_vec();
    vec![
        Case {
            name: "airline",
            y: airline(),
            m: 12,
            stat: 2.777_726_851_393_194,
            lag: 1,
            pm_stat: 2.770_134_114_254_011_7,
            pm_d: 1,
        },
        Case {
            name: "log airline",
            y: log_airline(),
            m: 12,
            stat: -1.422_865_403_323_995_4,
            lag: 1,
            pm_stat: -1.424_030_691_253_650_4,
            pm_d: 1,
        },
        Case {
            name: "us_change Consumption",
            y: consumption(),
            m: 4,
            stat: -12.363_757_363_550_048,
            lag: 2,
            pm_stat: -11.786_791_214_296_311,
            pm_d: 0,
        },
        Case {
            name: "taylor, first 1000 half-hours",
            y: taylor,
            m: 48,
            stat: -9.765_321_401_015_346,
            lag: 3,
            pm_stat: -9.877_853_137_492_275,
            pm_d: 0,
        },
    ]
}

#[test]
fn ocsb_statistics_match_the_reference() {
    for Case {
        name,
        y,
        m,
        stat,
        lag,
        pm_stat,
        pm_d,
    } in cases()
    {
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
