//! Protocol-neutral Open Inference Protocol operations, shared by the REST handlers
//! (`oip::rest`) and the gRPC service ([`crate::grpc`]): model addressing, metadata,
//! the repository index, and inference from decoded [`Tensor`]s to the outputs.
//!
//! A tabular model is fed in one of two layouts:
//! - one tensor per feature, named as the feature, shape `[batch]` or `[batch, 1]`: BYTES for
//!   categorical, text, date and date-time features, BOOL (or BYTES `"true"`/`"false"`) for
//!   booleans, any integer or floating type for numeric features;
//! - one FP32/FP64 tensor `[batch, n_features]` whose columns follow the input schema, under any
//!   name that is not a feature's, accepted only when every feature is numeric.

use std::time::Instant;

use aurum_service::types::{CellError, ColumnType, Field, Value, parse_field_cell};
use aurum_service::{
    CallContext, ErrorClass, LoadedModel, ModelRef, Platform, PredictOptions, ServiceError,
    VersionState,
};

use super::tensor::{DataType, Tensor, TensorData, invalid};

/// The server name reported by server metadata.
pub const SERVER_NAME: &str = "aurum";
/// The protocol extensions implemented.
pub const EXTENSIONS: [&str; 2] = ["binary_tensor_data", "model_repository"];

/// What an unload request answers: aurum has nothing to unload on request.
pub const UNLOAD_NOTE: &str = "aurum loads model versions on first use and keeps them cached \
     while the server runs; unload is accepted and does nothing";

/// The model outputs. Which a model has depends on its task ([`OutputKind::of_task`]); they
/// are returned in that order when the request names none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// Binary: probability of the positive class. Multiclass and sequence: probability of the
    /// predicted class. FP64 `[batch]`.
    Probability,
    /// The predicted label (binary: at the model's threshold; multiclass: the most probable
    /// class), BYTES `[batch]`.
    Label,
    /// The decision under the version's policy (`approve`, `refer`, `decline`), BYTES `[batch]`.
    Decision,
    /// Binary: the credit score in points, NaN (`null` in JSON) where the model has no score.
    /// Anomaly: the anomaly score (higher is more unusual). FP64 `[batch]`.
    Score,
    /// Regression: the predicted value, FP64 `[batch]`.
    Value,
    /// Anomaly: whether the row is anomalous at the model's threshold, BOOL `[batch]`.
    Anomalous,
    /// Multiclass and sequence: one probability per class, FP64 `[batch, classes]`, row-major,
    /// the columns in the model's class order; the tensor's `classes` parameter lists that
    /// order (a JSON array of the class labels, in a string parameter).
    Probabilities,
}

impl OutputKind {
    /// Every output name the protocol knows.
    pub const ALL: [OutputKind; 7] = [
        OutputKind::Probability,
        OutputKind::Label,
        OutputKind::Decision,
        OutputKind::Score,
        OutputKind::Value,
        OutputKind::Anomalous,
        OutputKind::Probabilities,
    ];

    /// The outputs of a model of `task`, in their default order; `None` for tasks that do not
    /// score rows (forecasters and rankers have their own routes).
    pub fn of_task(task: aurum_service::types::Task) -> Option<&'static [OutputKind]> {
        use aurum_service::types::Task;
        Some(match task {
            Task::Binary => &[
                OutputKind::Probability,
                OutputKind::Label,
                OutputKind::Decision,
                OutputKind::Score,
            ],
            Task::Multiclass | Task::SequenceClassification => &[
                OutputKind::Label,
                OutputKind::Probability,
                OutputKind::Probabilities,
            ],
            Task::Regression => &[OutputKind::Value],
            Task::Anomaly => &[OutputKind::Score, OutputKind::Anomalous],
            Task::Forecast | Task::Ranking => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputKind::Probability => "probability",
            OutputKind::Label => "label",
            OutputKind::Decision => "decision",
            OutputKind::Score => "score",
            OutputKind::Value => "value",
            OutputKind::Anomalous => "anomalous",
            OutputKind::Probabilities => "probabilities",
        }
    }

    pub fn datatype(self) -> DataType {
        match self {
            OutputKind::Probability
            | OutputKind::Score
            | OutputKind::Value
            | OutputKind::Probabilities => DataType::Fp64,
            OutputKind::Label | OutputKind::Decision => DataType::Bytes,
            OutputKind::Anomalous => DataType::Bool,
        }
    }
}

