//! Implicit-feedback matrix factorisation: alternating least squares with a conjugate-gradient
//! solver (Hu, Koren & Volinsky 2008; Takács, Pilászy & Tikk 2011), as in the `implicit` library.
//!
//! The matrix values are the confidences `c_ui` (see [`crate::Weighting`]); preferences are 1 where
//! an entry exists and 0 elsewhere. Each half-step solves, for every user `u` (then every item),
//! `(YᵀY + λI + Σᵢ (c_ui − 1) yᵢyᵢᵀ) x_u = Σᵢ c_ui yᵢ`.
//!
//! Why conjugate gradient rather than a Cholesky solve per user: the exact solve costs `O(f³)` per
//! user and recomputes the same normal equations from scratch; a few CG steps warm-started from
//! the previous factors cost `O(f²+ nnz_u·f)` and reach the same ranking quality (Takács et al.),
//! which is why `implicit` defaults to it (3 steps).
//!
//! Why it is fast: per half-step `YᵀY` is one faer matrix product (AVX2/FMA), each row's CG
//! touches only its own nonzeros (skipping those with confidence 1, which add nothing), `YᵀY·p`
//! is summed as rows (vectorisable) rather than as dot products, and the whole per-row solve is
//! compiled for the CPU's widest SIMD through `pulp`'s run-time dispatch, with f32 factors in
//! contiguous rows: the fit is as fast as `implicit`'s BLAS-backed one (BENCHMARKS.md).
//!
//! Why it is reproducible for a fixed thread count (in fact for any): the initial factors come
//! from one seeded ChaCha8 stream, `YᵀY` is summed over fixed chunks of rows added in a fixed
//! order, and each user's
//! (item's) solve reads only the other side's factors, so the parallel order of the solves cannot
//! change a single bit.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::interactions::Csr;
use crate::recommender::{FitControl, NewUser, Reason, Recommender, top_k, top_reasons};
use crate::{History, Interactions, RecoError, Recommendation};

#[derive(Clone, Debug, PartialEq)]
pub struct AlsParams {
    pub factors: usize,
    /// λ, added to the diagonal of every normal equation.
    pub regularization: f32,
    pub iterations: usize,
    /// Conjugate-gradient steps per solve (`implicit` uses 3).
    pub cg_steps: usize,
    pub seed: u64,
    /// Worker threads; 0 uses rayon's default (one per core).
    pub threads: usize,
    /// `h > 0` fits on recency-faded confidences `1 + (c − 1)·w` with `w` the entry's
    /// [`Interactions::recency_weights`] (halving every `h·n` items back from the user's
    /// newest); 0 uses the confidences as they are. Needs timestamps on every interaction.
    pub recency_half_life: f32,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 64,
            regularization: 0.01,
            iterations: 15,
            cg_steps: 3,
            seed: 42,
            threads: 0,
            recency_half_life: 0.0,
        }
    }
}

impl AlsParams {
    fn validate(&self) -> Result<(), RecoError> {
        crate::error::check_count("factors", self.factors, 1, 1024)?;
        crate::error::check_range("regularization", self.regularization, 0.0, 1e6)?;
        crate::error::check_count("iterations", self.iterations, 1, 10_000)?;
        crate::error::check_count("cg_steps", self.cg_steps, 1, 1024)?;
        crate::error::check_count("threads", self.threads, 0, 1024)?;
        crate::error::check_range("recency_half_life", self.recency_half_life, 0.0, 1e3)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Als {
    history: History,
    factors: usize,
    regularization: f32,
    /// Row-major users × factors.
    user_factors: Vec<f32>,
    /// Row-major items × factors.
    item_factors: Vec<f32>,
}

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Lanes of the independent partial sums in [`fdot`]: enough for two 8-wide registers.
const LANES: usize = 16;

/// `a · b` with [`LANES`] independent partial sums, so the compiler vectorises it (a plain
/// `sum()` is one serial chain of dependent adds). Summed in a fixed order: deterministic.
#[inline(always)]
fn fdot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    let mut h = [0f32; LANES / 2];
    for (k, v) in h.iter_mut().enumerate() {
        *v = acc[k] + acc[k + LANES / 2];
    }
    h.iter().sum::<f32>() + tail
}

#[inline(always)]
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += alpha * x);
}

