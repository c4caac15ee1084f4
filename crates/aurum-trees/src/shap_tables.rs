//! Path-dependent TreeSHAP with per-leaf tables computed once per model (the idea of Fast
//! TreeSHAP v2, Yang 2021): the same values as [`crate::shap`]'s recursion, at O(nodes + Σ
//! path features) per tree and row instead of O(leaves · depth²).
//!
//! # Why it is exact
//!
//! Take one leaf with value `v` whose root path splits on the distinct features `U` (`d = |U|`).
//! For feature `j ∈ U` let `z_j` be the product of the cover fractions along the path's splits on
//! `j` (what TreeSHAP calls the zero fraction) and `o_j` ∈ {0, 1} whether the row takes the
//! path's direction at every one of them (the one fraction). The leaf's part of path-dependent
//! TreeSHAP is the Shapley value of the game `f(S) = v · Π_{j∈S} o_j · Π_{j∈U∖S} z_j`, so with
//! `w(k) = k! (d−1−k)! / d!` and `P = {j : o_j = 1}`:
//!
//! ```text
//! φ_i = v (o_i − z_i) Σ_{S ⊆ P∖{i}} w(|S|) Π_{j ∈ U∖{i}∖S} z_j
//!     = v (o_i − z_i) · F(P∖{i}) · Π_{j ∈ U∖P, j≠i} z_j,
//! F(Q) = Σ_{S ⊆ Q} w(|S|) Π_{j ∈ Q∖S} z_j          (depends on Q and the leaf only)
//! ```
//!
//! so, with `Z(P) = Π_{j ∈ U∖P} z_j`:
//!
//! * `i ∉ P`: `φ_i = −v · F(P) · Z(P)`, the same for every such feature;
//! * `i ∈ P`: `φ_i = v (1 − z_i) · F(P∖{i}) · Z(P)`.
//!
//! `v·F(Q)` for every `Q ⊆ U` is the leaf's table (2^d values, built from the elementary symmetric
//! polynomials of the `z_j`). At explain time a row's walk of the tree gives `P` for every leaf
//! as a bit mask (slot `s` of a path is the `s`-th distinct feature from the root) and `Z(P)`,
//! and each leaf costs `d` table reads and additions. The recursion's sums are regrouped, so
//! results differ from it by rounding only (tested to 1e-9 against it on random trees and on
//! the fixtures).
//!
//! # Row tables for small trees
//!
//! Every factor of `φ_i` above depends on the leaf and `P` only (`z_j` is the leaf's own), so a
//! leaf can instead hold, for each of its `2^d` masks, the row of `d` values its slots get. A
//! row's walk then needs only `P` (no `Z(P)`), and each leaf costs one read of `d` adjacent values
//! and `d` additions: about half the work. The table is `d` times larger, and once one tree's
//! tables outgrow the core's first caches the reads miss and the rows lose (measured on the
//! serving benchmark's 31-leaf trees: 41 MiB, one row 1.6× slower). So a tree gets row tables only
//! when they hold at most [`ROW_TREE_ENTRIES`] values; the others keep the `2^d` tables.
//!
//! # Memory bound
//!
//! A leaf with `d` distinct path features costs `2^d` f64 (8·2^d bytes; `d·2^d` in a tree with
//! row tables) plus 16 bytes per path feature, and every node and leaf a 32-byte step. A tree
//! is tabled only when every leaf has `d ≤` [`MAX_TABLE_FEATURES`] and the model's tables stay
//! within [`TABLE_BUDGET_BYTES`]; other trees keep the recursion ([`crate::shap`]), so memory
//! is bounded whatever an untrusted file holds and the answer is the same either way. Measured
//! (`shap_speed`, BENCHMARKS.md): 200 LightGBM trees of 15 leaves 3.1 MiB, of 31 leaves
//! 6.3 MiB (about 32 KiB per tree, few with row tables); 200 XGBoost trees of depth 4
//! 1.4 MiB. The tables are built on the first explanation (1–8 ms for those models) or by
//! [`TreeModel::prepare_contributions`](crate::TreeModel::prepare_contributions).

use crate::TreeError;
use crate::model::TreeModel;

/// What the tables are built from: trees whose split nodes and leaves are numbered globally,
/// children `>= 0` a split node and `< 0` a leaf (`!child`), as in [`TreeModel`].
pub(crate) trait Forest {
    fn roots(&self) -> &[i32];
    fn n_leaves(&self) -> usize;
    /// The feature split node `node` tests, and its `[left, right]` children.
    fn split(&self, node: usize) -> (u32, [i32; 2]);
    /// The share of `node`'s cover that goes to its child on `side` (0 left, 1 right).
    fn fraction(&self, node: usize, side: usize) -> f64;
    fn leaf_value(&self, leaf: usize) -> f64;
}

impl Forest for TreeModel {
    fn roots(&self) -> &[i32] {
        &self.roots
    }

    fn n_leaves(&self) -> usize {
        self.leaf_values.len()
    }

    fn split(&self, node: usize) -> (u32, [i32; 2]) {
        let n = &self.nodes[node];
        (n.feature, n.children)
    }

    fn fraction(&self, node: usize, side: usize) -> f64 {
        cover(self, self.nodes[node].children[side]) / self.node_cover[node]
    }

    fn leaf_value(&self, leaf: usize) -> f64 {
        self.leaf_values[leaf]
    }
}

/// Deepest distinct-feature path a table is built for (2^12 f64 = 32 KiB per leaf).
pub const MAX_TABLE_FEATURES: usize = 12;

/// Most bytes of tables one model may hold; trees beyond it use the recursion.
pub const TABLE_BUDGET_BYTES: usize = 64 << 20;