/// Resolves the outputs a request names (in its order), by name only: none named gives an
/// empty list, which [`infer`] reads as "the model's outputs"; whether the model has a named
/// output is checked once the model is known.
pub fn select_outputs<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<OutputKind>, ServiceError> {
    let mut out = Vec::new();
    for name in names {
        let kind = OutputKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                invalid(
                    "unknown_output",
                    format!(
                        "unknown output `{name}`; outputs are probability, label, decision and score (binary models), label, probability and probabilities (multiclass), value (regression), score and anomalous (anomaly)"
                    ),
                )
            })?;
        if out.contains(&kind) {
            return Err(invalid(
                "duplicate_output",
                format!("output `{name}` is requested twice"),
            ));
        }
        out.push(kind);
    }
    Ok(out)
}

/// The outputs answered for a model of `task`: those requested (each checked against the
/// task's), or all of the task's.
fn outputs_for(
    who: &str,
    task: aurum_service::types::Task,
    requested: &[OutputKind],
) -> Result<Vec<OutputKind>, ServiceError> {
    let available = OutputKind::of_task(task).ok_or_else(|| {
        invalid(
            "wrong_task",
            format!(
                "{who} is a {} model: it is served by its own /v1 route, not by inference over rows",
                task.as_str()
            ),
        )
    })?;
    if let Some(k) = requested.iter().find(|k| !available.contains(k)) {
        return Err(invalid(
            "unknown_output",
            format!(
                "`{}` is not an output of {who}, a {} model; its outputs are {}",
                k.name(),
                task.as_str(),
                available
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(if requested.is_empty() {
        available.to_vec()
    } else {
        requested.to_vec()
    })
}

/// Addresses a model as the protocol does: no (or an empty) version means the `champion`
/// alias, a number is a version, and any other string is taken as an alias name.
pub fn model_ref(name: &str, version: Option<&str>) -> Result<ModelRef, ServiceError> {
    if name.is_empty() {
        return Err(invalid(
            "missing_model_name",
            "the model name is required".into(),
        ));
    }
    Ok(match version.map(str::trim).filter(|v| !v.is_empty()) {
        None => ModelRef::champion(name),
        Some(v) if v.bytes().all(|b| b.is_ascii_digit()) => {
            let n = v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                invalid(
                    "invalid_version",
                    format!("model version `{v}` is not a version number (1, 2, ...)"),
                )
            })?;
            ModelRef::version(name, n)
        }
        Some(alias) => ModelRef::alias(name, alias),
    })
}

/// Metadata of one tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorMeta {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
}

/// Model metadata in protocol terms.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelMeta {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<TensorMeta>,
    pub outputs: Vec<TensorMeta>,
}

/// The datatype a feature is described with (a per-feature tensor may use other types too:
/// any integer or floating type for numeric features).
pub fn feature_datatype(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Float => DataType::Fp64,
        ColumnType::Integer => DataType::Int64,
        ColumnType::Boolean => DataType::Bool,
        ColumnType::Categorical | ColumnType::Text | ColumnType::Date | ColumnType::DateTime => {
            DataType::Bytes
        }
    }
}

/// The metadata of the addressed model: inputs from its input schema, the outputs, and the
/// versions that can be addressed (every version not archived).
pub async fn model_metadata(
    platform: &Platform,
    target: &ModelRef,
) -> Result<ModelMeta, ServiceError> {
    let model = platform.resolve(target).await?;
    let versions = platform
        .list_versions(&model.name)
        .await?
        .into_iter()
        .filter(|v| !v.is_archived())
        .map(|v| v.version.to_string())
        .collect();
    Ok(ModelMeta {
        name: model.name.clone(),
        versions,
        platform: format!("aurum_{}", model.manifest.family.as_str()),
        inputs: model
            .input_schema()
            .fields
            .iter()
            .map(|f| TensorMeta {
                name: f.name.clone(),
                datatype: feature_datatype(f.ty),
                shape: vec![-1],
            })
            .collect(),
        outputs: {
            let classes = class_labels(&model);
            OutputKind::of_task(model.task())
                .unwrap_or_default()
                .iter()
                .map(|&k| TensorMeta {
                    name: k.name().into(),
                    datatype: k.datatype(),
                    shape: output_shape(k, -1, classes.len()),
                })
                .collect()
        },
    })
}

/// The class labels of a multiclass or sequence model, in its output order; empty otherwise.
fn class_labels(model: &LoadedModel) -> Vec<String> {
    match model.model.output_spec() {
        aurum_service::types::OutputSpec::Classes(classes) => classes,
        _ => Vec::new(),
    }
}