/// Items per partial Gram product: a fixed chunking, so the sum order (and every bit of the
/// result) does not depend on the thread count.
const GRAM_CHUNK: usize = 1024;

/// `YᵀY + λI` for row-major `y` (rows × f), row-major (and exactly symmetric).
///
/// Why faer: this product is `rows·f²` multiply-adds per half-step (62 M for MovieLens' 6 170
/// items at 100 factors), the largest dense operation of the fit; faer's matrix product uses
/// AVX2/FMA where the CPU has it. Chunks of [`GRAM_CHUNK`] rows run in parallel, each
/// sequential, and are added in chunk order.
fn gram(y: &[f32], f: usize, reg: f32) -> Vec<f32> {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, Mat, MatRef, Par};
    let partial = |chunk: &[f32]| {
        let yc = MatRef::from_column_major_slice(chunk, f, chunk.len() / f);
        let mut g = Mat::<f32>::zeros(f, f);
        matmul(
            g.as_mut(),
            Accum::Replace,
            yc,
            yc.transpose(),
            1.0,
            Par::Seq,
        );
        g
    };
    let parts: Vec<Mat<f32>> = y.par_chunks(GRAM_CHUNK * f).map(partial).collect();
    let mut g = vec![0f32; f * f];
    for part in &parts {
        for a in 0..f {
            for b in 0..=a {
                g[a * f + b] += part[(a, b)];
            }
        }
    }
    for a in 0..f {
        for b in 0..a {
            g[b * f + a] = g[a * f + b];
        }
        g[a * f + a] += reg;
    }
    g
}

/// `out = M x` for symmetric row-major `m`, as a sum of rows (`Σ_a x_a M[a,·]`, four rows per
/// pass) with fused multiply-adds in the CPU's SIMD width: element-wise updates vectorise, where
/// a dot product per row would not.
#[inline(always)]
fn symv<S: pulp::Simd>(simd: S, m: &[f32], x: &[f32], out: &mut [f32]) {
    let f = x.len();
    out.iter_mut().for_each(|o| *o = 0.0);
    let rows = m[..f * f].chunks_exact(4 * f);
    let tail = rows.remainder();
    for (block, v) in rows.zip(x.chunks_exact(4)) {
        let (r0, rest) = block.split_at(f);
        let (r1, rest) = rest.split_at(f);
        let (r2, r3) = rest.split_at(f);
        let (o_h, o_t) = S::as_mut_simd_f32s(out);
        let (a_h, a_t) = S::as_simd_f32s(r0);
        let (b_h, b_t) = S::as_simd_f32s(r1);
        let (c_h, c_t) = S::as_simd_f32s(r2);
        let (d_h, d_t) = S::as_simd_f32s(r3);
        let (s0, s1, s2, s3) = (
            simd.splat_f32s(v[0]),
            simd.splat_f32s(v[1]),
            simd.splat_f32s(v[2]),
            simd.splat_f32s(v[3]),
        );
        for ((((o, a), b), c), d) in o_h.iter_mut().zip(a_h).zip(b_h).zip(c_h).zip(d_h) {
            let acc = simd.mul_add_e_f32s(s0, *a, *o);
            let acc = simd.mul_add_e_f32s(s1, *b, acc);
            let acc = simd.mul_add_e_f32s(s2, *c, acc);
            *o = simd.mul_add_e_f32s(s3, *d, acc);
        }
        for ((((o, a), b), c), d) in o_t.iter_mut().zip(a_t).zip(b_t).zip(c_t).zip(d_t) {
            *o += v[0] * a + v[1] * b + v[2] * c + v[3] * d;
        }
    }
    for (row, &v) in tail.chunks_exact(f).zip(&x[f - tail.len() / f..]) {
        axpy(v, row, out);
    }
}

struct Scratch {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
}

impl Scratch {
    fn new(f: usize) -> Self {
        Scratch {
            r: vec![0.0; f],
            p: vec![0.0; f],
            ap: vec![0.0; f],
        }
    }
}

