//! The exact Gaussian likelihood of a stationary ARMA process through Harvey's state-space form
//! and the Kalman filter, and the exact conditional forecast of the integrated model.
//!
//! State space (Harvey 1989, §3.3; the form R's `arima` and statsmodels' SARIMAX use): with
//! `r = max(p, q + 1)` and φ, θ padded with zeros to length `r`,
//!
//! ```text
//! x_t     = Z α_t,                Z = (1, 0, …, 0)
//! α_{t+1} = T α_t + R ε_{t+1},    T = [φ | I_{r-1} over 0],  R = (1, θ_1, …, θ_{r-1})'
//! ```
//!
//! The filter starts from the exact stationary covariance `P_0 = T P_0 T' + R R'` (σ² = 1). It is
//! computed from the ARMA autocovariances and the ψ weights in `O(r²·nnz)` rather than by solving
//! the `r² × r²` Lyapunov system, which matters for seasonal models (r = 27 for a (2,0,2)(2,0,1)[12]).
//!
//! Everything runs with σ² = 1; σ² is concentrated out (its MLE is the mean squared standardised
//! innovation), and so is the mean: the innovations are linear in the data, so filtering the
//! series and a column of ones together gives the GLS mean in closed form.

use serde::{Deserialize, Serialize};

/// ARMA autocovariances γ(0..=max_lag) for unit innovation variance, and ψ weights ψ_0..=ψ_max_lag.
fn acov_and_psi(phi: &[f64], theta: &[f64], max_lag: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let p = phi.len();
    let q = theta.len();
    let th = |j: usize| -> f64 {
        if j == 0 {
            1.0
        } else if j <= q {
            theta[j - 1]
        } else {
            0.0
        }
    };
    let n_psi = max_lag.max(q) + 1;
    let mut psi = vec![0.0; n_psi];
    for j in 0..n_psi {
        let mut v = th(j);
        for i in 1..=p.min(j) {
            v += phi[i - 1] * psi[j - i];
        }
        psi[j] = v;
    }
    // c_k = Σ_{j=k}^{q} θ_j ψ_{j-k}
    let c = |k: usize| -> f64 { (k..=q).map(|j| th(j) * psi[j - k]).sum() };
    let mut gamma = vec![0.0; max_lag.max(p) + 1];
    if p == 0 {
        for (k, g) in gamma.iter_mut().enumerate() {
            *g = c(k);
        }
    } else {
        let m = p + 1;
        let mut a = vec![0.0; m * m];
        let mut b = vec![0.0; m];
        for k in 0..m {
            a[k * m + k] += 1.0;
            for j in 1..=p {
                let idx = k.abs_diff(j);
                a[k * m + idx] -= phi[j - 1];
            }
            b[k] = c(k);
        }
        let g = crate::stats::solve(a, b, m)?;
        gamma[..m].copy_from_slice(&g);
        for k in m..gamma.len() {
            let mut v = c(k);
            for j in 1..=p {
                v += phi[j - 1] * gamma[k - j];
            }
            gamma[k] = v;
        }
    }
    if gamma[0] <= 0.0 || !gamma.iter().all(|v| v.is_finite()) {
        return None;
    }
    psi.truncate(max_lag + 1);
    psi.resize(max_lag + 1, 0.0);
    Some((gamma, psi))
}

/// The ARMA model in state-space form, σ² = 1.
#[derive(Clone, Debug)]
pub(crate) struct Arma {
    /// φ padded to r.
    pub phi: Vec<f64>,
    /// R = (1, θ_1, …, θ_{r-1}).
    pub rvec: Vec<f64>,
    pub r: usize,
}

impl Arma {
    pub fn new(ar: &[f64], ma: &[f64]) -> Self {
        let r = ar.len().max(ma.len() + 1);
        let mut phi = ar.to_vec();
        phi.resize(r, 0.0);
        let mut rvec = vec![1.0];
        rvec.extend_from_slice(ma);
        rvec.resize(r, 0.0);
        Self { phi, rvec, r }
    }

    /// The stationary state covariance `P_0` (row-major `r × r`).
    pub fn initial_covariance(&self, ar: &[f64], ma: &[f64]) -> Option<Vec<f64>> {
        let r = self.r;
        let (gamma, psi) = acov_and_psi(ar, ma, r)?;
        // Row i of the state: Σ_{L≥1} u_i(L) x_{t-L} + Σ_{M≥0} m_i(M) ε_{t-M}.
        let mut us: Vec<Vec<(usize, f64)>> = Vec::with_capacity(r);
        let mut ms: Vec<Vec<(usize, f64)>> = Vec::with_capacity(r);
        for i in 0..r {
            us.push(
                (1..=r - i)
                    .filter_map(|l| {
                        let c = self.phi[i + l - 1];
                        (c != 0.0).then_some((l, c))
                    })
                    .collect(),
            );
            ms.push(
                (0..r - i)
                    .filter_map(|m| {
                        let c = self.rvec[i + m];
                        (c != 0.0).then_some((m, c))
                    })
                    .collect(),
            );
        }
        let psi_at = |d: isize| -> f64 {
            if d < 0 {
                0.0
            } else {
                psi.get(d as usize).copied().unwrap_or(0.0)
            }
        };
        let mut p0 = vec![0.0; r * r];
        for i in 0..r {
            for j in i..r {
                let mut v = 0.0;
                for &(l, a) in &us[i] {
                    for &(l2, b) in &us[j] {
                        v += a * b * gamma[l.abs_diff(l2)];
                    }
                    for &(m2, b) in &ms[j] {
                        v += a * b * psi_at(m2 as isize - l as isize);
                    }
                }
                for &(m, a) in &ms[i] {
                    for &(l2, b) in &us[j] {
                        v += a * b * psi_at(m as isize - l2 as isize);
                    }
                    for &(m2, b) in &ms[j] {
                        if m == m2 {
                            v += a * b;
                        }
                    }
                }
                p0[i * r + j] = v;
                p0[j * r + i] = v;
            }
        }
        Some(p0)
    }