/// The shape of output `kind` for `batch` rows: `[batch, classes]` for the class
/// probabilities, `[batch]` for every other output.
pub fn output_shape(kind: OutputKind, batch: i64, classes: usize) -> Vec<i64> {
    match kind {
        OutputKind::Probabilities => vec![batch, classes as i64],
        _ => vec![batch],
    }
}

/// One entry of the repository index.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexEntry {
    pub name: String,
    pub version: String,
    pub state: &'static str,
    pub reason: String,
}

/// Every model version: READY when its artifact verifies, UNAVAILABLE with the reason
/// otherwise (archived, or an artifact that is missing or fails its SHA-256 check).
pub async fn repository_index(
    platform: &Platform,
    ready_only: bool,
) -> Result<Vec<IndexEntry>, ServiceError> {
    let mut out = Vec::new();
    for model in platform.list_models().await? {
        for v in platform.list_versions(&model.name).await? {
            let (state, reason) = match platform.version_state(&v).await? {
                VersionState::Ready => ("READY", String::new()),
                VersionState::Archived => ("UNAVAILABLE", "archived".into()),
                VersionState::Failed(reason) => ("UNAVAILABLE", reason),
            };
            if ready_only && state != "READY" {
                continue;
            }
            out.push(IndexEntry {
                name: model.name.clone(),
                version: v.version.to_string(),
                state,
                reason,
            });
        }
    }
    Ok(out)
}

/// Whether the addressed version can answer: `Ok(None)` when ready, `Ok(Some(reason))` when it
/// exists but cannot (its artifact fails verification, or it does not load); unknown models,
/// versions and aliases are errors.
pub async fn model_ready(
    platform: &Platform,
    target: &ModelRef,
) -> Result<Option<String>, ServiceError> {
    let loaded = match platform.resolve(target).await {
        Ok(m) => m,
        Err(e) if e.class() == ErrorClass::NotFound => return Err(e),
        Err(e) => return Ok(Some(e.public_message())),
    };
    let record = platform.get_version(&loaded.name, loaded.version).await?;
    Ok(match platform.version_state(&record).await? {
        VersionState::Ready => None,
        VersionState::Archived => Some("archived".into()),
        VersionState::Failed(reason) => Some(reason),
    })
}

/// The answer of one inference call, in batch order: the columns of the outputs in `kinds`
/// (the others are empty).
#[derive(Clone, Debug)]
pub struct InferOutputs {
    pub model: String,
    pub version: u32,
    /// The outputs answered, in response order.
    pub kinds: Vec<OutputKind>,
    rows: usize,
    pub probability: Vec<f64>,
    pub label: Vec<String>,
    pub decision: Vec<String>,
    /// NaN where the model has no score.
    pub score: Vec<f64>,
    pub value: Vec<f64>,
    pub anomalous: Vec<bool>,
    /// Multiclass: every class's probability, row-major `[rows, classes.len()]`.
    pub probabilities: Vec<f64>,
    /// Multiclass: the class labels in the column order of `probabilities`.
    pub classes: Vec<String>,
}

impl InferOutputs {
    fn new(model: String, version: u32, kinds: Vec<OutputKind>, rows: usize) -> Self {
        Self {
            model,
            version,
            kinds,
            rows,
            probability: Vec::with_capacity(rows),
            label: Vec::with_capacity(rows),
            decision: Vec::with_capacity(rows),
            score: Vec::with_capacity(rows),
            value: Vec::new(),
            anomalous: Vec::new(),
            probabilities: Vec::new(),
            classes: Vec::new(),
        }
    }

    /// The shape of output `kind` in this answer.
    pub fn shape(&self, kind: OutputKind) -> Vec<i64> {
        output_shape(kind, self.rows as i64, self.classes.len())
    }

    /// The `classes` parameter of the class-probability output: the class labels as a JSON
    /// array, in column order.
    pub fn classes_parameter(&self) -> String {
        serde_json::to_string(&self.classes).unwrap_or_else(|_| "[]".into())
    }

    /// The batch size.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
}

