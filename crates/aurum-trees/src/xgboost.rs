//! XGBoost JSON model parser (`Booster.save_model("model.json")`).
//!
//! Read: `learner.objective.name`, `learner.learner_model_param` (`base_score`, `num_class`,
//! `num_feature`, `num_target`), `learner.feature_names`, and per tree of
//! `learner.gradient_booster.model.trees`: `left_children`, `right_children` (`-1` = leaf),
//! `split_indices`, `split_conditions` (the threshold, or the leaf value at a leaf),
//! `default_left`, `sum_hessian` (the cover TreeSHAP uses) and, when present, `split_type` with
//! `categories_nodes` / `categories_segments` / `categories_sizes` / `categories`.
//!
//! `base_score` is stored in probability space by every JSON-writing XGBoost (1.0 onwards: the
//! learner saves the user-facing parameter and converts it with the objective's
//! `ProbToMargin` at load time); 1.x/2.x write it as a plain string (`"5E-1"`), 3.x as a
//! one-element vector (`"[5E-1]"`). Both are read, and converted to a margin the way XGBoost does:
//! `-ln(1/p - 1)` in f32 for logistic objectives, unchanged for identity ones.

use serde_json::Value;

use crate::TreeError;
use crate::model::{
    Library, Link, MAX_CATEGORY_WORDS, MAX_FEATURES, ModelParts, Objective, RawNode, RawTree,
    SplitKind, TreeModel,
};

const FORMAT: &str = "XGBoost";

const LOGISTIC_OBJECTIVES: [&str; 2] = ["binary:logistic", "reg:logistic"];
const IDENTITY_OBJECTIVES: [&str; 4] = [
    "reg:squarederror",
    "reg:linear",
    "reg:absoluteerror",
    "reg:pseudohubererror",
];

fn parse_err(location: impl Into<String>, reason: impl Into<String>) -> TreeError {
    TreeError::Parse {
        format: FORMAT,
        location: location.into(),
        reason: reason.into(),
    }
}

fn unsupported(what: impl Into<String>) -> TreeError {
    TreeError::Unsupported {
        format: FORMAT,
        what: what.into(),
    }
}

/// A JSON value with the path that led to it, for error messages.
#[derive(Clone, Copy)]
struct At<'a> {
    value: &'a Value,
    path: &'a str,
}

fn field<'a>(parent: At<'a>, key: &str, path_buf: &'a str) -> Result<At<'a>, TreeError> {
    match parent.value.get(key) {
        Some(value) => Ok(At {
            value,
            path: path_buf,
        }),
        None => Err(parse_err(parent.path, format!("missing `{key}`"))),
    }
}

impl<'a> At<'a> {
    fn str(self) -> Result<&'a str, TreeError> {
        self.value
            .as_str()
            .ok_or_else(|| parse_err(self.path, "expected a string"))
    }

    fn array(self) -> Result<&'a [Value], TreeError> {
        self.value
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| parse_err(self.path, "expected an array"))
    }

    /// XGBoost writes integer parameters as strings (`"20"`); accept numbers too.
    fn int(self) -> Result<i64, TreeError> {
        match self.value {
            Value::String(s) => s.trim().parse().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
        .ok_or_else(|| parse_err(self.path, "expected an integer"))
    }

    fn ints(self, len: usize) -> Result<Vec<i64>, TreeError> {
        let arr = self.sized(len)?;
        arr.iter()
            .enumerate()
            .map(|(i, v)| {
                match v {
                    Value::Number(n) => n.as_i64(),
                    Value::Bool(b) => Some(i64::from(*b)),
                    _ => None,
                }
                .ok_or_else(|| parse_err(format!("{}[{i}]", self.path), "expected an integer"))
            })
            .collect()
    }

    fn floats(self, len: usize) -> Result<Vec<f64>, TreeError> {
        let arr = self.sized(len)?;
        arr.iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_f64()
                    .ok_or_else(|| parse_err(format!("{}[{i}]", self.path), "expected a number"))
            })
            .collect()
    }

    fn sized(self, len: usize) -> Result<&'a [Value], TreeError> {
        let arr = self.array()?;
        if arr.len() != len {
            return Err(parse_err(
                self.path,
                format!("expected {len} values, found {}", arr.len()),
            ));
        }
        Ok(arr)
    }
}

