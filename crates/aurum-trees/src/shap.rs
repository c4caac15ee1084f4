//! Exact path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2), the reference: the
//! explainer answers through per-leaf tables ([`crate::shap_tables`]), which give these values
//! regrouped, and uses this recursion only for trees too deep to table (and tests compare both).
//!
//! This is the algorithm of LightGBM's `Tree::TreeSHAP` (`pred_contrib=True`) and of shap's
//! `tree_shap`, transcribed operation for operation in f64 so that LightGBM's contributions are
//! reproduced to the last bits: the same path-weight recurrences (`extend_path`, `unwind_path`,
//! `unwound_path_sum`), the same hot/cold child choice through [`TreeModel::goes_left`] (so
//! missing values and categorical splits follow the model's own rule), and the same covers —
//! LightGBM's `internal_count` / `leaf_count` (data counts, what its `data_count()` reads), and
//! XGBoost's `sum_hessian`.
//!
//! The bias (last entry) is the sum over trees of the cover-weighted mean leaf value: LightGBM's
//! `ExpectedValue()` (Σ leaf_count / root_count × leaf), and XGBoost's recursive node mean
//! (`FillNodeMeanValues`) plus its base score. XGBoost computes its contributions in f32; this
//! module keeps f64 throughout, so ours are the exact values XGBoost's approximate in f32.

use crate::model::{Library, TreeModel};
use crate::shap_tables::LANES;

#[derive(Clone, Copy, Debug, Default)]
struct PathElement {
    feature: i64,
    zero_fraction: f64,
    one_fraction: f64,
    pweight: f64,
}

/// The TreeSHAP bias: see the module docs.
pub(crate) fn expected_value(model: &TreeModel) -> f64 {
    let mut total = model.base_score;
    for t in 0..model.roots.len() {
        total += tree_expected_value(model, t);
    }
    total
}

fn tree_expected_value(model: &TreeModel, t: usize) -> f64 {
    let root = model.roots[t];
    if root < 0 {
        return model.leaf_values[(!root) as usize];
    }
    match model.library {
        Library::LightGbm => {
            let [_, l0, _] = model.offsets[t];
            let [_, l1, _] = model.offsets[t + 1];
            let total = model.node_cover[root as usize];
            let mut e = 0.0;
            for leaf in l0 as usize..l1 as usize {
                e += (model.leaf_cover[leaf] / total) * model.leaf_values[leaf];
            }
            e
        }
        Library::XgBoost => node_mean(model, root),
    }
}

/// XGBoost's `FillNodeMeanValues`: the cover-weighted mean of a subtree's leaves.
fn node_mean(model: &TreeModel, child: i32) -> f64 {
    if child < 0 {
        return model.leaf_values[(!child) as usize];
    }
    let [l, r] = model.nodes[child as usize].children;
    let mut result = node_mean(model, l) * cover(model, l);
    result += node_mean(model, r) * cover(model, r);
    result / cover(model, child)
}

#[inline]
fn cover(model: &TreeModel, child: i32) -> f64 {
    if child >= 0 {
        model.node_cover[child as usize]
    } else {
        model.leaf_cover[(!child) as usize]
    }
}

/// SHAP values of `row` (already length-checked) into `phi` (`n_features + 1` zeros): every
/// tree through its tables ([`crate::shap_tables`]) when it has them, else through the
/// recursion below; the bias last.
pub(crate) fn contributions(model: &TreeModel, row: &[f64], phi: &mut [f64]) {
    let tables = model.shap_tables();
    let mut state = tables.scratch();
    let mut path = Vec::new();
    for t in 0..model.roots.len() {
        if !tables.add_tree(t, decide(model, row), phi, &mut state) {
            add_tree_recursive(model, t, row, phi, &mut path);
        }
    }
    let n = phi.len() - 1;
    phi[n] = model.expected_value;
}

