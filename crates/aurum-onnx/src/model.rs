//! The imported model: the ONNX bytes, the parameters resolved against the graph, the input
//! schema and tract's plan; served through [`FittedModel`] and, for binary classifiers,
//! [`BinaryClassifier`] with policy decisions, reasons and occlusion explanations.

use aurum_contract::policy::{CreditDecision, Decision, ParamReader, ScoreScaling};
use aurum_contract::reasons::{ReasonTable, rank_adverse};
use aurum_contract::{
    Assessment, BinaryClassifier, FittedModel, ModelError, Output, OutputSpec, Params, TableScores,
    Task, default_points,
};
use aurum_core::{ColumnType, Contribution, Explanation, Field, Prediction, Schema, Table, Value};

use crate::graph::{self, Dim, Element, GraphInfo, Plan};
use crate::{PARAM_NAMES, TASKS, family_name};

const PAYLOAD_MAGIC: &[u8; 9] = b"AURUMONNX";
const PAYLOAD_VERSION: u32 = 1;
/// Probabilities are clamped this far from 0 and 1 before taking log-odds.
const LOGIT_EPS: f64 = 1e-15;
/// How far a two-column probability output's row may sum from 1 (a float32 softmax or
/// `predict_proba` is within 1e-6; a graph off by more is not giving probabilities).
const PROBABILITY_SUM_TOLERANCE: f64 = 1e-3;
/// Most values one run of occluded rows holds: an explanation needs `features + 1` rows of
/// `features` values for each row, so wide rows are occluded a slice at a time rather than
/// sized as one batch (262 144 features would be 550 GB at once).
const OCCLUSION_BATCH_VALUES: usize = 1 << 20;

/// The import parameters resolved against the graph; stored (as raw `key=value` text) in the
/// payload so a reload resolves to the same thing.
#[derive(Clone, Debug, PartialEq)]
struct Resolved {
    task: Task,
    input: String,
    element: Element,
    row_shape: Vec<usize>,
    single_row: bool,
    output: String,
    output_width: usize,
    features: Vec<String>,
    /// Binary: `[positive, negative]`; multiclass: one label per output column.
    labels: Vec<String>,
    /// Binary: the output column holding the positive class's probability.
    positive_column: usize,
    threshold: f64,
    /// Binary: the occlusion baseline, one value per feature.
    baseline: Vec<f64>,
}

impl Resolved {
    /// The canonical raw parameters: every key the import resolved.
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        let task = match self.task {
            Task::Multiclass => "multiclass",
            Task::Regression => "regression",
            _ => "binary",
        };
        p.insert("task".into(), task.into());
        p.insert("input".into(), self.input.clone());
        p.insert("input_shape".into(), join(&self.row_shape));
        p.insert("output".into(), self.output.clone());
        p.insert("features".into(), self.features.join(","));
        if !self.labels.is_empty() {
            p.insert("labels".into(), self.labels.join(","));
        }
        if self.task == Task::Binary {
            p.insert("threshold".into(), self.threshold.to_string());
            p.insert("baseline".into(), join(&self.baseline));
        }
        p
    }
}

fn join<T: ToString>(v: &[T]) -> String {
    v.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

/// `input_shape=8,2`: the per-row shape (the batch dimension left out).
pub(crate) fn parse_shape(text: &str) -> Result<Vec<usize>, ModelError> {
    let dims: Option<Vec<usize>> = text
        .split(',')
        .map(|d| d.trim().parse::<usize>().ok().filter(|d| *d > 0))
        .collect();
    match dims {
        Some(d) if !d.is_empty() => Ok(d),
        _ => Err(ModelError::invalid_param(
            "input_shape",
            text,
            "comma-separated positive dimensions of one row, without the batch dimension (e.g. 8,2)",
        )),
    }
}

/// A comma-separated list of finite numbers.
pub(crate) fn parse_numbers(key: &str, text: &str) -> Result<Vec<f64>, ModelError> {
    text.split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    ModelError::invalid_param(key, text, "comma-separated finite numbers")
                })
        })
        .collect()
}

fn list(text: &str) -> Vec<String> {
    text.split(',').map(|s| s.trim().to_string()).collect()
}

fn input_error(input: &str, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidInput {
        feature: input.to_string(),
        row: None,
        reason: reason.into(),
    }
}

/// A servable ONNX model.
#[derive(Debug)]
pub struct OnnxModel {
    bytes: Vec<u8>,
    resolved: Resolved,
    schema: Schema,
    plan: Plan,
    summary: serde_json::Value,
}