pub(crate) fn parse(bytes: &[u8]) -> Result<TreeModel, TreeError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(parse_err(
            "document",
            "not a JSON object (binary and UBJSON models are not supported: save with \
             `save_model(\"model.json\")`)",
        ));
    }
    let root: Value = serde_json::from_slice(bytes)
        .map_err(|e| parse_err("document", format!("not valid JSON: {e}")))?;
    let root = At {
        value: &root,
        path: "$",
    };
    let learner = field(root, "learner", "learner")?;

    // Objective and its link.
    let objective = field(learner, "objective", "learner.objective")?;
    let objective_name = field(objective, "name", "learner.objective.name")?.str()?;
    let (objective, link) = if LOGISTIC_OBJECTIVES.contains(&objective_name) {
        (Objective::Binary, Link::SigmoidF32)
    } else if IDENTITY_OBJECTIVES.contains(&objective_name) {
        (Objective::Regression, Link::Identity)
    } else if objective_name.starts_with("multi:") {
        return Err(unsupported(format!(
            "multiclass objective `{objective_name}` is not supported"
        )));
    } else {
        return Err(unsupported(format!(
            "objective `{}` is not supported (supported: {}, {})",
            objective_name.chars().take(40).collect::<String>(),
            LOGISTIC_OBJECTIVES.join(", "),
            IDENTITY_OBJECTIVES.join(", ")
        )));
    };

    // Learner parameters.
    let param = field(
        learner,
        "learner_model_param",
        "learner.learner_model_param",
    )?;
    if let Ok(num_class) = field(param, "num_class", "learner.learner_model_param.num_class") {
        let k = num_class.int()?;
        if k > 1 {
            return Err(unsupported(format!(
                "multiclass models are not supported (num_class={k})"
            )));
        }
    }
    if let Ok(num_target) = field(
        param,
        "num_target",
        "learner.learner_model_param.num_target",
    ) {
        let k = num_target.int()?;
        if k > 1 {
            return Err(unsupported(format!(
                "multi-target models are not supported (num_target={k})"
            )));
        }
    }
    let num_feature = field(
        param,
        "num_feature",
        "learner.learner_model_param.num_feature",
    )?;
    let n_features = num_feature.int()?;
    if !(1..=MAX_FEATURES as i64).contains(&n_features) {
        return Err(parse_err(
            num_feature.path,
            format!("{n_features} is not a feature count (limit {MAX_FEATURES})"),
        ));
    }
    let n_features = n_features as usize;
    let base_at = field(
        param,
        "base_score",
        "learner.learner_model_param.base_score",
    )?;
    let base_prob = parse_base_score(base_at)?;
    let base_score = if link == Link::SigmoidF32 {
        if !(base_prob > 0.0 && base_prob < 1.0) {
            return Err(parse_err(
                base_at.path,
                format!("base_score {base_prob} must be in (0, 1) for `{objective_name}`"),
            ));
        }
        // XGBoost's LogisticRegression::ProbToMargin, in f32.
        -((1.0_f32 / base_prob - 1.0_f32).ln())
    } else {
        base_prob
    };

    // Feature names: XGBoost's defaults (f0, f1, ...) when the model has none.
    let feature_names = match learner.value.get("feature_names") {
        Some(Value::Array(names)) if !names.is_empty() => {
            let at = At {
                value: &Value::Null,
                path: "learner.feature_names",
            };
            if names.len() != n_features {
                return Err(parse_err(
                    at.path,
                    format!("{} names for {n_features} features", names.len()),
                ));
            }
            names
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str().map(str::to_owned).ok_or_else(|| {
                        parse_err(format!("learner.feature_names[{i}]"), "expected a string")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        _ => (0..n_features).map(|i| format!("f{i}")).collect(),
    };

    // Booster.
    let booster = field(learner, "gradient_booster", "learner.gradient_booster")?;
    let booster_name = field(booster, "name", "learner.gradient_booster.name")?.str()?;
    if booster_name != "gbtree" {
        return Err(unsupported(format!(
            "booster `{}` is not supported (only gbtree; dart and gblinear are not)",
            booster_name.chars().take(40).collect::<String>()
        )));
    }
    let model = field(booster, "model", "learner.gradient_booster.model")?;
    let trees_at = field(model, "trees", "learner.gradient_booster.model.trees")?;
    let tree_values = trees_at.array()?;
    if let Some(info) = model.value.get("tree_info").and_then(Value::as_array)
        && info.iter().any(|g| g.as_i64() != Some(0))
    {
        return Err(unsupported(
            "trees for more than one output group (multiclass) are not supported",
        ));
    }

    let mut trees = Vec::with_capacity(tree_values.len());
    for (t, value) in tree_values.iter().enumerate() {
        let path = format!("learner.gradient_booster.model.trees[{t}]");
        trees.push(parse_tree(At { value, path: &path }, &path)?);
    }

    let parts = ModelParts {
        library: Library::XgBoost,
        objective,
        link,
        feature_names,
        base_score: f64::from(base_score),
        trees,
    };
    TreeModel::assemble(parts).map_err(|(tree, reason)| {
        let location = if tree == usize::MAX {
            "learner".to_string()
        } else {
            format!("learner.gradient_booster.model.trees[{tree}]")
        };
        parse_err(location, reason)
    })
}

/// `"5E-1"`, `"[5E-1]"` or a number; parsed straight to f32 as XGBoost does.
fn parse_base_score(at: At<'_>) -> Result<f32, TreeError> {
    let parsed = match at.value {
        Value::String(s) => {
            let s = s.trim();
            let inner = s
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .unwrap_or(s);
            if inner.contains(',') {
                return Err(unsupported(
                    "a vector base_score (multi-output model) is not supported",
                ));
            }
            inner.trim().parse::<f32>().ok()
        }
        Value::Number(n) => n.as_f64().map(|v| v as f32),
        _ => None,
    };
    match parsed {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(parse_err(at.path, "expected a finite number")),
    }
}

fn parse_tree(tree: At<'_>, path: &str) -> Result<RawTree, TreeError> {
    let p = |key: &str| format!("{path}.{key}");
    let lookup = |key: &'static str| -> Result<(&Value, String), TreeError> {
        let full = p(key);
        match tree.value.get(key) {
            Some(v) => Ok((v, full)),
            None => Err(parse_err(path.to_string(), format!("missing `{key}`"))),
        }
    };

    if let Some(size) = tree
        .value
        .get("tree_param")
        .and_then(|tp| tp.get("size_leaf_vector"))
    {
        let k = At {
            value: size,
            path: &p("tree_param.size_leaf_vector"),
        }
        .int()?;
        if k > 1 {
            return Err(unsupported(format!(
                "vector-leaf (multi-target) trees are not supported (size_leaf_vector={k})"
            )));
        }
    }

    let (v, lp) = lookup("left_children")?;
    let lc = At {
        value: v,
        path: &lp,
    };
    let n = lc.array()?.len();
    if n == 0 {
        return Err(parse_err(lp, "a tree needs at least one node"));
    }
    let left = lc.ints(n)?;
    let (v, rp) = lookup("right_children")?;
    let right = At {
        value: v,
        path: &rp,
    }
    .ints(n)?;
    let (v, sp) = lookup("split_indices")?;
    let split_indices = At {
        value: v,
        path: &sp,
    }
    .ints(n)?;
    let (v, cp) = lookup("split_conditions")?;
    let split_conditions = At {
        value: v,
        path: &cp,
    }
    .floats(n)?;
    let (v, dp) = lookup("default_left")?;
    let default_left = At {
        value: v,
        path: &dp,
    }
    .ints(n)?;
    let (v, hp) = lookup("sum_hessian")?;
    let sum_hessian = At {
        value: v,
        path: &hp,
    }
    .floats(n)?;
    let split_type = match tree.value.get("split_type") {
        Some(v) => At {
            value: v,
            path: &p("split_type"),
        }
        .ints(n)?,
        None => vec![0; n],
    };

    // Categorical splits: node id -> the categories that go right.
    let mut node_categories: Vec<Option<Vec<u32>>> = vec![None; n];
    if split_type.iter().any(|&s| s != 0) {
        let (v, np) = lookup("categories_nodes")?;
        let nodes_at = At {
            value: v,
            path: &np,
        };
        let cat_nodes = nodes_at.ints(nodes_at.array()?.len())?;
        let k = cat_nodes.len();
        let (v, gp) = lookup("categories_segments")?;
        let segments = At {
            value: v,
            path: &gp,
        }
        .ints(k)?;
        let (v, zp) = lookup("categories_sizes")?;
        let sizes = At {
            value: v,
            path: &zp,
        }
        .ints(k)?;
        let (v, cp) = lookup("categories")?;
        let cats_at = At {
            value: v,
            path: &cp,
        };
        let categories = cats_at.ints(cats_at.array()?.len())?;
        for j in 0..k {
            let node = cat_nodes[j];
            let (beg, size) = (segments[j], sizes[j]);
            let in_range = node >= 0
                && (node as usize) < n
                && beg >= 0
                && size >= 0
                && (beg as u64 + size as u64) <= categories.len() as u64;
            if !in_range {
                return Err(parse_err(
                    p("categories_nodes"),
                    format!("categorical split {j} (node {node}) points outside the categories"),
                ));
            }
            let list = &categories[beg as usize..(beg + size) as usize];
            let mut set = Vec::with_capacity(list.len());
            for &c in list {
                if !(0..16_777_216).contains(&c) {
                    return Err(parse_err(
                        p("categories"),
                        format!("category {c} is outside XGBoost's range [0, 2^24)"),
                    ));
                }
                set.push(c as u32);
            }
            node_categories[node as usize] = Some(set);
        }
    }

    // Walk from the root, numbering split nodes and leaves in visiting order (root = node 0),
    // and refusing anything that is not a tree.
    let mut kind_index: Vec<Option<i32>> = vec![None; n];
    let mut order = Vec::with_capacity(n);
    let mut stack = vec![0_usize];
    let (mut n_split, mut n_leaf) = (0_i32, 0_i32);
    while let Some(nid) = stack.pop() {
        if kind_index[nid].is_some() {
            return Err(parse_err(
                path.to_string(),
                format!("node {nid} is reached twice (not a tree)"),
            ));
        }
        if left[nid] == -1 {
            kind_index[nid] = Some(!n_leaf);
            n_leaf += 1;
        } else {
            let (l, r) = (left[nid], right[nid]);
            for c in [l, r] {
                if !(c > 0 && (c as usize) < n) {
                    return Err(parse_err(
                        format!("{path}.left_children[{nid}]"),
                        format!("child {c} of node {nid} is not a node of this tree"),
                    ));
                }
            }
            kind_index[nid] = Some(n_split);
            n_split += 1;
            stack.push(r as usize);
            stack.push(l as usize);
        }
        order.push(nid);
    }

    let mut raw = RawTree::default();
    let mut total_words = 0_usize;
    for &nid in &order {
        let is_leaf = left[nid] == -1;
        if is_leaf {
            raw.leaf_values
                .push(f64::from(split_conditions[nid] as f32));
            raw.leaf_cover.push(sum_hessian[nid]);
            continue;
        }
        let child = |c: i64| kind_index[c as usize].unwrap_or(0);
        let feature = split_indices[nid];
        if !(0..i64::from(u32::MAX)).contains(&feature) {
            return Err(parse_err(
                format!("{path}.split_indices[{nid}]"),
                format!("{feature} is not a feature index"),
            ));
        }
        let nan_left = default_left[nid] != 0;
        let (kind, threshold, cat_set) = match split_type[nid] {
            0 => (
                SplitKind::Numeric,
                f32_lt_boundary(split_conditions[nid] as f32),
                0,
            ),
            1 => {
                let Some(cats) = node_categories[nid].take() else {
                    return Err(parse_err(
                        format!("{path}.split_type[{nid}]"),
                        format!("node {nid} is categorical but has no categories"),
                    ));
                };
                let words = cats.iter().max().map_or(0, |&m| m as usize / 32 + 1);
                total_words += words;
                if total_words > MAX_CATEGORY_WORDS {
                    return Err(parse_err(
                        path.to_string(),
                        "categorical splits are too large",
                    ));
                }
                let mut bits = vec![0_u32; words];
                for c in cats {
                    bits[(c / 32) as usize] |= 1 << (c % 32);
                }
                raw.cat_sets.push(bits);
                (
                    SplitKind::CategoricalXgBoost,
                    0.0,
                    (raw.cat_sets.len() - 1) as u32,
                )
            }
            other => {
                return Err(parse_err(
                    format!("{path}.split_type[{nid}]"),
                    format!("unknown split type {other}"),
                ));
            }
        };
        raw.nodes.push(RawNode {
            feature: feature as u32,
            threshold,
            left: child(left[nid]),
            right: child(right[nid]),
            kind,
            nan_left,
            cat_set,
        });
        raw.node_cover.push(sum_hessian[nid]);
    }
    Ok(raw)
}

/// The largest `b: f64` with `(b as f32) < t`, so that XGBoost's `(x as f32) < t` is exactly
/// `x <= b` for every non-NaN `x` (f64 → f32 rounding is monotonic). NaN when nothing is below
/// `t` (`t` NaN or −∞), so that every value goes right as in XGBoost.
pub(crate) fn f32_lt_boundary(t: f32) -> f64 {
    if t.is_nan() || t == f32::NEG_INFINITY {
        return f64::NAN;
    }
    // f32::MAX + half an ulp: at and above it, f64 values round to +∞ (ties to even: MAX is odd).
    let overflow = f64::from(f32::MAX) + 2f64.powi(103);
    if t == f32::INFINITY {
        return overflow.next_down();
    }
    if t == f32::MIN {
        // Only values that round to −∞ are below the lowest finite f32.
        return -overflow;
    }
    let below = t.next_down();
    // Both are f32, so their f64 sum and its half are exact: the rounding midpoint.
    let mid = (f64::from(below) + f64::from(t)) * 0.5;
    if (mid as f32) < t {
        mid
    } else {
        mid.next_down()
    }
}

#[cfg(test)]
mod tests {
    use super::f32_lt_boundary;
    use proptest::prelude::*;

    fn check(t: f32, x: f64) {
        let b = f32_lt_boundary(t);
        assert_eq!((x as f32) < t, x <= b, "t={t:e} x={x:e} b={b:e}");
    }

    #[test]
    fn boundary_edges() {
        for t in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            f32::MIN_POSITIVE,
            f32::from_bits(1),
            -f32::from_bits(1),
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            16_777_216.0,
            1e-45,
        ] {
            let b = f32_lt_boundary(t);
            for x in [
                b,
                b.next_up(),
                b.next_down(),
                f64::from(t),
                f64::from(t).next_down(),
                f64::from(t).next_up(),
                f64::INFINITY,
                f64::NEG_INFINITY,
                0.0,
                f64::MAX,
                f64::MIN,
            ] {
                if !x.is_nan() {
                    check(t, x);
                }
            }
        }
        assert!(f32_lt_boundary(f32::NAN).is_nan());
    }

    proptest! {
        #[test]
        fn boundary_matches_f32_comparison(bits in any::<u32>(), offset in -4_i64..4, raw in any::<u64>()) {
            let t = f32::from_bits(bits);
            prop_assume!(!t.is_nan());
            let b = f32_lt_boundary(t);
            if !b.is_nan() {
                // Values right around the boundary, and around t itself.
                let mut x = b;
                for _ in 0..offset.unsigned_abs() {
                    x = if offset > 0 { x.next_up() } else { x.next_down() };
                }
                check(t, x);
                check(t, f64::from(t));
            }
            let y = f64::from_bits(raw);
            if !y.is_nan() {
                check(t, y);
            }
        }
    }
}
