//! LightGBM text model parser (`Booster.save_model`, `model.txt`).
//!
//! The format: a `tree` line, a header of `key=value` lines (`num_class`,
//! `num_tree_per_iteration`, `max_feature_idx`, `objective`, `feature_names`, ...), then one
//! block per tree starting `Tree=i` with space-separated arrays (`split_feature`, `threshold`,
//! `decision_type`, `left_child`, `right_child`, `leaf_value`, `leaf_count`, `internal_count`,
//! `cat_boundaries`, `cat_threshold`, ...), then `end of trees` and sections this crate ignores
//! (feature importances, parameters, `pandas_categorical`).
//!
//! `decision_type` bits, as in LightGBM's `tree.h`: bit 0 categorical, bit 1 default-left,
//! bits 2-3 the missing type (0 None, 1 Zero, 2 NaN). Children `< 0` are `~leaf`.

use std::collections::HashMap;
use std::str::FromStr;

use crate::TreeError;
use crate::model::{
    Library, Link, MAX_FEATURES, ModelParts, Objective, RawNode, RawTree, SplitKind, TreeModel,
};

const FORMAT: &str = "LightGBM";

const CATEGORICAL_MASK: u8 = 1;
const DEFAULT_LEFT_MASK: u8 = 2;

/// Regression objectives whose output is the raw score.
const IDENTITY_OBJECTIVES: [&str; 6] = [
    "regression",
    "regression_l1",
    "huber",
    "fair",
    "quantile",
    "mape",
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

/// `key=value` lines of one block, with their line numbers.
struct Block<'a> {
    /// How to name the block in errors ("header", "Tree=3").
    name: String,
    /// Line number of the block's first line (for "missing field" errors).
    line: usize,
    fields: HashMap<&'a str, (usize, &'a str)>,
}

impl<'a> Block<'a> {
    fn new(name: String, line: usize) -> Self {
        Block {
            name,
            line,
            fields: HashMap::new(),
        }
    }

    fn insert(&mut self, line: usize, key: &'a str, value: &'a str) -> Result<(), TreeError> {
        if let Some((first, _)) = self.fields.insert(key, (line, value)) {
            return Err(parse_err(
                format!("line {line}"),
                format!(
                    "`{key}` is repeated in {} (first on line {first})",
                    self.name
                ),
            ));
        }
        Ok(())
    }

    fn location(&self, key: &str) -> String {
        match self.fields.get(key) {
            Some((line, _)) => format!("line {line} (`{key}` of {})", self.name),
            None => format!("line {} ({})", self.line, self.name),
        }
    }