impl OnnxModel {
    /// Parses, checks and optimises `bytes`, resolving `params` against the graph. `forced`
    /// fixes the task (the `onnx_multiclass` and `onnx_regression` families). A binary model's
    /// baseline row is run as a probe: an output that does not give probabilities for it is
    /// refused here, naming the output, rather than at every prediction.
    pub(crate) fn import(
        bytes: &[u8],
        params: &Params,
        forced: Option<Task>,
    ) -> Result<Self, ModelError> {
        Self::resolve(bytes, params, forced, true)
    }

    /// [`Self::import`]; `probe` is false when reloading a stored version, so a version
    /// imported before the probe existed still loads (its predictions then fail with
    /// `model_output_invalid` naming the output).
    fn resolve(
        bytes: &[u8],
        params: &Params,
        forced: Option<Task>,
        probe: bool,
    ) -> Result<Self, ModelError> {
        let r = ParamReader::new("onnx", params, PARAM_NAMES)?;
        let info = graph::inspect(bytes)?;

        // The input, its element type and the shape of one row.
        let input = match r.str("input") {
            Some(name) => info.inputs.iter().find(|i| i.name == name).ok_or_else(|| {
                ModelError::invalid_param(
                    "input",
                    name,
                    format!("one of the graph's inputs: {}", names(&info.inputs)),
                )
            })?,
            None => match info.inputs.as_slice() {
                [one] => one,
                [] => return Err(input_error("model file", "the graph has no input")),
                many => {
                    return Err(ModelError::invalid_param(
                        "input",
                        "",
                        format!(
                            "one of the graph's inputs (it has {}: {}); aurum feeds one",
                            many.len(),
                            names(many)
                        ),
                    ));
                }
            },
        };
        let element = match input.elem_type {
            1 => Element::F32,
            11 => Element::F64,
            other => {
                return Err(input_error(
                    &input.name,
                    format!(
                        "input `{}` has ONNX element type {other}; aurum feeds float or double tensors",
                        input.name
                    ),
                ));
            }
        };
        let features_param = r.str("features").map(list);
        let (row_shape, single_row) = row_shape(
            &input.name,
            input.shape.as_deref(),
            r.str("input_shape").map(parse_shape).transpose()?,
            features_param.as_ref().map(Vec::len),
        )?;
        let width = row_width(&input.name, &row_shape, r.str("input_shape"))?;
        let features = match features_param {
            Some(f) => {
                if f.len() != width {
                    return Err(input_error(
                        &input.name,
                        format!(
                            "input `{}` takes {width} values per row (shape [batch, {}]) but {} feature names were given",
                            input.name,
                            join(&row_shape),
                            f.len()
                        ),
                    ));
                }
                f
            }
            None => (0..width).map(|i| format!("f{i}")).collect(),
        };
        let schema = Schema::new(
            features
                .iter()
                .map(|n| Field::new(n.clone(), ColumnType::Float))
                .collect(),
        )
        .map_err(|e| ModelError::invalid_param("features", features.join(","), e.to_string()))?;

        // The output.
        let output = match r.str("output") {
            Some(name) => info
                .outputs
                .iter()
                .find(|o| o.name == name)
                .ok_or_else(|| {
                    ModelError::invalid_param(
                        "output",
                        name,
                        format!("one of the graph's outputs: {}", names(&info.outputs)),
                    )
                })?,
            None => info.outputs.iter().find(|o| o.is_float()).ok_or_else(|| {
                input_error(
                    "model file",
                    format!(
                        "the graph has no float output (outputs: {})",
                        names(&info.outputs)
                    ),
                )
            })?,
        };
        if !output.is_float() {
            return Err(ModelError::invalid_param(
                "output",
                &output.name,
                "a float output (class probabilities or a value)",
            ));
        }
        let plan = Plan::build(
            &info.proto,
            &input.name,
            element,
            &row_shape,
            &output.name,
            single_row,
        )?;
        // One trial row fixes the output's width, whatever the file declares.
        let (_, output_width) = plan.run(&vec![0.0; width], 1)?;

        let task = resolve_task(&info, &output.name, output_width, forced, &r)?;
        let (labels, positive_column) =
            resolve_labels(task, output_width, info.class_labels.as_deref(), &r)?;
        let threshold = r.f64(
            "threshold",
            |t| t > 0.0 && t < 1.0,
            "a number strictly between 0 and 1",
        )?;
        let baseline = r
            .str("baseline")
            .map(|b| parse_numbers("baseline", b))
            .transpose()?;
        if task != Task::Binary {
            for (key, given) in [
                ("threshold", threshold.is_some()),
                ("baseline", baseline.is_some()),
            ] {
                if given {
                    return Err(ModelError::invalid_param(
                        key,
                        r.str(key).unwrap_or_default(),
                        "no value: it applies to binary classifiers only",
                    ));
                }
            }
        }
        let baseline = baseline.unwrap_or_else(|| vec![0.0; width]);
        if baseline.len() != width {
            return Err(ModelError::invalid_param(
                "baseline",
                r.str("baseline").unwrap_or_default(),
                format!("{width} numbers, one per feature"),
            ));
        }
        if probe && task == Task::Binary {
            let (out, _) = plan.run(&baseline, 1)?;
            // A graph that gives NaN at the baseline (a log of zero) is left to prediction.
            if out.iter().all(|v| v.is_finite())
                && let Err(e) = read_probabilities(&out, output_width, positive_column, 0)
            {
                return Err(input_error(
                    &output.name,
                    format!(
                        "output `{}` is read as a binary classifier's probabilities, but for the \
                         baseline row [{}] it gave [{}]: {e}",
                        output.name,
                        join(&baseline),
                        join(&out)
                    ),
                ));
            }
        }
        let resolved = Resolved {
            task,
            input: input.name.clone(),
            element,
            row_shape,
            single_row,
            output: output.name.clone(),
            output_width,
            features,
            labels,
            positive_column,
            threshold: threshold.unwrap_or(0.5),
            baseline,
        };
        let summary = summary_of(&info, &resolved);
        tracing::debug!(
            task = %resolved.task,
            input = %resolved.input,
            output = %resolved.output,
            width,
            "onnx model planned"
        );
        Ok(OnnxModel {
            bytes: bytes.to_vec(),
            resolved,
            schema,
            plan,
            summary,
        })
    }

