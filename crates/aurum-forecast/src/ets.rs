//! Exponential smoothing state-space models (Hyndman et al. 2008; fpp3 ch. 8), with automatic
//! selection by AICc across the admissible forms: additive or multiplicative errors, no, additive
//! or damped trend, no, additive or multiplicative seasonality. Multiplicative forms are considered
//! only for strictly positive series, and additive errors with multiplicative seasonality are
//! excluded (their forecast variance is unbounded: R's `ets(restrict = TRUE)`, statsforecast's
//! AutoETS).
//!
//! Multiplicative forms share the error-correction recursions of the additive ones (the point
//! forecasts of ETS(A,·,·) and ETS(M,·,·) are the same for the same parameters); they differ in
//! the likelihood, `n·ln Σ(e/ŷ)² + 2 Σ ln|ŷ|`, and in the forecast variance, which has no closed form
//! for multiplicative seasonality and is taken from simulated sample paths (a fixed seed, so a
//! forecast is reproducible). Their initial states start from a classical decomposition of the
//! first seasons; the level and slope are then estimated with the smoothing parameters.
//!
//! Implemented: ETS(A,N,N), (A,A,N), (A,Ad,N), (A,N,A), (A,A,A), (A,Ad,A). These are the "class 1"
//! models whose forecast variance is analytic: `σ²(1 + Σ_{j<h} c_j²)` with
//! `c_j = α + β φ_j + γ 1[j ≡ 0 mod m]`, `φ_j = φ + … + φ^j` (fpp3 §8.7, table 8.8).
//! Multiplicative patterns are handled by fitting these models under a log or Box–Cox transform
//! (see [`crate::Transform`]), which keeps every interval analytic.
//!
//! Why not `augurs-ets` 0.10: its seasonal models are unimplemented (`unimplemented!` on fit) and
//! several interval paths `todo!()`; the fitted model is not serialisable either, and the service
//! needs a stored state to forecast from and to update.
//!
//! Estimation: for fixed smoothing parameters the one-step errors are linear in the initial state,
//! so the initial state (level, slope, m − 1 free seasonal terms summing to zero) is profiled out
//! by least squares, and Nelder–Mead searches only (α, β, γ, φ) within R's "usual" bounds:
//! `0 < α < 1`, `0 < β < α`, `0 < γ < 1 − α`, `0.8 ≤ φ ≤ 0.98`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{ForecastError, check_fittable, too_few};
use crate::optim::nelder_mead;

/// Trend component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EtsTrend {
    /// No trend (N).
    None,
    /// Additive trend (A).
    Additive,
    /// Additive damped trend (Ad).
    Damped,
}

/// Seasonal component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EtsSeason {
    /// No seasonality (N).
    None,
    /// Additive seasonality (A).
    Additive,
    /// Multiplicative seasonality (M).
    Multiplicative,
}

/// Error component.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EtsError {
    /// Additive errors (A).
    #[default]
    Additive,
    /// Multiplicative (relative) errors (M).
    Multiplicative,
}

/// What to fit; `None` components are chosen by AICc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtsSpec {
    /// Seasonal period (1 = non-seasonal).
    pub period: usize,
    /// Trend, or `None` to select.
    #[serde(default)]
    pub trend: Option<EtsTrend>,
    /// Season, or `None` to select.
    #[serde(default)]
    pub season: Option<EtsSeason>,
    /// Error, or `None` to select.
    #[serde(default)]
    pub error: Option<EtsError>,
}

impl EtsSpec {
    /// Automatic selection for `period`.
    pub fn auto(period: usize) -> Self {
        Self {
            period,
            trend: None,
            season: None,
            error: None,
        }
    }
}