    fn raw(&self, key: &str) -> Result<&'a str, TreeError> {
        self.fields
            .get(key)
            .map(|(_, v)| *v)
            .ok_or_else(|| parse_err(self.location(key), format!("missing `{key}`")))
    }

    fn scalar<T: FromStr>(&self, key: &str) -> Result<T, TreeError> {
        let v = self.raw(key)?.trim();
        v.parse().map_err(|_| {
            parse_err(
                self.location(key),
                format!("`{}` is not a valid {key}", shorten(v)),
            )
        })
    }

    /// A space-separated array that must have exactly `len` values.
    fn array<T: FromStr>(&self, key: &str, len: usize) -> Result<Vec<T>, TreeError> {
        let mut out = Vec::with_capacity(len.min(1 << 16));
        for (i, tok) in self.raw(key)?.split_ascii_whitespace().enumerate() {
            if i >= len {
                break;
            }
            out.push(tok.parse().map_err(|_| {
                parse_err(
                    self.location(key),
                    format!("value {i} (`{}`) is not a valid number", shorten(tok)),
                )
            })?);
        }
        let found = self.raw(key)?.split_ascii_whitespace().count();
        if found != len {
            return Err(parse_err(
                self.location(key),
                format!("expected {len} values, found {found}"),
            ));
        }
        Ok(out)
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

pub(crate) fn parse(text: &str) -> Result<TreeModel, TreeError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .peekable();

    // `tree` magic line.
    let first = lines.by_ref().find(|(_, l)| !l.trim().is_empty());
    match first {
        Some((_, l)) if l.trim_start_matches('\u{feff}').trim() == "tree" => {}
        Some((n, _)) => {
            return Err(parse_err(
                format!("line {n}"),
                "expected the `tree` line that starts a LightGBM text model",
            ));
        }
        None => return Err(parse_err("line 1", "the model text is empty")),
    }

    // Header.
    let mut header = Block::new("the header".into(), 1);
    while let Some(&(n, line)) = lines.peek() {
        if line.starts_with("Tree=") || line.trim() == "end of trees" {
            break;
        }
        lines.next();
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) => header.insert(n, k.trim(), v)?,
            None if line == "average_output" => {
                return Err(unsupported(
                    "`average_output` (random-forest mode) models are not supported",
                ));
            }
            None => {} // other flag lines carry nothing prediction needs
        }
    }

    let num_class: i64 = header.scalar("num_class")?;
    if num_class != 1 {
        return Err(unsupported(format!(
            "multiclass models are not supported (num_class={num_class})"
        )));
    }
    let per_iteration: i64 = header.scalar("num_tree_per_iteration")?;
    if per_iteration != 1 {
        return Err(unsupported(format!(
            "models with num_tree_per_iteration={per_iteration} are not supported"
        )));
    }
    let max_feature_idx: i64 = header.scalar("max_feature_idx")?;
    if !(0..MAX_FEATURES as i64).contains(&max_feature_idx) {
        return Err(parse_err(
            header.location("max_feature_idx"),
            format!("{max_feature_idx} is not a feature index (limit {MAX_FEATURES} features)"),
        ));
    }
    let n_features = (max_feature_idx + 1) as usize;
    let feature_names: Vec<String> = header
        .raw("feature_names")?
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect();
    if feature_names.len() != n_features {
        return Err(parse_err(
            header.location("feature_names"),
            format!(
                "{} names for max_feature_idx={max_feature_idx} ({n_features} features)",
                feature_names.len()
            ),
        ));
    }
    let (objective, link) = parse_objective(&header)?;

    // Trees.
    let mut trees = Vec::new();
    let mut ended = false;
    while let Some((n, line)) = lines.next() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "end of trees" {
            ended = true;
            break;
        }
        let Some(index) = line.strip_prefix("Tree=") else {
            return Err(parse_err(
                format!("line {n}"),
                format!("expected `Tree={}` or `end of trees`", trees.len()),
            ));
        };
        if index.trim().parse::<usize>().ok() != Some(trees.len()) {
            return Err(parse_err(
                format!("line {n}"),
                format!("expected `Tree={}`, found `{}`", trees.len(), shorten(line)),
            ));
        }
        let mut block = Block::new(format!("Tree={}", trees.len()), n);
        while let Some(&(n, line)) = lines.peek() {
            let trimmed = line.trim();
            if trimmed.starts_with("Tree=") || trimmed == "end of trees" {
                break;
            }
            lines.next();
            if trimmed.is_empty() {
                continue;
            }
            match line.split_once('=') {
                Some((k, v)) => block.insert(n, k.trim(), v)?,
                None => {
                    return Err(parse_err(
                        format!("line {n}"),
                        format!("expected `key=value` in {}", block.name),
                    ));
                }
            }
        }
        trees.push(parse_tree(&block)?);
    }
    if !ended {
        return Err(parse_err(
            "end of text",
            "missing `end of trees` (truncated model?)",
        ));
    }

    let parts = ModelParts {
        library: Library::LightGbm,
        objective,
        link,
        feature_names,
        base_score: 0.0,
        trees,
    };
    TreeModel::assemble(parts).map_err(|(tree, reason)| {
        let location = if tree == usize::MAX {
            "model".to_string()
        } else {
            format!("Tree={tree}")
        };
        parse_err(location, reason)
    })
}

fn parse_objective(header: &Block<'_>) -> Result<(Objective, Link), TreeError> {
    let value = header.raw("objective").map_err(|_| {
        unsupported("no `objective` line (custom objective): the prediction link is unknown")
    })?;
    let mut tokens = value.split_ascii_whitespace();
    let name = tokens.next().unwrap_or("");
    let params: Vec<&str> = tokens.collect();
    match name {
        "binary" => {
            let mut scale = 1.0;
            for p in &params {
                if let Some(v) = p.strip_prefix("sigmoid:") {
                    scale = v.parse().map_err(|_| {
                        parse_err(
                            header.location("objective"),
                            format!("`{}` is not a valid sigmoid parameter", shorten(p)),
                        )
                    })?;
                }
            }
            if !(scale > 0.0 && f64::is_finite(scale)) {
                return Err(parse_err(
                    header.location("objective"),
                    format!("sigmoid parameter {scale} is not a positive number"),
                ));
            }
            Ok((Objective::Binary, Link::Sigmoid { scale }))
        }
        n if IDENTITY_OBJECTIVES.contains(&n) => {
            if params.contains(&"sqrt") {
                return Err(unsupported(
                    "regression with `reg_sqrt` (objective `... sqrt`) is not supported",
                ));
            }
            Ok((Objective::Regression, Link::Identity))
        }
        "multiclass" | "multiclassova" => Err(unsupported(format!(
            "multiclass objective `{name}` is not supported"
        ))),
        other => Err(unsupported(format!(
            "objective `{}` is not supported (supported: binary, {})",
            shorten(other),
            IDENTITY_OBJECTIVES.join(", ")
        ))),
    }
}

