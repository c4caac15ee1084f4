//! The flat model both parsers produce, its validation, and the prediction hot path.
//!
//! Layout: every tree's split nodes live in one contiguous `Vec<Node>` (24 bytes each: the
//! threshold, feature, both children and the split kind — everything a visit reads, in one cache
//! line), leaf values in one `Vec<f64>`; child indices are global, `>= 0` for a split node and
//! `< 0` for a leaf (`!child` is the leaf index), the encoding LightGBM itself uses. Data only the
//! explainer or a categorical split reads (covers, category sets) lives in separate arrays so it
//! does not dilute the hot one.
//!
//! Every decision rule of both libraries is folded into one numeric form at load time,
//! `x <= threshold` with NaN going to `nan_left`:
//!
//! * LightGBM `x <= t`, MissingType::NaN: NaN takes the default direction;
//! * LightGBM MissingType::None: the library turns NaN into 0.0 and compares, so `nan_left` is
//!   precomputed as `0.0 <= t`;
//! * XGBoost `(x as f32) < t` (f32 `t`): rounding to f32 is monotonic, so this equals
//!   `x <= b` for the largest f64 `b` with `(b as f32) < t` (see `xgboost::f32_lt_boundary`).
//!
//! LightGBM MissingType::Zero (0 and NaN are missing) and the two categorical rules keep their own
//! [`SplitKind`].

use std::sync::OnceLock;

use crate::TreeError;
use crate::shap_tables::ShapTables;

/// Deepest tree accepted (root-to-leaf edges). TreeSHAP recurses once per level and keeps
/// O(depth²) path state, so an untrusted file must not choose an unbounded depth. LightGBM and
/// XGBoost trees of practical size are far shallower.
pub const MAX_TREE_DEPTH: usize = 256;

/// Most features a model may have: rows, names and contribution vectors are sized by it, so an
/// untrusted file must not choose an unbounded count.
pub const MAX_FEATURES: usize = 1 << 20;

/// Rows walked through one tree together by the batch path.
const LANES: usize = 8;

/// Largest total of 32-bit words of categorical bitsets accepted (16 MiB), so that one category
/// value near 2^24 in many splits cannot exhaust memory.
pub(crate) const MAX_CATEGORY_WORDS: usize = 1 << 22;

/// LightGBM's `kZeroThreshold` (a float literal, `1e-35f`): `|x| <= kZeroThreshold` is "zero".
const LIGHTGBM_ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;

/// XGBoost's `OutOfRangeCat()`: categories at or above it (or negative) are invalid.
const XGBOOST_MAX_CATEGORY: f32 = 16_777_216.0;

/// Which library trained the model. It fixes the decision rules and how leaf values are summed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Library {
    /// LightGBM text models: sums in f64.
    LightGbm,
    /// XGBoost JSON models: features rounded to f32, sums in f32 from the base score.
    XgBoost,
}

impl Library {
    pub fn as_str(self) -> &'static str {
        match self {
            Library::LightGbm => "lightgbm",
            Library::XgBoost => "xgboost",
        }
    }
}

/// What the model predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    /// Binary classification: [`TreeModel::predict`] is the probability of the positive class
    /// (the sigmoid of the raw margin).
    Binary,
    /// Regression: [`TreeModel::predict`] equals [`TreeModel::predict_raw`].
    Regression,
}

impl Objective {
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Binary => "binary",
            Objective::Regression => "regression",
        }
    }
}

/// How the raw margin becomes a prediction, computed exactly as the library does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Link {
    Identity,
    /// LightGBM: `1 / (1 + exp(-scale * raw))` in f64.
    Sigmoid {
        scale: f64,
    },
    /// XGBoost: `1 / (exp(min(-x, 88.7)) + 1 + 1e-16)` in f32.
    SigmoidF32,
}

impl Link {
    #[inline]
    fn apply(self, raw: f64) -> f64 {
        match self {
            Link::Identity => raw,
            Link::Sigmoid { scale } => 1.0 / (1.0 + (-scale * raw).exp()),
            Link::SigmoidF32 => {
                let x = (-(raw as f32)).min(88.7_f32);
                let denom = x.exp() + 1.0_f32 + 1e-16_f32;
                f64::from(1.0_f32 / denom)
            }
        }
    }
}

