//! The Osborn–Chui–Smith–Birchenhall (OCSB) seasonal unit-root test (Osborn et al. 1988), as R's
//! `forecast::ocsb.test` computes it for `nsdiffs(test = "ocsb")` and as pmdarima's `OCSBTest`
//! ports it: the test `auto_arima` runs before it chooses seasonal differencing.
//!
//! With `Δ = 1 − B` and `Δ_m = 1 − B^m`, the regression is
//!
//! ```text
//! Δ Δ_m y_t = Σ_{k=1..p} φ_k Δ Δ_m y_{t−k} + β₁ Z4_{t−1} + β₂ Z5_{t−m} + e_t
//! ```
//!
//! where `Z4 = φ(B) Δ_m y` and `Z5 = φ(B) Δ y` are the two regressors filtered by the AR
//! polynomial fitted first (`Δ Δ_m y_t` on its own `p` lags, no intercept), `p ∈ 0..=3` chosen by
//! the lowest AIC on a common sample. The statistic is the t-value of `β₂` (the coefficient of the
//! seasonal unit root): when it is above the critical value from the smoothed simulation formula of
//! `forecast:::calcOCSBCritVal` (about −1.80 at m = 12), the seasonal unit root is not rejected and
//! one seasonal difference is taken.
//!
//! Why this and not only the seasonal-strength rule: the strength rule (R's default) reads the STL
//! decomposition, which says how much of the variance is seasonal but not whether the seasonal
//! pattern drifts (a seasonal unit root) or is stable (seasonal dummies suffice); differencing a
//! stable pattern over-differences it. OCSB answers the second question.

use crate::stats::solve;

/// Result of [`ocsb_test`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OcsbTest {
    /// t-value of the `Z5_{t−m}` coefficient.
    pub statistic: f64,
    /// 5 % critical value for the period.
    pub critical: f64,
    /// Lags of `Δ Δ_m y` in the regression (chosen by AIC).
    pub lag: usize,
}

impl OcsbTest {
    /// Whether the test asks for a seasonal difference (seasonal unit root not rejected).
    pub fn seasonal_difference(&self) -> bool {
        self.statistic > self.critical
    }
}

/// Most lags of the dependent variable the AIC search considers (`nsdiffs` passes 3).
pub const OCSB_MAX_LAG: usize = 3;

/// The OCSB critical value for period `m` (`forecast:::calcOCSBCritVal`, the smoothed fit to the
/// simulated 5 % values of Osborn et al.).
pub fn ocsb_critical_value(m: usize) -> f64 {
    let l = (m as f64).ln() - 0.765_645_1;
    -0.293_741_1 * (-0.285_085_3 * l - 0.059_836_44 * l * l).exp() - 1.652_202
}

/// Ordinary least squares without intercept: `(coefficients, standard errors, RSS)`; `None` when
/// the design is singular or has no residual degrees of freedom.
fn ols(cols: &[Vec<f64>], y: &[f64]) -> Option<(Vec<f64>, Vec<f64>, f64)> {
    let k = cols.len();
    let n = y.len();
    if n <= k {
        return None;
    }
    let (xtx, xty) = crate::stats::normal_equations(cols, y);
    let beta = if k == 0 {
        Vec::new()
    } else {
        solve(xtx.clone(), xty, k)?
    };
    let rss: f64 = (0..n)
        .map(|t| {
            let fit: f64 = (0..k).map(|j| beta[j] * cols[j][t]).sum();
            (y[t] - fit).powi(2)
        })
        .sum();
    let sigma2 = rss / (n - k) as f64;
    let mut se = Vec::with_capacity(k);
    for j in 0..k {
        let mut e = vec![0.0; k];
        e[j] = 1.0;
        let inv = solve(xtx.clone(), e, k)?;
        se.push((sigma2 * inv[j]).sqrt());
    }
    Some((beta, se, rss))
}