/// A fitted ETS model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EtsFit {
    /// Trend component.
    pub trend: EtsTrend,
    /// Seasonal component.
    pub season: EtsSeason,
    /// Error component.
    #[serde(default)]
    pub error: EtsError,
    /// Seasonal period.
    pub period: usize,
    /// Level smoothing.
    pub alpha: f64,
    /// Slope smoothing (0 without trend).
    pub beta: f64,
    /// Seasonal smoothing (0 without season).
    pub gamma: f64,
    /// Damping (1 unless damped).
    pub phi: f64,
    /// Residual variance, `SSE / (n − k)` (as R's `ets`), used for intervals.
    pub sigma2: f64,
    /// Gaussian log-likelihood at the MLE of σ².
    pub loglik: f64,
    /// AIC.
    pub aic: f64,
    /// AICc.
    pub aicc: f64,
    /// BIC.
    pub bic: f64,
    /// Observations used.
    pub n: usize,
    /// Level after the last observation.
    pub(crate) level: f64,
    /// Slope after the last observation.
    pub(crate) slope: f64,
    /// Last m seasonal terms, oldest first.
    pub(crate) seasonal: Vec<f64>,
}

impl fmt::Display for EtsFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.trend {
            EtsTrend::None => "N",
            EtsTrend::Additive => "A",
            EtsTrend::Damped => "Ad",
        };
        let s = match self.season {
            EtsSeason::None => "N",
            EtsSeason::Additive => "A",
            EtsSeason::Multiplicative => "M",
        };
        let e = match self.error {
            EtsError::Additive => "A",
            EtsError::Multiplicative => "M",
        };
        write!(f, "ETS({e},{t},{s})")
    }
}

#[derive(Clone, Copy)]
struct Smoothing {
    alpha: f64,
    beta: f64,
    gamma: f64,
    phi: f64,
}

struct State {
    level: f64,
    slope: f64,
    seasonal: Vec<f64>,
    head: usize,
}

/// Runs the recursions, writing one-step errors to `errors` (if given); returns the SSE.
fn run(y: &[f64], sm: Smoothing, st: &mut State, errors: Option<&mut Vec<f64>>) -> f64 {
    let m = st.seasonal.len();
    let mut sse = 0.0;
    let mut errs = errors;
    for &yt in y {
        let s_old = if m > 0 { st.seasonal[st.head] } else { 0.0 };
        let e = yt - (st.level + sm.phi * st.slope + s_old);
        st.level += sm.phi * st.slope + sm.alpha * e;
        st.slope = sm.phi * st.slope + sm.beta * e;
        if m > 0 {
            st.seasonal[st.head] = s_old + sm.gamma * e;
            st.head = (st.head + 1) % m;
        }
        sse += e * e;
        if let Some(v) = errs.as_deref_mut() {
            v.push(e);
        }
    }
    sse
}

struct Config {
    trend: EtsTrend,
    season: EtsSeason,
    error: EtsError,
    m: usize,
}

impl Config {
    fn n_smoothing(&self) -> usize {
        1 + match self.trend {
            EtsTrend::None => 0,
            EtsTrend::Additive => 1,
            EtsTrend::Damped => 2,
        } + usize::from(self.season != EtsSeason::None)
    }

    /// Fewest observations [`fit_one`] fits: two more than the parameters and σ².
    fn min_obs(&self) -> usize {
        self.n_smoothing() + self.n_initial() + 3
    }

    fn n_initial(&self) -> usize {
        1 + usize::from(self.trend != EtsTrend::None)
            + if self.season == EtsSeason::None {
                0
            } else {
                self.m - 1
            }
    }

    fn smoothing(&self, u: &[f64]) -> Smoothing {
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let lo = 1e-4;
        let alpha = lo + (0.9999 - lo) * sig(u[0]);
        let mut i = 1;
        let (mut beta, mut gamma, mut phi) = (0.0, 0.0, 1.0);
        if self.trend != EtsTrend::None {
            beta = lo * 0.5 + (alpha - lo * 0.5) * sig(u[i]);
            i += 1;
        }
        if self.trend == EtsTrend::Damped {
            phi = 0.8 + 0.18 * sig(u[i]);
            i += 1;
        }
        if self.season != EtsSeason::None {
            gamma = lo * 0.5 + (1.0 - alpha - lo * 0.5) * sig(u[i]);
        }
        Smoothing {
            alpha,
            beta,
            gamma,
            phi,
        }
    }