/// The rule a split node applies (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum SplitKind {
    /// NaN → `nan_left`, otherwise `x <= threshold`.
    Numeric = 0,
    /// LightGBM MissingType::Zero: NaN or |x| <= 1e-35 → `nan_left`, otherwise `x <= threshold`.
    NumericZeroMissing = 1,
    /// LightGBM categorical: NaN or `(int) x < 0` → right; left iff `(int) x` is in the set.
    CategoricalLightGbm = 2,
    /// XGBoost categorical: NaN → `nan_left`; `x as f32` negative or >= 2^24 → left; right iff
    /// the truncated category is in the set.
    CategoricalXgBoost = 3,
}

impl SplitKind {
    pub(crate) fn from_u8(v: u8) -> Option<SplitKind> {
        match v {
            0 => Some(SplitKind::Numeric),
            1 => Some(SplitKind::NumericZeroMissing),
            2 => Some(SplitKind::CategoricalLightGbm),
            3 => Some(SplitKind::CategoricalXgBoost),
            _ => None,
        }
    }

    fn is_categorical(self) -> bool {
        matches!(
            self,
            SplitKind::CategoricalLightGbm | SplitKind::CategoricalXgBoost
        )
    }
}

/// One split node as the hot loop reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Node {
    pub threshold: f64,
    pub feature: u32,
    /// `[left, right]`: `>= 0` a split node (global index), `< 0` a leaf (`!child`).
    pub children: [i32; 2],
    pub kind: SplitKind,
    pub nan_left: bool,
}

/// One tree as a parser hands it over: indices local to the tree, not yet validated.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RawTree {
    /// Split nodes; node 0 is the root when there is at least one.
    pub nodes: Vec<RawNode>,
    pub leaf_values: Vec<f64>,
    /// Cover (LightGBM `internal_count`, XGBoost `sum_hessian`) per split node.
    pub node_cover: Vec<f64>,
    /// Cover per leaf.
    pub leaf_cover: Vec<f64>,
    /// Category bitsets (bit `c % 32` of word `c / 32`), referenced by categorical nodes.
    pub cat_sets: Vec<Vec<u32>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RawNode {
    pub feature: u32,
    pub threshold: f64,
    pub left: i32,
    pub right: i32,
    pub kind: SplitKind,
    pub nan_left: bool,
    /// Index into `RawTree::cat_sets` for categorical kinds; 0 otherwise.
    pub cat_set: u32,
}

/// Everything that defines a model, before validation and flattening. The stored format and
/// both parsers go through [`TreeModel::assemble`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ModelParts {
    pub library: Library,
    pub objective: Objective,
    pub link: Link,
    pub feature_names: Vec<String>,
    /// Added to the sum of the trees (XGBoost's base score as a margin; 0 for LightGBM).
    pub base_score: f64,
    pub trees: Vec<RawTree>,
}

/// A LightGBM or XGBoost model ready to predict and explain.
///
/// Immutable once built and `Send + Sync`: share one behind an `Arc` between request threads.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeModel {
    pub(crate) library: Library,
    pub(crate) objective: Objective,
    pub(crate) link: Link,
    pub(crate) feature_names: Vec<String>,
    pub(crate) base_score: f64,
    pub(crate) nodes: Vec<Node>,
    pub(crate) leaf_values: Vec<f64>,
    /// Per tree: the root (`>= 0` split node, `< 0` a single-leaf tree).
    pub(crate) roots: Vec<i32>,
    /// Per tree: `[first node, first leaf, first category set]`, plus one sentinel entry.
    pub(crate) offsets: Vec<[u32; 3]>,
    pub(crate) node_cover: Vec<f64>,
    pub(crate) leaf_cover: Vec<f64>,
    /// Per node: global category-set index (categorical nodes only).
    pub(crate) node_cat_set: Vec<u32>,
    /// Category set `s` is `cat_words[cat_bounds[s]..cat_bounds[s + 1]]`.
    pub(crate) cat_bounds: Vec<u32>,
    pub(crate) cat_words: Vec<u32>,
    /// Per tree: its deepest root-to-leaf path (the lockstep walk's step count).
    pub(crate) depths: Vec<u32>,
    /// Deepest root-to-leaf path over all trees (for the TreeSHAP buffers).
    pub(crate) max_depth: usize,
    /// TreeSHAP bias: base score plus every tree's cover-weighted mean leaf value.
    pub(crate) expected_value: f64,
    /// TreeSHAP tables, built on the first explanation (or [`TreeModel::prepare_contributions`]).
    pub(crate) shap: ShapCache,
}