/// [`contributions`] for `out.len() / (n_features + 1)` rows, row-major in `rows` and `out`
/// (shapes checked by the caller). Trees outer, rows inner, so one tree's tables stay in cache
/// while every row goes through it, [`LANES`] rows in lockstep (fewer than [`MIN_LANES`] left
/// over go one at a time); each row still adds its trees in model order, so the values are
/// [`contributions`]' to the bit.
pub(crate) fn contributions_batch(model: &TreeModel, rows: &[f64], out: &mut [f64]) {
    if rows.is_empty() {
        return; // a batch with nothing to explain (every row approved) allocates nothing
    }
    let n = model.n_features();
    let tables = model.shap_tables();
    out.fill(0.0);
    let mut lanes = tables.lane_scratch();
    let mut state = tables.scratch();
    let mut path = Vec::new();
    for t in 0..model.roots.len() {
        for (rows, phi) in rows.chunks(n * LANES).zip(out.chunks_mut((n + 1) * LANES)) {
            let k = rows.len() / n;
            if k < MIN_LANES {
                // Too few rows to overlap: one at a time costs less than the lanes' bookkeeping.
                for (row, phi) in rows.chunks_exact(n).zip(phi.chunks_exact_mut(n + 1)) {
                    if !tables.add_tree(t, decide(model, row), phi, &mut state) {
                        add_tree_recursive(model, t, row, phi, &mut path);
                    }
                }
                continue;
            }
            let decide = |i: usize, left: &mut [bool]| {
                let node = &model.nodes[i];
                let f = node.feature as usize;
                for (r, l) in left.iter_mut().enumerate() {
                    *l = model.goes_left(i, node, rows[r * n + f]);
                }
            };
            if !tables.add_tree_lanes(t, k, decide, phi, n + 1, &mut lanes) {
                for (row, phi) in rows.chunks_exact(n).zip(phi.chunks_exact_mut(n + 1)) {
                    add_tree_recursive(model, t, row, phi, &mut path);
                }
            }
        }
    }
    for phi in out.chunks_exact_mut(n + 1) {
        phi[n] = model.expected_value;
    }
}

/// Fewest rows [`contributions_batch`] walks in lockstep: measured on the serving benchmark's
/// model (200 trees of 31 leaves), one row costs 1.5× more in lanes than alone, two about the
/// same, three 0.9× and eight 0.75×.
const MIN_LANES: usize = 3;

/// The row's direction at a split node, by the model's own rule.
#[inline(always)]
fn decide<'a>(model: &'a TreeModel, row: &'a [f64]) -> impl FnMut(usize) -> bool + 'a {
    move |i| {
        let node = &model.nodes[i];
        model.goes_left(i, node, row[node.feature as usize])
    }
}

/// Adds tree `t`'s recursive TreeSHAP values of `row` to `phi`; `path` is scratch space.
fn add_tree_recursive(
    model: &TreeModel,
    t: usize,
    row: &[f64],
    phi: &mut [f64],
    path: &mut Vec<PathElement>,
) {
    let root = model.roots[t];
    if root < 0 {
        return;
    }
    let len = model.max_depth + 2;
    path.resize(len * (len + 1) / 2, PathElement::default());
    let mut walk = Walk {
        model,
        row,
        phi,
        path,
    };
    walk.recurse(root, 0, 0, 1.0, 1.0, -1);
}

/// The recursion alone over every tree: the reference the tables are tested against.
pub(crate) fn reference_contributions(model: &TreeModel, row: &[f64]) -> Vec<f64> {
    let mut phi = vec![0.0; model.n_features() + 1];
    let mut path = Vec::new();
    for t in 0..model.roots.len() {
        add_tree_recursive(model, t, row, &mut phi, &mut path);
    }
    let n = phi.len() - 1;
    phi[n] = model.expected_value;
    phi
}

struct Walk<'a> {
    model: &'a TreeModel,
    row: &'a [f64],
    phi: &'a mut [f64],
    path: &'a mut [PathElement],
}