/// Most values one tree's row tables may hold (32 KiB), else it keeps the `2^d` tables (see
/// the module docs).
pub(crate) const ROW_TREE_ENTRIES: usize = 4096;

/// The precomputed tables of one model; leaf indices are the model's global ones.
#[derive(Clone, Debug, Default)]
pub(crate) struct ShapTables {
    /// Tree `t`'s steps are `steps[tree_steps[t]..tree_steps[t + 1]]`, in preorder (none for a
    /// tree that is not tabled or is a single leaf).
    tree_steps: Vec<u32>,
    steps: Vec<Step>,
    /// Per tree: tabled (else the recursion explains it).
    tabled: Vec<bool>,
    /// Per tree: its leaves hold row tables (`d·2^d` values each) instead of `2^d` values.
    rows: Vec<bool>,
    /// Most steps in one tree (the size of the per-row scratch state).
    max_steps: usize,
    /// Per leaf: where its slots and table are.
    leaves: Vec<LeafAt>,
    /// Every leaf's slots, in path order.
    slots: Vec<Slot>,
    /// Per leaf, `2^d` values `v · F(Q)` indexed by the mask of `Q`.
    table: Vec<f64>,
}

/// Where a leaf's slots and table are (`d` distinct path features: `slots[slot..slot + d]`,
/// `table[table..table + 2^d]`, or `d·2^d` values for row tables).
#[derive(Clone, Copy, Debug, Default)]
struct LeafAt {
    slot: u32,
    table: u32,
    d: u32,
}

/// One distinct feature of a leaf's path, and `1 − z` for it.
#[derive(Clone, Copy, Debug)]
struct Slot {
    one_minus_z: f64,
    feature: u32,
}

/// One node or leaf of a tabled tree, reached from its parent (preorder, so the parent's state
/// is known when the step runs). The first step of a tree is its root and has no parent.
#[derive(Clone, Copy, Debug)]
struct Step {
    /// `>= 0` a split node, `< 0` a leaf (`!child`), global indices.
    child: i32,
    /// Index of the parent's step within the tree.
    parent: u32,
    /// The slot of the parent's feature on this path.
    slot: u8,
    /// This is the parent's left child.
    left: bool,
    /// The parent→child cover fraction.
    fraction: f64,
    /// `fraction` times the fractions of the earlier splits on the parent's feature on this
    /// path: what `Z(P)` gains when the row leaves the path here for the first time on it.
    first_cold: f64,
}

impl Step {
    /// The row's mask `P` and `Z(P)` at this step, from its parent's and its direction there.
    /// Branch-free: the row's directions are data, and mispredictions would dominate.
    /// With `ROWS` (a tree with row tables) only the mask is kept and `Z` stays 1.
    #[inline(always)]
    fn advance<const ROWS: bool>(&self, mask: u64, zc: f64, goes_left: bool) -> (u64, f64) {
        let hot = usize::from(goes_left == self.left);
        if ROWS {
            return (mask & !(((1 - hot) as u64) << self.slot), zc);
        }
        let set = ((mask >> self.slot) & 1) as usize;
        // Bit clear: the feature is already off the path, every split on it counts in Z. Set
        // and hot: nothing yet. Set and cold: the feature leaves the path here. (A select by
        // index measured faster here than branches, multiplying by 0 and 1, or masking bits.)
        let factor = [self.fraction, self.first_cold, 1.0][set * (1 + hot)];
        (mask & !(((1 - hot) as u64) << self.slot), zc * factor)
    }
}

/// A row's state at a step: the mask `P` so far (bit `s` cleared once the row left the path at
/// a split on slot `s`'s feature), `Z(P)` so far, and for a split node the row's direction.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StepState {
    mask: u64,
    zc: f64,
    goes_left: bool,
}

/// Rows explained together by [`ShapTables::add_tree_lanes`].
pub(crate) const LANES: usize = 8;

/// [`StepState`] for each of up to [`LANES`] rows.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LaneState {
    mask: [u64; LANES],
    zc: [f64; LANES],
    goes_left: [bool; LANES],
}

impl ShapTables {
    /// Builds the tables of every tree that fits the bounds (see the module docs).
    pub(crate) fn build(model: &impl Forest) -> ShapTables {
        let n_leaves = model.n_leaves();
        let mut tables = ShapTables {
            tree_steps: vec![0],
            leaves: vec![LeafAt::default(); n_leaves],
            tabled: vec![false; model.roots().len()],
            rows: vec![false; model.roots().len()],
            ..ShapTables::default()
        };
        let mut budget = TABLE_BUDGET_BYTES / 8;
        for (t, &root) in model.roots().iter().enumerate() {
            if root < 0 {
                // A single leaf: no feature gets anything; the bias carries it.
                tables.tabled[t] = true;
            } else if let Some((cost, rows)) = tree_cost(model, root)
                && cost <= budget
                && tables.table.len() + cost <= u32::MAX as usize
            {
                budget -= cost;
                tables.rows[t] = rows;
                let first = tables.steps.len();
                tables.steps.push(Step {
                    child: root,
                    parent: 0,
                    slot: 0,
                    left: false,
                    fraction: 1.0,
                    first_cold: 1.0,
                });
                let mut path = Vec::with_capacity(MAX_TABLE_FEATURES);
                tables.fill(model, root, first, &mut path, rows);
                tables.max_steps = tables.max_steps.max(tables.steps.len() - first);
                tables.tabled[t] = true;
            }
            tables.tree_steps.push(tables.steps.len() as u32);
        }
        tables.steps.shrink_to_fit();
        tables.slots.shrink_to_fit();
        tables.table.shrink_to_fit();
        tables
    }