/// Resolves the model, converts the tensors to rows and scores them through the scoring path
/// every protocol shares: [`Platform::predict`] for binary models (the decision from the
/// version's policy, cut-off and refer band), [`Platform::predict_outputs`] for the other
/// row-scoring tasks; the audit record, with its input hash over the typed rows, is the one
/// `/v1` writes for the same rows. It is written with the configured `audit.durability`: by
/// default the call returns only once the record is on disk. `requested` empty: every output
/// of the model's task.
pub async fn infer(
    platform: &Platform,
    ctx: &CallContext,
    target: &ModelRef,
    inputs: Vec<Tensor>,
    requested: &[OutputKind],
    started: Instant,
) -> Result<InferOutputs, ServiceError> {
    let model = platform.resolve_serving(ctx, target).await?;
    let who = format!("model `{}` v{}", model.name, model.version);
    let kinds = outputs_for(&who, model.task(), requested)?;
    let max = platform.config().server.max_batch_records;
    let rows = tensors_to_rows(&model, inputs, max)?;
    if model.task() != aurum_service::types::Task::Binary {
        let classes = class_labels(&model);
        let out = platform.predict_outputs(ctx, model, rows).await?;
        let mut outputs = InferOutputs::new(out.model, out.version, kinds, out.outputs.len());
        outputs.classes = classes;
        for o in out.outputs {
            match o {
                aurum_service::types::Output::Class {
                    label,
                    probabilities,
                } => {
                    if probabilities.len() != outputs.classes.len() {
                        return Err(ServiceError::Internal(format!(
                            "model `{}` v{} answered {} class probabilities for {} classes",
                            outputs.model,
                            outputs.version,
                            probabilities.len(),
                            outputs.classes.len()
                        )));
                    }
                    outputs
                        .probability
                        .push(probabilities.iter().copied().fold(0.0, f64::max));
                    outputs.probabilities.extend_from_slice(&probabilities);
                    outputs.label.push(label);
                }
                aurum_service::types::Output::Value(v) => outputs.value.push(v),
                aurum_service::types::Output::Anomaly { score, anomalous } => {
                    outputs.score.push(score);
                    outputs.anomalous.push(anomalous);
                }
                aurum_service::types::Output::Binary(p) => {
                    outputs.probability.push(p.probability);
                    outputs.label.push(p.label);
                }
            }
        }
        return Ok(outputs);
    }
    let out = platform
        .predict(
            ctx,
            model,
            rows,
            PredictOptions {
                explain: false,
                started: Some(started),
            },
        )
        .await?;
    let mut outputs = InferOutputs::new(out.model, out.version, kinds, out.records.len());
    for r in out.records {
        outputs.probability.push(r.probability);
        outputs.label.push(r.label);
        outputs.decision.push(r.decision.as_str().to_string());
        outputs.score.push(r.score.unwrap_or(f64::NAN));
    }
    Ok(outputs)
}