    /// `a ← T a`.
    fn predict_mean(&self, a: &mut [f64]) {
        let a0 = a[0];
        for i in 0..self.r {
            let next = if i + 1 < self.r { a[i + 1] } else { 0.0 };
            a[i] = self.phi[i] * a0 + next;
        }
    }

    /// `P ← T P T' + R R'` using `work` (r × r).
    fn predict_cov(&self, p: &mut [f64], work: &mut [f64]) {
        let r = self.r;
        // work = T P
        for i in 0..r {
            for j in 0..r {
                let below = if i + 1 < r { p[(i + 1) * r + j] } else { 0.0 };
                work[i * r + j] = self.phi[i] * p[j] + below;
            }
        }
        // p = work T' + R R'
        for i in 0..r {
            let wi0 = work[i * r];
            for j in 0..r {
                let right = if j + 1 < r { work[i * r + j + 1] } else { 0.0 };
                p[i * r + j] = wi0 * self.phi[j] + right + self.rvec[i] * self.rvec[j];
            }
        }
    }
}

/// Filter state after the last observation: predicted mean and covariance of α_{n+1}.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct FilterState {
    /// Predicted state mean a_{n+1|n} (of the demeaned differenced series).
    pub a: Vec<f64>,
    /// Predicted state covariance P_{n+1|n} (row-major, units of σ²).
    pub p: Vec<f64>,
    /// `true` once P has converged to R R' (it then stays there).
    pub steady: bool,
}

/// Sums the likelihood needs, for a series `w` and (optionally) a column of ones.
pub(crate) struct Sums {
    pub n: usize,
    pub sum_log_f: f64,
    pub s_ww: f64,
    pub s_w1: f64,
    pub s_11: f64,
}

/// Runs the filter over `w` (and a column of ones when `with_ones`), from `state` (or the
/// stationary start when `None`). Returns the sums and the final state, or `None` when the model
/// is numerically unusable (a non-positive innovation variance).
pub(crate) fn filter(
    model: &Arma,
    p0: Option<Vec<f64>>,
    state: Option<&FilterState>,
    w: &[f64],
    with_ones: bool,
) -> Option<(Sums, FilterState, Vec<f64>)> {
    let r = model.r;
    let (mut aw, mut p, mut steady) = match state {
        Some(s) => (s.a.clone(), s.p.clone(), s.steady),
        None => (vec![0.0; r], p0?, false),
    };
    let mut a1 = vec![0.0; r];
    let mut work = vec![0.0; r * r];
    let mut k = vec![0.0; r];
    let mut row0 = vec![0.0; r];
    let mut sums = Sums {
        n: w.len(),
        sum_log_f: 0.0,
        s_ww: 0.0,
        s_w1: 0.0,
        s_11: 0.0,
    };
    let mut innovations = Vec::with_capacity(w.len());
    for &wt in w {
        let f = if steady { 1.0 } else { p[0] };
        if f.is_nan() || f <= 0.0 || !f.is_finite() {
            return None;
        }
        let vw = wt - aw[0];
        let v1 = 1.0 - a1[0];
        sums.sum_log_f += f.ln();
        sums.s_ww += vw * vw / f;
        innovations.push(vw / f.sqrt());
        if with_ones {
            sums.s_w1 += vw * v1 / f;
            sums.s_11 += v1 * v1 / f;
        }
        if steady {
            // K = R, P_{t|t} = 0, P_{t+1|t} = R R'.
            for i in 0..r {
                aw[i] += model.rvec[i] * vw;
                if with_ones {
                    a1[i] += model.rvec[i] * v1;
                }
            }
        } else {
            for i in 0..r {
                k[i] = p[i * r] / f;
            }
            for i in 0..r {
                aw[i] += k[i] * vw;
                if with_ones {
                    a1[i] += k[i] * v1;
                }
            }
            row0.copy_from_slice(&p[..r]);
            for i in 0..r {
                for j in 0..r {
                    p[i * r + j] -= k[i] * row0[j];
                }
            }
            model.predict_cov(&mut p, &mut work);
            let mut dev = 0.0f64;
            for i in 0..r {
                for j in 0..r {
                    dev = dev.max((p[i * r + j] - model.rvec[i] * model.rvec[j]).abs());
                }
            }
            if dev < 1e-13 {
                steady = true;
            }
        }
        model.predict_mean(&mut aw);
        if with_ones {
            model.predict_mean(&mut a1);
        }
    }
    if steady {
        for i in 0..r {
            for j in 0..r {
                p[i * r + j] = model.rvec[i] * model.rvec[j];
            }
        }
    }
    Some((sums, FilterState { a: aw, p, steady }, innovations))
}