    fn state(&self, x0: &[f64]) -> State {
        let has_trend = self.trend != EtsTrend::None;
        let seasonal = if self.season == EtsSeason::Additive {
            // Free terms x0[k..k+m-1] for the oldest m − 1 seasons; the newest makes the sum zero.
            let k = 1 + usize::from(has_trend);
            let mut s: Vec<f64> = x0[k..k + self.m - 1].to_vec();
            s.push(-s.iter().sum::<f64>());
            s
        } else {
            Vec::new()
        };
        State {
            level: x0[0],
            slope: if has_trend { x0[1] } else { 0.0 },
            seasonal,
            head: 0,
        }
    }

    /// Least-squares initial state for the given smoothing parameters; returns (x0, SSE).
    fn profile(&self, y: &[f64], sm: Smoothing) -> Option<(Vec<f64>, f64)> {
        let k = self.n_initial();
        let mut e0 = Vec::with_capacity(y.len());
        run(y, sm, &mut self.state(&vec![0.0; k]), Some(&mut e0));
        let zeros = vec![0.0; y.len()];
        let mut cols = Vec::with_capacity(k);
        for j in 0..k {
            let mut basis = vec![0.0; k];
            basis[j] = 1.0;
            let mut d = Vec::with_capacity(y.len());
            run(&zeros, sm, &mut self.state(&basis), Some(&mut d));
            cols.push(d);
        }
        let target: Vec<f64> = e0.iter().map(|v| -v).collect();
        let x0 = crate::stats::least_squares(&cols, &target)?;
        let sse = run(y, sm, &mut self.state(&x0), None);
        sse.is_finite().then_some((x0, sse))
    }
}

fn fit_one(y: &[f64], cfg: &Config) -> Option<EtsFit> {
    let n = y.len();
    let n_sm = cfg.n_smoothing();
    let k = n_sm + cfg.n_initial() + 1;
    if n < cfg.min_obs() {
        return None;
    }
    let objective = |u: &[f64]| -> f64 {
        match cfg.profile(y, cfg.smoothing(u)) {
            Some((_, sse)) if sse > 0.0 => (sse / n as f64).ln(),
            Some(_) => -1e10,
            None => f64::INFINITY,
        }
    };
    // Start near R's defaults (α = 0.1·… is too timid for many series): α ≈ 0.3, small β and γ.
    let mut u0 = vec![-0.85];
    if cfg.trend != EtsTrend::None {
        u0.push(-2.0);
    }
    if cfg.trend == EtsTrend::Damped {
        u0.push(1.5);
    }
    if cfg.season != EtsSeason::None {
        u0.push(-2.0);
    }
    if cfg.error == EtsError::Multiplicative || cfg.season == EtsSeason::Multiplicative {
        return fit_general(y, cfg, u0);
    }
    let first = nelder_mead(objective, &u0, 1.0, 2000, 1e-10);
    let best = nelder_mead(objective, &first.x, 0.3, 2000, 1e-12);
    let sm = cfg.smoothing(&best.x);
    let (x0, sse) = cfg.profile(y, sm)?;
    let mut st = cfg.state(&x0);
    run(y, sm, &mut st, None);
    let nf = n as f64;
    let kf = k as f64;
    let sigma2_mle = (sse / nf).max(1e-300);
    let loglik = -0.5 * nf * ((2.0 * std::f64::consts::PI * sigma2_mle).ln() + 1.0);
    let aic = -2.0 * loglik + 2.0 * kf;
    let aicc = if nf - kf - 1.0 > 0.0 {
        aic + 2.0 * kf * (kf + 1.0) / (nf - kf - 1.0)
    } else {
        f64::INFINITY
    };
    // Rotate the seasonal ring so that index 0 is the oldest term.
    let m = st.seasonal.len();
    let seasonal: Vec<f64> = (0..m).map(|j| st.seasonal[(st.head + j) % m]).collect();
    Some(EtsFit {
        trend: cfg.trend,
        season: cfg.season,
        error: cfg.error,
        period: cfg.m,
        alpha: sm.alpha,
        beta: sm.beta,
        gamma: sm.gamma,
        phi: sm.phi,
        sigma2: sse / (nf - kf),
        loglik,
        aic,
        aicc,
        bic: -2.0 * loglik + kf * nf.ln(),
        n,
        level: st.level,
        slope: st.slope,
        seasonal,
    })
}

