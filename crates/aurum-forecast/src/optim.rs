//! Small unconstrained minimisers: BFGS with central-difference gradients (ARIMA likelihoods) and
//! Nelder–Mead (ETS). Constraints are the callers' business, through smooth reparameterisations.
//!
//! Why not the `argmin` crate: the problems here have 1–10 parameters and objectives that cost
//! microseconds, so the generic machinery (and its dependency tree) buys nothing, while owning the
//! stopping rules lets the ARIMA fit converge tightly enough to match reference implementations to
//! 1e-3 relative. An objective signals an infeasible point by returning a non-finite value; both
//! methods then step back.

/// Outcome of a minimisation.
#[derive(Clone, Debug)]
pub(crate) struct Minimum {
    pub x: Vec<f64>,
    pub f: f64,
    pub converged: bool,
}

/// Central-difference gradient; `f0` is used for one-sided steps when a central one is infeasible.
fn gradient(f: &mut impl FnMut(&[f64]) -> f64, x: &[f64], f0: f64, g: &mut [f64]) {
    let mut xt = x.to_vec();
    for i in 0..x.len() {
        let h = 1e-6 * x[i].abs().max(1e-2);
        xt[i] = x[i] + h;
        let fp = f(&xt);
        xt[i] = x[i] - h;
        let fm = f(&xt);
        xt[i] = x[i];
        g[i] = if fp.is_finite() && fm.is_finite() {
            (fp - fm) / (2.0 * h)
        } else if fp.is_finite() {
            (fp - f0) / h
        } else if fm.is_finite() {
            (f0 - fm) / h
        } else {
            0.0
        };
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// BFGS with a backtracking (Armijo) line search and numerical gradients. Stops when every
/// gradient component is below `gtol`, or after three consecutive steps that improve `f` by less
/// than `ftol` relative (a drift along a flat ridge, e.g. towards a unit root).
pub(crate) fn bfgs(
    mut f: impl FnMut(&[f64]) -> f64,
    x0: &[f64],
    max_iter: usize,
    gtol: f64,
    ftol: f64,
) -> Minimum {
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut fx = f(&x);
    if n == 0 || !fx.is_finite() {
        return Minimum {
            converged: n == 0 && fx.is_finite(),
            x,
            f: fx,
        };
    }
    let mut g = vec![0.0; n];
    gradient(&mut f, &x, fx, &mut g);
    let identity = |h: &mut Vec<f64>| {
        h.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..n {
            h[i * n + i] = 1.0;
        }
    };
    let mut hinv = vec![0.0; n * n];
    identity(&mut hinv);
    let mut fresh = true;
    let mut converged = false;
    let mut xn = vec![0.0; n];
    let mut gn = vec![0.0; n];
    let mut small_steps = 0;
    for _ in 0..max_iter {
        if crate::cancel::cancelled() {
            break;
        }
        if g.iter().all(|v| v.abs() < gtol) {
            converged = true;
            break;
        }
        let mut d: Vec<f64> = (0..n)
            .map(|i| -(0..n).map(|j| hinv[i * n + j] * g[j]).sum::<f64>())
            .collect();
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            identity(&mut hinv);
            fresh = true;
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        // Keep the first step modest: parameters live on an O(1) scale.
        let dnorm = d.iter().map(|v| v * v).sum::<f64>().sqrt();
        let mut t = if fresh && dnorm > 1.0 {
            1.0 / dnorm
        } else {
            1.0
        };
        let mut fnew = f64::INFINITY;
        let mut accepted = false;
        for _ in 0..60 {
            for i in 0..n {
                xn[i] = x[i] + t * d[i];
            }
            fnew = f(&xn);
            if fnew.is_finite() && fnew <= fx + 1e-4 * t * slope {
                accepted = true;
                break;
            }
            // Quadratic interpolation when possible, halving otherwise.
            let tq = if fnew.is_finite() {
                -slope * t * t / (2.0 * (fnew - fx - slope * t))
            } else {
                0.5 * t
            };
            t = tq.clamp(0.1 * t, 0.5 * t);
        }
        if !accepted {
            if fresh {
                // Even steepest descent cannot improve: a (numerical) stationary point.
                converged = g.iter().all(|v| v.abs() < gtol.sqrt());
                break;
            }
            identity(&mut hinv);
            fresh = true;
            continue;
        }
        gradient(&mut f, &xn, fnew, &mut gn);
        let s: Vec<f64> = (0..n).map(|i| xn[i] - x[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| gn[i] - g[i]).collect();
        let sy = dot(&s, &y);
        let df = fx - fnew;
        x.copy_from_slice(&xn);
        g.copy_from_slice(&gn);
        fx = fnew;
        if sy > 1e-14 {
            if fresh {
                // Scale the initial inverse Hessian (Nocedal & Wright 6.20).
                let scale = sy / dot(&y, &y);
                hinv.iter_mut().for_each(|v| *v *= scale);
            }
            let hy: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|j| hinv[i * n + j] * y[j]).sum())
                .collect();
            let yhy = dot(&y, &hy);
            let rho = 1.0 / sy;
            for i in 0..n {
                for j in 0..n {
                    hinv[i * n + j] +=
                        rho * ((1.0 + rho * yhy) * s[i] * s[j] - hy[i] * s[j] - s[i] * hy[j]);
                }
            }
            fresh = false;
        }
        if df.abs() <= ftol * (fx.abs() + 1e-10) {
            small_steps += 1;
            if small_steps >= 3 {
                converged = g.iter().all(|v| v.abs() < gtol.sqrt());
                break;
            }
        } else {
            small_steps = 0;
        }
    }
    Minimum {
        x,
        f: fx,
        converged,
    }
}

/// Nelder–Mead simplex (standard coefficients), from `x0` with initial edge `step`.
pub(crate) fn nelder_mead(
    mut f: impl FnMut(&[f64]) -> f64,
    x0: &[f64],
    step: f64,
    max_evals: usize,
    ftol: f64,
) -> Minimum {
    let n = x0.len();
    let eval = |f: &mut dyn FnMut(&[f64]) -> f64, x: &[f64]| {
        let v = f(x);
        if v.is_finite() { v } else { f64::INFINITY }
    };
    if n == 0 {
        let v = eval(&mut f, x0);
        return Minimum {
            x: x0.to_vec(),
            f: v,
            converged: v.is_finite(),
        };
    }
    let mut simplex: Vec<Vec<f64>> = vec![x0.to_vec()];
    for i in 0..n {
        let mut p = x0.to_vec();
        p[i] += step;
        simplex.push(p);
    }
    let mut values: Vec<f64> = simplex.iter().map(|p| eval(&mut f, p)).collect();
    let mut evals = n + 1;
    let mut converged = false;
    while evals < max_evals {
        if crate::cancel::cancelled() {
            break;
        }
        let mut idx: Vec<usize> = (0..=n).collect();
        idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        simplex = idx.iter().map(|&i| simplex[i].clone()).collect();
        values = idx.iter().map(|&i| values[i]).collect();
        let (best, worst) = (values[0], values[n]);
        if worst.is_finite() && (worst - best).abs() <= ftol * (best.abs() + ftol) {
            converged = true;
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|p| p[j]).sum::<f64>() / n as f64)
            .collect();
        let towards = |c: f64| -> Vec<f64> {
            (0..n)
                .map(|j| centroid[j] + c * (simplex[n][j] - centroid[j]))
                .collect()
        };
        let xr = towards(-1.0);
        let fr = eval(&mut f, &xr);
        evals += 1;
        if fr < values[0] {
            let xe = towards(-2.0);
            let fe = eval(&mut f, &xe);
            evals += 1;
            if fe < fr {
                simplex[n] = xe;
                values[n] = fe;
            } else {
                simplex[n] = xr;
                values[n] = fr;
            }
        } else if fr < values[n - 1] {
            simplex[n] = xr;
            values[n] = fr;
        } else {
            let (xc, fc) = if fr < values[n] {
                let xc = towards(-0.5);
                let fc = eval(&mut f, &xc);
                (xc, fc)
            } else {
                let xc = towards(0.5);
                let fc = eval(&mut f, &xc);
                (xc, fc)
            };
            evals += 1;
            if fc < values[n].min(fr) {
                simplex[n] = xc;
                values[n] = fc;
            } else {
                let best = simplex[0].clone();
                for i in 1..=n {
                    for (v, b) in simplex[i].iter_mut().zip(&best) {
                        *v = b + 0.5 * (*v - b);
                    }
                    values[i] = eval(&mut f, &simplex[i]);
                }
                evals += n;
            }
        }
    }
    let best = (0..=n)
        .min_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap_or(0);
    Minimum {
        x: simplex[best].clone(),
        f: values[best],
        converged,
    }
}