    /// Bytes held, for the memory figures.
    pub(crate) fn bytes(&self) -> usize {
        self.tree_steps.len() * 4
            + self.steps.len() * std::mem::size_of::<Step>()
            + self.tabled.len()
            + self.rows.len()
            + self.leaves.len() * std::mem::size_of::<LeafAt>()
            + self.slots.len() * std::mem::size_of::<Slot>()
            + self.table.len() * 8
    }

    /// Scratch state for [`ShapTables::add_tree`], enough for any tree of this model.
    pub(crate) fn scratch(&self) -> Vec<StepState> {
        vec![StepState::default(); self.max_steps]
    }

    /// Appends the steps below `child` (whose own step is `at`, within the tree) and the tables
    /// of its leaves (row tables when `rows`); `path` holds the distinct features `(feature, z)`
    /// above `child`.
    fn fill(
        &mut self,
        model: &impl Forest,
        child: i32,
        at: usize,
        path: &mut Vec<(u32, f64)>,
        rows: bool,
    ) {
        if child < 0 {
            let leaf = (!child) as usize;
            let d = path.len();
            self.leaves[leaf] = LeafAt {
                slot: self.slots.len() as u32,
                table: self.table.len() as u32,
                d: d as u32,
            };
            for &(feature, z) in path.iter() {
                self.slots.push(Slot {
                    one_minus_z: 1.0 - z,
                    feature,
                });
            }
            let start = self.table.len();
            self.table.resize(start + (1 << d), 0.0);
            leaf_table(
                path,
                model.leaf_value(leaf),
                &mut self.table[start..start + (1 << d)],
            );
            if rows {
                let values = leaf_rows(path, &self.table[start..]);
                self.table.truncate(start);
                self.table.extend(values);
            }
            return;
        }
        let tree_start = *self.tree_steps.last().unwrap_or(&0) as usize;
        let (feature, children) = model.split(child as usize);
        let slot = path.iter().position(|&(f, _)| f == feature);
        for (side, c) in children.into_iter().enumerate() {
            let fraction = model.fraction(child as usize, side);
            let before = slot.map_or(1.0, |s| path[s].1);
            self.steps.push(Step {
                child: c,
                parent: (at - tree_start) as u32,
                slot: slot.unwrap_or(path.len()) as u8,
                left: side == 0,
                fraction,
                first_cold: fraction * before,
            });
            let step = self.steps.len() - 1;
            match slot {
                Some(s) => {
                    path[s].1 = fraction * before;
                    self.fill(model, c, step, path, rows);
                    path[s].1 = before;
                }
                None => {
                    path.push((feature, fraction));
                    self.fill(model, c, step, path, rows);
                    path.pop();
                }
            }
        }
    }

    /// Adds the contributions of tree `t` to `phi` (the bias is not touched), with `state` from
    /// [`ShapTables::scratch`]; `goes_left(node)` is the row's direction at split node `node`
    /// (a global index). `false` when the tree is not tabled and the caller must use the
    /// recursion.
    #[inline]
    pub(crate) fn add_tree(
        &self,
        t: usize,
        goes_left: impl FnMut(usize) -> bool,
        phi: &mut [f64],
        state: &mut [StepState],
    ) -> bool {
        let Some(tree) = self.tree(t) else {
            return false;
        };
        let Some((root, steps)) = tree else {
            return true; // a single leaf
        };
        if self.rows[t] {
            self.walk::<true>(root, steps, goes_left, phi, state);
        } else {
            self.walk::<false>(root, steps, goes_left, phi, state);
        }
        true
    }

    /// [`ShapTables::add_tree`] for one tree with steps; `ROWS`: it has row tables, so the walk
    /// needs no `Z(P)`.
    #[inline(always)]
    fn walk<const ROWS: bool>(
        &self,
        root: &Step,
        steps: &[Step],
        mut goes_left: impl FnMut(usize) -> bool,
        phi: &mut [f64],
        state: &mut [StepState],
    ) {
        let state = &mut state[..steps.len() + 1];
        state[0] = StepState {
            mask: u64::MAX,
            zc: 1.0,
            goes_left: goes_left(root.child as usize),
        };
        for (k, step) in steps.iter().enumerate() {
            let parent = state[step.parent as usize];
            let (mask, zc) = step.advance::<ROWS>(parent.mask, parent.zc, parent.goes_left);
            if step.child >= 0 {
                state[k + 1] = StepState {
                    mask,
                    zc,
                    goes_left: goes_left(step.child as usize),
                };
            } else if let Some(leaf) = self.leaf_at::<ROWS>((!step.child) as usize) {
                leaf.add::<ROWS>(mask, zc, phi);
            }
        }
    }

    /// Tree `t`'s steps as its root and the rest; `None` when the tree is not tabled,
    /// `Some(None)` for a single leaf.
    #[inline]
    fn tree(&self, t: usize) -> Option<Option<(&Step, &[Step])>> {
        if !self.tabled[t] {
            return None;
        }
        let steps = &self.steps[self.tree_steps[t] as usize..self.tree_steps[t + 1] as usize];
        Some(steps.split_first())
    }

    /// [`ShapTables::add_tree`] for up to [`LANES`] rows in lockstep: every step and leaf is
    /// read once for all of them, and their additions into `phi` are independent of one
    /// another, so the core overlaps them instead of waiting on one row's chain of additions.
    /// `phi` holds the rows' outputs back to back, `stride` values each (`phi[r * stride + f]`);
    /// `goes_left(node, lanes)` sets each row's direction at split node `node` (a global
    /// index) in `lanes[..n]`. Each row gets exactly the additions, in the same order, that
    /// [`ShapTables::add_tree`] gives it alone, so the results are equal to the bit.
    #[inline]
    pub(crate) fn add_tree_lanes(
        &self,
        t: usize,
        n: usize,
        goes_left: impl FnMut(usize, &mut [bool]),
        phi: &mut [f64],
        stride: usize,
        state: &mut [LaneState],
    ) -> bool {
        debug_assert!(n <= LANES && phi.len() >= n * stride);
        let Some(tree) = self.tree(t) else {
            return false;
        };
        let Some((root, steps)) = tree else {
            return true; // a single leaf
        };
        if self.rows[t] {
            self.walk_lanes::<true>(root, steps, n, goes_left, phi, stride, state);
        } else {
            self.walk_lanes::<false>(root, steps, n, goes_left, phi, stride, state);
        }
        true
    }