/// The model's TreeSHAP tables, computed at most once. Derived from the other fields, so two
/// models compare equal whether or not either has built them.
#[derive(Clone, Default)]
pub(crate) struct ShapCache(OnceLock<ShapTables>);

impl PartialEq for ShapCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for ShapCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "ShapCache(built)"
        } else {
            "ShapCache(empty)"
        })
    }
}

impl TreeModel {
    /// Validates `parts` and flattens it. Errors name the tree (`Err((tree, reason))`, tree
    /// `usize::MAX` for model-level problems); callers wrap them with their own location.
    pub(crate) fn assemble(parts: ModelParts) -> Result<TreeModel, (usize, String)> {
        const MODEL: usize = usize::MAX;
        let n_features = parts.feature_names.len();
        if n_features == 0 {
            return Err((MODEL, "the model has no features".into()));
        }
        if n_features > MAX_FEATURES {
            return Err((
                MODEL,
                format!("{n_features} features (limit {MAX_FEATURES})"),
            ));
        }
        if parts.trees.is_empty() {
            return Err((MODEL, "the model has no trees".into()));
        }
        if !parts.base_score.is_finite() {
            return Err((MODEL, "the base score is not finite".into()));
        }
        if let Link::Sigmoid { scale } = parts.link
            && !(scale.is_finite() && scale > 0.0)
        {
            return Err((
                MODEL,
                format!("sigmoid scale {scale} is not a positive number"),
            ));
        }

        let total_nodes: usize = parts.trees.iter().map(|t| t.nodes.len()).sum();
        let total_leaves: usize = parts.trees.iter().map(|t| t.leaf_values.len()).sum();
        let total_words: usize = parts
            .trees
            .iter()
            .flat_map(|t| t.cat_sets.iter().map(Vec::len))
            .sum();
        if total_nodes >= i32::MAX as usize || total_leaves >= i32::MAX as usize {
            return Err((MODEL, "too many nodes".into()));
        }
        if total_words > MAX_CATEGORY_WORDS {
            return Err((
                MODEL,
                format!(
                    "categorical splits need {total_words} bitset words (limit {MAX_CATEGORY_WORDS})"
                ),
            ));
        }

        let mut model = TreeModel {
            library: parts.library,
            objective: parts.objective,
            link: parts.link,
            feature_names: parts.feature_names,
            base_score: parts.base_score,
            nodes: Vec::with_capacity(total_nodes),
            leaf_values: Vec::with_capacity(total_leaves),
            roots: Vec::with_capacity(parts.trees.len()),
            offsets: Vec::with_capacity(parts.trees.len() + 1),
            node_cover: Vec::with_capacity(total_nodes),
            leaf_cover: Vec::with_capacity(total_leaves),
            node_cat_set: Vec::with_capacity(total_nodes),
            cat_bounds: vec![0],
            cat_words: Vec::with_capacity(total_words),
            depths: Vec::with_capacity(parts.trees.len()),
            max_depth: 0,
            expected_value: 0.0,
            shap: ShapCache::default(),
        };

        for (t, tree) in parts.trees.iter().enumerate() {
            let depth = validate_tree(tree, n_features).map_err(|e| (t, e))?;
            model.max_depth = model.max_depth.max(depth);
            model.depths.push(depth as u32);
            let node_base = model.nodes.len() as i32;
            let leaf_base = model.leaf_values.len() as i32;
            let set_base = (model.cat_bounds.len() - 1) as u32;
            model
                .offsets
                .push([node_base as u32, leaf_base as u32, set_base]);
            let rebase = |child: i32| {
                if child >= 0 {
                    child + node_base
                } else {
                    !((!child) + leaf_base)
                }
            };
            model.roots.push(if tree.nodes.is_empty() {
                rebase(!0)
            } else {
                node_base
            });
            for n in &tree.nodes {
                model.nodes.push(Node {
                    threshold: n.threshold,
                    feature: n.feature,
                    children: [rebase(n.left), rebase(n.right)],
                    kind: n.kind,
                    nan_left: n.nan_left,
                });
                model.node_cat_set.push(if n.kind.is_categorical() {
                    set_base + n.cat_set
                } else {
                    0
                });
            }
            model.leaf_values.extend_from_slice(&tree.leaf_values);
            model.node_cover.extend_from_slice(&tree.node_cover);
            model.leaf_cover.extend_from_slice(&tree.leaf_cover);
            for set in &tree.cat_sets {
                model.cat_words.extend_from_slice(set);
                model.cat_bounds.push(model.cat_words.len() as u32);
            }
        }
        model.offsets.push([
            model.nodes.len() as u32,
            model.leaf_values.len() as u32,
            (model.cat_bounds.len() - 1) as u32,
        ]);
        model.expected_value = crate::shap::expected_value(&model);
        Ok(model)
    }