impl Walk<'_> {
    /// LightGBM `Tree::TreeSHAP`: this call's path is `path[start..=depth]` with
    /// `start = parent_start + depth`, after the parent's `depth` elements.
    fn recurse(
        &mut self,
        child: i32,
        depth: usize,
        parent_start: usize,
        parent_zero_fraction: f64,
        parent_one_fraction: f64,
        parent_feature: i64,
    ) {
        let start = parent_start + depth;
        if depth > 0 {
            self.path
                .copy_within(parent_start..parent_start + depth, start);
        }
        let path = &mut self.path[start..];
        extend_path(
            path,
            depth,
            parent_zero_fraction,
            parent_one_fraction,
            parent_feature,
        );

        if child < 0 {
            let leaf_value = self.model.leaf_values[(!child) as usize];
            for i in 1..=depth {
                let w = unwound_path_sum(path, depth, i);
                let el = path[i];
                self.phi[el.feature as usize] +=
                    w * (el.one_fraction - el.zero_fraction) * leaf_value;
            }
            return;
        }

        let model = self.model;
        let node = &model.nodes[child as usize];
        let x = self.row[node.feature as usize];
        let [left, right] = node.children;
        let (hot, cold) = if model.goes_left(child as usize, node, x) {
            (left, right)
        } else {
            (right, left)
        };
        let w = cover(model, child);
        let hot_zero_fraction = cover(model, hot) / w;
        let cold_zero_fraction = cover(model, cold) / w;
        let mut incoming_zero_fraction = 1.0;
        let mut incoming_one_fraction = 1.0;
        let feature = i64::from(node.feature);

        // Already split on this feature higher up: undo that split and redo it here.
        let mut depth = depth;
        if let Some(k) = (0..=depth).find(|&k| path[k].feature == feature) {
            incoming_zero_fraction = path[k].zero_fraction;
            incoming_one_fraction = path[k].one_fraction;
            unwind_path(path, depth, k);
            depth -= 1;
        }

        self.recurse(
            hot,
            depth + 1,
            start,
            hot_zero_fraction * incoming_zero_fraction,
            incoming_one_fraction,
            feature,
        );
        self.recurse(
            cold,
            depth + 1,
            start,
            cold_zero_fraction * incoming_zero_fraction,
            0.0,
            feature,
        );
    }
}

fn extend_path(
    path: &mut [PathElement],
    depth: usize,
    zero_fraction: f64,
    one_fraction: f64,
    feature: i64,
) {
    path[depth] = PathElement {
        feature,
        zero_fraction,
        one_fraction,
        pweight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        path[i + 1].pweight += one_fraction * path[i].pweight * (i + 1) as f64 / d1;
        path[i].pweight = zero_fraction * path[i].pweight * (depth - i) as f64 / d1;
    }
}

fn unwind_path(path: &mut [PathElement], depth: usize, index: usize) {
    let one_fraction = path[index].one_fraction;
    let zero_fraction = path[index].zero_fraction;
    let mut next_one_portion = path[depth].pweight;
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        if one_fraction != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = next_one_portion * d1 / ((i + 1) as f64 * one_fraction);
            next_one_portion = tmp - path[i].pweight * zero_fraction * (depth - i) as f64 / d1;
        } else {
            path[i].pweight = (path[i].pweight * d1) / (zero_fraction * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

fn unwound_path_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
    let one_fraction = path[index].one_fraction;
    let zero_fraction = path[index].zero_fraction;
    let mut next_one_portion = path[depth].pweight;
    let mut total = 0.0;
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        if one_fraction != 0.0 {
            let tmp = next_one_portion * d1 / ((i + 1) as f64 * one_fraction);
            total += tmp;
            next_one_portion = path[i].pweight - tmp * zero_fraction * ((depth - i) as f64 / d1);
        } else if zero_fraction != 0.0 {
            total += (path[i].pweight / zero_fraction) / ((depth - i) as f64 / d1);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use crate::model::TreeModel;

    /// The exact f64 sum of the leaves a row reaches (plus the base score): what TreeSHAP's
    /// contributions add up to, whatever precision the library sums in.
    fn exact_margin(model: &TreeModel, row: &[f64]) -> f64 {
        (0..model.roots.len()).fold(model.base_score, |acc, t| {
            acc + model.leaf_values[model.leaf_index(t, row)]
        })
    }

    #[test]
    fn contributions_add_up_to_the_exact_margin() {
        let models = [
            TreeModel::from_xgboost_json(include_bytes!("../tests/fixtures/xgb_german.json"))
                .unwrap(),
            TreeModel::from_xgboost_json(include_bytes!("../tests/fixtures/xgb_regression.json"))
                .unwrap(),
            TreeModel::from_lightgbm_text(include_str!("../tests/fixtures/lgb_german.txt"))
                .unwrap(),
        ];
        for model in &models {
            let n = model.n_features();
            for k in 0..40 {
                let row: Vec<f64> = (0..n)
                    .map(|j| match (k * 7 + j * 3) % 9 {
                        0 => f64::NAN,
                        1 => 0.0,
                        m => (m as f64 - 4.0) * (1.0 + (k % 5) as f64 * 13.7),
                    })
                    .collect();
                let phi = model.contributions(&row).unwrap();
                let exact = exact_margin(model, &row);
                let sum: f64 = phi.iter().sum();
                assert!(
                    (sum - exact).abs() <= 1e-9 * exact.abs().max(1.0),
                    "{:?}: Σφ {sum} vs exact margin {exact}",
                    model.library()
                );
            }
        }
    }
}
