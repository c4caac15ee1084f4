//! Hyndman–Khandakar (2008) automatic ARIMA: unit-root tests for the differences, then a stepwise
//! search over (p, q, P, Q, constant) minimising AICc, as R's `forecast::auto.arima`.
//!
//! * Seasonal differences D (0 or 1), by [`SeasonalTest`]: the OCSB seasonal unit-root test
//!   ([`crate::ocsb_test`], `forecast::nsdiffs(test = "ocsb")`, pmdarima's default; the default
//!   here), or the STL seasonal-strength rule that `forecast::nsdiffs` uses by default
//!   (`test = "seas"`): D = 1 when `F_s = max(0, 1 − Var(R)/Var(S + R)) > 0.64`, with the STL
//!   seasonal window 11 as in `forecast::mstl`. A strong but stable seasonal pattern passes the
//!   strength rule yet needs no difference; OCSB tells the two apart. (Canova–Hansen is not
//!   implemented.)
//! * Differences d: repeated KPSS level tests at 5 % (critical value 0.463, lags `⌊3√n/13⌋`) on the
//!   (seasonally differenced) series, as `forecast::ndiffs`, with d + D capped at 2.
//! * Stepwise search from (2,d,2)(1,D,1), (0,d,0)(0,D,0), (1,d,0)(1,D,0), (0,d,1)(0,D,1) with a
//!   constant when `d + D ≤ 1`, plus (0,d,0)(0,D,0) without; then ±1 moves of each order, joint
//!   moves of (p, q) and (P, Q), and toggling the constant, restarting from every improvement.
//!   Models with an AR or MA root within 1 % of the unit circle are rejected.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{
    ArimaFit, ArimaMethod, ArimaOrder, ArimaSpec, SEARCH, difference, fit_arima, fit_arima_tol,
};
use crate::error::{ForecastError, check_fittable};
use crate::stats::{KPSS_CRITICAL_5PCT, kpss_statistic};

/// Search limits for [`auto_arima`]; the defaults are R's. (R's `max.order` applies only to its
/// non-stepwise search, which is not implemented, so it has no counterpart here.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoArimaSpec {
    /// Seasonal period (1 = non-seasonal search).
    pub period: usize,
    /// Largest p.
    pub max_p: usize,
    /// Largest q.
    pub max_q: usize,
    /// Largest P.
    pub max_seasonal_p: usize,
    /// Largest Q.
    pub max_seasonal_q: usize,
    /// Largest d.
    pub max_d: usize,
    /// Largest D.
    pub max_seasonal_d: usize,
    /// Fixed d instead of the KPSS tests.
    pub d: Option<usize>,
    /// Fixed D instead of the seasonal test.
    pub seasonal_d: Option<usize>,
    /// How D is chosen when not fixed.
    pub seasonal_test: SeasonalTest,
    /// Consider a constant (mean or drift) when d + D ≤ 1.
    pub allow_constant: bool,
    /// Most models to fit.
    pub max_models: usize,
}

impl Default for AutoArimaSpec {
    fn default() -> Self {
        Self {
            period: 1,
            max_p: 5,
            max_q: 5,
            max_seasonal_p: 2,
            max_seasonal_q: 2,
            max_d: 2,
            max_seasonal_d: 1,
            d: None,
            seasonal_d: None,
            seasonal_test: SeasonalTest::default(),
            allow_constant: true,
            max_models: 94,
        }
    }
}

/// The test that chooses the seasonal differences D.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeasonalTest {
    /// The OCSB seasonal unit-root test ([`crate::ocsb_diffs`]).
    #[default]
    Ocsb,
    /// The STL seasonal-strength rule ([`seasonal_diffs`]).
    Strength,
}

/// One model the search fitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchStep {
    /// Orders.
    pub order: ArimaOrder,
    /// With μ.
    pub constant: bool,
    /// Its AICc (∞ when it failed or was rejected).
    pub aicc: f64,
}

/// The selected model and the search trace.
#[derive(Clone, Debug)]
pub struct AutoArimaResult {
    /// The best model.
    pub best: ArimaFit,
    /// Every model fitted, in order.
    pub trace: Vec<SearchStep>,
}

