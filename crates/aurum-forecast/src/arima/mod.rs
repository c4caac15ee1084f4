//! Seasonal ARIMA by exact maximum likelihood, and the Hyndman–Khandakar auto-ARIMA search.
//!
//! The model is `φ(B) Φ(B^s) (δ(B) y_t − μ) = θ(B) Θ(B^s) ε_t` with the differencing operator
//! `δ(B) = (1 − B)^d (1 − B^s)^D` and sign conventions as in statsmodels and R
//! (`φ(B) = 1 − φ_1 B − …`, `θ(B) = 1 + θ_1 B + …`). `μ` is the mean of the differenced series: the
//! mean of `y` when `d + D = 0`, the drift per period (or per season) when `d + D = 1`; it is not
//! allowed for `d + D ≥ 2`.
//!
//! Estimation ([`ArimaMethod::CssMl`], the default, as R's `arima`): conditional sum of squares for
//! starting values, then the exact Gaussian likelihood of the differenced series by the Kalman
//! filter. That likelihood equals statsmodels' SARIMAX likelihood with exact diffuse initialisation
//! of the integrated states (the first `d + sD` observations only fix the diffuse part), so the
//! estimates, σ², log-likelihood and AICc are directly comparable with `SARIMAX(...).fit()`; the
//! test suite checks this against fixtures written by `scripts/forecast-reference`.
//!
//! Stationarity and invertibility are enforced by optimising over partial autocorrelations mapped
//! to the real line (`u = r / sqrt(1 − r²)`, Monahan 1984 / Jones 1980), separately for each of the
//! four polynomials, as statsmodels does. μ and σ² are concentrated out of the likelihood, so the
//! optimiser (BFGS) only sees the ARMA coefficients.

pub(crate) mod auto;
pub(crate) mod kalman;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{ForecastError, check_fittable, too_few};
use crate::optim::bfgs;
use kalman::{Arma, FilterState};

/// Orders of a seasonal ARIMA model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArimaOrder {
    /// Non-seasonal AR order.
    pub p: usize,
    /// Non-seasonal differences.
    pub d: usize,
    /// Non-seasonal MA order.
    pub q: usize,
    /// Seasonal AR order.
    pub seasonal_p: usize,
    /// Seasonal differences.
    pub seasonal_d: usize,
    /// Seasonal MA order.
    pub seasonal_q: usize,
    /// Seasonal period (1 = non-seasonal).
    pub period: usize,
}

impl ArimaOrder {
    /// A non-seasonal ARIMA(p, d, q).
    pub fn new(p: usize, d: usize, q: usize) -> Self {
        Self {
            p,
            d,
            q,
            seasonal_p: 0,
            seasonal_d: 0,
            seasonal_q: 0,
            period: 1,
        }
    }

    /// Adds a seasonal part (P, D, Q)\[period\].
    pub fn seasonal(mut self, p: usize, d: usize, q: usize, period: usize) -> Self {
        self.seasonal_p = p;
        self.seasonal_d = d;
        self.seasonal_q = q;
        self.period = period;
        self
    }

    fn has_seasonal(&self) -> bool {
        self.period > 1 && (self.seasonal_p + self.seasonal_d + self.seasonal_q) > 0
    }

    /// Coefficients `c` of δ(B) = 1 − Σ c_k B^k.
    pub(crate) fn diff_coefs(&self) -> Vec<f64> {
        let mut poly = vec![1.0];
        for _ in 0..self.d {
            poly = poly_mul(&poly, &[1.0, -1.0]);
        }
        if self.period > 1 {
            let mut seas = vec![0.0; self.period + 1];
            seas[0] = 1.0;
            seas[self.period] = -1.0;
            for _ in 0..self.seasonal_d {
                poly = poly_mul(&poly, &seas);
            }
        }
        poly[1..].iter().map(|c| -c).collect()
    }

    /// Observations lost to differencing.
    pub(crate) fn n_diff(&self) -> usize {
        self.d + self.seasonal_d * self.period
    }
}

impl fmt::Display for ArimaOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ARIMA({},{},{})", self.p, self.d, self.q)?;
        if self.has_seasonal() {
            write!(
                f,
                "({},{},{})[{}]",
                self.seasonal_p, self.seasonal_d, self.seasonal_q, self.period
            )?;
        }
        Ok(())
    }
}