/// Converts the request tensors into rows aligned with the model's input schema.
pub fn tensors_to_rows(
    model: &LoadedModel,
    inputs: Vec<Tensor>,
    max_batch: usize,
) -> Result<Vec<Vec<Value>>, ServiceError> {
    let schema = model.input_schema();
    let who = format!("model `{}` v{}", model.name, model.version);
    if inputs.is_empty() {
        return Err(invalid(
            "missing_input",
            format!(
                "the request has no inputs; {who} takes one tensor per feature: {}",
                schema.names().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let matrix = inputs.len() == 1
        && inputs[0].shape.len() == 2
        && !model.feature_index.contains_key(&inputs[0].name);
    if matrix {
        let Some(tensor) = inputs.into_iter().next() else {
            return Ok(Vec::new());
        };
        return matrix_to_rows(&who, &schema.fields, tensor, max_batch);
    }

    // One tensor per feature: check names first, then shapes, then convert.
    let mut by_feature: Vec<Option<Tensor>> = vec![None; schema.len()];
    for t in inputs {
        let Some(&pos) = model.feature_index.get(&t.name) else {
            return Err(invalid(
                "unknown_input",
                format!(
                    "`{}` is not an input of {who}; its inputs are the features {}",
                    t.name,
                    schema.names().collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        if by_feature[pos].is_some() {
            return Err(invalid(
                "duplicate_input",
                format!("input `{}` appears more than once", t.name),
            ));
        }
        by_feature[pos] = Some(t);
    }
    let missing: Vec<String> = schema
        .fields
        .iter()
        .zip(&by_feature)
        .filter(|(_, t)| t.is_none())
        .map(|(f, _)| format!("{} ({})", f.name, feature_datatype(f.ty).as_str()))
        .collect();
    if !missing.is_empty() {
        return Err(invalid(
            "missing_input",
            format!(
                "{who} needs one tensor per feature; missing: {}",
                missing.join(", ")
            ),
        ));
    }
    let tensors: Vec<Tensor> = by_feature.into_iter().flatten().collect();
    let mut batch = None;
    for t in &tensors {
        let n = match t.shape.as_slice() {
            [n] | [n, 1] => *n,
            _ => {
                return Err(invalid(
                    "invalid_shape",
                    format!(
                        "input `{}` has shape {:?}; a feature tensor has shape [batch] or [batch, 1]",
                        t.name, t.shape
                    ),
                ));
            }
        };
        match batch {
            None => batch = Some((n, t.name.clone())),
            Some((b, ref first)) if b != n => {
                return Err(invalid(
                    "batch_mismatch",
                    format!(
                        "input `{}` has {n} rows but input `{first}` has {b}; every feature tensor needs the same batch size",
                        t.name
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let batch = batch.map(|(b, _)| b).unwrap_or(0);
    check_batch(batch, max_batch)?;
    let mut rows = vec![vec![Value::Null; schema.len()]; batch];
    for (pos, (field, t)) in schema.fields.iter().zip(tensors).enumerate() {
        let column = feature_column(field, t)?;
        for (row, v) in rows.iter_mut().zip(column) {
            row[pos] = v;
        }
    }
    Ok(rows)
}

fn check_batch(batch: usize, max: usize) -> Result<(), ServiceError> {
    if batch == 0 {
        return Err(invalid(
            "empty_batch",
            "the inputs hold no rows: send at least one".into(),
        ));
    }
    if batch > max {
        return Err(invalid(
            "batch_too_large",
            format!("{batch} rows is more than the limit of {max} per request"),
        ));
    }
    Ok(())
}

fn matrix_to_rows(
    who: &str,
    fields: &[Field],
    t: Tensor,
    max_batch: usize,
) -> Result<Vec<Vec<Value>>, ServiceError> {
    let non_numeric: Vec<String> = fields
        .iter()
        .filter(|f| !f.ty.is_numeric())
        .map(|f| format!("{} ({})", f.name, f.ty))
        .collect();
    if !non_numeric.is_empty() {
        return Err(invalid(
            "per_feature_tensors_required",
            format!(
                "`{}` is not a feature name, so it was read as one [batch, n_features] matrix, but {who} has non-numeric features ({}); send one tensor per feature, named as the feature (see the model metadata)",
                t.name,
                non_numeric.join(", ")
            ),
        ));
    }
    let (batch, cols) = (t.shape[0], t.shape[1]);
    if !matches!(t.datatype, DataType::Fp32 | DataType::Fp64) {
        return Err(invalid(
            "datatype_mismatch",
            format!(
                "matrix input `{}` is {}; a [batch, n_features] matrix must be FP32 or FP64",
                t.name,
                t.datatype.as_str()
            ),
        ));
    }
    if cols != fields.len() {
        return Err(invalid(
            "invalid_shape",
            format!(
                "matrix input `{}` has {cols} columns but {who} has {} features (in input-schema order: {})",
                t.name,
                fields.len(),
                fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    check_batch(batch, max_batch)?;
    let TensorData::Float(values) = t.data else {
        return Err(invalid(
            "datatype_mismatch",
            format!("matrix input `{}` must hold floating-point data", t.name),
        ));
    };
    let mut rows = Vec::with_capacity(batch);
    for (r, chunk) in values.chunks_exact(cols).enumerate() {
        let row = chunk
            .iter()
            .zip(fields)
            .map(|(&x, f)| numeric_value(f, x, || format!("{}[{r}]", t.name)))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(row);
    }
    Ok(rows)
}

/// A numeric feature's value from a float: finite, and integral for integer features. `at`
/// names the cell in an error (built only then: this runs for every cell of a batch).
fn numeric_value(f: &Field, x: f64, at: impl FnOnce() -> String) -> Result<Value, ServiceError> {
    if !x.is_finite() {
        return Err(invalid(
            "non_finite_number",
            format!(
                "{}: feature `{}` must be a finite number, got {x}",
                at(),
                f.name
            ),
        ));
    }
    match f.ty {
        ColumnType::Integer if x.fract() == 0.0 && x.abs() < 9.0e15 => Ok(Value::Integer(x as i64)),
        ColumnType::Integer => Err(invalid(
            "invalid_type",
            format!("{}: feature `{}` is an integer, got {x}", at(), f.name),
        )),
        _ => Ok(Value::Float(x)),
    }
}

/// Converts one feature tensor to its column of cells.
fn feature_column(field: &Field, t: Tensor) -> Result<Vec<Value>, ServiceError> {
    let name = t.name;
    let dt = t.datatype.as_str();
    let wrong = |expected: &str| {
        invalid(
            "datatype_mismatch",
            format!(
                "input `{name}` is a {} feature and must be {expected}, got {dt}",
                field.ty
            ),
        )
    };
    match (field.ty, t.data) {
        (ColumnType::Float | ColumnType::Integer, TensorData::Float(v)) => v
            .into_iter()
            .map(|x| numeric_value(field, x, || format!("input `{name}`")))
            .collect(),
        (ColumnType::Float, TensorData::Int(v)) => {
            Ok(v.into_iter().map(|i| Value::Float(i as f64)).collect())
        }
        (ColumnType::Float, TensorData::UInt(v)) => {
            Ok(v.into_iter().map(|u| Value::Float(u as f64)).collect())
        }
        (ColumnType::Integer, TensorData::Int(v)) => {
            Ok(v.into_iter().map(Value::Integer).collect())
        }
        (ColumnType::Integer, TensorData::UInt(v)) => v
            .into_iter()
            .map(|u| {
                i64::try_from(u).map(Value::Integer).map_err(|_| {
                    invalid(
                        "value_out_of_range",
                        format!("input `{name}`: {u} does not fit a 64-bit signed integer"),
                    )
                })
            })
            .collect(),
        // BYTES elements are cells: the dataset cell parser reads them, as it read the training
        // file ("NA" is missing in every type, "$1,200.00" is 1200, "28-Feb-97" a date).
        (_, TensorData::Bytes(v)) => v
            .into_iter()
            .map(|b| {
                let s = utf8(&name, b)?;
                parse_field_cell(&s, field).map_err(|e| match e {
                    CellError::NonFinite => invalid(
                        "non_finite_number",
                        format!(
                            "input `{name}`: feature `{}` must be a finite number, got {s:?}",
                            field.name
                        ),
                    ),
                    CellError::Invalid { .. } => invalid(
                        "invalid_type",
                        format!("input `{name}`: {s:?} is not a {} value ({e})", field.ty),
                    ),
                })
            })
            .collect(),
        (ColumnType::Float | ColumnType::Integer, TensorData::Bool(_)) => Err(wrong(
            "an integer or floating-point tensor (INT*, UINT*, FP*) or BYTES",
        )),
        (ColumnType::Boolean, TensorData::Bool(v)) => {
            Ok(v.into_iter().map(Value::Boolean).collect())
        }
        (ColumnType::Boolean, TensorData::Int(_) | TensorData::UInt(_) | TensorData::Float(_)) => {
            Err(wrong("BOOL"))
        }
        (
            ColumnType::Categorical | ColumnType::Text | ColumnType::Date | ColumnType::DateTime,
            TensorData::Bool(_) | TensorData::Int(_) | TensorData::UInt(_) | TensorData::Float(_),
        ) => Err(wrong("BYTES")),
    }
}

fn utf8(name: &str, b: Vec<u8>) -> Result<String, ServiceError> {
    String::from_utf8(b).map_err(|_| {
        invalid(
            "invalid_utf8",
            format!("input `{name}` holds an element that is not UTF-8 text"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_aliases() {
        assert_eq!(model_ref("m", None).unwrap(), ModelRef::champion("m"));
        assert_eq!(model_ref("m", Some("")).unwrap(), ModelRef::champion("m"));
        assert_eq!(
            model_ref("m", Some("3")).unwrap(),
            ModelRef::version("m", 3)
        );
        assert_eq!(
            model_ref("m", Some("challenger")).unwrap(),
            ModelRef::alias("m", "challenger")
        );
        assert!(model_ref("m", Some("99999999999")).is_err());
        assert!(model_ref("", None).is_err());
    }

    #[test]
    fn outputs_selected_in_request_order() {
        assert!(select_outputs([]).unwrap().is_empty());
        assert_eq!(select_outputs(["value"]).unwrap(), [OutputKind::Value]);
        assert_eq!(select_outputs(["label"]).unwrap(), [OutputKind::Label]);
        assert_eq!(
            select_outputs(["score", "decision"]).unwrap(),
            [OutputKind::Score, OutputKind::Decision]
        );
        assert!(select_outputs(["reasons"]).is_err());
        assert!(select_outputs(["label", "label"]).is_err());
    }
}