/// One OCSB regression with `lag` lags on the sample that `max_lag` lags allow. Returns the
/// t-value of `Z5_{t−m}` and the regression's AIC (R's `AIC(lm)`).
fn fit_ocsb(x: &[f64], m: usize, lag: usize, max_lag: usize) -> Option<(f64, f64)> {
    let n = x.len();
    // Δ_m x_t (t ≥ m), Δ x_t (t ≥ 1), Δ Δ_m x_t (t ≥ m + 1), indexed by t.
    let dm = |t: usize| x[t] - x[t - m];
    let d1 = |t: usize| x[t] - x[t - 1];
    let dd = |t: usize| dm(t) - dm(t - 1);
    let start = m + 1 + max_lag.max(lag);
    if start + lag + 3 > n {
        return None;
    }
    let rows = start..n;
    let y: Vec<f64> = rows.clone().map(dd).collect();
    let lags: Vec<Vec<f64>> = (1..=lag)
        .map(|k| rows.clone().map(|t| dd(t - k)).collect())
        .collect();
    let phi = if lag == 0 {
        Vec::new()
    } else {
        ols(&lags, &y)?.0
    };
    let filtered = |f: &dyn Fn(usize) -> f64, t: usize| {
        f(t) - phi
            .iter()
            .enumerate()
            .map(|(k, p)| p * f(t - k - 1))
            .sum::<f64>()
    };
    // Z4_{t−1} needs t − 1 − lag ≥ m and Z5_{t−m} needs t − m − lag ≥ 1: both hold from `start`.
    let z4: Vec<f64> = rows.clone().map(|t| filtered(&dm, t - 1)).collect();
    let z5: Vec<f64> = rows.clone().map(|t| filtered(&d1, t - m)).collect();
    let mut cols = lags;
    cols.push(z4);
    cols.push(z5);
    let (beta, se, rss) = ols(&cols, &y)?;
    let k = cols.len();
    let nf = y.len() as f64;
    let stat = beta[k - 1] / se[k - 1];
    let aic =
        nf * ((2.0 * std::f64::consts::PI).ln() + 1.0 + (rss / nf).ln()) + 2.0 * (k + 1) as f64;
    (stat.is_finite() && aic.is_finite()).then_some((stat, aic))
}

/// The OCSB test of `x` at period `m`, the lag order chosen by AIC among `0..=max_lag`. `None`
/// when `m < 2`, the series is shorter than `2m + 5` (where `nsdiffs` does not test) or every
/// regression is singular.
pub fn ocsb_test(x: &[f64], m: usize, max_lag: usize) -> Option<OcsbTest> {
    if m < 2 || x.len() < 2 * m + 5 || x.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut lag = max_lag;
    if max_lag > 0 {
        let mut best: Option<(usize, f64)> = None;
        for l in 0..=max_lag {
            if let Some((_, aic)) = fit_ocsb(x, m, l, max_lag)
                && best.is_none_or(|(_, b)| aic < b)
            {
                best = Some((l, aic));
            }
        }
        lag = best?.0;
    }
    let (statistic, _) = fit_ocsb(x, m, lag, lag)?;
    Some(OcsbTest {
        statistic,
        critical: ocsb_critical_value(m),
        lag,
    })
}

/// Number of seasonal differences (at most `max_d`) by repeated OCSB tests, as
/// `forecast::nsdiffs(test = "ocsb")`: difference while the test does not reject a seasonal
/// unit root and the differenced series is still long enough to test.
pub fn ocsb_diffs(y: &[f64], m: usize, max_d: usize) -> usize {
    let mut x = y.to_vec();
    let mut d = 0;
    while d < max_d {
        let first = x[0];
        if x.iter().all(|v| (v - first).abs() < 1e-12) {
            break;
        }
        match ocsb_test(&x, m, OCSB_MAX_LAG) {
            Some(t) if t.seasonal_difference() => {}
            _ => break,
        }
        x = (m..x.len()).map(|t| x[t] - x[t - m]).collect();
        d += 1;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_values_follow_the_smoothed_table() {
        // forecast:::calcOCSBCritVal(12) and (4), evaluated by hand from the formula.
        assert!(
            (ocsb_critical_value(12) - (-1.802_963)).abs() < 1e-6,
            "{}",
            ocsb_critical_value(12)
        );
        assert!((ocsb_critical_value(4) - (-1.892_700)).abs() < 1e-6);
    }

    #[test]
    fn stationary_noise_rejects_and_a_seasonal_random_walk_does_not() {
        // An AR(1) with φ = 0.5: no seasonal unit root (D = 0). A seasonal random walk
        // y_t = y_{t−12} + e_t: a seasonal unit root (D = 1). (Like R's version, the regression
        // has no seasonal dummies, so a large deterministic seasonal pattern also reads as D = 1.)
        let mut rng = crate::stats::NormalRng::new(7);
        let n = 240;
        let mut stable = vec![0.0; n];
        for t in 1..n {
            stable[t] = 0.5 * stable[t - 1] + rng.next();
        }
        let mut walk = vec![0.0; n];
        for t in 0..n {
            walk[t] = if t >= 12 { walk[t - 12] } else { 0.0 } + rng.next();
        }
        let s = ocsb_test(&stable, 12, OCSB_MAX_LAG).expect("testable");
        let w = ocsb_test(&walk, 12, OCSB_MAX_LAG).expect("testable");
        assert!(!s.seasonal_difference(), "{s:?}");
        assert!(w.seasonal_difference(), "{w:?}");
        assert_eq!(ocsb_diffs(&stable, 12, 1), 0);
        assert_eq!(ocsb_diffs(&walk, 12, 1), 1);
        assert!(
            ocsb_test(&stable[..28], 12, 3).is_none(),
            "shorter than 2m + 5"
        );
    }
}
