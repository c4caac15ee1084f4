//! The stored form of a [`TreeModel`]: versioned JSON, for an aurum artifact payload.
//!
//! The stored structs are separate from the in-memory model on purpose: the hot layout can change
//! (node packing, folded thresholds) without changing what is on disk, and what is on disk cannot
//! change by accident through a derive. Loading goes through the same validation as parsing
//! ([`TreeModel::assemble`]), so a corrupt payload is refused, never trusted.
//!
//! Format version 1: `{"format_version": 1, "library", "objective", "link", "feature_names",
//! "base_score", "trees": [...]}`; each tree holds its split nodes as parallel arrays with the
//! thresholds already folded into `x <= threshold` form (see the `model` module), leaves, covers
//! and category bitsets. Floats round-trip exactly (serde_json's `float_roundtrip`); every stored
//! float is finite by validation. A newer `format_version` is refused with
//! [`TreeError::UnsupportedFormatVersion`], read before the rest so the message stays clear.

use serde::{Deserialize, Serialize};

use crate::TreeError;
use crate::model::{Library, Link, ModelParts, Objective, RawNode, RawTree, SplitKind, TreeModel};

/// The stored tree-model format this crate writes and the newest it reads.
pub const TREE_MODEL_FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredModel {
    format_version: u32,
    /// `lightgbm` or `xgboost`: fixes the accumulation (f64 / f32).
    library: String,
    /// `binary` or `regression`.
    objective: String,
    link: StoredLink,
    feature_names: Vec<String>,
    base_score: f64,
    trees: Vec<StoredTree>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
enum StoredLink {
    Identity,
    Sigmoid { scale: f64 },
    SigmoidF32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredTree {
    split_feature: Vec<u32>,
    threshold: Vec<f64>,
    /// 0 numeric, 1 numeric with zero-as-missing, 2 LightGBM categorical, 3 XGBoost categorical.
    split_kind: Vec<u8>,
    nan_left: Vec<bool>,
    /// `>= 0` a split node of this tree, `< 0` a leaf (`!child`).
    left_child: Vec<i32>,
    right_child: Vec<i32>,
    cat_set: Vec<u32>,
    node_cover: Vec<f64>,
    leaf_value: Vec<f64>,
    leaf_cover: Vec<f64>,
    cat_sets: Vec<Vec<u32>>,
}

impl TreeModel {
    /// Serialises the model (format version [`TREE_MODEL_FORMAT_VERSION`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, TreeError> {
        let parts = self.to_parts();
        let stored = StoredModel {
            format_version: TREE_MODEL_FORMAT_VERSION,
            library: parts.library.as_str().to_string(),
            objective: parts.objective.as_str().to_string(),
            link: match parts.link {
                Link::Identity => StoredLink::Identity,
                Link::Sigmoid { scale } => StoredLink::Sigmoid { scale },
                Link::SigmoidF32 => StoredLink::SigmoidF32,
            },
            feature_names: parts.feature_names,
            base_score: parts.base_score,
            trees: parts
                .trees
                .into_iter()
                .map(|t| StoredTree {
                    split_feature: t.nodes.iter().map(|n| n.feature).collect(),
                    threshold: t.nodes.iter().map(|n| n.threshold).collect(),
                    split_kind: t.nodes.iter().map(|n| n.kind as u8).collect(),
                    nan_left: t.nodes.iter().map(|n| n.nan_left).collect(),
                    left_child: t.nodes.iter().map(|n| n.left).collect(),
                    right_child: t.nodes.iter().map(|n| n.right).collect(),
                    cat_set: t.nodes.iter().map(|n| n.cat_set).collect(),
                    node_cover: t.node_cover,
                    leaf_value: t.leaf_values,
                    leaf_cover: t.leaf_cover,
                    cat_sets: t.cat_sets,
                })
                .collect(),
        };
        serde_json::to_vec(&stored).map_err(|e| TreeError::Serialization {
            reason: e.to_string(),
        })
    }

    /// Reads a model written by [`TreeModel::to_bytes`], validating it like a parsed model.
    pub fn from_bytes(bytes: &[u8]) -> Result<TreeModel, TreeError> {
        let invalid = |reason: String| TreeError::InvalidStored { reason };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
        match value.get("format_version").map(serde_json::Value::as_u64) {
            Some(Some(v)) if v == u64::from(TREE_MODEL_FORMAT_VERSION) => {}
            Some(Some(v)) => {
                return Err(TreeError::UnsupportedFormatVersion {
                    found: v,
                    supported: TREE_MODEL_FORMAT_VERSION,
                });
            }
            _ => return Err(invalid("missing or invalid `format_version`".into())),
        }
        let stored: StoredModel =
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        let library = match stored.library.as_str() {
            "lightgbm" => Library::LightGbm,
            "xgboost" => Library::XgBoost,
            other => return Err(invalid(format!("unknown library `{other}`"))),
        };
        let objective = match stored.objective.as_str() {
            "binary" => Objective::Binary,
            "regression" => Objective::Regression,
            other => return Err(invalid(format!("unknown objective `{other}`"))),
        };
        let link = match stored.link {
            StoredLink::Identity => Link::Identity,
            StoredLink::Sigmoid { scale } => Link::Sigmoid { scale },
            StoredLink::SigmoidF32 => Link::SigmoidF32,
        };
        let mut trees = Vec::with_capacity(stored.trees.len());
        for (t, st) in stored.trees.into_iter().enumerate() {
            let n = st.split_feature.len();
            let lens = [
                st.threshold.len(),
                st.split_kind.len(),
                st.nan_left.len(),
                st.left_child.len(),
                st.right_child.len(),
                st.cat_set.len(),
            ];
            if lens.iter().any(|&l| l != n) {
                return Err(invalid(format!("tree {t}: node arrays differ in length")));
            }
            let mut nodes = Vec::with_capacity(n);
            for i in 0..n {
                let kind = SplitKind::from_u8(st.split_kind[i]).ok_or_else(|| {
                    invalid(format!("tree {t}: unknown split kind {}", st.split_kind[i]))
                })?;
                nodes.push(RawNode {
                    feature: st.split_feature[i],
                    threshold: st.threshold[i],
                    left: st.left_child[i],
                    right: st.right_child[i],
                    kind,
                    nan_left: st.nan_left[i],
                    cat_set: st.cat_set[i],
                });
            }
            trees.push(RawTree {
                nodes,
                leaf_values: st.leaf_value,
                node_cover: st.node_cover,
                leaf_cover: st.leaf_cover,
                cat_sets: st.cat_sets,
            });
        }
        let parts = ModelParts {
            library,
            objective,
            link,
            feature_names: stored.feature_names,
            base_score: stored.base_score,
            trees,
        };
        TreeModel::assemble(parts).map_err(|(tree, reason)| {
            if tree == usize::MAX {
                invalid(reason)
            } else {
                invalid(format!("tree {tree}: {reason}"))
            }
        })
    }
}