/// Fits ETS, selecting unspecified components by AICc.
///
/// # Errors
///
/// Non-finite values or values beyond ±[`crate::MAX_MAGNITUDE`], a seasonal model on fewer than
/// two seasons, too few observations for any candidate, or ([`ForecastError::FitFailed`]) no
/// candidate with a finite likelihood.
pub fn fit_ets(y: &[f64], spec: &EtsSpec) -> Result<EtsFit, ForecastError> {
    check_fittable(y)?;
    let m = spec.period.max(1);
    let positive = y.iter().all(|v| *v > 0.0);
    if matches!(
        spec.season,
        Some(EtsSeason::Additive | EtsSeason::Multiplicative)
    ) {
        if m < 2 {
            return Err(ForecastError::InvalidParameter(
                "seasonal ETS needs a period of at least 2".into(),
            ));
        }
        if y.len() < 2 * m {
            return Err(too_few(
                format!("seasonal ETS with period {m}"),
                2 * m,
                y.len(),
            ));
        }
    }
    let multiplicative_asked = spec.error == Some(EtsError::Multiplicative)
        || spec.season == Some(EtsSeason::Multiplicative);
    if multiplicative_asked && !positive {
        return Err(ForecastError::InvalidParameter(
            "multiplicative ETS needs a strictly positive series".into(),
        ));
    }
    let trends = match spec.trend {
        Some(t) => vec![t],
        None => vec![EtsTrend::None, EtsTrend::Additive, EtsTrend::Damped],
    };
    let seasons = match spec.season {
        Some(s) => vec![s],
        None if m > 1 && y.len() >= 2 * m && positive => vec![
            EtsSeason::None,
            EtsSeason::Additive,
            EtsSeason::Multiplicative,
        ],
        None if m > 1 && y.len() >= 2 * m => vec![EtsSeason::None, EtsSeason::Additive],
        None => vec![EtsSeason::None],
    };
    let errors = match spec.error {
        Some(e) => vec![e],
        None if positive => vec![EtsError::Additive, EtsError::Multiplicative],
        None => vec![EtsError::Additive],
    };
    let mut best: Option<EtsFit> = None;
    let mut needed = usize::MAX;
    for &error in &errors {
        for &trend in &trends {
            for &season in &seasons {
                // Additive errors with multiplicative seasonality have unbounded forecast variance.
                if error == EtsError::Additive
                    && season == EtsSeason::Multiplicative
                    && spec.error.is_none()
                {
                    continue;
                }
                let cfg = Config {
                    trend,
                    season,
                    error,
                    m,
                };
                needed = needed.min(cfg.min_obs());
                if let Some(f) = fit_one(y, &cfg)
                    && best.as_ref().is_none_or(|b| f.aicc < b.aicc)
                {
                    best = Some(f);
                }
            }
        }
    }
    match best {
        Some(best) => Ok(best),
        None if y.len() < needed => Err(too_few("ETS", needed, y.len())),
        // Long enough, yet no candidate has a finite likelihood: our failure, not a short series.
        None => Err(ForecastError::FitFailed(
            "no ETS model has a finite likelihood on this series".into(),
        )),
    }
}

/// One step of the error-correction recursions of any form; returns (ŷ, y − ŷ). The forms differ
/// only for multiplicative seasonality; the error type does not change the recursions.
fn step(sm: Smoothing, st: &mut State, season: EtsSeason, y: f64) -> (f64, f64) {
    let m = st.seasonal.len();
    let base = st.level + sm.phi * st.slope;
    let s_old = if m > 0 { st.seasonal[st.head] } else { 0.0 };
    let yhat = match season {
        EtsSeason::None => base,
        EtsSeason::Additive => base + s_old,
        EtsSeason::Multiplicative => base * s_old,
    };
    let e = y - yhat;
    match season {
        EtsSeason::None | EtsSeason::Additive => {
            st.level = base + sm.alpha * e;
            st.slope = sm.phi * st.slope + sm.beta * e;
            if m > 0 {
                st.seasonal[st.head] = s_old + sm.gamma * e;
            }
        }
        EtsSeason::Multiplicative => {
            st.level = base + sm.alpha * e / s_old;
            st.slope = sm.phi * st.slope + sm.beta * e / s_old;
            st.seasonal[st.head] = s_old + sm.gamma * e / base;
        }
    }
    if m > 0 {
        st.head = (st.head + 1) % m;
    }
    (yhat, e)
}