    /// [`ShapTables::add_tree_lanes`] for one tree with steps; `ROWS` as in
    /// [`ShapTables::walk`].
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn walk_lanes<const ROWS: bool>(
        &self,
        root: &Step,
        steps: &[Step],
        n: usize,
        mut goes_left: impl FnMut(usize, &mut [bool]),
        phi: &mut [f64],
        stride: usize,
        state: &mut [LaneState],
    ) {
        let state = &mut state[..steps.len() + 1];
        state[0] = LaneState {
            mask: [u64::MAX; LANES],
            zc: [1.0; LANES],
            goes_left: [false; LANES],
        };
        goes_left(root.child as usize, &mut state[0].goes_left[..n]);
        for (k, step) in steps.iter().enumerate() {
            let parent = &state[step.parent as usize];
            let mut mask = [0u64; LANES];
            let mut zc = [0.0f64; LANES];
            for r in 0..n {
                (mask[r], zc[r]) =
                    step.advance::<ROWS>(parent.mask[r], parent.zc[r], parent.goes_left[r]);
            }
            if step.child >= 0 {
                let next = &mut state[k + 1];
                next.mask = mask;
                next.zc = zc;
                goes_left(step.child as usize, &mut next.goes_left[..n]);
            } else if let Some(leaf) = self.leaf_at::<ROWS>((!step.child) as usize) {
                for (r, phi) in phi.chunks_exact_mut(stride).take(n).enumerate() {
                    leaf.add::<ROWS>(mask[r], zc[r], phi);
                }
            }
        }
    }

    /// Scratch state for [`ShapTables::add_tree_lanes`].
    pub(crate) fn lane_scratch(&self) -> Vec<LaneState> {
        vec![LaneState::default(); self.max_steps]
    }

    /// Whether tree `t` has tables.
    pub(crate) fn is_tabled(&self, t: usize) -> bool {
        self.tabled[t]
    }

    /// A leaf's slots and table (`ROWS`: row tables); `None` when its path tests no feature
    /// (nothing to add).
    #[inline(always)]
    fn leaf_at<const ROWS: bool>(&self, leaf: usize) -> Option<LeafTable<'_>> {
        let at = self.leaves[leaf];
        let d = at.d as usize;
        let len = if ROWS { d << d } else { 1 << d };
        (d > 0).then(|| LeafTable {
            slots: &self.slots[at.slot as usize..at.slot as usize + d],
            table: &self.table[at.table as usize..at.table as usize + len],
        })
    }
}

/// One leaf's slots and table, read once for every row that reaches it in lockstep.
#[derive(Clone, Copy)]
struct LeafTable<'a> {
    slots: &'a [Slot],
    table: &'a [f64],
}

impl LeafTable<'_> {
    /// Adds the leaf's part for one row: `mask` is `P`, `zc` is `Z(P)` (see the module docs);
    /// `ROWS`: the table holds rows, and `zc` is not used.
    #[inline(always)]
    fn add<const ROWS: bool>(self, mask: u64, zc: f64, phi: &mut [f64]) {
        let d = self.slots.len();
        let p = (mask & ((1u64 << d) - 1)) as usize;
        if ROWS {
            let values = &self.table[p * d..p * d + d];
            for (slot, &value) in self.slots.iter().zip(values) {
                phi[slot.feature as usize] += value;
            }
            return;
        }
        let off = -self.table[p] * zc;
        for (s, slot) in self.slots.iter().enumerate() {
            let in_p = (p >> s) & 1;
            // Both candidates, then a select by index: no branch on the row's data.
            let on = slot.one_minus_z * zc * self.table[p & !(1 << s)];
            phi[slot.feature as usize] += [off, on][in_p];
        }
    }
}

/// One split node of a [`ShapTree`]: the feature it tests, its children (`>= 0` a split node
/// of the same tree, `< 0` a leaf `!child`, indices local to the tree) and the share of the
/// node's cover that goes to each child (TreeSHAP's zero fractions: the two add up to 1, up to
/// rounding, for a tree trained on data).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShapNode {
    pub feature: u32,
    pub children: [i32; 2],
    pub fractions: [f64; 2],
}

/// A tree described for [`TreeShap`]: split node 0 is the root; with no split nodes the tree
/// is the single leaf 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShapTree {
    pub nodes: Vec<ShapNode>,
    pub leaf_values: Vec<f64>,
}

/// Path-dependent TreeSHAP from tables, for trees this crate does not evaluate itself (a model
/// family with its own tree type and decision rule): built once per model from [`ShapTree`]s,
/// then each row's directions come from the caller. Same values as the recursion of
/// Lundberg et al. (regrouped sums; see the `shap_tables` module docs) and as
/// [`TreeModel::contributions`] for the same trees.
///
/// Trees with a leaf of more than [`MAX_TABLE_FEATURES`] distinct path features, or beyond
/// [`TABLE_BUDGET_BYTES`], get no tables ([`TreeShap::is_tabled`] is `false`) and
/// [`TreeShap::add_contributions`] skips them: the caller explains those with its own
/// recursion.
#[derive(Clone, Debug)]
pub struct TreeShap {
    forest: Plain,
    tables: ShapTables,
}

