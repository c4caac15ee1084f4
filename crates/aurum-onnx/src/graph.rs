//! Reading an ONNX file before running it: its one input, its outputs, the operators it uses
//! (each checked against what tract implements), and the class labels a scikit-learn
//! classifier node carries. Then [`Plan::build`] turns the graph into tract's optimised plan
//! with a symbolic batch dimension, so a batch of rows runs as one tensor.

use std::sync::Arc;

use aurum_contract::ModelError;
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// Most values any one tensor of the graph (input, intermediate or output) may hold for one
/// row: the widest layer of a 224×224 image network is about 3.2 million. Checked on the
/// optimised plan's shapes before the import's trial row runs, so a graph that tiles or expands
/// a row into billions of values is refused rather than run.
pub(crate) const MAX_TENSOR_VALUES_PER_ROW: i64 = 1 << 26;

/// The element types an input may have: rows are numbers, sent as `f32` or `f64` tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Element {
    F32,
    F64,
}

/// One dimension of a declared tensor shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dim {
    Fixed(usize),
    Named(String),
    Unknown,
}

/// A graph input or output as the file declares it.
#[derive(Clone, Debug)]
pub(crate) struct Port {
    pub name: String,
    /// ONNX `TensorProto.DataType` code (1 float, 11 double, 7 int64, 8 string).
    pub elem_type: i32,
    pub shape: Option<Vec<Dim>>,
}

impl Port {
    pub fn is_float(&self) -> bool {
        matches!(self.elem_type, 1 | 11)
    }
}

/// What the import needs to know about a parsed graph.
#[derive(Debug)]
pub(crate) struct GraphInfo {
    pub proto: pb::ModelProto,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    /// `(output name, op type of the node producing it)`.
    pub producers: Vec<(String, String)>,
    /// Class labels of a classifier node (`classlabels_strings` / `classlabels_int64s`).
    pub class_labels: Option<Vec<String>>,
}

fn model_file_error(reason: impl Into<String>) -> ModelError {
    ModelError::InvalidInput {
        feature: "model file".into(),
        row: None,
        reason: reason.into(),
    }
}

/// Decodes the protobuf and checks every operator (subgraphs included) against tract's
/// operator set. An operator tract lacks is an error naming it, its node and its domain.
pub(crate) fn inspect(bytes: &[u8]) -> Result<GraphInfo, ModelError> {
    let onnx = tract_onnx::onnx();
    let proto = onnx
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| model_file_error(format!("not a readable ONNX model: {e}")))?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| model_file_error("the ONNX model has no graph"))?;
    let mut unsupported: Vec<(String, String, String)> = Vec::new();
    check_ops(graph, &onnx.op_register, &mut unsupported);
    if let Some((op, node, domain)) = unsupported.first() {
        let others: Vec<&str> = unsupported[1..]
            .iter()
            .map(|(op, _, _)| op.as_str())
            .filter(|o| o != op)
            .collect();
        let domain = if domain.is_empty() { "ai.onnx" } else { domain };
        let mut reason = format!(
            "unsupported ONNX operator `{op}` (node `{node}`, domain {domain}): aurum's ONNX \
             runtime does not implement it"
        );
        if !others.is_empty() {
            reason.push_str(&format!("; also unsupported: {}", others.join(", ")));
        }
        if op == "Scaler" {
            reason.push_str(
                "; export scikit-learn scalers as Sub and Div \
                 (skl2onnx: options={id(scaler): {'div': 'div'}})",
            );
        }
        if op == "ZipMap" {
            reason.push_str(
                "; export scikit-learn classifiers with ZipMap disabled \
                 (skl2onnx: options={id(model): {'zipmap': False}})",
            );
        }
        return Err(model_file_error(reason));
    }
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs = graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()))
        .map(port)
        .collect();
    let outputs = graph.output.iter().map(port).collect();
    let producers = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(|o| (o.clone(), n.op_type.clone())))
        .collect();
    let class_labels = graph.node.iter().find_map(class_labels);
    Ok(GraphInfo {
        inputs,
        outputs,
        producers,
        class_labels,
        proto,
    })
}

fn check_ops(
    graph: &pb::GraphProto,
    register: &tract_onnx::model::OnnxOpRegister,
    out: &mut Vec<(String, String, String)>,
) {
    for node in &graph.node {
        if !register.0.contains_key(&node.op_type) {
            out.push((node.op_type.clone(), node.name.clone(), node.domain.clone()));
        }
        for attr in &node.attribute {
            if let Some(g) = &attr.g {
                check_ops(g, register, out);
            }
            for g in &attr.graphs {
                check_ops(g, register, out);
            }
        }
    }
}

fn port(v: &pb::ValueInfoProto) -> Port {
    use pb::tensor_shape_proto::dimension::Value as D;
    use pb::type_proto::Value as T;
    let (elem_type, shape) = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(T::TensorType(t)) => (
            t.elem_type,
            t.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(D::DimValue(n)) if *n >= 0 => Dim::Fixed(*n as usize),
                        Some(D::DimParam(p)) if !p.is_empty() => Dim::Named(p.clone()),
                        _ => Dim::Unknown,
                    })
                    .collect()
            }),
        ),
        _ => (0, None),
    };
    Port {
        name: v.name.clone(),
        elem_type,
        shape,
    }
}