    /// Which library trained the model.
    pub fn library(&self) -> Library {
        self.library
    }

    /// Binary classification or regression.
    pub fn objective(&self) -> Objective {
        self.objective
    }

    /// The feature names, in the column order rows must follow.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// How many values a row must have.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// How many trees the model sums.
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// The TreeSHAP bias (the last entry of [`TreeModel::contributions`]): the base score plus
    /// each tree's cover-weighted mean leaf value, in raw (margin) space.
    pub fn expected_value(&self) -> f64 {
        self.expected_value
    }

    /// The raw margin: the sum of the trees' leaf values (plus XGBoost's base score), summed as
    /// the library sums them. NaN is a missing value.
    pub fn predict_raw(&self, row: &[f64]) -> Result<f64, TreeError> {
        self.check_row(row)?;
        Ok(match self.library {
            Library::LightGbm => {
                let mut sum = self.base_score;
                self.for_each_leaf(row, |v| sum += v);
                sum
            }
            Library::XgBoost => {
                let mut sum = self.base_score as f32;
                self.for_each_leaf(row, |v| sum += v as f32);
                f64::from(sum)
            }
        })
    }

    /// The prediction after the objective's link: a probability for [`Objective::Binary`], the
    /// raw value for [`Objective::Regression`].
    pub fn predict(&self, row: &[f64]) -> Result<f64, TreeError> {
        Ok(self.link.apply(self.predict_raw(row)?))
    }

    /// [`TreeModel::predict`] for `out.len()` rows stored row-major in `rows`
    /// (`rows.len() == out.len() * n_features`). Allocates nothing.
    pub fn predict_batch(
        &self,
        rows: &[f64],
        n_features: usize,
        out: &mut [f64],
    ) -> Result<(), TreeError> {
        self.predict_raw_batch(rows, n_features, out)?;
        if self.link != Link::Identity {
            for v in out.iter_mut() {
                *v = self.link.apply(*v);
            }
        }
        Ok(())
    }