/// How the parameters are estimated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArimaMethod {
    /// Conditional sum of squares for starting values, then exact ML (the default).
    #[default]
    CssMl,
    /// Exact ML from zero starting values.
    Ml,
    /// Conditional sum of squares only (fast, approximate); the filter still provides forecasts.
    Css,
}

/// A seasonal ARIMA specification with fixed orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArimaSpec {
    /// Orders.
    pub order: ArimaOrder,
    /// Include μ (mean when d + D = 0, drift when d + D = 1).
    pub constant: bool,
    /// Estimation method.
    #[serde(default)]
    pub method: ArimaMethod,
}

/// A fitted ARIMA model: parameters, fit statistics, and the filter state needed to forecast
/// and to absorb new observations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArimaFit {
    /// Orders.
    pub order: ArimaOrder,
    /// Non-seasonal AR coefficients φ.
    pub ar: Vec<f64>,
    /// Non-seasonal MA coefficients θ.
    pub ma: Vec<f64>,
    /// Seasonal AR coefficients Φ.
    pub seasonal_ar: Vec<f64>,
    /// Seasonal MA coefficients Θ.
    pub seasonal_ma: Vec<f64>,
    /// Mean of the differenced series, when included.
    pub constant: Option<f64>,
    /// Innovation variance (MLE).
    pub sigma2: f64,
    /// Exact log-likelihood (CSS log-likelihood for [`ArimaMethod::Css`]).
    pub loglik: f64,
    /// Akaike information criterion.
    pub aic: f64,
    /// AIC with small-sample correction (n = observations after differencing).
    pub aicc: f64,
    /// Bayesian information criterion.
    pub bic: f64,
    /// Observations after differencing.
    pub n_used: usize,
    /// Estimation method.
    pub method: ArimaMethod,
    /// Whether the optimiser met its convergence criterion.
    pub converged: bool,
    /// Last `d + sD` observations (oldest first): the integration window.
    pub(crate) y_tail: Vec<f64>,
    /// Kalman filter state after the last observation.
    pub(crate) state: FilterState,
}