/// The trees of a [`TreeShap`], numbered globally.
#[derive(Clone, Debug, Default)]
struct Plain {
    roots: Vec<i32>,
    /// Per tree: its first global split node.
    node_base: Vec<usize>,
    nodes: Vec<ShapNode>,
    leaf_values: Vec<f64>,
}

impl Forest for Plain {
    fn roots(&self) -> &[i32] {
        &self.roots
    }

    fn n_leaves(&self) -> usize {
        self.leaf_values.len()
    }

    fn split(&self, node: usize) -> (u32, [i32; 2]) {
        let n = &self.nodes[node];
        (n.feature, n.children)
    }

    fn fraction(&self, node: usize, side: usize) -> f64 {
        self.nodes[node].fractions[side]
    }

    fn leaf_value(&self, leaf: usize) -> f64 {
        self.leaf_values[leaf]
    }
}

impl TreeShap {
    /// Checks the trees (proper binary trees, features below `n_features`, finite leaf values,
    /// finite non-negative fractions) and builds their tables. Errors name the tree.
    pub fn new(n_features: usize, trees: &[ShapTree]) -> Result<TreeShap, TreeError> {
        let mut forest = Plain::default();
        for (t, tree) in trees.iter().enumerate() {
            let invalid = |reason: String| TreeError::Parse {
                format: "TreeSHAP",
                location: format!("tree {t}"),
                reason,
            };
            let raw = crate::model::RawTree {
                nodes: tree
                    .nodes
                    .iter()
                    .map(|n| crate::model::RawNode {
                        feature: n.feature,
                        threshold: 0.0,
                        left: n.children[0],
                        right: n.children[1],
                        kind: crate::model::SplitKind::Numeric,
                        nan_left: false,
                        cat_set: 0,
                    })
                    .collect(),
                leaf_values: tree.leaf_values.clone(),
                node_cover: vec![1.0; tree.nodes.len()],
                leaf_cover: vec![1.0; tree.leaf_values.len()],
                cat_sets: Vec::new(),
            };
            crate::model::validate_tree(&raw, n_features).map_err(invalid)?;
            if let Some(f) = tree
                .nodes
                .iter()
                .flat_map(|n| n.fractions)
                .find(|f| !(f.is_finite() && *f >= 0.0))
            {
                return Err(invalid(format!(
                    "cover fraction {f} is not a non-negative number"
                )));
            }
            let node_base = forest.nodes.len() as i32;
            let leaf_base = forest.leaf_values.len() as i32;
            if node_base as usize + tree.nodes.len() >= i32::MAX as usize
                || leaf_base as usize + tree.leaf_values.len() >= i32::MAX as usize
            {
                return Err(invalid("too many nodes".into()));
            }
            let rebase = |c: i32| {
                if c >= 0 {
                    c + node_base
                } else {
                    !((!c) + leaf_base)
                }
            };
            forest.roots.push(if tree.nodes.is_empty() {
                rebase(!0)
            } else {
                node_base
            });
            forest.node_base.push(node_base as usize);
            forest.nodes.extend(tree.nodes.iter().map(|n| ShapNode {
                children: n.children.map(rebase),
                ..*n
            }));
            forest.leaf_values.extend_from_slice(&tree.leaf_values);
        }
        let tables = ShapTables::build(&forest);
        Ok(TreeShap { forest, tables })
    }

    /// How many trees.
    pub fn n_trees(&self) -> usize {
        self.forest.roots.len()
    }

    /// Whether tree `t` has tables (else [`TreeShap::add_contributions`] skips it).
    pub fn is_tabled(&self, t: usize) -> bool {
        self.tables.is_tabled(t)
    }

    /// Bytes the tables hold.
    pub fn table_bytes(&self) -> usize {
        self.tables.bytes()
    }

    /// Adds one row's contributions from every tabled tree to `phi` (one value per feature;
    /// the caller adds its own bias). `goes_left(tree, node)` is the row's direction at split
    /// node `node` (local to the tree), by the caller's decision rule.
    pub fn add_contributions(
        &self,
        mut goes_left: impl FnMut(usize, usize) -> bool,
        phi: &mut [f64],
    ) {
        let mut state = self.tables.scratch();
        for t in 0..self.n_trees() {
            let base = self.forest.node_base[t];
            self.tables
                .add_tree(t, |i| goes_left(t, i - base), phi, &mut state);
        }
    }
}

#[inline]
fn cover(model: &TreeModel, child: i32) -> f64 {
    if child >= 0 {
        model.node_cover[child as usize]
    } else {
        model.leaf_cover[(!child) as usize]
    }
}

/// Table entries tree `root` needs and whether they are row tables, or `None` when one of its
/// leaves has more than [`MAX_TABLE_FEATURES`] distinct path features.
fn tree_cost(model: &impl Forest, root: i32) -> Option<(usize, bool)> {
    fn walk(model: &impl Forest, child: i32, path: &mut Vec<u32>, total: &mut [usize; 2]) -> bool {
        if child < 0 {
            total[0] += 1 << path.len();
            total[1] += path.len() << path.len();
            return true;
        }
        let (feature, children) = model.split(child as usize);
        let new = !path.contains(&feature);
        if new {
            if path.len() == MAX_TABLE_FEATURES {
                return false;
            }
            path.push(feature);
        }
        let ok = children.iter().all(|&c| walk(model, c, path, total));
        if new {
            path.pop();
        }
        ok
    }
    let mut total = [0; 2];
    walk(model, root, &mut Vec::new(), &mut total).then(|| {
        if total[1] <= ROW_TREE_ENTRIES {
            (total[1], true)
        } else {
            (total[0], false)
        }
    })
}