/// Forecasts `h` steps of `y` where `δ(B) y_t = μ + x_t` with δ(B) = 1 − Σ c_k B^k, from the
/// filter state of `x` and the last `K = len(c)` observations of `y` (oldest first). Returns means
/// and variances (units of σ²).
pub(crate) fn forecast(
    model: &Arma,
    state: &FilterState,
    diff_coefs: &[f64],
    y_tail: &[f64],
    mu: f64,
    h: usize,
) -> (Vec<f64>, Vec<f64>) {
    let r = model.r;
    let kk = diff_coefs.len();
    let dim = r + kk;
    // Augmented state s_t = (α_t, y_{t-1}, …, y_{t-K}).
    let mut s = vec![0.0; dim];
    s[..r].copy_from_slice(&state.a);
    for (j, slot) in s[r..].iter_mut().enumerate() {
        *slot = y_tail[kk - 1 - j];
    }
    let mut p = vec![0.0; dim * dim];
    for i in 0..r {
        for j in 0..r {
            p[i * dim + j] = state.p[i * r + j];
        }
    }
    // Transition matrix.
    let mut t = vec![0.0; dim * dim];
    for i in 0..r {
        t[i * dim] = model.phi[i];
        if i + 1 < r {
            t[i * dim + i + 1] = 1.0;
        }
    }
    if kk > 0 {
        // y_t = μ + α_t[0] + Σ c_k y_{t-k} becomes the first lag of the next state.
        t[r * dim] = 1.0;
        for (k, c) in diff_coefs.iter().enumerate() {
            t[r * dim + r + k] = *c;
        }
        for j in 1..kk {
            t[(r + j) * dim + r + j - 1] = 1.0;
        }
    }
    let mut z = vec![0.0; dim];
    z[0] = 1.0;
    for (k, c) in diff_coefs.iter().enumerate() {
        z[r + k] = *c;
    }
    let mut means = Vec::with_capacity(h);
    let mut vars = Vec::with_capacity(h);
    let mut tmp = vec![0.0; dim * dim];
    for _ in 0..h {
        let m: f64 = mu + z.iter().zip(&s).map(|(a, b)| a * b).sum::<f64>();
        let mut v = 0.0;
        for i in 0..dim {
            if z[i] == 0.0 {
                continue;
            }
            for j in 0..dim {
                v += z[i] * p[i * dim + j] * z[j];
            }
        }
        means.push(m);
        vars.push(v.max(0.0));
        // s ← T s + μ e_r ; P ← T P T' + R R'
        let mut ns = vec![0.0; dim];
        for i in 0..dim {
            ns[i] = (0..dim).map(|j| t[i * dim + j] * s[j]).sum();
        }
        if kk > 0 {
            ns[r] += mu;
        }
        s = ns;
        for i in 0..dim {
            for j in 0..dim {
                tmp[i * dim + j] = (0..dim)
                    .filter(|&k| t[i * dim + k] != 0.0)
                    .map(|k| t[i * dim + k] * p[k * dim + j])
                    .sum();
            }
        }
        for i in 0..dim {
            for j in 0..dim {
                let mut v: f64 = (0..dim)
                    .filter(|&k| t[j * dim + k] != 0.0)
                    .map(|k| tmp[i * dim + k] * t[j * dim + k])
                    .sum();
                if i < r && j < r {
                    v += model.rvec[i] * model.rvec[j];
                }
                p[i * dim + j] = v;
            }
        }
    }
    (means, vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P_0 by brute force: Σ_k T^k R R' T'^k.
    fn brute_p0(m: &Arma) -> Vec<f64> {
        let r = m.r;
        let mut p = vec![0.0; r * r];
        let mut work = vec![0.0; r * r];
        for _ in 0..5000 {
            m.predict_cov(&mut p, &mut work);
        }
        p
    }

    #[test]
    fn stationary_covariance_matches_brute_force() {
        for (ar, ma) in [
            (vec![0.5], vec![0.3]),
            (vec![0.6, -0.2], vec![0.4, 0.1, -0.3]),
            (vec![0.2, 0.1, 0.05, 0.3], vec![]),
            (vec![], vec![-0.4, 0.2]),
        ] {
            let m = Arma::new(&ar, &ma);
            let p0 = m.initial_covariance(&ar, &ma).expect("stationary");
            let brute = brute_p0(&m);
            for (a, b) in p0.iter().zip(&brute) {
                assert!((a - b).abs() < 1e-10, "{ar:?} {ma:?}: {a} vs {b}");
            }
        }
    }
}