fn poly_mul(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        if *x == 0.0 {
            continue;
        }
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

/// Full AR coefficients of φ(B)Φ(B^s) (convention x_t = Σ a_k x_{t-k} + …).
fn expand_ar(ar: &[f64], sar: &[f64], s: usize) -> Vec<f64> {
    let mut a = vec![1.0];
    a.extend(ar.iter().map(|v| -v));
    let mut b = vec![0.0; sar.len() * s + 1];
    b[0] = 1.0;
    for (j, v) in sar.iter().enumerate() {
        b[(j + 1) * s] = -v;
    }
    let prod = poly_mul(&a, &b);
    let mut out: Vec<f64> = prod[1..].iter().map(|v| -v).collect();
    while out.last() == Some(&0.0) {
        out.pop();
    }
    out
}

/// Full MA coefficients of θ(B)Θ(B^s) (convention 1 + Σ b_k B^k).
fn expand_ma(ma: &[f64], sma: &[f64], s: usize) -> Vec<f64> {
    let mut a = vec![1.0];
    a.extend_from_slice(ma);
    let mut b = vec![0.0; sma.len() * s + 1];
    b[0] = 1.0;
    for (j, v) in sma.iter().enumerate() {
        b[(j + 1) * s] = *v;
    }
    let mut out = poly_mul(&a, &b)[1..].to_vec();
    while out.last() == Some(&0.0) {
        out.pop();
    }
    out
}

/// Unconstrained → stationary AR coefficients (PACF by `u/sqrt(1+u²)`, then Durbin–Levinson).
pub(crate) fn constrain_ar(u: &[f64]) -> Vec<f64> {
    let mut phi: Vec<f64> = Vec::with_capacity(u.len());
    for (k, x) in u.iter().enumerate() {
        let r = x / (1.0 + x * x).sqrt();
        let mut next = phi.clone();
        for j in 0..k {
            next[j] = phi[j] - r * phi[k - 1 - j];
        }
        next.push(r);
        phi = next;
    }
    phi
}

/// Inverse of [`constrain_ar`]; `None` when `phi` is not stationary.
#[cfg(test)]
pub(crate) fn unconstrain_ar(phi: &[f64]) -> Option<Vec<f64>> {
    let mut cur = phi.to_vec();
    let mut u = vec![0.0; phi.len()];
    for k in (0..phi.len()).rev() {
        let r = cur[k];
        if r.is_nan() || r.abs() >= 1.0 {
            return None;
        }
        u[k] = r / (1.0 - r * r).sqrt();
        let prev: Vec<f64> = (0..k)
            .map(|j| (cur[j] + r * cur[k - 1 - j]) / (1.0 - r * r))
            .collect();
        cur = prev;
    }
    Some(u)
}

/// The four coefficient blocks from an unconstrained parameter vector.
struct Coefs {
    ar: Vec<f64>,
    ma: Vec<f64>,
    sar: Vec<f64>,
    sma: Vec<f64>,
}

impl Coefs {
    fn from_unconstrained(o: &ArimaOrder, u: &[f64]) -> Self {
        let (a, rest) = u.split_at(o.p);
        let (m, rest) = rest.split_at(o.q);
        let (sa, sm) = rest.split_at(o.seasonal_p);
        Self {
            ar: constrain_ar(a),
            ma: constrain_ar(m).iter().map(|v| -v).collect(),
            sar: constrain_ar(sa),
            sma: constrain_ar(sm).iter().map(|v| -v).collect(),
        }
    }

    fn full(&self, s: usize) -> (Vec<f64>, Vec<f64>) {
        (
            expand_ar(&self.ar, &self.sar, s),
            expand_ma(&self.ma, &self.sma, s),
        )
    }
}

/// Applies δ(B) to `y`.
pub(crate) fn difference(y: &[f64], c: &[f64]) -> Vec<f64> {
    let k = c.len();
    (k..y.len())
        .map(|t| {
            y[t] - c
                .iter()
                .enumerate()
                .map(|(j, cj)| cj * y[t - 1 - j])
                .sum::<f64>()
        })
        .collect()
}

/// Negative concentrated exact log-likelihood per observation (R's scaling), with the GLS mean.
fn ml_objective(w: &[f64], ar: &[f64], ma: &[f64], with_mean: bool) -> Option<(f64, f64, f64)> {
    let model = Arma::new(ar, ma);
    let p0 = model.initial_covariance(ar, ma)?;
    let (sums, _, _) = kalman::filter(&model, Some(p0), None, w, with_mean)?;
    let n = sums.n as f64;
    let (mu, sse) = if with_mean && sums.s_11 > 0.0 {
        let mu = sums.s_w1 / sums.s_11;
        (mu, sums.s_ww - sums.s_w1 * sums.s_w1 / sums.s_11)
    } else {
        (0.0, sums.s_ww)
    };
    let sigma2 = sse / n;
    if sigma2.is_nan() || sigma2 <= 0.0 {
        return None;
    }
    let obj = 0.5 * sigma2.ln() + sums.sum_log_f / (2.0 * n);
    Some((obj, mu, sigma2))
}

/// Conditional sum of squares residuals for data `x`, conditioning on the first `ncond` values.
fn css_residuals(x: &[f64], ar: &[f64], ma: &[f64], ncond: usize) -> Vec<f64> {
    let mut e = vec![0.0; x.len()];
    for t in ncond..x.len() {
        let mut v = x[t];
        for (k, a) in ar.iter().enumerate() {
            if t > k {
                v -= a * x[t - 1 - k];
            }
        }
        for (k, b) in ma.iter().enumerate() {
            if t > k {
                v -= b * e[t - 1 - k];
            }
        }
        e[t] = v;
    }
    e
}

/// CSS objective `0.5 ln σ²` with the mean profiled out; returns (objective, μ, σ²).
fn css_objective(w: &[f64], ar: &[f64], ma: &[f64], with_mean: bool) -> Option<(f64, f64, f64)> {
    let ncond = ar.len();
    if w.len() <= ncond {
        return None;
    }
    let ew = css_residuals(w, ar, ma, ncond);
    let (mu, sse) = if with_mean {
        let ones = vec![1.0; w.len()];
        let e1 = css_residuals(&ones, ar, ma, ncond);
        let s11: f64 = e1.iter().map(|v| v * v).sum();
        let s1w: f64 = e1.iter().zip(&ew).map(|(a, b)| a * b).sum();
        let sww: f64 = ew.iter().map(|v| v * v).sum();
        let mu = if s11 > 0.0 { s1w / s11 } else { 0.0 };
        (mu, sww - mu * s1w)
    } else {
        (0.0, ew.iter().map(|v| v * v).sum())
    };
    let sigma2 = sse / (w.len() - ncond) as f64;
    if sigma2.is_nan() || sigma2 <= 0.0 || !sigma2.is_finite() {
        return None;
    }
    Some((0.5 * sigma2.ln(), mu, sigma2))
}

/// Spread of a differenced series, relative to the largest |y|, below which it counts as constant:
/// rounding, not data (a loess-adjusted constant series, a constant series differenced). A few
/// ulps of the level, so that small real movements on a large level (a counter near 1e12 moving
/// by units) are still data.
pub(crate) const FLAT: f64 = 64.0 * f64::EPSILON;

/// The level of a differenced series `w` that is constant to rounding, or `None`: with a mean,
/// any constant (exactly the common value when all are equal); without one, only zero.
fn flat_level(y: &[f64], w: &[f64], with_mean: bool) -> Option<f64> {
    let tol = FLAT * y.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let (lo, hi) = w
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    if w.is_empty() {
        return None;
    }
    if with_mean {
        (hi - lo <= tol).then(|| if hi == lo { lo } else { crate::stats::mean(w) })
    } else {
        (lo >= -tol && hi <= tol).then_some(0.0)
    }
}

/// Gaussian log-likelihood of `n` residuals with MLE variance `sigma2`, floored at 1e-300 so that
/// an exact fit (σ² = 0) keeps a finite likelihood and information criteria (as ETS does).
fn gaussian_loglik(n: f64, sigma2: f64) -> f64 {
    -0.5 * n * ((2.0 * std::f64::consts::PI * sigma2.max(1e-300)).ln() + 1.0)
}

/// Fits a seasonal ARIMA model with fixed orders.
///
/// # Errors
///
/// Non-finite values, too few observations for the orders, a constant with `d + D ≥ 2`, or an
/// optimiser that found no finite likelihood.
pub fn fit_arima(y: &[f64], spec: &ArimaSpec) -> Result<ArimaFit, ForecastError> {
    fit_arima_tol(y, spec, FINAL)
}

/// Optimiser tolerances: gradient (per-observation log-likelihood scale), relative progress, and
/// iteration cap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tolerance {
    pub gtol: f64,
    pub ftol: f64,
    pub max_iter: usize,
}