/// Fills `out[Q] = v · F(Q)` for every subset mask `Q` of the `d` path features, with
/// `F(Q) = Σ_k w(k) e_{|Q|−k}(z_Q)` (`e_m`: elementary symmetric polynomials of the zero
/// fractions in `Q`). `F(U)` itself is never read and is left 0.
fn leaf_table(path: &[(u32, f64)], v: f64, out: &mut [f64]) {
    let d = path.len();
    // w(k) = k! (d-1-k)! / d!, k = 0..d-1.
    let mut w = vec![0.0; d];
    for (k, wk) in w.iter_mut().enumerate() {
        let mut x = 1.0 / d as f64;
        // k! (d-1-k)! / (d-1)! = 1 / C(d-1, k)
        for j in 0..k {
            x *= (j + 1) as f64 / (d - 1 - j) as f64;
        }
        *wk = x;
    }
    // e[Q] as polynomial coefficients: e[Q][m] for m = 0..=|Q|, built from Q minus its top bit.
    let stride = d + 1;
    let mut e = vec![0.0; (1 << d) * stride];
    e[0] = 1.0;
    for q in 1usize..(1 << d) {
        let top = usize::BITS as usize - 1 - q.leading_zeros() as usize;
        let rest = q & !(1 << top);
        let z = path[top].1;
        let (done, cur) = e.split_at_mut(q * stride);
        let prev = &done[rest * stride..rest * stride + stride];
        let cur = &mut cur[..stride];
        cur[0] = 1.0;
        for m in 1..stride {
            cur[m] = prev[m] + z * prev[m - 1];
        }
    }
    let full = (1usize << d) - 1;
    for (q, slot) in out.iter_mut().enumerate() {
        if q == full {
            continue;
        }
        let n = q.count_ones() as usize;
        let coeffs = &e[q * stride..q * stride + stride];
        let mut f = 0.0;
        for (k, wk) in w.iter().enumerate().take(n + 1) {
            f += wk * coeffs[n - k];
        }
        *slot = v * f;
    }
}