    /// Reads a payload written by [`FittedModel::payload`].
    pub(crate) fn from_payload(payload: &[u8], forced: Option<Task>) -> Result<Self, ModelError> {
        let bad = |reason: &str| ModelError::invalid_artifact(format!("onnx payload: {reason}"));
        let rest = payload
            .strip_prefix(PAYLOAD_MAGIC.as_slice())
            .ok_or_else(|| bad("bad magic bytes"))?;
        let (version, rest) = split_u32(rest).ok_or_else(|| bad("truncated"))?;
        if version != PAYLOAD_VERSION {
            return Err(ModelError::invalid_artifact(format!(
                "onnx payload version {version} is not supported (this aurum reads {PAYLOAD_VERSION})"
            )));
        }
        let (len, rest) = split_u32(rest).ok_or_else(|| bad("truncated"))?;
        let len = len as usize;
        if rest.len() < len {
            return Err(bad("truncated parameters"));
        }
        let (json, onnx) = rest.split_at(len);
        let params: Params =
            serde_json::from_slice(json).map_err(|e| bad(&format!("parameters: {e}")))?;
        let model = Self::resolve(onnx, &params, forced, false)
            .map_err(|e| ModelError::invalid_artifact(format!("onnx payload: {e}")))?;
        if model.resolved.to_params() != params {
            return Err(bad("the stored parameters no longer resolve to themselves"));
        }
        Ok(model)
    }

    /// The rows as one row-major `f64` matrix (`null` → NaN).
    fn matrix(&self, rows: &[Vec<Value>]) -> Result<Vec<f64>, ModelError> {
        // Sized by the values sent, never by rows × the declared width: a batch of short rows
        // is refused by `push_row`, not allocated as if every row were full.
        let mut x = Vec::with_capacity(rows.iter().map(Vec::len).sum());
        for (i, row) in rows.iter().enumerate() {
            self.push_row(row, &mut x).map_err(|e| e.at_row(i))?;
        }
        Ok(x)
    }

    fn push_row(&self, row: &[Value], out: &mut Vec<f64>) -> Result<(), ModelError> {
        if row.len() != self.schema.len() {
            return Err(ModelError::RowLength {
                row: None,
                expected: self.schema.len(),
                got: row.len(),
            });
        }
        for (v, f) in row.iter().zip(&self.schema.fields) {
            out.push(match v {
                Value::Null => f64::NAN,
                Value::Float(x) if x.is_finite() => *x,
                Value::Integer(i) => *i as f64,
                Value::Boolean(b) => f64::from(u8::from(*b)),
                Value::Float(_) => {
                    return Err(ModelError::InvalidInput {
                        feature: f.name.clone(),
                        row: None,
                        reason: "must be a finite number (send null for missing)".into(),
                    });
                }
                Value::Str(_) | Value::Date(_) | Value::DateTime(_) => {
                    return Err(ModelError::InvalidInput {
                        feature: f.name.clone(),
                        row: None,
                        reason: "must be a number (ONNX models take numeric inputs)".into(),
                    });
                }
            });
        }
        Ok(())
    }