/// `A v` with `A = YᵀY + λI + Σ (c−1) yᵢyᵢᵀ` over the row's entries, without forming `A`.
/// Entries with `c = 1` add nothing and are skipped.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn apply<S: pulp::Simd>(
    simd: S,
    yty: &[f32],
    y: &[f32],
    f: usize,
    cols: &[u32],
    conf: &[f32],
    v: &[f32],
    out: &mut [f32],
) {
    symv(simd, yty, v, out);
    for (&i, &c) in cols.iter().zip(conf) {
        if c == 1.0 {
            continue;
        }
        let yi = &y[i as usize * f..(i as usize + 1) * f];
        axpy((c - 1.0) * fdot(yi, v), yi, out);
    }
}

/// Conjugate gradient on one row's normal equations, warm-started from `x` (`implicit`'s
/// `_least_squares_cg`). `b = Σ c yᵢ` unless `rhs` is given.
///
/// Runs inside a `pulp` dispatch (see [`solve`]): everything it calls is inlined so the whole
/// solve is compiled for the widest SIMD the CPU has.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn cg<S: pulp::Simd>(
    simd: S,
    x: &mut [f32],
    yty: &[f32],
    y: &[f32],
    cols: &[u32],
    conf: &[f32],
    steps: usize,
    s: &mut Scratch,
    rhs: Option<&[f32]>,
) {
    let f = x.len();
    apply(simd, yty, y, f, cols, conf, x, &mut s.ap);
    match rhs {
        Some(b) => s.r.copy_from_slice(b),
        None => {
            s.r.iter_mut().for_each(|v| *v = 0.0);
            for (&i, &c) in cols.iter().zip(conf) {
                axpy(c, &y[i as usize * f..(i as usize + 1) * f], &mut s.r);
            }
        }
    }
    s.r.iter_mut().zip(&s.ap).for_each(|(r, a)| *r -= a);
    s.p.copy_from_slice(&s.r);
    let mut rsold = fdot(&s.r, &s.r);
    if rsold < 1e-20 {
        return;
    }
    for _ in 0..steps {
        apply(simd, yty, y, f, cols, conf, &s.p, &mut s.ap);
        let pap = fdot(&s.p, &s.ap);
        if pap <= 0.0 || !pap.is_finite() {
            return;
        }
        let alpha = rsold / pap;
        axpy(alpha, &s.p, x);
        axpy(-alpha, &s.ap, &mut s.r);
        let rsnew = fdot(&s.r, &s.r);
        if rsnew < 1e-20 {
            return;
        }
        let beta = rsnew / rsold;
        s.p.iter_mut()
            .zip(&s.r)
            .for_each(|(p, r)| *p = r + beta * *p);
        rsold = rsnew;
    }
}

/// One [`cg`] solve as a `pulp` operation: `pulp` runs `with_simd` inside a function compiled
/// for the widest SIMD the CPU has (AVX2 and FMA on x86-64 where present, chosen at run time;
/// `pulp` holds the one `unsafe` call this needs), and everything `cg` calls is inlined into it.
/// The same algorithm on every path; the lane width and fused multiply-adds change only the
/// rounding of partial sums, so results may differ in the last bits between CPUs.
struct Solve<'a> {
    x: &'a mut [f32],
    yty: &'a [f32],
    y: &'a [f32],
    cols: &'a [u32],
    conf: &'a [f32],
    steps: usize,
    s: &'a mut Scratch,
    rhs: Option<&'a [f32]>,
}