/// A leaf's row table from its `2^d` table `vf` (`v·F(Q)`, see [`leaf_table`]): row `P` holds,
/// for each slot `s`, `Z(P) · (1 − z_s) · v·F(P∖{s})` when `s ∈ P` and `−Z(P) · v·F(P)`
/// otherwise, `Z(P)` being the product of the zero fractions outside `P`.
fn leaf_rows(path: &[(u32, f64)], vf: &[f64]) -> Vec<f64> {
    let d = path.len();
    let n = 1usize << d;
    let full = n - 1;
    // The product of the zero fractions in each mask, from the mask minus its top bit.
    let mut z_in = vec![1.0; n];
    for q in 1..n {
        let top = usize::BITS as usize - 1 - q.leading_zeros() as usize;
        z_in[q] = z_in[q & !(1 << top)] * path[top].1;
    }
    let mut out = vec![0.0; d << d];
    for (p, row) in out.chunks_exact_mut(d).enumerate() {
        let zc = z_in[full & !p];
        let off = -vf[p] * zc;
        for (s, value) in row.iter_mut().enumerate() {
            *value = if p & (1 << s) != 0 {
                (1.0 - path[s].1) * vf[p & !(1 << s)] * zc
            } else {
                off
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Library, Link, ModelParts, Objective, RawNode, RawTree, SplitKind};
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    /// A random tree of `n_nodes` splits over `n_features` features (repeats likely), random
    /// positive leaf covers, and some categorical and zero-as-missing splits.
    fn random_tree(
        rng: &mut impl Rng,
        n_nodes: usize,
        n_features: u32,
        categorical: bool,
    ) -> RawTree {
        let mut tree = RawTree::default();
        // Grow by splitting a random leaf: leaves are referred to by their parent slot.
        let mut open: Vec<(usize, bool)> = Vec::new(); // (node, is_left) pointing at a leaf
        let mut n_leaves: usize = 1;
        for i in 0..n_nodes {
            let kind = if categorical && rng.random_bool(0.2) {
                SplitKind::CategoricalLightGbm
            } else if rng.random_bool(0.1) {
                SplitKind::NumericZeroMissing
            } else {
                SplitKind::Numeric
            };
            let cat_set = if kind == SplitKind::CategoricalLightGbm {
                tree.cat_sets.push(vec![rng.random::<u32>()]);
                (tree.cat_sets.len() - 1) as u32
            } else {
                0
            };
            tree.nodes.push(RawNode {
                feature: rng.random_range(0..n_features),
                threshold: rng.random_range(-2.0..2.0),
                left: 0,
                right: 0,
                kind,
                nan_left: rng.random_bool(0.5),
                cat_set,
            });
            if i == 0 {
                // The root's children start as leaves 0 and 1.
                tree.nodes[0].left = !0;
                tree.nodes[0].right = !1;
                n_leaves = 2;
            } else {
                // Replace a random leaf reference by this node, which takes that leaf and a new one.
                let (p, is_left) = open.swap_remove(rng.random_range(0..open.len()));
                let old = if is_left {
                    tree.nodes[p].left
                } else {
                    tree.nodes[p].right
                };
                if is_left {
                    tree.nodes[p].left = i as i32;
                } else {
                    tree.nodes[p].right = i as i32;
                }
                tree.nodes[i].left = old;
                tree.nodes[i].right = !(n_leaves as i32);
                n_leaves += 1;
            }
            open.push((i, true));
            open.push((i, false));
        }
        tree.leaf_values = (0..n_leaves).map(|_| rng.random_range(-1.0..1.0)).collect();
        tree.leaf_cover = (0..n_leaves).map(|_| rng.random_range(0.5..50.0)).collect();
        tree.node_cover = vec![0.0; n_nodes];
        sum_covers(&mut tree, 0, rng);
        tree
    }

    /// A node's cover is its children's sum, off by up to 1e-6 relative as XGBoost's f32
    /// hessian sums are (LightGBM's counts add up exactly).
    fn sum_covers(tree: &mut RawTree, child: i32, rng: &mut impl Rng) -> f64 {
        if child < 0 {
            return tree.leaf_cover[(!child) as usize];
        }
        let i = child as usize;
        let (l, r) = (tree.nodes[i].left, tree.nodes[i].right);
        let sum = sum_covers(tree, l, rng) + sum_covers(tree, r, rng);
        tree.node_cover[i] = sum * (1.0 + rng.random_range(-1e-6..1e-6));
        tree.node_cover[i]
    }

    fn random_model(seed: u64) -> TreeModel {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n_features = rng.random_range(1..9u32);
        let categorical = rng.random_bool(0.5);
        let trees = (0..rng.random_range(1..6))
            .map(|_| {
                let n = rng.random_range(0..40);
                if n == 0 {
                    RawTree {
                        leaf_values: vec![rng.random_range(-1.0..1.0)],
                        leaf_cover: vec![10.0],
                        ..RawTree::default()
                    }
                } else {
                    random_tree(&mut rng, n, n_features, categorical)
                }
            })
            .collect();
        TreeModel::assemble(ModelParts {
            library: if categorical {
                Library::LightGbm
            } else {
                Library::XgBoost
            },
            objective: Objective::Binary,
            link: Link::Identity,
            feature_names: (0..n_features).map(|j| format!("f{j}")).collect(),
            base_score: 0.25,
            trees,
        })
        .unwrap()
    }

    fn random_row(rng: &mut impl Rng, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| match rng.random_range(0..8) {
                0 => f64::NAN,
                1 => 0.0,
                2 => f64::from(rng.random_range(-1..40)),
                _ => rng.random_range(-2.5..2.5),
            })
            .collect()
    }

    fn assert_close(fast: &[f64], reference: &[f64], what: &str) {
        for (j, (a, b)) in fast.iter().zip(reference).enumerate() {
            assert!(
                (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                "{what}: feature {j}: tables {a} vs recursion {b}"
            );
        }
    }

    /// Path-dependent `E[f(x) | x_S]`: known features follow the row, unknown ones split the
    /// weight by cover fraction (the definition TreeSHAP computes Shapley values of).
    fn conditional(model: &TreeModel, child: i32, row: &[f64], known: u32) -> f64 {
        if child < 0 {
            return model.leaf_values[(!child) as usize];
        }
        let i = child as usize;
        let node = &model.nodes[i];
        let [l, r] = node.children;
        if known & (1 << node.feature) != 0 {
            let next = if model.goes_left(i, node, row[node.feature as usize]) {
                l
            } else {
                r
            };
            conditional(model, next, row, known)
        } else {
            let w = cover(model, child);
            cover(model, l) / w * conditional(model, l, row, known)
                + cover(model, r) / w * conditional(model, r, row, known)
        }
    }

    /// Shapley values by enumerating every coalition (small models only).
    fn brute_force(model: &TreeModel, row: &[f64]) -> Vec<f64> {
        let m = model.n_features();
        let fact = |k: usize| (1..=k).product::<usize>() as f64;
        let value = |known: u32| {
            model
                .roots
                .iter()
                .map(|&root| conditional(model, root, row, known))
                .sum::<f64>()
        };
        let mut phi = vec![0.0; m + 1];
        for (i, phi_i) in phi.iter_mut().enumerate().take(m) {
            for s in 0u32..(1 << m) {
                if s & (1 << i) != 0 {
                    continue;
                }
                let k = s.count_ones() as usize;
                let w = fact(k) * fact(m - k - 1) / fact(m);
                *phi_i += w * (value(s | (1 << i)) - value(s));
            }
        }
        phi[m] = model.expected_value;
        phi
    }

    /// The model's trees as a caller of [`TreeShap`] would describe them.
    fn shap_trees(model: &TreeModel) -> Vec<ShapTree> {
        (0..model.roots.len())
            .map(|t| {
                let [n0, l0, _] = model.offsets[t];
                let [n1, l1, _] = model.offsets[t + 1];
                let local = |c: i32| {
                    if c >= 0 {
                        c - n0 as i32
                    } else {
                        !((!c) - l0 as i32)
                    }
                };
                ShapTree {
                    nodes: (n0 as usize..n1 as usize)
                        .map(|i| {
                            let node = &model.nodes[i];
                            ShapNode {
                                feature: node.feature,
                                children: node.children.map(local),
                                fractions: [0, 1].map(|side| model.fraction(i, side)),
                            }
                        })
                        .collect(),
                    leaf_values: model.leaf_values[l0 as usize..l1 as usize].to_vec(),
                }
            })
            .collect()
    }

    /// [`TreeShap`] on the model's own trees and directions gives `contributions` bit for bit.
    fn assert_tree_shap_matches(model: &TreeModel, row: &[f64]) {
        let shap = TreeShap::new(model.n_features(), &shap_trees(model)).unwrap();
        let mut phi = vec![0.0; model.n_features() + 1];
        shap.add_contributions(
            |t, i| {
                let i = i + model.offsets[t][0] as usize;
                let node = &model.nodes[i];
                model.goes_left(i, node, row[node.feature as usize])
            },
            &mut phi,
        );
        *phi.last_mut().unwrap() = model.expected_value;
        assert_eq!(phi, model.contributions(row).unwrap());
    }

    #[test]
    fn tree_shap_refuses_malformed_trees() {
        let node = |children, fractions| ShapNode {
            feature: 0,
            children,
            fractions,
        };
        let tree = |nodes| ShapTree {
            nodes,
            leaf_values: vec![1.0, 2.0],
        };
        assert!(TreeShap::new(1, &[tree(vec![node([!0, !1], [0.25, 0.75])])]).is_ok());
        for bad in [
            tree(vec![node([!0, !2], [0.25, 0.75])]),
            tree(vec![node([!0, !0], [0.25, 0.75])]),
            tree(vec![node([!0, !1], [-0.5, 0.75])]),
            tree(vec![node([!0, !1], [f64::NAN, 0.75])]),
        ] {
            let err = TreeShap::new(1, &[bad]).unwrap_err();
            assert!(err.to_string().contains("tree 0"), "{err}");
        }
        assert!(TreeShap::new(0, &[tree(vec![node([!0, !1], [0.5, 0.5])])]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// The tables give the recursion's values and the Shapley values by enumeration, and the
        /// batch (rows in lockstep) gives each row's own values to the bit, on random trees.
        #[test]
        fn tables_equal_the_recursion_on_random_trees(seed in any::<u64>()) {
            let model = random_model(seed);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
            let n = model.n_features();
            // 1 to 19 rows: whole and partial blocks of lanes.
            let k = 1 + (seed % 19) as usize;
            let rows: Vec<f64> = (0..k).flat_map(|_| random_row(&mut rng, n)).collect();
            let mut batch = vec![0.0; k * (n + 1)];
            model.contributions_batch(&rows, n, &mut batch).unwrap();
            for (row, phi_batch) in rows.chunks_exact(n).zip(batch.chunks_exact(n + 1)) {
                let fast = model.contributions(row).unwrap();
                let reference = crate::shap::reference_contributions(&model, row);
                assert_close(&fast, &reference, &format!("seed {seed}"));
                assert_close(&fast, &brute_force(&model, row), &format!("seed {seed}, brute force"));
                prop_assert_eq!(&fast, &phi_batch.to_vec());
                assert_tree_shap_matches(&model, row);
            }
        }
    }

    #[test]
    fn tables_equal_the_recursion_on_the_fixture_models() {
        let models = [
            TreeModel::from_lightgbm_text(include_str!("../tests/fixtures/lgb_binary.txt"))
                .unwrap(),
            TreeModel::from_lightgbm_text(include_str!("../tests/fixtures/lgb_german.txt"))
                .unwrap(),
            TreeModel::from_lightgbm_text(include_str!("../tests/fixtures/lgb_regression.txt"))
                .unwrap(),
            TreeModel::from_xgboost_json(include_bytes!("../tests/fixtures/xgb_binary.json"))
                .unwrap(),
            TreeModel::from_xgboost_json(include_bytes!("../tests/fixtures/xgb_german.json"))
                .unwrap(),
        ];
        // Both kinds of tables are exercised: row tables for the small trees, `2^d` tables
        // for the others (lgb_binary's 15-leaf trees have both).
        let kinds = |rows: bool| {
            models
                .iter()
                .flat_map(|m| m.shap_tables().rows.clone())
                .filter(|&r| r == rows)
                .count()
        };
        assert!(
            kinds(true) > 0 && kinds(false) > 0,
            "{} {}",
            kinds(true),
            kinds(false)
        );
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for model in &models {
            assert!(
                model.shap_tables().tabled.iter().all(|&t| t),
                "every fixture tree is tabled"
            );
            let n = model.n_features();
            let mut rows = Vec::new();
            let mut singles = Vec::new();
            for _ in 0..50 {
                let row: Vec<f64> = (0..n)
                    .map(|_| match rng.random_range(0..6) {
                        0 => f64::NAN,
                        1 => 0.0,
                        2 => f64::from(rng.random_range(-2..12)),
                        _ => rng.random_range(-5.0..5.0) * 10f64.powi(rng.random_range(0..4)),
                    })
                    .collect();
                let fast = model.contributions(&row).unwrap();
                let reference = crate::shap::reference_contributions(model, &row);
                assert_close(&fast, &reference, model.library().as_str());
                assert_tree_shap_matches(model, &row);
                rows.extend_from_slice(&row);
                singles.extend_from_slice(&fast);
            }
            // The rows in lockstep (six blocks of eight and a partial one), categorical and
            // missing values included: each row's own values to the bit.
            let mut batch = vec![0.0; singles.len()];
            model.contributions_batch(&rows, n, &mut batch).unwrap();
            assert_eq!(batch, singles, "{}", model.library().as_str());
        }
    }

    #[test]
    fn trees_beyond_the_table_bound_use_the_recursion() {
        // A chain of MAX_TABLE_FEATURES + 1 distinct features: too deep to table.
        let d = MAX_TABLE_FEATURES + 1;
        let mut tree = RawTree::default();
        for i in 0..d {
            tree.nodes.push(RawNode {
                feature: i as u32,
                threshold: 0.0,
                left: if i + 1 < d {
                    (i + 1) as i32
                } else {
                    !(d as i32)
                },
                right: !(i as i32),
                kind: SplitKind::Numeric,
                nan_left: true,
                cat_set: 0,
            });
        }
        tree.leaf_values = (0..=d).map(|i| i as f64 / 10.0).collect();
        tree.leaf_cover = (0..=d).map(|i| 1.0 + i as f64).collect();
        tree.node_cover = (0..d).map(|i| 200.0 - i as f64 * 10.0).collect();
        let model = TreeModel::assemble(ModelParts {
            library: Library::LightGbm,
            objective: Objective::Regression,
            link: Link::Identity,
            feature_names: (0..d).map(|j| format!("f{j}")).collect(),
            base_score: 0.0,
            trees: vec![tree],
        })
        .unwrap();
        assert!(!model.shap_tables().tabled[0]);
        let row: Vec<f64> = (0..d)
            .map(|j| if j % 3 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert_eq!(
            model.contributions(&row).unwrap(),
            crate::shap::reference_contributions(&model, &row)
        );
    }
}