/// Runs the recursions of any form; returns (Σ e², Σ (e/ŷ)², Σ ln|ŷ|), or `None` when a forecast
/// or a multiplicative state stops being positive where it must be.
fn run_general(y: &[f64], sm: Smoothing, st: &mut State, cfg: &Config) -> Option<(f64, f64, f64)> {
    let (mut sse, mut rel, mut logs) = (0.0, 0.0, 0.0);
    let multiplicative =
        cfg.error == EtsError::Multiplicative || cfg.season == EtsSeason::Multiplicative;
    for &yt in y {
        let (yhat, e) = step(sm, st, cfg.season, yt);
        if multiplicative && (yhat <= 0.0 || !yhat.is_finite()) {
            return None;
        }
        sse += e * e;
        if multiplicative {
            rel += (e / yhat).powi(2);
            logs += yhat.ln();
        }
    }
    sse.is_finite().then_some((sse, rel, logs))
}

/// Initial states from the first seasons: seasonal indices by a classical decomposition (ratios
/// for multiplicative, differences for additive seasonality, normalised), then a line through the
/// first seasonally adjusted values for level and slope.
fn initial_state(y: &[f64], cfg: &Config) -> State {
    let m = if cfg.season == EtsSeason::None {
        0
    } else {
        cfg.m
    };
    let mut seasonal = Vec::new();
    if let Some(full) = y.len().checked_div(m) {
        let seasons = full.clamp(1, 3);
        let mut idx = vec![0.0; m];
        for k in 0..seasons {
            let chunk = &y[k * m..(k + 1) * m];
            let mean = chunk.iter().sum::<f64>() / m as f64;
            for (j, v) in chunk.iter().enumerate() {
                idx[j] += if cfg.season == EtsSeason::Multiplicative {
                    v / mean
                } else {
                    v - mean
                } / seasons as f64;
            }
        }
        if cfg.season == EtsSeason::Multiplicative {
            let mean = idx.iter().sum::<f64>() / m as f64;
            idx.iter_mut().for_each(|v| *v /= mean);
        } else {
            let mean = idx.iter().sum::<f64>() / m as f64;
            idx.iter_mut().for_each(|v| *v -= mean);
        }
        seasonal = idx;
    }
    let k = y.len().min((2 * m).max(10));
    let adjusted: Vec<f64> = (0..k)
        .map(|t| match cfg.season {
            EtsSeason::None => y[t],
            EtsSeason::Additive => y[t] - seasonal[t % m],
            EtsSeason::Multiplicative => y[t] / seasonal[t % m],
        })
        .collect();
    let (level, slope) = if cfg.trend == EtsTrend::None {
        (adjusted.iter().sum::<f64>() / k as f64, 0.0)
    } else {
        let tm = (k as f64 + 1.0) / 2.0;
        let ym = adjusted.iter().sum::<f64>() / k as f64;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (t, v) in adjusted.iter().enumerate() {
            let dt = t as f64 + 1.0 - tm;
            sxy += dt * (v - ym);
            sxx += dt * dt;
        }
        let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        (ym - b * tm, b)
    };
    State {
        level,
        slope,
        seasonal,
        head: 0,
    }
}