impl pulp::WithSimd for Solve<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        cg(
            simd, self.x, self.yty, self.y, self.cols, self.conf, self.steps, self.s, self.rhs,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn solve(
    arch: pulp::Arch,
    x: &mut [f32],
    yty: &[f32],
    y: &[f32],
    cols: &[u32],
    conf: &[f32],
    steps: usize,
    s: &mut Scratch,
    rhs: Option<&[f32]>,
) {
    arch.dispatch(Solve {
        x,
        yty,
        y,
        cols,
        conf,
        steps,
        s,
        rhs,
    });
}

fn half_step(x: &mut [f32], y: &[f32], m: &Csr, f: usize, reg: f32, steps: usize) {
    let yty = gram(y, f, reg);
    let arch = pulp::Arch::new();
    x.par_chunks_mut(f).enumerate().for_each_init(
        || Scratch::new(f),
        |s, (u, xu)| {
            let (cols, conf) = m.row(u);
            solve(arch, xu, &yty, y, cols, conf, steps, s, None);
        },
    );
}

impl Als {
    pub fn fit(
        data: &Interactions,
        params: &AlsParams,
        ctl: &FitControl,
    ) -> Result<Self, RecoError> {
        params.validate()?;
        // With recency the model is fitted on, and keeps as its history, the faded confidences,
        // so explanations and new-user fold-ins use the values the factors were fitted to.
        let faded;
        let data = if params.recency_half_life > 0.0 {
            faded = data.with_recent_confidence("recency_half_life", params.recency_half_life)?;
            &faded
        } else {
            data
        };
        let f = params.factors;
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let mut init = |n: usize| {
            (0..n * f)
                .map(|_| rng.random::<f32>() * 0.01)
                .collect::<Vec<f32>>()
        };
        let mut x = init(data.users().len());
        let mut y = init(data.items().len());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(params.threads)
            .build()
            .map_err(|e| RecoError::Internal(format!("starting the ALS thread pool: {e}")))?;
        for it in 0..params.iterations {
            ctl.step("als", it as f64 / params.iterations as f64)?;
            pool.install(|| {
                // Items first, users last: the stored user vectors are then solved against
                // the final item factors, which is what `explain` splits.
                half_step(
                    &mut y,
                    &x,
                    data.item_users(),
                    f,
                    params.regularization,
                    params.cg_steps,
                );
                half_step(
                    &mut x,
                    &y,
                    data.user_items(),
                    f,
                    params.regularization,
                    params.cg_steps,
                );
            });
            if x.iter().chain(&y).any(|v| !v.is_finite()) {
                return Err(RecoError::Internal(format!(
                    "ALS factors diverged at iteration {it}"
                )));
            }
        }
        ctl.step("als", 1.0)?;
        Ok(Als {
            history: data.history(),
            factors: f,
            regularization: params.regularization,
            user_factors: x,
            item_factors: y,
        })
    }

    fn item(&self, i: u32) -> &[f32] {
        &self.item_factors[i as usize * self.factors..(i as usize + 1) * self.factors]
    }

    fn score_vector(&self, xu: &[f32]) -> Vec<f32> {
        self.item_factors
            .chunks_exact(self.factors)
            .map(|yi| dot(xu, yi))
            .collect()
    }

    /// The user vector for held items with confidences, solved to convergence (fold-in).
    fn fold_in(&self, cols: &[u32], conf: &[f32]) -> Vec<f32> {
        let f = self.factors;
        let yty = gram(&self.item_factors, f, self.regularization);
        let mut x = vec![0f32; f];
        solve(
            pulp::Arch::new(),
            &mut x,
            &yty,
            &self.item_factors,
            cols,
            conf,
            2 * f,
            &mut Scratch::new(f),
            None,
        );
        x
    }

    /// The `k` items whose factors have the highest cosine with `item`'s.
    pub fn similar_items(&self, item: &str, k: usize) -> Result<Vec<Recommendation>, RecoError> {
        let j = self.history.items.resolve("item", &[item])?[0];
        let norm = |v: &[f32]| dot(v, v).sqrt().max(f32::MIN_POSITIVE);
        let q = self.item(j);
        let nq = norm(q);
        let sims: Vec<f32> = self
            .item_factors
            .chunks_exact(self.factors)
            .map(|y| dot(q, y) / (nq * norm(y)))
            .collect();
        Ok(top_k(&sims, |i| i != j as usize, k)
            .into_iter()
            .map(|(i, score)| Recommendation {
                item: self.history.items.id(i).to_string(),
                score,
            })
            .collect())
    }

    /// "Because you hold X": the split of the score of `item` over the user's held items, largest
    /// first (negative shares included when `n` reaches them). With `A` the user's normal matrix,
    /// `x_u = A⁻¹ Σ_j c_j y_j`, so `score = Σ_j c_j (A⁻¹yᵢ)·y_j` (as `implicit`'s `explain`).
    /// The shares add up to the score of the exact least-squares user vector; the stored vector
    /// is the fit's last few warm-started CG steps towards it (the last half-step of every
    /// iteration is the user step), so they add up to the served score
    /// approximately (exactly when `cg_steps >= factors`). The fit has no extra converged user
    /// step to make them exact: that step cost up to `2·factors` CG steps per user, several
    /// times the whole fit (BENCHMARKS.md).
    pub fn explain(&self, user: &str, item: &str, n: usize) -> Result<Vec<Reason>, RecoError> {
        let u = self.history.users.resolve("user", &[user])?[0];
        let i = self.history.items.resolve("item", &[item])?[0];
        let f = self.factors;
        let (cols, conf) = self.history.user_items.row(u as usize);
        let yty = gram(&self.item_factors, f, self.regularization);
        let mut v = vec![0f32; f];
        solve(
            pulp::Arch::new(),
            &mut v,
            &yty,
            &self.item_factors,
            cols,
            conf,
            2 * f,
            &mut Scratch::new(f),
            Some(self.item(i)),
        );
        let c = cols
            .iter()
            .zip(conf)
            .map(|(&j, &c)| {
                (
                    self.history.items.id(j).to_string(),
                    c * dot(&v, self.item(j)),
                )
            })
            .collect();
        Ok(top_reasons(c, n))
    }
}

impl Recommender for Als {
    fn kind(&self) -> &'static str {
        "als"
    }
    fn history(&self) -> &History {
        &self.history
    }
    fn score_user(&self, user: u32) -> Vec<f32> {
        let f = self.factors;
        self.score_vector(&self.user_factors[user as usize * f..(user as usize + 1) * f])
    }
    fn score_new_user(&self, user: &NewUser) -> Result<Vec<f32>, RecoError> {
        let mut held = self.history.items.resolve("item", &user.items)?;
        held.sort_unstable();
        held.dedup();
        if held.is_empty() {
            return Err(RecoError::Unsupported {
                model: "als",
                what: "score a new user who holds no known item",
            });
        }
        // A new user's held items get the confidence an average entry of the training data has.
        let data = self.history.user_items.data();
        let mean = data.iter().sum::<f32>() / data.len().max(1) as f32;
        let x = self.fold_in(&held, &vec![mean; held.len()]);
        Ok(self.score_vector(&x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cg_solves_a_small_system_exactly() {
        // Y = [[1,0],[0,2],[1,1]], λ = 0.5, user holds items 0 and 2 with c = 3.
        let y = [1.0, 0.0, 0.0, 2.0, 1.0, 1.0];
        let yty = gram(&y, 2, 0.5);
        assert_eq!(yty, vec![2.5, 1.0, 1.0, 5.5]);
        let mut x = [0.0, 0.0];
        solve(
            pulp::Arch::new(),
            &mut x,
            &yty,
            &y,
            &[0, 2],
            &[3.0, 3.0],
            10,
            &mut Scratch::new(2),
            None,
        );
        // A = YtY + λI + 2(y0y0ᵀ + y2y2ᵀ) = [[6.5,3],[3,7.5]], b = 3(y0 + y2) = [6,3].
        let det = 6.5 * 7.5 - 9.0;
        let want = [(7.5 * 6.0 - 3.0 * 3.0) / det, (6.5 * 3.0 - 3.0 * 6.0) / det];
        assert!(
            (x[0] - want[0]).abs() < 1e-5 && (x[1] - want[1]).abs() < 1e-5,
            "{x:?} vs {want:?}"
        );
    }

    /// The SIMD path (heads of 8 lanes, tails, 4-row blocks and leftover rows) against a dense
    /// Gaussian elimination of the same normal equations.
    #[test]
    fn simd_cg_matches_a_dense_solve() {
        let f = 13;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let y: Vec<f32> = (0..40 * f).map(|_| rng.random::<f32>() - 0.5).collect();
        let cols: Vec<u32> = vec![1, 4, 9, 16, 25, 36];
        let conf = vec![4.0f32; cols.len()];
        let yty = gram(&y, f, 0.3);
        let mut x = vec![0f32; f];
        solve(
            pulp::Arch::new(),
            &mut x,
            &yty,
            &y,
            &cols,
            &conf,
            200,
            &mut Scratch::new(f),
            None,
        );
        // Dense A and b in f64.
        let mut a = vec![vec![0f64; f + 1]; f];
        for r in 0..f {
            for c in 0..f {
                a[r][c] = f64::from(yty[r * f + c]);
            }
        }
        for (&i, &c) in cols.iter().zip(&conf) {
            let yi = &y[i as usize * f..(i as usize + 1) * f];
            for r in 0..f {
                for k in 0..f {
                    a[r][k] += f64::from((c - 1.0) * yi[r] * yi[k]);
                }
                a[r][f] += f64::from(c * yi[r]);
            }
        }
        for p in 0..f {
            let piv = a[p][p];
            for r in 0..f {
                if r != p {
                    let m = a[r][p] / piv;
                    let row = a[p].clone();
                    for (v, w) in a[r].iter_mut().zip(row) {
                        *v -= m * w;
                    }
                }
            }
        }
        for r in 0..f {
            let want = a[r][f] / a[r][r];
            assert!(
                (f64::from(x[r]) - want).abs() < 1e-3,
                "x[{r}] {} vs {want}",
                x[r]
            );
        }
    }

    #[test]
    fn parameters_are_validated_by_name() {
        let e = AlsParams {
            factors: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("`factors`"), "{e}");
        let e = AlsParams {
            regularization: -1.0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("`regularization`"), "{e}");
        let e = AlsParams {
            recency_half_life: -0.5,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("`recency_half_life`"), "{e}");
    }

    #[test]
    fn recency_fits_on_faded_confidences() {
        use crate::{InteractionOptions, InteractionRecord, Weighting};
        let mut r = Vec::new();
        for u in 0..12 {
            for (t, i) in ["a", "b", "c", "d"].iter().enumerate().skip(u % 2) {
                r.push(InteractionRecord::new(format!("u{u}"), *i).at((t * (1 + u % 3)) as i64));
            }
        }
        let opts = InteractionOptions {
            weighting: Weighting::Linear { alpha: 4.0 },
            rating_threshold: None,
        };
        let d = Interactions::build(&r, &opts).unwrap();
        let p = AlsParams {
            factors: 3,
            iterations: 4,
            recency_half_life: 0.25,
            ..Default::default()
        };
        let m = Als::fit(&d, &p, &FitControl::default()).unwrap();
        let faded = d.with_recent_confidence("recency_half_life", 0.25).unwrap();
        assert_eq!(m.history, faded.history(), "the faded confidences are kept");
        // u0 holds a, b, c, d at times 0..3: d (newest) keeps 1 + 4, a (3 back of 4) gets
        // 1 + 4·0.5^(3/1).
        let (cols, conf) = m.history.user_items.row(0);
        assert_eq!(cols.len(), 4);
        assert_eq!(conf[3], 5.0);
        assert!((conf[0] - 1.5).abs() < 1e-6, "{conf:?}");
        let plain = Als::fit(
            &d,
            &AlsParams {
                recency_half_life: 0.0,
                ..p.clone()
            },
            &FitControl::default(),
        )
        .unwrap();
        assert_eq!(plain.history, d.history());
        assert_ne!(plain.user_factors, m.user_factors);
        // Same fit as ALS on the faded data directly.
        let direct = Als::fit(
            &faded,
            &AlsParams {
                recency_half_life: 0.0,
                ..p.clone()
            },
            &FitControl::default(),
        )
        .unwrap();
        assert_eq!(direct.user_factors, m.user_factors);
        let untimed: Vec<_> = r
            .iter()
            .map(|x| InteractionRecord::new(x.user.clone(), x.item.clone()))
            .collect();
        let e = Als::fit(
            &Interactions::build(&untimed, &opts).unwrap(),
            &p,
            &FitControl::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("`recency_half_life`"), "{e}");
    }
}