/// A final fit: tight enough to reproduce reference estimates to 1e-4 or better.
pub(crate) const FINAL: Tolerance = Tolerance {
    gtol: 1e-9,
    ftol: 1e-14,
    max_iter: 500,
};
/// While searching: enough to rank models by AICc (the winner is refitted with [`FINAL`]).
pub(crate) const SEARCH: Tolerance = Tolerance {
    gtol: 1e-6,
    ftol: 1e-9,
    max_iter: 100,
};

pub(crate) fn fit_arima_tol(
    y: &[f64],
    spec: &ArimaSpec,
    tol: Tolerance,
) -> Result<ArimaFit, ForecastError> {
    check_fittable(y)?;
    let o = spec.order;
    if o.period == 0 {
        return Err(ForecastError::InvalidParameter(
            "the seasonal period must be at least 1".into(),
        ));
    }
    if o.period == 1 && (o.seasonal_p + o.seasonal_d + o.seasonal_q) > 0 {
        return Err(ForecastError::InvalidParameter(format!(
            "{o} has a seasonal part but period 1"
        )));
    }
    if spec.constant && o.d + o.seasonal_d >= 2 {
        return Err(ForecastError::InvalidParameter(format!(
            "a constant with {} differences implies a polynomial trend of degree ≥ 2; drop it",
            o.d + o.seasonal_d
        )));
    }
    let c = o.diff_coefs();
    let n_params = o.p + o.q + o.seasonal_p + o.seasonal_q + usize::from(spec.constant);
    let p_full = o.p + o.seasonal_p * o.period;
    let needed = o.n_diff() + p_full.max(n_params + 2) + 1;
    if y.len() < needed {
        return Err(too_few(format!("{o}"), needed, y.len()));
    }
    let w = difference(y, &c);
    let s = o.period;
    let k = o.p + o.q + o.seasonal_p + o.seasonal_q;
    let with_mean = spec.constant;
    let n_used = w.len();
    let nf = n_used as f64;

    let (cf, mu, sigma2, loglik, converged) = match flat_level(y, &w, with_mean) {
        // A differenced series that is constant (to rounding) is fitted exactly by white noise
        // around that constant: every ARMA coefficient 0 and σ² its spread, 0 for a constant
        // series. The optimisers cannot run there (the concentrated σ² is 0 whatever the
        // coefficients, so no likelihood is finite).
        Some(level) => {
            let sigma2 = w.iter().map(|v| (v - level) * (v - level)).sum::<f64>() / nf;
            let cf = Coefs {
                ar: vec![0.0; o.p],
                ma: vec![0.0; o.q],
                sar: vec![0.0; o.seasonal_p],
                sma: vec![0.0; o.seasonal_q],
            };
            (cf, level, sigma2, gaussian_loglik(nf, sigma2), true)
        }
        None => {
            // The mean is profiled out of centred data: on the raw values its sum of squares is
            // a difference of two nearly equal large numbers for a nearly constant series.
            let w_bar = if with_mean {
                crate::stats::mean(&w)
            } else {
                0.0
            };
            let wc: Vec<f64> = w.iter().map(|v| v - w_bar).collect();
            let css = |u: &[f64]| -> f64 {
                let cf = Coefs::from_unconstrained(&o, u);
                let (ar, ma) = cf.full(s);
                css_objective(&wc, &ar, &ma, with_mean).map_or(f64::INFINITY, |r| r.0)
            };
            let ml = |u: &[f64]| -> f64 {
                let cf = Coefs::from_unconstrained(&o, u);
                let (ar, ma) = cf.full(s);
                ml_objective(&wc, &ar, &ma, with_mean).map_or(f64::INFINITY, |r| r.0)
            };

            let zeros = vec![0.0; k];
            let opt = match spec.method {
                ArimaMethod::Css => bfgs(css, &zeros, tol.max_iter, tol.gtol, tol.ftol),
                ArimaMethod::Ml => bfgs(ml, &zeros, tol.max_iter, tol.gtol, tol.ftol),
                ArimaMethod::CssMl => {
                    let start = bfgs(css, &zeros, 200, 1e-6, 1e-10);
                    // Start ML from the CSS optimum unless it sits on the boundary of the
                    // parameter space.
                    let x0 = if start.f.is_finite() && start.x.iter().all(|v| v.abs() < 20.0) {
                        start.x
                    } else {
                        zeros.clone()
                    };
                    let m = bfgs(ml, &x0, tol.max_iter, tol.gtol, tol.ftol);
                    if m.f.is_finite() {
                        m
                    } else {
                        bfgs(ml, &zeros, tol.max_iter, tol.gtol, tol.ftol)
                    }
                }
            };
            let cf = Coefs::from_unconstrained(&o, &opt.x);
            let (ar_full, ma_full) = cf.full(s);
            let (mu, sigma2, loglik) = match spec.method {
                ArimaMethod::Css => {
                    let (_, mu, sigma2) = css_objective(&wc, &ar_full, &ma_full, with_mean)
                        .ok_or_else(|| {
                            ForecastError::FitFailed(format!("{o}: CSS did not converge"))
                        })?;
                    let ncond = ar_full.len() as f64;
                    (
                        mu,
                        sigma2,
                        -0.5 * (nf - ncond) * ((2.0 * std::f64::consts::PI * sigma2).ln() + 1.0),
                    )
                }
                _ => {
                    let (obj, mu, sigma2) = ml_objective(&wc, &ar_full, &ma_full, with_mean)
                        .ok_or_else(|| {
                            ForecastError::FitFailed(format!("{o}: no finite likelihood"))
                        })?;
                    // obj = 0.5 ln σ² + Σ ln F / (2n)  ⇒  loglik = −n (obj + 0.5 (ln 2π + 1)).
                    (
                        mu,
                        sigma2,
                        -nf * (obj + 0.5 * ((2.0 * std::f64::consts::PI).ln() + 1.0)),
                    )
                }
            };
            (cf, mu + w_bar, sigma2, loglik, opt.converged)
        }
    };
    let (ar_full, ma_full) = cf.full(s);
    let n_par = (n_params + 1) as f64;
    let aic = -2.0 * loglik + 2.0 * n_par;
    let aicc = if nf - n_par - 1.0 > 0.0 {
        aic + 2.0 * n_par * (n_par + 1.0) / (nf - n_par - 1.0)
    } else {
        f64::INFINITY
    };
    let bic = -2.0 * loglik + n_par * nf.ln();
    let mu_opt = with_mean.then_some(mu);
    let model = Arma::new(&ar_full, &ma_full);
    let x: Vec<f64> = w.iter().map(|v| v - mu).collect();
    let p0 = model.initial_covariance(&ar_full, &ma_full);
    let (_, state, _) = kalman::filter(&model, p0, None, &x, false)
        .ok_or_else(|| ForecastError::FitFailed(format!("{o}: the filter failed")))?;
    Ok(ArimaFit {
        order: o,
        ar: cf.ar,
        ma: cf.ma,
        seasonal_ar: cf.sar,
        seasonal_ma: cf.sma,
        constant: mu_opt,
        sigma2,
        loglik,
        aic,
        aicc,
        bic,
        n_used,
        method: spec.method,
        converged,
        y_tail: y[y.len() - c.len()..].to_vec(),
        state,
    })
}