/// Most differences, first and seasonal together, the search chooses by itself.
pub const MAX_TOTAL_DIFFS: usize = 2;

/// Number of seasonal differences by the STL seasonal-strength rule.
pub fn seasonal_diffs(y: &[f64], period: usize, max_d: usize) -> usize {
    let mut x = y.to_vec();
    let mut d = 0;
    while d < max_d && period > 1 && x.len() > 2 * period {
        let strength = crate::decompose::seasonal_strength(&x, period, 11);
        if strength.is_nan() || strength <= 0.64 {
            break;
        }
        let mut c = vec![0.0; period];
        c[period - 1] = 1.0;
        x = difference(&x, &c);
        d += 1;
    }
    d
}

/// Number of first differences by repeated KPSS tests at 5 %.
pub fn first_diffs(y: &[f64], max_d: usize) -> usize {
    let mut x = y.to_vec();
    let mut d = 0;
    while d < max_d && x.len() > 3 {
        // Constant to rounding (relative to its magnitude): nothing to difference, and the KPSS
        // statistic of rounding noise means nothing.
        let first = x[0];
        let tol = 1e-12_f64.max(super::FLAT * x.iter().fold(0.0f64, |a, v| a.max(v.abs())));
        if x.iter().all(|v| (v - first).abs() < tol) {
            break;
        }
        if kpss_statistic(&x) <= KPSS_CRITICAL_5PCT {
            break;
        }
        x = difference(&x, &[1.0]);
        d += 1;
    }
    d
}