/// Golden-section search for a minimum of `f` on `[a, b]`.
pub(crate) fn golden_section(
    mut f: impl FnMut(f64) -> f64,
    mut a: f64,
    mut b: f64,
    tol: f64,
) -> f64 {
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - r * (b - a);
    let mut d = a + r * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    while (b - a).abs() > tol {
        if fc < fd || !fd.is_finite() {
            b = d;
            d = c;
            fd = fc;
            c = b - r * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + r * (b - a);
            fd = f(d);
        }
    }
    (a + b) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64]) -> f64 {
        (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2)
    }

    #[test]
    fn bfgs_finds_rosenbrock_minimum() {
        let m = bfgs(rosenbrock, &[-1.2, 1.0], 500, 1e-8, 1e-14);
        assert!(
            (m.x[0] - 1.0).abs() < 1e-5 && (m.x[1] - 1.0).abs() < 1e-5,
            "{m:?}"
        );
    }

    #[test]
    fn nelder_mead_finds_rosenbrock_minimum() {
        let m = nelder_mead(rosenbrock, &[-1.2, 1.0], 0.5, 5000, 1e-14);
        assert!(
            (m.x[0] - 1.0).abs() < 1e-3 && (m.x[1] - 1.0).abs() < 1e-3,
            "{m:?}"
        );
    }

    #[test]
    fn golden_section_finds_parabola_minimum() {
        let x = golden_section(|x| (x - 0.3).powi(2), -1.0, 2.0, 1e-9);
        assert!((x - 0.3).abs() < 1e-8);
    }
}