fn parse_tree(block: &Block<'_>) -> Result<RawTree, TreeError> {
    if block.fields.contains_key("is_linear") && block.scalar::<i64>("is_linear")? != 0 {
        return Err(unsupported(format!(
            "{} is a linear tree (`linear_tree=true`), which is not supported",
            block.name
        )));
    }
    let num_leaves: usize = block.scalar("num_leaves")?;
    if num_leaves == 0 {
        return Err(parse_err(
            block.location("num_leaves"),
            "a tree needs at least one leaf",
        ));
    }
    // Every array below has one value per node or leaf: a count larger than the text itself
    // is a lie, refuse it before allocating.
    if num_leaves > block.raw("leaf_value")?.len() {
        return Err(parse_err(
            block.location("leaf_value"),
            format!("num_leaves={num_leaves} but far fewer values"),
        ));
    }
    let leaf_values: Vec<f64> = block.array("leaf_value", num_leaves)?;
    if num_leaves == 1 {
        // A constant tree: LightGBM predicts `leaf_value[0]` and explains it as the bias.
        let leaf_cover = match block.fields.get("leaf_count") {
            Some((_, v)) if !v.trim().is_empty() => block.array("leaf_count", 1)?,
            _ => vec![0.0],
        };
        return Ok(RawTree {
            nodes: Vec::new(),
            leaf_values,
            node_cover: Vec::new(),
            leaf_cover,
            cat_sets: Vec::new(),
        });
    }
    let n = num_leaves - 1;
    let split_feature: Vec<u32> = block.array("split_feature", n)?;
    let threshold: Vec<f64> = block.array("threshold", n)?;
    let decision_type: Vec<u8> = block.array("decision_type", n)?;
    let left: Vec<i32> = block.array("left_child", n)?;
    let right: Vec<i32> = block.array("right_child", n)?;
    let node_cover: Vec<f64> = block.array("internal_count", n)?;
    let leaf_cover: Vec<f64> = block.array("leaf_count", num_leaves)?;

    let num_cat: usize = match block.fields.get("num_cat") {
        Some(_) => block.scalar("num_cat")?,
        None => 0,
    };
    let mut cat_sets = Vec::new();
    if num_cat > 0 {
        if num_cat > n {
            return Err(parse_err(
                block.location("num_cat"),
                format!("{num_cat} categorical splits in a tree of {n} splits"),
            ));
        }
        let bounds: Vec<usize> = block.array("cat_boundaries", num_cat + 1)?;
        let words = block.raw("cat_threshold")?.split_ascii_whitespace().count();
        let cat_threshold: Vec<u32> = block.array("cat_threshold", words)?;
        if bounds[0] != 0
            || bounds.windows(2).any(|w| w[0] > w[1])
            || bounds[num_cat] != cat_threshold.len()
        {
            return Err(parse_err(
                block.location("cat_boundaries"),
                format!(
                    "boundaries must rise from 0 to the {} `cat_threshold` words",
                    cat_threshold.len()
                ),
            ));
        }
        cat_sets = bounds
            .windows(2)
            .map(|w| cat_threshold[w[0]..w[1]].to_vec())
            .collect();
    }

    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let dt = decision_type[i];
        let default_left = dt & DEFAULT_LEFT_MASK != 0;
        let (kind, nan_left, cat_set) = if dt & CATEGORICAL_MASK != 0 {
            let t = threshold[i];
            if !(t >= 0.0 && t.fract() == 0.0 && (t as usize) < num_cat) {
                return Err(parse_err(
                    block.location("threshold"),
                    format!(
                        "value {i} ({t}) of a categorical split must index one of {num_cat} category sets"
                    ),
                ));
            }
            (SplitKind::CategoricalLightGbm, false, t as u32)
        } else {
            match (dt >> 2) & 3 {
                // MissingType::None: NaN becomes 0.0, then the usual comparison.
                0 => (SplitKind::Numeric, 0.0 <= threshold[i], 0),
                1 => (SplitKind::NumericZeroMissing, default_left, 0),
                2 => (SplitKind::Numeric, default_left, 0),
                _ => {
                    return Err(parse_err(
                        block.location("decision_type"),
                        format!("value {i} ({dt}) has an unknown missing type"),
                    ));
                }
            }
        };
        nodes.push(RawNode {
            feature: split_feature[i],
            threshold: threshold[i],
            left: left[i],
            right: right[i],
            kind,
            nan_left,
            cat_set,
        });
    }
    Ok(RawTree {
        nodes,
        leaf_values,
        node_cover,
        leaf_cover,
        cat_sets,
    })
}