fn class_labels(node: &pb::NodeProto) -> Option<Vec<String>> {
    node.attribute.iter().find_map(|a| match a.name.as_str() {
        "classlabels_strings" if !a.strings.is_empty() => Some(
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        ),
        "classlabels_int64s" if !a.ints.is_empty() => {
            Some(a.ints.iter().map(|i| i.to_string()).collect())
        }
        _ => None,
    })
}

/// The optimised, runnable graph: input `[batch, row_shape...]`, one output.
#[derive(Debug)]
pub(crate) struct Plan {
    runnable: Arc<TypedRunnableModel>,
    element: Element,
    row_shape: Vec<usize>,
    /// Whether the batch dimension is fixed to 1 in the file (rows then run one at a time).
    single_row: bool,
}

impl Plan {
    /// Parses `proto`, fixes the input to `element` with shape `[N, row_shape...]` (N symbolic
    /// unless `single_row`), keeps only `output`, and optimises.
    pub fn build(
        proto: &pb::ModelProto,
        input: &str,
        element: Element,
        row_shape: &[usize],
        output: &str,
        single_row: bool,
    ) -> Result<Plan, ModelError> {
        let fail = |stage: &str, e: TractError| {
            model_file_error(format!("the ONNX graph could not be {stage}: {e:#}"))
        };
        let mut model = tract_onnx::onnx()
            .model_for_proto_model(proto)
            .map_err(|e| fail("loaded", e))?;
        let batch = model.sym("N");
        let mut shape: TVec<TDim> = TVec::new();
        if single_row {
            shape.push(1.to_dim());
        } else {
            shape.push(batch.to_dim());
        }
        shape.extend(row_shape.iter().map(|d| d.to_dim()));
        let dt = match element {
            Element::F32 => f32::datum_type(),
            Element::F64 => f64::datum_type(),
        };
        let index = model
            .input_outlets()
            .map_err(|e| fail("loaded", e))?
            .iter()
            .position(|o| model.node(o.node).name == input)
            .ok_or_else(|| ModelError::InvalidInput {
                feature: input.to_string(),
                row: None,
                reason: "the graph has no such input".into(),
            })?;
        model
            .set_input_fact(index, InferenceFact::dt_shape(dt, shape))
            .map_err(|e| fail("typed", e))?;
        let model = model
            .with_outputs_by_name([output])
            .map_err(|e| fail("typed", e))?;
        let typed = model
            .into_optimized()
            .map_err(|e| ModelError::InvalidInput {
                feature: input.to_string(),
                row: None,
                reason: format!(
                    "the graph does not accept input `{input}` with shape [batch, {}]: {e:#}",
                    row_shape
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let one_row = SymbolValues::default().with(&batch, 1);
        for node in typed.nodes() {
            for o in &node.outputs {
                // A shape that depends on the data (not only on the batch) is left to run.
                let Ok(values) = o.fact.shape.volume().eval(&one_row).to_i64() else {
                    continue;
                };
                if values > MAX_TENSOR_VALUES_PER_ROW {
                    return Err(model_file_error(format!(
                        "node `{}` ({}) makes a tensor of {values} values (shape [{}]) for one \
                         row; aurum runs graphs whose tensors hold at most \
                         {MAX_TENSOR_VALUES_PER_ROW} values a row",
                        node.name,
                        node.op.name(),
                        o.fact
                            .shape
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        let runnable = typed.into_runnable().map_err(|e| fail("planned", e))?;
        Ok(Plan {
            runnable,
            element,
            row_shape: row_shape.to_vec(),
            single_row,
        })
    }

    /// Runs `n` rows (row-major, `row_width` values each) and returns the output's values row
    /// by row (`n × width`) with the width.
    pub fn run(&self, values: &[f64], n: usize) -> Result<(Vec<f64>, usize), ModelError> {
        if n == 0 {
            return Ok((Vec::new(), 0));
        }
        if self.single_row && n > 1 {
            let width: usize = self.row_shape.iter().product();
            let mut all = Vec::new();
            let mut out_width = 0;
            for chunk in values.chunks_exact(width.max(1)) {
                let (v, w) = self.run(chunk, 1)?;
                all.extend(v);
                out_width = w;
            }
            return Ok((all, out_width));
        }
        let mut shape = Vec::with_capacity(self.row_shape.len() + 1);
        shape.push(n);
        shape.extend_from_slice(&self.row_shape);
        let tensor = match self.element {
            Element::F32 => {
                let v: Vec<f32> = values.iter().map(|x| *x as f32).collect();
                Tensor::from_shape(&shape, &v)
            }
            Element::F64 => Tensor::from_shape(&shape, values),
        }
        .map_err(run_error)?;
        let out = self
            .runnable
            .run(tvec!(tensor.into_tvalue()))
            .map_err(run_error)?;
        let first = out.first().ok_or_else(|| ModelError::Numerical {
            reason: "the ONNX graph produced no output".into(),
        })?;
        let cast = first.cast_to::<f64>().map_err(run_error)?;
        let view = cast.to_plain_array_view::<f64>().map_err(run_error)?;
        let all: Vec<f64> = view.iter().copied().collect();
        if !all.len().is_multiple_of(n) {
            return Err(ModelError::Numerical {
                reason: format!("the ONNX output has {} values for {n} rows", all.len()),
            });
        }
        let width = all.len() / n;
        Ok((all, width))
    }
}

fn run_error(e: TractError) -> ModelError {
    ModelError::Numerical {
        reason: format!("the ONNX runtime failed: {e:#}"),
    }
}
