//! ONNX import: models trained elsewhere (PyTorch, TensorFlow/Keras via tf2onnx, scikit-learn via
//! skl2onnx) served behind the same [`FittedModel`] contract as native families.
//!
//! Why tract and not onnxruntime (`ort`): tract is pure Rust, so `aurum` stays one binary with
//! nothing to install beside it; `ort` loads `libonnxruntime.so` at run time, which every
//! deployment would have to ship and keep in step. The price is tract's operator coverage: a
//! graph using an operator tract lacks (`ZipMap`, `TreeEnsembleRegressor`, ...) is refused at
//! import with an error naming the operator, its node and its domain, never at serving.
//!
//! **One input, one output.** The graph has one float (or double) input of shape
//! `[batch, d1, d2, ...]`; a row of the table contract is the `d1·d2·…` values of one sample,
//! flattened row-major (an LSTM input `[batch, steps, features]` takes rows
//! `t0f0, t0f1, …, t1f0, …`). The feature columns are named by `features=a,b,c` or `f0…` by
//! default; every feature is a float column, `null` is sent to the graph as NaN. A row holds at
//! most [`MAX_ROW_VALUES`] (262 144) values, whether the file declares them or `input_shape=`
//! gives them: a larger row is refused (naming the input or `input_shape`) before anything is
//! sized by it, and batches are sized by the values sent, never by rows × a declared width. A
//! graph whose tensors would hold more than 2²⁶ values for one row (a `Tile` or `Expand` that
//! blows a row up) is refused from the plan's shapes before the import's trial row runs.
//!
//! **Task.** Read from the chosen output's width and the operator producing it, unless `task=`
//! says otherwise: two columns are the class probabilities of a binary classifier (the positive
//! class's column is served as the PD), more columns a multiclass classifier, one column a
//! regression value, or a binary probability when a `Sigmoid` produces it. The contract binds a
//! family name to one task (the artifact decoder checks it), so the families are `onnx`
//! (binary), `onnx_multiclass` and `onnx_regression`; `--format onnx` imports any of them and the
//! version is registered under the family of the task found.
//!
//! **Probabilities are checked.** A binary model's output must be probabilities: each value in
//! [0, 1] and, with two columns, each row summing to 1 (within 1e-3). The import runs the
//! baseline row as a probe and refuses an output that fails this, naming it, as the uploader's
//! error; at serving (a stored version, or a row the probe did not reach) the same check is
//! `model_output_invalid` naming the output, never a numerical (fit) failure.
//!
//! **Explanations** (binary models): one-at-a-time occlusion against a baseline row
//! (`baseline=`, zeros by default): a feature's contribution is `logit p(x) − logit p(x with that
//! feature set to its baseline value)`, and the base value is `logit p(baseline)`. Unlike TreeSHAP
//! or the logistic decomposition these do not add up to the row's log-odds unless the model is
//! additive in its inputs; they rank the features for adverse-action reasons and say which way
//! each one pushed the score. The occluded rows of an explanation run as one batch, or in
//! slices of at most a million values when the rows are wide.
//!
//! **Reload is bit-identical**: the payload keeps the original ONNX bytes and the resolved
//! parameters (input, shape, output, task, labels, baseline); loading re-plans the same graph
//! with the same shapes, so the same rows give the same bits.

mod graph;
mod model;

use aurum_contract::policy::ParamReader;
use aurum_contract::{
    FamilySpec, FitContext, FittedModel, ModelError, ModelFamily, Params, Task, TrainingData,
};

pub use model::{MAX_ROW_VALUES, OnnxModel};

/// The import parameters (all optional).
const PARAM_NAMES: &[&str] = &[
    "task",
    "input",
    "input_shape",
    "output",
    "features",
    "labels",
    "threshold",
    "baseline",
];

const BINARY_SPEC: FamilySpec = FamilySpec {
    name: "onnx",
    aliases: &[],
    task: Task::Binary,
    summary: "An ONNX model trained elsewhere (PyTorch, Keras, scikit-learn), imported and run by \
              aurum's pure-Rust ONNX runtime; `--format onnx` imports binary, multiclass and \
              regression graphs.",
    params: PARAM_NAMES,
    trainable: false,
    importable: true,
};

const MULTICLASS_SPEC: FamilySpec = FamilySpec {
    name: "onnx_multiclass",
    aliases: &[],
    task: Task::Multiclass,
    summary: "An imported ONNX multiclass classifier (class probabilities).",
    params: PARAM_NAMES,
    trainable: false,
    importable: true,
};

const REGRESSION_SPEC: FamilySpec = FamilySpec {
    name: "onnx_regression",
    aliases: &[],
    task: Task::Regression,
    summary: "An imported ONNX regression model (one continuous output).",
    params: PARAM_NAMES,
    trainable: false,
    importable: true,
};

/// The ONNX family of one task.
#[derive(Clone, Copy, Debug)]
pub struct OnnxFamily {
    spec: &'static FamilySpec,
    /// `None` for `onnx`, which infers the task; the others force theirs.
    forced: Option<Task>,
}

/// `onnx`: binary classifiers, and the entry point that imports any task.
pub const ONNX: OnnxFamily = OnnxFamily {
    spec: &BINARY_SPEC,
    forced: None,
};
/// `onnx_multiclass`.
pub const ONNX_MULTICLASS: OnnxFamily = OnnxFamily {
    spec: &MULTICLASS_SPEC,
    forced: Some(Task::Multiclass),
};
/// `onnx_regression`.
pub const ONNX_REGRESSION: OnnxFamily = OnnxFamily {
    spec: &REGRESSION_SPEC,
    forced: Some(Task::Regression),
};

/// The family name serving models of `task`.
pub(crate) fn family_name(task: Task) -> &'static str {
    match task {
        Task::Multiclass => MULTICLASS_SPEC.name,
        Task::Regression => REGRESSION_SPEC.name,
        _ => BINARY_SPEC.name,
    }
}

/// The task choices of `task=`.
pub(crate) const TASKS: &[(&str, Option<Task>)] = &[
    ("auto", None),
    ("binary", Some(Task::Binary)),
    ("multiclass", Some(Task::Multiclass)),
    ("regression", Some(Task::Regression)),
];

impl ModelFamily for OnnxFamily {
    fn spec(&self) -> &FamilySpec {
        self.spec
    }

    /// Checks the parameters' spelling; the graph decides the rest at import.
    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError> {
        let r = ParamReader::new("onnx", params, PARAM_NAMES)?;
        r.choice("task", TASKS)?;
        r.f64(
            "threshold",
            |t| t > 0.0 && t < 1.0,
            "a number strictly between 0 and 1",
        )?;
        if let Some(shape) = r.str("input_shape") {
            model::parse_shape(shape)?;
        }
        if let Some(b) = r.str("baseline") {
            model::parse_numbers("baseline", b)?;
        }
        Ok(serde_json::to_value(params).unwrap_or_default())
    }

    fn fit(
        &self,
        _data: &TrainingData<'_>,
        _params: &Params,
        _ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FittedModel>, ModelError> {
        Err(ModelError::InvalidParam {
            name: "kind".into(),
            value: self.spec.name.into(),
            expected: "a family aurum trains; bring ONNX models trained elsewhere with \
                       `aurum import --format onnx`"
                .into(),
        })
    }

    fn import(&self, bytes: &[u8], params: &Params) -> Result<Box<dyn FittedModel>, ModelError> {
        Ok(Box::new(OnnxModel::import(bytes, params, self.forced)?))
    }

    fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn FittedModel>, ModelError> {
        Ok(Box::new(OnnxModel::from_payload(payload, self.forced)?))
    }
}