    /// The output values of `n` rows, `output_width` per row, every one finite.
    fn run(&self, x: &[f64], n: usize) -> Result<Vec<f64>, ModelError> {
        let (out, width) = self.plan.run(x, n)?;
        if n > 0 && width != self.resolved.output_width {
            return Err(ModelError::Numerical {
                reason: format!(
                    "output `{}` has {width} values per row, {} at import",
                    self.resolved.output, self.resolved.output_width
                ),
            });
        }
        if let Some(i) = out.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::InvalidInput {
                feature: "row".into(),
                row: Some(i / width.max(1)),
                reason: format!(
                    "the model's output `{}` is not a finite number for this row (a missing \
                     value reaches the graph as NaN)",
                    self.resolved.output
                ),
            });
        }
        Ok(out)
    }

    /// The probabilities of the positive class of `n` rows; an output that is not a
    /// probability is [`ModelError::BadOutput`] naming the output (the version is wrong, not
    /// the request).
    fn probabilities(&self, x: &[f64], n: usize) -> Result<Vec<f64>, ModelError> {
        self.probabilities_from(x, n, 0)
    }

    /// [`Self::probabilities`], numbering the rows from `first_row` in the error.
    fn probabilities_from(
        &self,
        x: &[f64],
        n: usize,
        first_row: usize,
    ) -> Result<Vec<f64>, ModelError> {
        let out = self.run(x, n)?;
        read_probabilities(
            &out,
            self.resolved.output_width,
            self.resolved.positive_column,
            first_row,
        )
        .map_err(|reason| ModelError::BadOutput {
            output: self.resolved.output.clone(),
            reason,
        })
    }

    fn prediction(&self, p: f64) -> Prediction {
        let positive = p >= self.resolved.threshold;
        Prediction {
            probability: p,
            label: self.resolved.labels[usize::from(!positive)].clone(),
            positive,
        }
    }

    /// Occlusion contributions of each row of `x` (`n` rows), with the base value: for feature
    /// `j`, `logit p(x) − logit p(x with x_j = baseline_j)`. One batch for all rows.
    ///
    /// The occluded rows (`n·(p + 1) + 1` of `p` values) run in slices of at most
    /// [`OCCLUSION_BATCH_VALUES`] values, so wide rows never size one huge batch.
    fn occlusion(&self, x: &[f64], n: usize) -> Result<(Vec<Vec<f64>>, f64), ModelError> {
        let p = self.schema.len();
        let total = n * (p + 1) + 1;
        let per_batch = (OCCLUSION_BATCH_VALUES / p.max(1)).max(1);
        // Occluded row `k`: 0 is the baseline; then, for each row, the row itself and the row
        // with each feature in turn set to its baseline value.
        let occluded = |k: usize, out: &mut Vec<f64>| {
            if k == 0 {
                out.extend_from_slice(&self.resolved.baseline);
                return;
            }
            let (i, j) = ((k - 1) / (p + 1), (k - 1) % (p + 1));
            let start = out.len();
            out.extend_from_slice(&x[i * p..(i + 1) * p]);
            if j > 0 {
                out[start + j - 1] = self.resolved.baseline[j - 1];
            }
        };
        let mut probs = Vec::with_capacity(total);
        let mut batch = Vec::with_capacity(per_batch.min(total) * p);
        for first in (0..total).step_by(per_batch) {
            let rows = per_batch.min(total - first);
            batch.clear();
            for k in first..first + rows {
                occluded(k, &mut batch);
            }
            probs.extend(self.probabilities_from(&batch, rows, first)?);
        }
        let base = logit(probs[0]);
        let phi = probs[1..]
            .chunks_exact(p + 1)
            .map(|c| {
                let full = logit(c[0]);
                c[1..].iter().map(|q| full - logit(*q)).collect()
            })
            .collect();
        Ok((phi, base))
    }

    fn explanation_of(&self, row: &[Value], phi: &[f64], base_value: f64) -> Explanation {
        let mut contributions: Vec<Contribution> = self
            .schema
            .fields
            .iter()
            .zip(row)
            .zip(phi)
            .map(|((f, v), c)| Contribution {
                feature: f.name.clone(),
                value: v.clone(),
                contribution: *c,
            })
            .collect();
        contributions.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        Explanation {
            space: "log_odds".into(),
            base_value,
            contributions,
        }
    }

    /// The decision for PD `pd` (no reasons yet), and whether the row needs attributions.
    fn decision_of(&self, pd: f64, explain: bool) -> (CreditDecision, bool) {
        let score = Some(ScoreScaling::default().score_from_pd(pd));
        let decision = self.policy().decide(pd, score);
        let adverse = decision != Decision::Approve;
        (
            CreditDecision {
                pd,
                score,
                decision,
                reasons: Vec::new(),
            },
            explain || adverse,
        )
    }

    fn assessment(
        &self,
        row: &[Value],
        mut decision: CreditDecision,
        phi: Option<&(Vec<f64>, f64)>,
        explain: bool,
    ) -> Assessment {
        if let Some((phi, _)) = phi
            && decision.decision != Decision::Approve
        {
            decision.reasons = rank_adverse(
                self.schema
                    .fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .zip(phi.iter().copied()),
                &ReasonTable::new(),
                self.policy().max_reasons,
            );
        }
        let explanation = match phi {
            Some((phi, base)) if explain => Some(self.explanation_of(row, phi, *base)),
            _ => None,
        };
        Assessment {
            decision,
            explanation,
        }
    }

    fn binary_only(&self, operation: &'static str) -> Result<(), ModelError> {
        if self.resolved.task == Task::Binary {
            Ok(())
        } else {
            Err(ModelError::WrongTask {
                family: self.family().to_string(),
                task: self.resolved.task,
                operation,
            })
        }
    }
}