impl ArimaFit {
    /// `ARIMA(p,d,q)(P,D,Q)[s]` plus `with drift` / `with non-zero mean`.
    pub fn describe(&self) -> String {
        match (
            self.constant.is_some(),
            self.order.d + self.order.seasonal_d,
        ) {
            (false, _) => self.order.to_string(),
            (true, 0) => format!("{} with non-zero mean", self.order),
            (true, _) => format!("{} with drift", self.order),
        }
    }

    fn arma(&self) -> (Arma, Vec<f64>, Vec<f64>) {
        let s = self.order.period;
        let ar = expand_ar(&self.ar, &self.seasonal_ar, s);
        let ma = expand_ma(&self.ma, &self.seasonal_ma, s);
        (Arma::new(&ar, &ma), ar, ma)
    }

    /// Point forecasts and forecast variances for `h` steps.
    pub(crate) fn forecast_moments(&self, h: usize) -> (Vec<f64>, Vec<f64>) {
        let (model, _, _) = self.arma();
        let c = self.order.diff_coefs();
        let (m, v) = kalman::forecast(
            &model,
            &self.state,
            &c,
            &self.y_tail,
            self.constant.unwrap_or(0.0),
            h,
        );
        (m, v.iter().map(|x| x * self.sigma2).collect())
    }