/// Fits a form with multiplicative errors or seasonality: Nelder–Mead over the smoothing
/// parameters and the initial level and slope (the seasonal indices stay at their
/// decomposition values).
fn fit_general(y: &[f64], cfg: &Config, mut u0: Vec<f64>) -> Option<EtsFit> {
    let n = y.len();
    let init = initial_state(y, cfg);
    let n_sm = u0.len();
    let has_trend = cfg.trend != EtsTrend::None;
    let scale = {
        let mean = y.iter().sum::<f64>() / n as f64;
        (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64)
            .sqrt()
            .max(1e-8)
    };
    u0.push(0.0);
    if has_trend {
        u0.push(0.0);
    }
    let state_of = |u: &[f64]| {
        let mut st = State {
            level: init.level + scale * u[n_sm],
            slope: if has_trend {
                init.slope + 0.1 * scale * u[n_sm + 1]
            } else {
                0.0
            },
            seasonal: init.seasonal.clone(),
            head: 0,
        };
        if cfg.season == EtsSeason::Multiplicative && st.level <= 0.0 {
            st.level = f64::NAN;
        }
        st
    };
    let criterion = |sse: f64, rel: f64, logs: f64| match cfg.error {
        EtsError::Additive => n as f64 * (sse / n as f64).ln(),
        EtsError::Multiplicative => n as f64 * (rel / n as f64).ln() + 2.0 * logs,
    };
    let objective = |u: &[f64]| -> f64 {
        let sm = cfg.smoothing(&u[..n_sm]);
        match run_general(y, sm, &mut state_of(u), cfg) {
            Some((sse, rel, logs)) if sse > 0.0 => criterion(sse, rel, logs),
            Some(_) => -1e10,
            None => f64::INFINITY,
        }
    };
    let first = nelder_mead(objective, &u0, 1.0, 3000, 1e-10);
    let best = nelder_mead(objective, &first.x, 0.3, 3000, 1e-12);
    let sm = cfg.smoothing(&best.x[..n_sm]);
    let mut st = state_of(&best.x);
    let (sse, rel, logs) = run_general(y, sm, &mut st, cfg)?;
    let nf = n as f64;
    let kf = (cfg.n_smoothing() + cfg.n_initial() + 1) as f64;
    if nf <= kf + 1.0 {
        return None;
    }
    let (sigma2_mle, sigma2) = match cfg.error {
        EtsError::Additive => (sse / nf, sse / (nf - kf)),
        EtsError::Multiplicative => (rel / nf, rel / (nf - kf)),
    };
    let sigma2_mle = sigma2_mle.max(1e-300);
    let mut loglik = -0.5 * nf * ((2.0 * std::f64::consts::PI * sigma2_mle).ln() + 1.0);
    if cfg.error == EtsError::Multiplicative {
        loglik -= logs;
    }
    if !loglik.is_finite() {
        return None;
    }
    let aic = -2.0 * loglik + 2.0 * kf;
    let aicc = if nf - kf - 1.0 > 0.0 {
        aic + 2.0 * kf * (kf + 1.0) / (nf - kf - 1.0)
    } else {
        f64::INFINITY
    };
    let m = st.seasonal.len();
    let seasonal: Vec<f64> = (0..m).map(|j| st.seasonal[(st.head + j) % m]).collect();
    Some(EtsFit {
        trend: cfg.trend,
        season: cfg.season,
        error: cfg.error,
        period: cfg.m,
        alpha: sm.alpha,
        beta: sm.beta,
        gamma: sm.gamma,
        phi: sm.phi,
        sigma2,
        loglik,
        aic,
        aicc,
        bic: -2.0 * loglik + kf * nf.ln(),
        n,
        level: st.level,
        slope: st.slope,
        seasonal,
    })
}

/// Sample paths simulated for the forecast variance of forms without a closed form.
const SIMULATED_PATHS: usize = 2000;

impl EtsFit {
    fn is_class_1(&self) -> bool {
        self.error == EtsError::Additive && self.season != EtsSeason::Multiplicative
    }

    fn smoothing_params(&self) -> Smoothing {
        Smoothing {
            alpha: self.alpha,
            beta: self.beta,
            gamma: self.gamma,
            phi: self.phi,
        }
    }