/// The positive class's probability of each row of `out` (`width` values a row), or why the
/// output is not probabilities: every value must lie in [0, 1] and a two-column row must sum
/// to 1 (within [`PROBABILITY_SUM_TOLERANCE`]). Rows are numbered from `first_row`.
fn read_probabilities(
    out: &[f64],
    width: usize,
    positive_column: usize,
    first_row: usize,
) -> Result<Vec<f64>, String> {
    out.chunks_exact(width.max(1))
        .enumerate()
        .map(|(i, r)| {
            let row = first_row + i;
            if let Some(v) = r.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                return Err(if width == 1 {
                    format!(
                        "it gave {v} for row {row}, which is not a probability (import a score \
                         or logit output with task=regression)"
                    )
                } else {
                    format!(
                        "it gave {v} for row {row}, which is not a probability (choose the \
                         graph's class-probability output with output=)"
                    )
                });
            }
            let sum: f64 = r.iter().sum();
            if width == 2 && (sum - 1.0).abs() > PROBABILITY_SUM_TOLERANCE {
                return Err(format!(
                    "it gave [{}] for row {row}, which sum to {sum}, not 1: not the two class \
                     probabilities of a binary classifier (choose the graph's class-probability \
                     output with output=)",
                    join(r)
                ));
            }
            Ok(r[positive_column])
        })
        .collect()
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(LOGIT_EPS, 1.0 - LOGIT_EPS);
    (p / (1.0 - p)).ln()
}

fn split_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = b.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), rest))
}