/// Selects and fits an ARIMA model by the Hyndman–Khandakar stepwise search.
///
/// # Errors
///
/// Non-finite values, too few observations, or no model in the search that could be fitted.
pub fn auto_arima(y: &[f64], spec: &AutoArimaSpec) -> Result<AutoArimaResult, ForecastError> {
    check_fittable(y)?;
    let m = spec.period.max(1);
    let seasonal = m > 1 && y.len() > 2 * m;
    let big_d = if seasonal {
        spec.seasonal_d.unwrap_or_else(|| match spec.seasonal_test {
            SeasonalTest::Ocsb => crate::seasonal_test::ocsb_diffs(y, m, spec.max_seasonal_d),
            SeasonalTest::Strength => seasonal_diffs(y, m, spec.max_seasonal_d),
        })
    } else {
        0
    };
    let dx = if big_d > 0 {
        let mut x = y.to_vec();
        for _ in 0..big_d {
            let mut c = vec![0.0; m];
            c[m - 1] = 1.0;
            x = difference(&x, &c);
        }
        x
    } else {
        y.to_vec()
    };
    // Total differencing is capped at two (R's auto.arima warns beyond it): a third difference
    // of a real series is over-differencing, which inflates forecast variance for nothing.
    let d = spec
        .d
        .unwrap_or_else(|| first_diffs(&dx, spec.max_d.min(MAX_TOTAL_DIFFS.saturating_sub(big_d))));
    let allow_constant = spec.allow_constant && d + big_d <= 1;
    let n_left = y.len().saturating_sub(d + big_d * m);
    // Keep the orders estimable from the data at hand (R: max.p ≤ n/3 and similar).
    let max_p = spec.max_p.min(n_left / 3);
    let max_q = spec.max_q.min(n_left / 3);
    let (max_sp, max_sq) = if seasonal {
        (
            spec.max_seasonal_p.min(n_left / (3 * m)),
            spec.max_seasonal_q.min(n_left / (3 * m)),
        )
    } else {
        (0, 0)
    };

    let mk = |p: usize, q: usize, sp: usize, sq: usize| {
        let o = ArimaOrder::new(p, d, q);
        if seasonal {
            o.seasonal(sp, big_d, sq, m)
        } else {
            o
        }
    };
    let mut tried: HashSet<(ArimaOrder, bool)> = HashSet::new();
    let mut trace = Vec::new();
    let mut best: Option<ArimaFit> = None;

    let mut try_model = |p: usize,
                         q: usize,
                         sp: usize,
                         sq: usize,
                         c: bool,
                         best: &mut Option<ArimaFit>,
                         trace: &mut Vec<SearchStep>|
     -> bool {
        if p > max_p || q > max_q || sp > max_sp || sq > max_sq || (c && !allow_constant) {
            return false;
        }
        let order = mk(p, q, sp, sq);
        if !tried.insert((order, c)) || trace.len() >= spec.max_models {
            return false;
        }
        let fit = fit_arima_tol(
            y,
            &ArimaSpec {
                order,
                constant: c,
                method: ArimaMethod::CssMl,
            },
            SEARCH,
        );
        let (aicc, fit) = match fit {
            Ok(f) if f.aicc.is_finite() && f.min_root_modulus() > 1.01 => (f.aicc, Some(f)),
            _ => (f64::INFINITY, None),
        };
        trace.push(SearchStep {
            order,
            constant: c,
            aicc,
        });
        match (fit, best.as_ref()) {
            (Some(f), Some(b)) if f.aicc < b.aicc - 1e-9 => {
                *best = Some(f);
                true
            }
            (Some(f), None) => {
                *best = Some(f);
                true
            }
            _ => false,
        }
    };

    let (sp1, sq1) = if seasonal { (1, 1) } else { (0, 0) };
    try_model(2, 2, sp1, sq1, allow_constant, &mut best, &mut trace);
    try_model(0, 0, 0, 0, allow_constant, &mut best, &mut trace);
    try_model(1, 0, sp1, 0, allow_constant, &mut best, &mut trace);
    try_model(0, 1, 0, sq1, allow_constant, &mut best, &mut trace);
    if allow_constant {
        try_model(0, 0, 0, 0, false, &mut best, &mut trace);
    }

    while let Some(b) = best.as_ref() {
        let (p, q, sp, sq) = (b.order.p, b.order.q, b.order.seasonal_p, b.order.seasonal_q);
        let c = b.constant.is_some();
        let mut moves: Vec<Move> = Vec::new();
        if seasonal {
            for (dsp, dsq) in [
                (-1, 0),
                (1, 0),
                (0, -1),
                (0, 1),
                (-1, -1),
                (-1, 1),
                (1, -1),
                (1, 1),
            ] {
                let nsp = shift(sp, dsp);
                let nsq = shift(sq, dsq);
                moves.push((Some(p), Some(q), nsp, nsq, c));
            }
        }
        for (dp, dq) in [
            (-1, 0),
            (1, 0),
            (0, -1),
            (0, 1),
            (-1, -1),
            (-1, 1),
            (1, -1),
            (1, 1),
        ] {
            moves.push((shift(p, dp), shift(q, dq), Some(sp), Some(sq), c));
        }
        if allow_constant {
            moves.push((Some(p), Some(q), Some(sp), Some(sq), !c));
        }
        let mut improved = false;
        for (np, nq, nsp, nsq, nc) in moves {
            let (Some(np), Some(nq), Some(nsp), Some(nsq)) = (np, nq, nsp, nsq) else {
                continue;
            };
            if try_model(np, nq, nsp, nsq, nc, &mut best, &mut trace) {
                improved = true;
                break;
            }
        }
        if !improved || trace.len() >= spec.max_models {
            break;
        }
    }
    match best {
        Some(best) => {
            // Polish the winner to the final tolerance (the search only needs a ranking).
            let spec = ArimaSpec {
                order: best.order,
                constant: best.constant.is_some(),
                method: ArimaMethod::CssMl,
            };
            let best = match fit_arima(y, &spec) {
                Ok(f) if f.loglik >= best.loglik - 1e-9 => f,
                _ => best,
            };
            Ok(AutoArimaResult { best, trace })
        }
        None => Err(ForecastError::FitFailed(
            "auto-ARIMA could not fit any candidate model".into(),
        )),
    }
}

/// A candidate (p, q, P, Q, constant); `None` where a move would go below 0.
type Move = (
    Option<usize>,
    Option<usize>,
    Option<usize>,
    Option<usize>,
    bool,
);

fn shift(v: usize, by: i32) -> Option<usize> {
    match by {
        -1 => v.checked_sub(1),
        1 => Some(v + 1),
        _ => Some(v),
    }
}
