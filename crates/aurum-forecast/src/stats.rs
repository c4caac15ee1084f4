//! Numerical helpers: the normal quantile, a dense linear solver, and the KPSS statistic.

/// The standard normal quantile, Wichura's AS 241 (PPND16; about 1e-16 relative accuracy).
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q
            * (((((((2509.0809287301227 * r + 33430.57558358813) * r + 67265.7709270087) * r
                + 45921.95393154987)
                * r
                + 13731.69376550946)
                * r
                + 1971.5909503065513)
                * r
                + 133.14166789178438)
                * r
                + 3.3871328727963665)
            / (((((((5226.495278852545 * r + 28729.085735721943) * r + 39307.89580009271) * r
                + 21213.794301586597)
                * r
                + 5394.196021424751)
                * r
                + 687.1870074920579)
                * r
                + 42.31333070160091)
                * r
                + 1.0);
    }
    let mut r = if q < 0.0 { p } else { 1.0 - p };
    r = (-r.ln()).sqrt();
    let val = if r <= 5.0 {
        r -= 1.6;
        (((((((7.745450142783414e-4 * r + 0.022723844989269184) * r + 0.2417807251774506) * r
            + 1.2704582524523684)
            * r
            + 3.6478483247632045)
            * r
            + 5.769497221460691)
            * r
            + 4.630337846156546)
            * r
            + 1.4234371107496835)
            / (((((((1.0507500716444169e-9 * r + 5.475938084995345e-4) * r
                + 0.015198666563616457)
                * r
                + 0.14810397642748008)
                * r
                + 0.6897673349851)
                * r
                + 1.6763848301838038)
                * r
                + 2.053191626637759)
                * r
                + 1.0)
    } else {
        r -= 5.0;
        (((((((2.0103343992922881e-7 * r + 2.7115555687434876e-5) * r + 0.0012426609473880784)
            * r
            + 0.026532189526576124)
            * r
            + 0.2965605718285049)
            * r
            + 1.7848265399172913)
            * r
            + 5.463784911164114)
            * r
            + 6.657904643501103)
            / (((((((2.0442631033899397e-15 * r + 1.421511758316446e-7) * r
                + 1.8463183175100548e-5)
                * r
                + 7.868691311456133e-4)
                * r
                + 0.014875361290850615)
                * r
                + 0.1369298809227358)
                * r
                + 0.599832206555888)
                * r
                + 1.0)
    };
    if q < 0.0 { -val } else { val }
}

/// The two-sided normal multiplier for a prediction interval at `level` percent (1.96 for 95).
pub fn interval_multiplier(level: f64) -> f64 {
    normal_quantile(0.5 + level / 200.0)
}

/// Solves `a x = b` (row-major `n × n`) by Gaussian elimination with partial pivoting. `None` when
/// the matrix is singular to working precision.
pub(crate) fn solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    for col in 0..n {
        let piv =
            (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))?;
        if a[piv * n + col].abs() < 1e-300 {
            return None;
        }
        if piv != col {
            for k in 0..n {
                a.swap(col * n + k, piv * n + k);
            }
            b.swap(col, piv);
        }
        let d = a[col * n + col];
        for i in col + 1..n {
            let factor = a[i * n + col] / d;
            if factor != 0.0 {
                for k in col..n {
                    a[i * n + k] -= factor * a[col * n + k];
                }
                b[i] -= factor * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| a[i * n + k] * x[k]).sum();
        x[i] = (b[i] - s) / a[i * n + i];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// `(XᵀX, Xᵀy)` row-major, `x` given column by column.
pub(crate) fn normal_equations(cols: &[Vec<f64>], y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let k = cols.len();
    let mut xtx = vec![0.0; k * k];
    let mut xty = vec![0.0; k];
    for i in 0..k {
        for j in i..k {
            let v: f64 = cols[i].iter().zip(&cols[j]).map(|(a, b)| a * b).sum();
            xtx[i * k + j] = v;
            xtx[j * k + i] = v;
        }
        xty[i] = cols[i].iter().zip(y).map(|(a, b)| a * b).sum();
    }
    (xtx, xty)
}

/// Least squares `min ‖y − X β‖²` through the normal equations, `x` given column by column.
/// Columns are centred-free; the systems here are small (≤ 14 columns) and well scaled.
pub(crate) fn least_squares(cols: &[Vec<f64>], y: &[f64]) -> Option<Vec<f64>> {
    let k = cols.len();
    let (mut xtx, xty) = normal_equations(cols, y);
    // A whisker of ridge keeps exactly collinear columns (a constant series) solvable.
    let scale = (0..k)
        .map(|i| xtx[i * k + i])
        .fold(0.0, f64::max)
        .max(1e-300);
    for i in 0..k {
        xtx[i * k + i] += 1e-12 * scale;
    }
    solve(xtx, xty, k)
}

pub(crate) fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample variance (n − 1 denominator).
pub(crate) fn variance(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() as f64 - 1.0)
}

/// KPSS level-stationarity statistic (Kwiatkowski et al. 1992) with the Bartlett long-run
/// variance and `trunc(3 √n / 13)` lags (Hobijn, Franses & Ooms 2004), the lag rule
/// `forecast::ndiffs` passes to `urca::ur.kpss`.
pub fn kpss_statistic(x: &[f64]) -> f64 {
    let n = x.len();
    let m = mean(x);
    let e: Vec<f64> = x.iter().map(|v| v - m).collect();
    let lags = (3.0 * (n as f64).sqrt() / 13.0).trunc() as usize;
    let mut s = 0.0;
    let mut eta = 0.0;
    for v in &e {
        s += v;
        eta += s * s;
    }
    let nf = n as f64;
    let mut lrv = e.iter().map(|v| v * v).sum::<f64>() / nf;
    for l in 1..=lags.min(n.saturating_sub(1)) {
        let w = 1.0 - l as f64 / (lags as f64 + 1.0);
        let c: f64 = (l..n).map(|t| e[t] * e[t - l]).sum::<f64>() / nf;
        lrv += 2.0 * w * c;
    }
    if lrv <= 0.0 {
        return 0.0;
    }
    eta / (nf * nf * lrv)
}

/// 5 % critical value of the KPSS level test.
pub(crate) const KPSS_CRITICAL_5PCT: f64 = 0.463;

/// Standard normal draws from a seeded xorshift64* generator (Box–Muller): reproducible
/// simulations without a dependency.
pub(crate) struct NormalRng {
    state: u64,
    spare: Option<f64>,
}

impl NormalRng {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            state: seed.max(1),
            spare: None,
        }
    }

    fn uniform(&mut self) -> f64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let bits = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        (bits as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub(crate) fn next(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let (u, v) = (self.uniform(), self.uniform());
        let r = (-2.0 * u.ln()).sqrt();
        let t = std::f64::consts::TAU * v;
        self.spare = Some(r * t.sin());
        r * t.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles_match_tables() {
        assert!((interval_multiplier(95.0) - 1.959_963_984_540_054).abs() < 1e-14);
        assert!((interval_multiplier(80.0) - 1.281_551_565_544_600_4).abs() < 1e-14);
        assert!((normal_quantile(1e-10) + 6.361_340_902_404_056).abs() < 1e-12);
        assert_eq!(normal_quantile(0.5), 0.0);
    }

    #[test]
    fn solve_small_system() {
        let x = solve(vec![2.0, 1.0, 1.0, 3.0], vec![3.0, 5.0], 2).expect("solvable");
        assert!((x[0] - 0.8).abs() < 1e-12 && (x[1] - 1.4).abs() < 1e-12);
    }
}