fn names(ports: &[graph::Port]) -> String {
    ports
        .iter()
        .map(|p| format!("`{}`", p.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Most values one row may hold (a 224×224×3 image is 150 528): every row, the trial row of
/// the import and the schema's feature names are sized by it, so a declared dimension of two
/// billion is refused here rather than allocated.
pub const MAX_ROW_VALUES: usize = 1 << 18;

/// The number of values in one row of `shape`, within [`MAX_ROW_VALUES`]; the error names
/// `input_shape` when the caller gave it, else the graph's input.
fn row_width(input: &str, shape: &[usize], given: Option<&str>) -> Result<usize, ModelError> {
    let width = shape
        .iter()
        .try_fold(1usize, |w, &d| w.checked_mul(d))
        .filter(|w| (1..=MAX_ROW_VALUES).contains(w));
    width.ok_or_else(|| {
        let what = format!(
            "a row shape of 1 to {MAX_ROW_VALUES} values (this one is [{}])",
            join(shape)
        );
        match given {
            Some(g) => ModelError::invalid_param("input_shape", g, what),
            None => input_error(
                input,
                format!(
                    "input `{input}` takes rows of shape [{}]; aurum takes {what}",
                    join(shape)
                ),
            ),
        }
    })
}

/// The shape of one row and whether the file fixes the batch to 1.
fn row_shape(
    input: &str,
    declared: Option<&[Dim]>,
    given: Option<Vec<usize>>,
    n_features: Option<usize>,
) -> Result<(Vec<usize>, bool), ModelError> {
    let Some(dims) = declared else {
        // No shape in the file: the parameters must say it.
        return match (given, n_features) {
            (Some(shape), _) => Ok((shape, false)),
            (None, Some(n)) => Ok((vec![n], false)),
            (None, None) => Err(input_error(
                input,
                format!(
                    "input `{input}` declares no shape; give input_shape= (one row, e.g. 8,2) or features="
                ),
            )),
        };
    };
    let Some((batch, rest)) = dims.split_first() else {
        return Err(input_error(
            input,
            format!("input `{input}` is a scalar; aurum feeds a batch of rows [batch, ...]"),
        ));
    };
    let single_row = match batch {
        Dim::Fixed(1) => true,
        Dim::Fixed(n) => {
            return Err(input_error(
                input,
                format!(
                    "input `{input}` has a fixed batch of {n}; export it with a dynamic (or 1) first dimension"
                ),
            ));
        }
        Dim::Named(_) | Dim::Unknown => false,
    };
    if let Some(shape) = given {
        let agrees = shape.len() == rest.len()
            && shape
                .iter()
                .zip(rest)
                .all(|(s, d)| !matches!(d, Dim::Fixed(f) if f != s));
        if !agrees {
            return Err(input_error(
                input,
                format!(
                    "input `{input}` has shape [batch, {}] but input_shape declares [{}]",
                    show_dims(rest),
                    join(&shape)
                ),
            ));
        }
        return Ok((shape, single_row));
    }
    let fixed: Option<Vec<usize>> = rest
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => Some(*n),
            _ => None,
        })
        .collect();
    match (fixed, rest, n_features) {
        (Some(shape), _, _) if !shape.is_empty() => Ok((shape, single_row)),
        (_, [_], Some(n)) => Ok((vec![n], single_row)),
        _ => Err(input_error(
            input,
            format!(
                "input `{input}` has shape [batch, {}] with dynamic dimensions; declare one row's shape with input_shape=",
                show_dims(rest)
            ),
        )),
    }
}

fn show_dims(dims: &[Dim]) -> String {
    dims.iter()
        .map(|d| match d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Named(s) => s.clone(),
            Dim::Unknown => "?".into(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn resolve_task(
    info: &GraphInfo,
    output: &str,
    width: usize,
    forced: Option<Task>,
    r: &ParamReader<'_>,
) -> Result<Task, ModelError> {
    let asked = r.choice("task", TASKS)?.flatten();
    let task = match (forced, asked) {
        (Some(f), Some(a)) if f != a => {
            return Err(ModelError::invalid_param(
                "task",
                r.str("task").unwrap_or_default(),
                format!("{f} (the family {} imports {f} models)", family_name(f)),
            ));
        }
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => {
            let producer = info
                .producers
                .iter()
                .find(|(o, _)| o == output)
                .map(|(_, op)| op.as_str());
            match width {
                1 if producer == Some("Sigmoid") => Task::Binary,
                1 => Task::Regression,
                2 => Task::Binary,
                _ => Task::Multiclass,
            }
        }
    };
    let fits = match task {
        Task::Binary => width == 1 || width == 2,
        Task::Multiclass => width >= 2,
        _ => width == 1,
    };
    if !fits {
        return Err(ModelError::invalid_param(
            "task",
            task.to_string(),
            format!(
                "a task that output `{output}` ({width} values per row) can serve: one value for \
                 regression or a sigmoid probability, two for binary, two or more for multiclass"
            ),
        ));
    }
    Ok(task)
}

/// The labels and, for binary models, the positive class's column.
fn resolve_labels(
    task: Task,
    width: usize,
    graph_labels: Option<&[String]>,
    r: &ParamReader<'_>,
) -> Result<(Vec<String>, usize), ModelError> {
    let given = r.str("labels").map(list);
    let graph_labels = graph_labels.filter(|l| l.len() == width);
    match task {
        Task::Binary => {
            let labels = match (&given, graph_labels) {
                (Some(l), _) => l.clone(),
                (None, Some(g)) if g.len() == 2 => vec![g[1].clone(), g[0].clone()],
                _ => vec!["1".into(), "0".into()],
            };
            if labels.len() != 2 || labels[0] == labels[1] || labels.iter().any(String::is_empty) {
                return Err(ModelError::invalid_param(
                    "labels",
                    r.str("labels").unwrap_or_default(),
                    "two different labels, positive first (e.g. bad,good)",
                ));
            }
            let column = match (width, graph_labels) {
                (1, _) => 0,
                (_, Some(g)) => {
                    let pos = g.iter().position(|c| *c == labels[0]);
                    let neg = g.iter().position(|c| *c == labels[1]);
                    match (pos, neg) {
                        (Some(p), Some(_)) => p,
                        _ => {
                            return Err(ModelError::invalid_param(
                                "labels",
                                r.str("labels").unwrap_or_default(),
                                format!(
                                    "the model's two classes, positive first ({} or {})",
                                    g.join(","),
                                    g.iter().rev().cloned().collect::<Vec<_>>().join(",")
                                ),
                            ));
                        }
                    }
                }
                _ => 1,
            };
            Ok((labels, column))
        }
        Task::Multiclass => {
            let labels = match (given, graph_labels) {
                (Some(l), _) => l,
                (None, Some(g)) => g.to_vec(),
                _ => (0..width).map(|i| i.to_string()).collect(),
            };
            let distinct: std::collections::BTreeSet<&String> = labels.iter().collect();
            if labels.len() != width || distinct.len() != width {
                return Err(ModelError::invalid_param(
                    "labels",
                    r.str("labels").unwrap_or_default(),
                    format!("{width} different class labels, in the order of the output's columns"),
                ));
            }
            Ok((labels, 0))
        }
        _ => {
            if let Some(l) = r.str("labels") {
                return Err(ModelError::invalid_param(
                    "labels",
                    l,
                    "no value: regression models have no labels",
                ));
            }
            Ok((Vec::new(), 0))
        }
    }
}

fn summary_of(info: &GraphInfo, r: &Resolved) -> serde_json::Value {
    let mut ops = std::collections::BTreeMap::<&str, usize>::new();
    if let Some(g) = &info.proto.graph {
        for n in &g.node {
            *ops.entry(n.op_type.as_str()).or_default() += 1;
        }
    }
    serde_json::json!({
        "producer": format!("{} {}", info.proto.producer_name, info.proto.producer_version).trim().to_string(),
        "opsets": info.proto.opset_import.iter().map(|o| serde_json::json!({
            "domain": if o.domain.is_empty() { "ai.onnx" } else { o.domain.as_str() },
            "version": o.version,
        })).collect::<Vec<_>>(),
        "input": r.input,
        "row_shape": r.row_shape,
        "output": r.output,
        "output_width": r.output_width,
        "operators": ops,
        "explanation": if r.task == Task::Binary {
            "occlusion against the baseline row, in log-odds (not additive)"
        } else {
            "none"
        },
    })
}

impl FittedModel for OnnxModel {
    fn family(&self) -> &str {
        family_name(self.resolved.task)
    }

    fn task(&self) -> Task {
        self.resolved.task
    }

    fn input_schema(&self) -> &Schema {
        &self.schema
    }

    fn params(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self.resolved.to_params()).unwrap_or_default();
        if self.resolved.task == Task::Binary {
            v["threshold"] = serde_json::json!(self.resolved.threshold);
        }
        v
    }

    fn summary(&self) -> serde_json::Value {
        self.summary.clone()
    }

    fn details(&self) -> serde_json::Value {
        self.summary.clone()
    }

    fn payload(&self) -> Result<Vec<u8>, ModelError> {
        let json = serde_json::to_vec(&self.resolved.to_params()).map_err(|e| {
            ModelError::Serialization {
                reason: e.to_string(),
            }
        })?;
        let len = u32::try_from(json.len()).map_err(|_| ModelError::Serialization {
            reason: "onnx parameters too long".into(),
        })?;
        let mut out = Vec::with_capacity(PAYLOAD_MAGIC.len() + 8 + json.len() + self.bytes.len());
        out.extend_from_slice(PAYLOAD_MAGIC);
        out.extend_from_slice(&PAYLOAD_VERSION.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&self.bytes);
        Ok(out)
    }

    fn output_spec(&self) -> OutputSpec {
        match self.resolved.task {
            Task::Binary => OutputSpec::Binary {
                positive_label: self.resolved.labels[0].clone(),
                negative_label: self.resolved.labels[1].clone(),
                threshold: self.resolved.threshold,
            },
            Task::Multiclass => OutputSpec::Classes(self.resolved.labels.clone()),
            _ => OutputSpec::Value,
        }
    }

    /// The whole batch runs as one tensor.
    fn predict_rows(&self, rows: &[Vec<Value>]) -> Result<Vec<Output>, ModelError> {
        let x = self.matrix(rows)?;
        match self.resolved.task {
            Task::Binary => Ok(self
                .probabilities(&x, rows.len())?
                .into_iter()
                .map(|p| Output::Binary(self.prediction(p)))
                .collect()),
            Task::Multiclass => {
                let out = self.run(&x, rows.len())?;
                Ok(out
                    .chunks_exact(self.resolved.output_width)
                    .map(|probs| {
                        let best = probs
                            .iter()
                            .enumerate()
                            .fold(0, |b, (i, p)| if *p > probs[b] { i } else { b });
                        Output::Class {
                            label: self.resolved.labels[best].clone(),
                            probabilities: probs.to_vec(),
                        }
                    })
                    .collect())
            }
            _ => Ok(self
                .run(&x, rows.len())?
                .into_iter()
                .map(Output::Value)
                .collect()),
        }
    }

    fn as_binary(&self) -> Option<&dyn BinaryClassifier> {
        (self.resolved.task == Task::Binary).then_some(self as &dyn BinaryClassifier)
    }

    fn into_binary(self: Box<Self>) -> Option<Box<dyn BinaryClassifier>> {
        if self.resolved.task == Task::Binary {
            Some(self)
        } else {
            None
        }
    }
}

impl BinaryClassifier for OnnxModel {
    fn threshold(&self) -> f64 {
        self.resolved.threshold
    }

    fn labels(&self) -> (&str, &str) {
        (&self.resolved.labels[0], &self.resolved.labels[1])
    }

    /// The whole batch runs as one tensor.
    fn predict(&self, rows: &[Vec<Value>]) -> Result<Vec<Prediction>, ModelError> {
        self.binary_only("binary prediction")?;
        let x = self.matrix(rows)?;
        Ok(self
            .probabilities(&x, rows.len())?
            .into_iter()
            .map(|p| self.prediction(p))
            .collect())
    }

    fn predict_proba_one(&self, row: &[Value]) -> Result<f64, ModelError> {
        self.binary_only("binary prediction")?;
        let mut x = Vec::with_capacity(self.schema.len());
        self.push_row(row, &mut x)?;
        Ok(self.probabilities(&x, 1)?[0])
    }

    fn predict_proba_table(&self, table: &Table) -> Result<Vec<f64>, ModelError> {
        self.binary_only("binary prediction")?;
        let inputs = table
            .select(self.schema.names())
            .map_err(|e| ModelError::InvalidInput {
                feature: "table".into(),
                row: None,
                reason: e.to_string(),
            })?;
        let rows: Vec<Vec<Value>> = (0..inputs.n_rows()).map(|i| inputs.row(i)).collect();
        let x = self.matrix(&rows)?;
        self.probabilities(&x, rows.len())
    }

    fn explain(&self, row: &[Value]) -> Result<Explanation, ModelError> {
        self.binary_only("explanation")?;
        let mut x = Vec::with_capacity(self.schema.len());
        self.push_row(row, &mut x)?;
        let (phi, base) = self.occlusion(&x, 1)?;
        Ok(self.explanation_of(row, &phi[0], base))
    }

    /// One run for the PD, and one batch of occluded rows only when reasons or the
    /// explanation are needed.
    fn assess(&self, row: &[Value], explain: bool) -> Result<Assessment, ModelError> {
        self.assess_batch(std::slice::from_ref(&row.to_vec()), explain)
            .map(|mut a| a.remove(0))
    }

    /// One run for the batch's PDs, then one run of the occluded rows of every row that
    /// needs attributions (refer, decline, or `explain`).
    fn assess_batch(
        &self,
        rows: &[Vec<Value>],
        explain: bool,
    ) -> Result<Vec<Assessment>, ModelError> {
        self.binary_only("assessment")?;
        let p = self.schema.len();
        let x = self.matrix(rows)?;
        let pd = self.probabilities(&x, rows.len())?;
        let decisions: Vec<(CreditDecision, bool)> =
            pd.iter().map(|&pd| self.decision_of(pd, explain)).collect();
        let attributed: Vec<usize> = (0..rows.len()).filter(|&i| decisions[i].1).collect();
        let mut selected = Vec::with_capacity(attributed.len() * p);
        for &i in &attributed {
            selected.extend_from_slice(&x[i * p..(i + 1) * p]);
        }
        let (phi, base) = if attributed.is_empty() {
            (Vec::new(), 0.0)
        } else {
            self.occlusion(&selected, attributed.len())?
        };
        let mut phi_rows = phi.into_iter();
        Ok(rows
            .iter()
            .zip(decisions)
            .map(|(row, (decision, attribute))| {
                let phi = if attribute {
                    phi_rows.next().map(|phi| (phi, base))
                } else {
                    None
                };
                self.assessment(row, decision, phi.as_ref(), explain)
            })
            .collect())
    }

    fn score_points_table(&self, table: &Table) -> Result<Option<Vec<f64>>, ModelError> {
        Ok(Some(default_points(&self.predict_proba_table(table)?)))
    }

    /// One pass over the table: the points are the default scaling of the PDs.
    fn score_table(&self, table: &Table) -> Result<TableScores, ModelError> {
        Ok(TableScores::from_pd(self.predict_proba_table(table)?))
    }
}