    /// Runs the filter over new observations with the parameters fixed.
    pub(crate) fn update(&mut self, new: &[f64]) -> Result<(), ForecastError> {
        check_fittable(new)?;
        let c = self.order.diff_coefs();
        let k = c.len();
        let mut window = self.y_tail.clone();
        window.extend_from_slice(new);
        let w = difference(&window, &c);
        let mu = self.constant.unwrap_or(0.0);
        let x: Vec<f64> = w.iter().map(|v| v - mu).collect();
        let (model, _, _) = self.arma();
        let (_, state, _) = kalman::filter(&model, None, Some(&self.state), &x, false)
            .ok_or_else(|| ForecastError::FitFailed("the filter failed on new data".into()))?;
        self.state = state;
        self.y_tail = window[window.len() - k..].to_vec();
        Ok(())
    }

    /// Smallest modulus of the AR and MA roots (∞ when there are none); auto-ARIMA rejects models
    /// with a root within 1 % of the unit circle, as R's `auto.arima` does.
    pub(crate) fn min_root_modulus(&self) -> f64 {
        let s = self.order.period as f64;
        let neg = |v: &[f64]| v.iter().map(|x| -x).collect::<Vec<_>>();
        let mut m = f64::INFINITY;
        m = m.min(min_root(&self.ar));
        m = m.min(min_root(&neg(&self.ma)));
        m = m.min(min_root(&self.seasonal_ar).powf(1.0 / s));
        m = m.min(min_root(&neg(&self.seasonal_ma)).powf(1.0 / s));
        m
    }
}