    /// [`TreeModel::predict_raw`] for a row-major batch; see [`TreeModel::predict_batch`].
    pub fn predict_raw_batch(
        &self,
        rows: &[f64],
        n_features: usize,
        out: &mut [f64],
    ) -> Result<(), TreeError> {
        if n_features != self.n_features() {
            return Err(TreeError::RowLength {
                expected: self.n_features(),
                got: n_features,
            });
        }
        if out.len().checked_mul(n_features) != Some(rows.len()) {
            return Err(TreeError::BatchShape {
                reason: format!(
                    "{} values do not make {} rows of {} features",
                    rows.len(),
                    out.len(),
                    n_features
                ),
            });
        }
        const BLOCK: usize = 64;
        // Rows in blocks, trees outer within a block: one tree's nodes stay in L1 while the
        // block's rows go through it LANES at a time in lockstep (see `leaves_lockstep`). Each
        // row still adds its trees in model order, so the sums are the library's.
        for (block, out) in rows.chunks(BLOCK * n_features).zip(out.chunks_mut(BLOCK)) {
            match self.library {
                Library::LightGbm => {
                    out.fill(self.base_score);
                    self.accumulate(block, n_features, out, |acc, v| *acc += v);
                }
                Library::XgBoost => {
                    let mut acc = [self.base_score as f32; BLOCK];
                    let acc = &mut acc[..out.len()];
                    self.accumulate(block, n_features, acc, |acc, v| *acc += v as f32);
                    for (o, a) in out.iter_mut().zip(acc.iter()) {
                        *o = f64::from(*a);
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds every tree's leaf value for each row of `block` into `acc` (one per row), trees in
    /// model order. Full groups of `LANES` rows go tree by tree, rows in lockstep; the rows
    /// left over (a single-row request is all left over) go one by one, trees in lockstep
    /// ([`TreeModel::for_each_leaf`]): walking them tree by tree alone waits on every
    /// comparison (measured 2.1× slower for one row, `throughput` example).
    #[inline(always)]
    fn accumulate<T>(
        &self,
        block: &[f64],
        n_features: usize,
        acc: &mut [T],
        add: impl Fn(&mut T, f64),
    ) {
        let full = block.len() / (LANES * n_features) * LANES;
        let (grouped, rest) = block.split_at(full * n_features);
        let (acc_grouped, acc_rest) = acc.split_at_mut(full);
        for t in 0..self.roots.len() {
            let groups = grouped.chunks_exact(LANES * n_features);
            for (rows, acc) in groups.zip(acc_grouped.chunks_exact_mut(LANES)) {
                let leaves = self.leaves_lockstep(t, rows, n_features);
                for (a, leaf) in acc.iter_mut().zip(leaves) {
                    add(a, self.leaf_values[leaf]);
                }
            }
        }
        for (row, a) in rest.chunks_exact(n_features).zip(acc_rest) {
            self.for_each_leaf(row, |v| add(a, v));
        }
    }

    /// Calls `add` with the leaf value of every tree for one row, in model order. Trees are
    /// walked `LANES` at a time in lockstep until all have their leaf (independent walks
    /// overlap, as in `leaves_lockstep`), then added in order so that sums stay the library's.
    #[inline(always)]
    fn for_each_leaf(&self, row: &[f64], mut add: impl FnMut(f64)) {
        let n_trees = self.roots.len();
        let full = n_trees - n_trees % LANES;
        for t0 in (0..full).step_by(LANES) {
            let mut idx: [i32; LANES] = std::array::from_fn(|k| self.roots[t0 + k]);
            let steps = self.depths[t0..t0 + LANES]
                .iter()
                .max()
                .copied()
                .unwrap_or(0);
            for _ in 0..steps {
                for n in idx.iter_mut() {
                    let cur = *n;
                    let i = cur.max(0) as usize;
                    let node = &self.nodes[i];
                    let x = row[node.feature as usize];
                    let next = node.children[usize::from(!self.goes_left(i, node, x))];
                    *n = if cur >= 0 { next } else { cur };
                }
                if idx.iter().all(|&n| n < 0) {
                    break;
                }
            }
            for n in idx {
                add(self.leaf_values[(!n) as usize]);
            }
        }
        for t in full..n_trees {
            add(self.leaf_values[self.leaf_index(t, row)]);
        }
    }

    /// The leaves tree `t` sends `LANES` rows to, walking all rows together without
    /// data-dependent branches inside a step: a row that reached its leaf keeps it (the select
    /// compiles to a conditional move), so the rows' independent walks overlap instead of each
    /// waiting on the previous comparison and mispredicted branches. The walk stops when every
    /// row has its leaf, not at the tree's depth: leaf-wise (LightGBM) trees are often twice as
    /// deep as their average path (the serving benchmark's: depth 10.3, path 4.8 on average).
    #[inline(always)]
    fn leaves_lockstep(&self, t: usize, rows: &[f64], n_features: usize) -> [usize; LANES] {
        let mut idx = [self.roots[t]; LANES];
        for _ in 0..self.depths[t] {
            for (lane, n) in idx.iter_mut().enumerate() {
                let cur = *n;
                let i = cur.max(0) as usize;
                let node = &self.nodes[i];
                let x = rows[lane * n_features + node.feature as usize];
                let next = node.children[usize::from(!self.goes_left(i, node, x))];
                *n = if cur >= 0 { next } else { cur };
            }
            if idx.iter().all(|&n| n < 0) {
                break;
            }
        }
        idx.map(|n| (!n) as usize)
    }

    /// Exact path-dependent TreeSHAP values of `row` in raw (margin) space: `n_features + 1`
    /// values, one per feature and the bias ([`TreeModel::expected_value`]) last. They add up to
    /// the raw margin (for XGBoost, to the f64 sum of its f32 leaf values: see the crate docs).
    ///
    /// The first call builds the model's TreeSHAP tables (see
    /// [`TreeModel::prepare_contributions`]); later calls cost O(nodes + Σ leaf path features)
    /// per tree.
    pub fn contributions(&self, row: &[f64]) -> Result<Vec<f64>, TreeError> {
        self.check_row(row)?;
        let mut phi = vec![0.0; self.n_features() + 1];
        crate::shap::contributions(self, row, &mut phi);
        Ok(phi)
    }

    /// [`TreeModel::contributions`] for `rows.len() / n_features` rows stored row-major in
    /// `rows`, written row-major into `out` (`n_features + 1` values per row, the bias last).
    /// Each row's values equal [`TreeModel::contributions`]' bit for bit; the batch walks tree
    /// by tree so that one tree's tables stay in cache. Allocates nothing once the tables exist.
    pub fn contributions_batch(
        &self,
        rows: &[f64],
        n_features: usize,
        out: &mut [f64],
    ) -> Result<(), TreeError> {
        if n_features != self.n_features() {
            return Err(TreeError::RowLength {
                expected: self.n_features(),
                got: n_features,
            });
        }
        let n_rows = rows.len() / n_features;
        if n_rows * n_features != rows.len()
            || n_rows.checked_mul(n_features + 1) != Some(out.len())
        {
            return Err(TreeError::BatchShape {
                reason: format!(
                    "{} values and {} outputs do not make rows of {} features and {} contributions",
                    rows.len(),
                    out.len(),
                    n_features,
                    n_features + 1
                ),
            });
        }
        crate::shap::contributions_batch(self, rows, out);
        Ok(())
    }

    /// Builds the TreeSHAP tables now (at model load, say) instead of on the first explanation,
    /// and returns the bytes they hold. Idempotent and thread-safe: the tables are built once.
    /// Bounded by [`crate::TABLE_BUDGET_BYTES`]; trees beyond it (or with more than
    /// [`crate::MAX_TABLE_FEATURES`] distinct features on a path) are explained by the
    /// recursion, with the same values.
    pub fn prepare_contributions(&self) -> usize {
        self.shap_tables().bytes()
    }

    /// [`TreeModel::contributions`] by the libraries' own recursion (LightGBM's
    /// `Tree::TreeSHAP`) for every tree, without the tables: the reference the tables are tested
    /// against, and the baseline of the `shap_speed` example. O(leaves · depth²) per tree.
    pub fn contributions_recursive(&self, row: &[f64]) -> Result<Vec<f64>, TreeError> {
        self.check_row(row)?;
        Ok(crate::shap::reference_contributions(self, row))
    }

    pub(crate) fn shap_tables(&self) -> &ShapTables {
        self.shap.0.get_or_init(|| ShapTables::build(self))
    }

    pub(crate) fn check_row(&self, row: &[f64]) -> Result<(), TreeError> {
        if row.len() == self.n_features() {
            Ok(())
        } else {
            Err(TreeError::RowLength {
                expected: self.n_features(),
                got: row.len(),
            })
        }
    }

    /// The global leaf index tree `t` sends `row` to. `row.len() == n_features` is checked by
    /// the callers; every node's feature is below `n_features` by validation.
    #[inline]
    pub(crate) fn leaf_index(&self, t: usize, row: &[f64]) -> usize {
        let mut n = self.roots[t];
        while n >= 0 {
            let node = &self.nodes[n as usize];
            let x = row[node.feature as usize];
            n = node.children[usize::from(!self.goes_left(n as usize, node, x))];
        }
        (!n) as usize
    }

    /// Whether split node `idx` sends value `x` left: the library's decision rule.
    #[inline(always)]
    pub(crate) fn goes_left(&self, idx: usize, node: &Node, x: f64) -> bool {
        if node.kind == SplitKind::Numeric {
            // Branch-free form of `if x.is_nan() { nan_left } else { x <= threshold }`
            // (a NaN compares false).
            (x <= node.threshold) | (x.is_nan() & node.nan_left)
        } else {
            self.goes_left_special(idx, node, x)
        }
    }

    // Out of line so that the numeric fast path stays small inside the lockstep loop.
    #[inline(never)]
    fn goes_left_special(&self, idx: usize, node: &Node, x: f64) -> bool {
        match node.kind {
            SplitKind::Numeric => {
                if x.is_nan() {
                    node.nan_left
                } else {
                    x <= node.threshold
                }
            }
            SplitKind::NumericZeroMissing => {
                if x.is_nan() || (-LIGHTGBM_ZERO_THRESHOLD..=LIGHTGBM_ZERO_THRESHOLD).contains(&x) {
                    node.nan_left
                } else {
                    x <= node.threshold
                }
            }
            SplitKind::CategoricalLightGbm => {
                if x.is_nan() {
                    return false;
                }
                // C++ `static_cast<int>`: truncation; out-of-range values are negative there
                // (x86) and saturate here, and both go right.
                let c = x as i32;
                c >= 0 && self.in_set(self.node_cat_set[idx], c as u32)
            }
            SplitKind::CategoricalXgBoost => {
                if x.is_nan() {
                    return node.nan_left;
                }
                let v = x as f32;
                if !(0.0..XGBOOST_MAX_CATEGORY).contains(&v) {
                    return true;
                }
                !self.in_set(self.node_cat_set[idx], v as u32)
            }
        }
    }

    #[inline]
    fn in_set(&self, set: u32, c: u32) -> bool {
        let (lo, hi) = (
            self.cat_bounds[set as usize] as usize,
            self.cat_bounds[set as usize + 1] as usize,
        );
        let words = &self.cat_words[lo..hi];
        words
            .get((c / 32) as usize)
            .is_some_and(|w| (w >> (c % 32)) & 1 == 1)
    }

    /// Turns the flat model back into per-tree parts (for storage).
    pub(crate) fn to_parts(&self) -> ModelParts {
        let mut trees = Vec::with_capacity(self.roots.len());
        for t in 0..self.roots.len() {
            let [n0, l0, s0] = self.offsets[t];
            let [n1, l1, s1] = self.offsets[t + 1];
            let (n0, l0) = (n0 as i32, l0 as i32);
            let local = |child: i32| {
                if child >= 0 {
                    child - n0
                } else {
                    !((!child) - l0)
                }
            };
            let range = n0 as usize..n1 as usize;
            let nodes = self.nodes[range.clone()]
                .iter()
                .zip(&self.node_cat_set[range.clone()])
                .map(|(n, set)| RawNode {
                    feature: n.feature,
                    threshold: n.threshold,
                    left: local(n.children[0]),
                    right: local(n.children[1]),
                    kind: n.kind,
                    nan_left: n.nan_left,
                    cat_set: if n.kind.is_categorical() { set - s0 } else { 0 },
                })
                .collect();
            let leaves = l0 as usize..l1 as usize;
            let cat_sets = (s0..s1)
                .map(|s| {
                    let (lo, hi) = (self.cat_bounds[s as usize], self.cat_bounds[s as usize + 1]);
                    self.cat_words[lo as usize..hi as usize].to_vec()
                })
                .collect();
            trees.push(RawTree {
                nodes,
                leaf_values: self.leaf_values[leaves.clone()].to_vec(),
                node_cover: self.node_cover[range].to_vec(),
                leaf_cover: self.leaf_cover[leaves].to_vec(),
                cat_sets,
            });
        }
        ModelParts {
            library: self.library,
            objective: self.objective,
            link: self.link,
            feature_names: self.feature_names.clone(),
            base_score: self.base_score,
            trees,
        }
    }
}

/// Checks that `tree` is a proper binary tree rooted at node 0 (or a single leaf) whose
/// references are all in range, and returns its depth.
pub(crate) fn validate_tree(tree: &RawTree, n_features: usize) -> Result<usize, String> {
    let n_nodes = tree.nodes.len();
    let n_leaves = tree.leaf_values.len();
    if n_leaves != n_nodes + 1 {
        return Err(format!(
            "{n_nodes} split nodes need {} leaves, found {n_leaves}",
            n_nodes + 1
        ));
    }
    if tree.node_cover.len() != n_nodes || tree.leaf_cover.len() != n_leaves {
        return Err("cover counts do not match the node counts".into());
    }
    if let Some(v) = tree.leaf_values.iter().find(|v| !v.is_finite()) {
        return Err(format!("leaf value {v} is not finite"));
    }
    if let Some(v) = tree
        .node_cover
        .iter()
        .chain(&tree.leaf_cover)
        .find(|v| !v.is_finite() || **v < 0.0)
    {
        return Err(format!("cover {v} is not a non-negative number"));
    }
    for (i, n) in tree.nodes.iter().enumerate() {
        if n.feature as usize >= n_features {
            return Err(format!(
                "node {i} splits on feature {} but the model has {n_features} features",
                n.feature
            ));
        }
        if n.kind.is_categorical() {
            if n.cat_set as usize >= tree.cat_sets.len() {
                return Err(format!(
                    "node {i} refers to category set {} but the tree has {}",
                    n.cat_set,
                    tree.cat_sets.len()
                ));
            }
        } else if !n.threshold.is_finite() {
            // Neither library writes an infinite threshold, and the stored form (JSON) could
            // not keep one: refuse it here, as for every other non-finite value.
            return Err(format!(
                "node {i} has a non-finite threshold {}",
                n.threshold
            ));
        }
    }
    if n_nodes == 0 {
        return Ok(0);
    }
    // Depth-first walk from the root: every node and leaf must be reached exactly once.
    let mut seen_node = vec![false; n_nodes];
    let mut seen_leaf = vec![false; n_leaves];
    let mut stack = vec![(0_i32, 0_usize)];
    let mut depth = 0;
    while let Some((child, d)) = stack.pop() {
        if d > MAX_TREE_DEPTH {
            return Err(format!("tree is deeper than {MAX_TREE_DEPTH} levels"));
        }
        depth = depth.max(d);
        if child >= 0 {
            let i = child as usize;
            match seen_node.get_mut(i) {
                None => return Err(format!("child {child} is not a node of this tree")),
                Some(true) => return Err(format!("node {i} is reached twice (not a tree)")),
                Some(seen) => *seen = true,
            }
            stack.push((tree.nodes[i].right, d + 1));
            stack.push((tree.nodes[i].left, d + 1));
        } else {
            let i = (!child) as usize;
            match seen_leaf.get_mut(i) {
                None => return Err(format!("child {child} is not a leaf of this tree")),
                Some(true) => return Err(format!("leaf {i} is reached twice (not a tree)")),
                Some(seen) => *seen = true,
            }
        }
    }
    // n + 1 leaves and n nodes, each reached at most once from the root along 2n edges: all
    // reached means a proper tree.
    if seen_node.iter().chain(&seen_leaf).any(|s| !s) {
        return Err("some nodes are not reachable from the root".into());
    }
    Ok(depth)
}