    /// Point forecasts and forecast variances for `h` steps.
    pub(crate) fn forecast_moments(&self, h: usize) -> (Vec<f64>, Vec<f64>) {
        if !self.is_class_1() {
            return self.simulated_moments(h);
        }
        let m = self.seasonal.len();
        let mut means = Vec::with_capacity(h);
        let mut vars = Vec::with_capacity(h);
        let mut phi_h = 0.0;
        let mut phi_pow = 1.0;
        let mut var_sum = 0.0;
        for step in 1..=h {
            phi_pow *= self.phi;
            phi_h += phi_pow;
            let trend = if self.trend == EtsTrend::None {
                0.0
            } else {
                phi_h * self.slope
            };
            let s = if m > 0 {
                self.seasonal[(step - 1) % m]
            } else {
                0.0
            };
            means.push(self.level + trend + s);
            vars.push(self.sigma2 * (1.0 + var_sum));
            // c_j for j = step (used from the next horizon on).
            let season_hit = m > 0 && step % m == 0;
            let c = self.alpha
                + self.beta
                    * if self.trend == EtsTrend::None {
                        0.0
                    } else {
                        phi_h
                    }
                + if season_hit { self.gamma } else { 0.0 };
            var_sum += c * c;
        }
        (means, vars)
    }

    /// Point forecasts (the recursions without errors) and variances from simulated sample paths
    /// (errors `N(0, σ²)`, relative for multiplicative errors), with a fixed seed.
    fn simulated_moments(&self, h: usize) -> (Vec<f64>, Vec<f64>) {
        let sm = self.smoothing_params();
        let fresh = || State {
            level: self.level,
            slope: self.slope,
            seasonal: self.seasonal.clone(),
            head: 0,
        };
        let mut means = Vec::with_capacity(h);
        let mut st = fresh();
        for _ in 0..h {
            let base = st.level + sm.phi * st.slope;
            let s = st.seasonal.get(st.head).copied();
            let yhat = match (self.season, s) {
                (EtsSeason::Additive, Some(s)) => base + s,
                (EtsSeason::Multiplicative, Some(s)) => base * s,
                _ => base,
            };
            means.push(yhat);
            step(sm, &mut st, self.season, yhat);
        }
        let sigma = self.sigma2.max(0.0).sqrt();
        let mut rng = crate::stats::NormalRng::new(0x05ee_de75);
        let (mut sum, mut sum2) = (vec![0.0; h], vec![0.0; h]);
        for _ in 0..SIMULATED_PATHS {
            let mut st = fresh();
            for j in 0..h {
                let base = st.level + sm.phi * st.slope;
                let s = st.seasonal.get(st.head).copied();
                let yhat = match (self.season, s) {
                    (EtsSeason::Additive, Some(s)) => base + s,
                    (EtsSeason::Multiplicative, Some(s)) => base * s,
                    _ => base,
                };
                let z = sigma * rng.next();
                let y = match self.error {
                    EtsError::Additive => yhat + z,
                    EtsError::Multiplicative => yhat * (1.0 + z),
                };
                step(sm, &mut st, self.season, y);
                sum[j] += y;
                sum2[j] += y * y;
            }
        }
        let p = SIMULATED_PATHS as f64;
        let vars = sum
            .iter()
            .zip(&sum2)
            .map(|(s, s2)| (s2 / p - (s / p).powi(2)).max(0.0))
            .collect();
        (means, vars)
    }

    /// Updates the state with new observations, parameters fixed.
    pub(crate) fn update(&mut self, new: &[f64]) -> Result<(), ForecastError> {
        check_fittable(new)?;
        if !self.is_class_1() {
            let mut st = State {
                level: self.level,
                slope: self.slope,
                seasonal: self.seasonal.clone(),
                head: 0,
            };
            for &y in new {
                step(self.smoothing_params(), &mut st, self.season, y);
            }
            let m = st.seasonal.len();
            self.seasonal = (0..m).map(|j| st.seasonal[(st.head + j) % m]).collect();
            self.level = st.level;
            self.slope = st.slope;
            self.n += new.len();
            return Ok(());
        }
        let sm = Smoothing {
            alpha: self.alpha,
            beta: self.beta,
            gamma: self.gamma,
            phi: self.phi,
        };
        let mut st = State {
            level: self.level,
            slope: self.slope,
            seasonal: self.seasonal.clone(),
            head: 0,
        };
        run(new, sm, &mut st, None);
        let m = st.seasonal.len();
        self.seasonal = (0..m).map(|j| st.seasonal[(st.head + j) % m]).collect();
        self.level = st.level;
        self.slope = st.slope;
        self.n += new.len();
        Ok(())
    }
}