/// Smallest root modulus of `1 − Σ a_k z^k` (Durand–Kerner), ∞ for a constant polynomial.
fn min_root(a: &[f64]) -> f64 {
    let mut a = a.to_vec();
    while a.last().is_some_and(|v| v.abs() < 1e-10) {
        a.pop();
    }
    let n = a.len();
    if n == 0 {
        return f64::INFINITY;
    }
    // Monic polynomial in z: z^n + c_{n-1} z^{n-1} + … with 1 − Σ a_k z^k = −a_n (z^n − …).
    let lead = -a[n - 1];
    // coefficients of p(z) = Σ_{k=0}^{n} p_k z^k
    let mut p = vec![0.0; n + 1];
    p[0] = 1.0;
    for k in 1..=n {
        p[k] = -a[k - 1];
    }
    let pm: Vec<f64> = p.iter().map(|v| v / lead).collect();
    let eval = |z: (f64, f64)| -> (f64, f64) {
        let mut acc = (0.0, 0.0);
        for k in (0..=n).rev() {
            acc = (acc.0 * z.0 - acc.1 * z.1 + pm[k], acc.0 * z.1 + acc.1 * z.0);
        }
        acc
    };
    let mut roots: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let ang = 0.4 + 2.0 * std::f64::consts::PI * i as f64 / n as f64;
            let rad = 1.0 + 0.1 * i as f64;
            (rad * ang.cos(), rad * ang.sin())
        })
        .collect();
    for _ in 0..500 {
        let mut delta = 0.0f64;
        for i in 0..n {
            let zi = roots[i];
            let num = eval(zi);
            let mut den = (1.0, 0.0);
            for (j, zj) in roots.iter().enumerate() {
                if j != i {
                    let d = (zi.0 - zj.0, zi.1 - zj.1);
                    den = (den.0 * d.0 - den.1 * d.1, den.0 * d.1 + den.1 * d.0);
                }
            }
            let dd = den.0 * den.0 + den.1 * den.1;
            if dd == 0.0 {
                continue;
            }
            let q = (
                (num.0 * den.0 + num.1 * den.1) / dd,
                (num.1 * den.0 - num.0 * den.1) / dd,
            );
            roots[i] = (zi.0 - q.0, zi.1 - q.1);
            delta = delta.max(q.0.abs() + q.1.abs());
        }
        if delta < 1e-14 {
            break;
        }
    }
    roots
        .iter()
        .map(|(re, im)| (re * re + im * im).sqrt())
        .fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transform_roundtrip() {
        let u = vec![0.3, -1.2, 0.7];
        let phi = constrain_ar(&u);
        let back = unconstrain_ar(&phi).expect("stationary");
        for (a, b) in u.iter().zip(&back) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn expanded_polynomials() {
        // (1 − 0.5B)(1 − 0.3B^4): a_1 = 0.5, a_4 = 0.3, a_5 = −0.15
        let a = expand_ar(&[0.5], &[0.3], 4);
        assert_eq!(a.len(), 5);
        assert!((a[0] - 0.5).abs() < 1e-15 && (a[3] - 0.3).abs() < 1e-15);
        assert!((a[4] + 0.15).abs() < 1e-15);
        let c = ArimaOrder::new(0, 1, 0).seasonal(0, 1, 0, 4).diff_coefs();
        // (1 − B)(1 − B^4) = 1 − B − B^4 + B^5
        assert_eq!(c, vec![1.0, 0.0, 0.0, 1.0, -1.0]);
    }

    #[test]
    fn roots() {
        // 1 − 0.5 z: root 2
        assert!((min_root(&[0.5]) - 2.0).abs() < 1e-10);
        // 1 − z²/4: roots ±2
        assert!((min_root(&[0.0, 0.25]) - 2.0).abs() < 1e-8);
    }
}
#[cfg(test)]
mod update_tests {
    use super::*;

    /// `update` must leave exactly the state a from-scratch filter run with the same parameters
    /// over all the data would: that is what "update without refitting" promises.
    #[test]
    fn update_equals_refiltering_everything_with_fixed_parameters() {
        let y: Vec<f64> = (0..80)
            .map(|t| {
                let t = f64::from(t);
                10.0 + 0.3 * t + (t * 0.7).sin() * 2.0 + (t * 1.3).cos()
            })
            .collect();
        let spec = ArimaSpec {
            order: ArimaOrder::new(1, 1, 1).seasonal(0, 1, 1, 4),
            constant: false,
            method: ArimaMethod::CssMl,
        };
        let mut fit = fit_arima(&y[..60], &spec).expect("fits");
        fit.update(&y[60..]).expect("updates");

        let c = spec.order.diff_coefs();
        let w = difference(&y, &c);
        let (model, ar, ma) = fit.arma();
        let p0 = model.initial_covariance(&ar, &ma);
        let (_, state, _) = kalman::filter(&model, p0, None, &w, false).expect("filters");
        for (a, b) in fit.state.a.iter().zip(&state.a) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
        for (a, b) in fit.state.p.iter().zip(&state.p) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
        assert_eq!(fit.y_tail, y[y.len() - c.len()..].to_vec());
    }
}
