//! The ONNX family against onnxruntime: every fixture of `scripts/onnx-fixtures/make.py` is
//! imported, scored and reloaded, and must give onnxruntime's outputs within 1e-5.

use std::path::PathBuf;

use aurum_contract::{ModelFamily, Output, Params, Task};
use aurum_core::Value;

const TOLERANCE: f64 = 1e-5;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Fixture {
    name: String,
    bytes: Vec<u8>,
    params: Params,
    rows: Vec<Vec<Value>>,
    expected: Vec<Vec<f64>>,
}

fn fixture(name: &str) -> Fixture {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join(format!("{name}.json"))).unwrap())
            .unwrap();
    let params = doc["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let floats = |v: &serde_json::Value| -> Vec<Vec<f64>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            })
            .collect()
    };
    Fixture {
        name: name.to_string(),
        bytes: std::fs::read(fixtures().join(doc["model"].as_str().unwrap())).unwrap(),
        params,
        rows: floats(&doc["rows"])
            .into_iter()
            .map(|r| r.into_iter().map(Value::Float).collect())
            .collect(),
        expected: floats(&doc["expected"]),
    }
}

/// The output values of a row in the layout of onnxruntime's output.
fn values(out: &Output) -> Vec<f64> {
    match out {
        Output::Binary(p) => vec![p.probability],
        Output::Class { probabilities, .. } => probabilities.clone(),
        Output::Value(v) => vec![*v],
        Output::Anomaly { score, .. } => vec![*score],
    }
}

fn check(f: &Fixture, family: &str, task: Task) {
    let model = aurum_onnx::ONNX.import(&f.bytes, &f.params).unwrap();
    assert_eq!(model.family(), family, "{}", f.name);
    assert_eq!(model.task(), task, "{}", f.name);
    let outputs = model.predict_rows(&f.rows).unwrap();
    let mut worst = 0.0f64;
    for (out, expected) in outputs.iter().zip(&f.expected) {
        let got = values(out);
        // A binary model serves the positive class's column: the last one of onnxruntime's.
        let expected = if task == Task::Binary {
            vec![*expected.last().unwrap()]
        } else {
            expected.clone()
        };
        assert_eq!(got.len(), expected.len(), "{}", f.name);
        for (g, e) in got.iter().zip(&expected) {
            worst = worst.max((g - e).abs());
        }
    }
    assert!(worst <= TOLERANCE, "{}: largest difference {worst}", f.name);

    // Row by row gives the batch's answers.
    for (row, out) in f.rows.iter().zip(&outputs) {
        let one = model.predict_rows(std::slice::from_ref(row)).unwrap();
        for (a, b) in values(&one[0]).iter().zip(values(out)) {
            assert!((a - b).abs() <= 1e-6, "{}: row {a} batch {b}", f.name);
        }
    }

    // Reload from the payload: bit-identical outputs.
    let family_impl = match task {
        Task::Multiclass => aurum_onnx::ONNX_MULTICLASS,
        Task::Regression => aurum_onnx::ONNX_REGRESSION,
        _ => aurum_onnx::ONNX,
    };
    let reloaded = family_impl.load_payload(&model.payload().unwrap()).unwrap();
    assert_eq!(reloaded.params(), model.params(), "{}", f.name);
    assert_eq!(
        reloaded.predict_rows(&f.rows).unwrap(),
        outputs,
        "{}",
        f.name
    );
}

#[test]
fn pytorch_mlp_matches_onnxruntime() {
    check(&fixture("mlp_binary"), "onnx", Task::Binary);
}

#[test]
fn pytorch_lstm_matches_onnxruntime() {
    let f = fixture("lstm_regression");
    check(&f, "onnx_regression", Task::Regression);
    // [batch, 8, 2] flattened: 16 features named f0..f15.
    let model = aurum_onnx::ONNX.import(&f.bytes, &f.params).unwrap();
    assert_eq!(model.input_schema().len(), 16);
    assert_eq!(model.input_schema().fields[15].name, "f15");
}

#[test]
fn sklearn_scaler_logistic_pipeline_matches_onnxruntime() {
    check(&fixture("sklearn_logistic"), "onnx", Task::Binary);
}

#[test]
fn sklearn_random_forest_matches_onnxruntime() {
    check(&fixture("sklearn_forest"), "onnx", Task::Binary);
}

#[test]
fn sklearn_multiclass_forest_matches_onnxruntime() {
    let f = fixture("sklearn_forest_multiclass");
    check(&f, "onnx_multiclass", Task::Multiclass);
    let model = aurum_onnx::ONNX.import(&f.bytes, &f.params).unwrap();
    assert_eq!(
        model.output_spec(),
        aurum_contract::OutputSpec::Classes(vec!["0".into(), "1".into(), "2".into()])
    );
}

#[test]
fn keras_mlp_matches_onnxruntime_when_exported() {
    // The Keras fixture exists only where TensorFlow and tf2onnx installed (see run.sh).
    if fixtures().join("keras_mlp.json").exists() {
        check(&fixture("keras_mlp"), "onnx", Task::Binary);
    }
}

#[test]
fn an_unsupported_operator_is_refused_at_import_naming_it() {
    let bytes = std::fs::read(fixtures().join("unsupported_tree_regressor.onnx")).unwrap();
    let e = aurum_onnx::ONNX.import(&bytes, &Params::new()).unwrap_err();
    assert_eq!(e.code(), "invalid_input");
    assert!(e.is_user_error());
    let text = e.to_string();
    assert!(
        text.contains("unsupported ONNX operator `TreeEnsembleRegressor`"),
        "{text}"
    );
    assert!(text.contains("ai.onnx.ml"), "{text}");

    // skl2onnx's default scaler export uses `Scaler`, which tract lacks: named, with the way out.
    let bytes = std::fs::read(fixtures().join("unsupported_sklearn_scaler.onnx")).unwrap();
    let text = aurum_onnx::ONNX
        .import(&bytes, &Params::new())
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("unsupported ONNX operator `Scaler`"),
        "{text}"
    );
    assert!(text.contains("'div': 'div'"), "{text}");
}

#[test]
fn a_wrong_input_width_is_refused_naming_the_input() {
    let f = fixture("mlp_binary");
    let mut params = Params::new();
    params.insert("features".into(), "a,b,c".into());
    let e = aurum_onnx::ONNX.import(&f.bytes, &params).unwrap_err();
    assert!(e.is_user_error());
    let text = e.to_string();
    assert!(text.contains("`features`"), "{text}");
    assert!(text.contains("takes 6 values per row"), "{text}");

    let mut params = Params::new();
    params.insert("input_shape".into(), "5".into());
    let e = aurum_onnx::ONNX.import(&f.bytes, &params).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("input `features` has shape [batch, 6]"),
        "{text}"
    );

    // At serving, a row of the wrong width is refused before the graph runs.
    let model = aurum_onnx::ONNX.import(&f.bytes, &f.params).unwrap();
    let e = model
        .predict_rows(&[vec![Value::Float(1.0); 5]])
        .unwrap_err();
    assert_eq!(e.code(), "row_length_mismatch");
}

#[test]
fn garbage_bytes_and_bad_parameters_are_errors_not_panics() {
    for bytes in [&b""[..], b"not an onnx model", &[0xff; 64]] {
        let e = aurum_onnx::ONNX.import(bytes, &Params::new()).unwrap_err();
        assert!(e.is_user_error(), "{e}");
    }
    let f = fixture("sklearn_forest");
    for (k, v, needle) in [
        ("labels", "yes,no", "the model's two classes"),
        ("task", "regression", "task"),
        ("threshold", "1.5", "threshold"),
        ("colour", "red", "unknown parameter"),
    ] {
        let mut params = Params::new();
        params.insert(k.into(), v.into());
        let e = aurum_onnx::ONNX.import(&f.bytes, &params).unwrap_err();
        assert!(e.to_string().contains(needle), "{k}: {e}");
    }
    let e = aurum_onnx::ONNX.load_payload(b"AURUMONNX\x01").unwrap_err();
    assert_eq!(e.code(), "invalid_artifact");
}

#[test]
fn binary_models_decide_and_explain_through_the_credit_path() {
    let f = fixture("sklearn_logistic");
    let model = aurum_onnx::ONNX.import(&f.bytes, &f.params).unwrap();
    let b = model.as_binary().unwrap();
    assert_eq!(b.labels(), ("1", "0"));
    let batch = b.assess_batch(&f.rows, true).unwrap();
    let mut adverse = 0;
    for (row, a) in f.rows.iter().zip(&batch) {
        let one = b.assess(row, true).unwrap();
        assert!((one.decision.pd - a.decision.pd).abs() <= 1e-6);
        assert_eq!(one.decision.decision, a.decision.decision);
        let e = a.explanation.as_ref().unwrap();
        assert_eq!(e.space, "log_odds");
        assert_eq!(e.contributions.len(), 6);
        // The explanation is the occlusion difference: explain() gives the same.
        let direct = b.explain(row).unwrap();
        assert!((direct.base_value - e.base_value).abs() <= 1e-6);
        if a.decision.decision != aurum_contract::policy::Decision::Approve {
            adverse += 1;
            assert!(!a.decision.reasons.is_empty());
        }
    }
    // A lower threshold declines some of these applicants, with reasons.
    let mut params = f.params.clone();
    params.insert("threshold".into(), "0.2".into());
    let strict = aurum_onnx::ONNX.import(&f.bytes, &params).unwrap();
    let declined = strict
        .as_binary()
        .unwrap()
        .assess_batch(&f.rows, false)
        .unwrap()
        .into_iter()
        .filter(|a| !a.decision.reasons.is_empty())
        .count();
    assert!(declined + adverse > 0, "no adverse decisions to check");
}

/// A float port of shape `[N, dims…]` (`N` the dynamic batch; a `None` dimension unknown).
fn float_port(
    name: &str,
    dims: Vec<Option<tract_onnx::pb::tensor_shape_proto::dimension::Value>>,
) -> tract_onnx::pb::ValueInfoProto {
    use tract_onnx::pb;
    use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
    let batch = Some(dimension::Value::DimParam("N".into()));
    let dim = std::iter::once(batch)
        .chain(dims)
        .map(|value| Dimension {
            denotation: String::new(),
            value,
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            denotation: String::new(),
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
        }),
        doc_string: String::new(),
    }
}

/// The bytes of an opset-13 model of one graph.
fn model_bytes(
    node: Vec<tract_onnx::pb::NodeProto>,
    initializer: Vec<tract_onnx::pb::TensorProto>,
    input: tract_onnx::pb::ValueInfoProto,
    output: tract_onnx::pb::ValueInfoProto,
) -> Vec<u8> {
    use prost::Message;
    use tract_onnx::pb;
    pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            name: "g".into(),
            node,
            initializer,
            input: vec![input],
            output: vec![output],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// An ONNX file (Identity, one float input and output) whose input rows have `dims` after a
/// dynamic batch dimension: a `Some(n)` is a fixed size, `None` a named (dynamic) one.
fn identity_graph(dims: &[Option<i64>]) -> Vec<u8> {
    use tract_onnx::pb;
    use tract_onnx::pb::tensor_shape_proto::dimension;
    let shape: Vec<_> = dims
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Some(match d {
                Some(n) => dimension::Value::DimValue(*n),
                None => dimension::Value::DimParam(format!("d{i}")),
            })
        })
        .collect();
    let node = pb::NodeProto {
        op_type: "Identity".into(),
        input: vec!["X".into()],
        output: vec!["Y".into()],
        ..Default::default()
    };
    model_bytes(
        vec![node],
        Vec::new(),
        float_port("X", shape.clone()),
        float_port("Y", shape),
    )
}

/// A declared or requested row of two billion values is refused before anything is sized by
/// it (it aborted the process allocating 48 GB); a small graph of the same form imports.
#[test]
fn a_huge_row_shape_is_refused_before_any_allocation() {
    let ok = aurum_onnx::ONNX
        .import(&identity_graph(&[Some(2)]), &identity_params())
        .unwrap();
    assert_eq!(ok.input_schema().len(), 2);

    let e = aurum_onnx::ONNX
        .import(&identity_graph(&[Some(2_000_000_000)]), &Params::new())
        .unwrap_err();
    assert!(e.is_user_error(), "{e}");
    assert!(e.to_string().contains("262144"), "{e}");

    let mut params = Params::new();
    params.insert("input_shape".into(), "2000000000".into());
    let e = aurum_onnx::ONNX
        .import(&identity_graph(&[None]), &params)
        .unwrap_err();
    assert!(e.is_user_error(), "{e}");
    assert!(e.to_string().contains("input_shape"), "{e}");
    // Dimensions whose product overflows are refused the same way.
    params.insert(
        "input_shape".into(),
        "4294967296,4294967296,4294967296".into(),
    );
    let e = aurum_onnx::ONNX
        .import(&identity_graph(&[None, None, None]), &params)
        .unwrap_err();
    assert!(e.to_string().contains("input_shape"), "{e}");
}

/// Import parameters under which the identity graph passes the import's probe: its baseline
/// row is two class probabilities.
fn identity_params() -> Params {
    let mut params = Params::new();
    params.insert("baseline".into(), "0.25,0.75".into());
    params
}

/// Read as two class probabilities, the identity graph gives -3 for a row with -3 in it, or two
/// values in [0, 1] that do not sum to 1: the version is wrong, not the request, and the error
/// names its output (it was a generic `numerical_failure` "internal error").
#[test]
fn a_binary_output_that_is_not_probabilities_is_model_output_invalid() {
    let model = aurum_onnx::ONNX
        .import(&identity_graph(&[Some(2)]), &identity_params())
        .unwrap();
    let b = model
        .as_binary()
        .expect("two float outputs are read as a binary classifier");
    let ok = b
        .predict(&[vec![Value::Float(0.4), Value::Float(0.6)]])
        .unwrap();
    assert!((ok[0].probability - 0.6).abs() < 1e-6);
    for row in [
        vec![Value::Float(5.0), Value::Float(-3.0)],
        vec![Value::Float(0.5), Value::Float(0.9)],
    ] {
        for e in [
            b.assess_batch(std::slice::from_ref(&row), false)
                .unwrap_err(),
            b.predict(std::slice::from_ref(&row)).unwrap_err(),
            model.predict_rows(std::slice::from_ref(&row)).unwrap_err(),
        ] {
            assert_eq!(e.code(), "model_output_invalid", "{e}");
            assert!(!e.is_user_error());
            assert!(e.to_string().contains("output `Y`"), "{e}");
        }
    }
    // Explanations run their occluded rows through the same check.
    let e = b
        .explain(&[Value::Float(0.5), Value::Float(0.9)])
        .unwrap_err();
    assert_eq!(e.code(), "model_output_invalid", "{e}");
}

/// The import runs a binary model's baseline row as a probe: an output that gives no
/// probabilities for it is refused at import, as the uploader's error naming the output,
/// instead of failing every prediction later. A reload of a stored version skips the probe.
#[test]
fn a_binary_output_that_is_not_probabilities_is_refused_at_import() {
    let graph = identity_graph(&[Some(2)]);
    // Zeros (the default baseline) sum to 0.
    let e = aurum_onnx::ONNX.import(&graph, &Params::new()).unwrap_err();
    assert_eq!(e.code(), "invalid_input", "{e}");
    assert!(e.is_user_error(), "{e}");
    assert!(e.to_string().contains("output `Y`"), "{e}");
    // A value outside [0, 1].
    let mut params = Params::new();
    params.insert("baseline".into(), "2,-1".into());
    let e = aurum_onnx::ONNX.import(&graph, &params).unwrap_err();
    assert!(e.is_user_error(), "{e}");
    assert!(e.to_string().contains("output `Y`"), "{e}");
    assert!(e.to_string().contains("-1"), "{e}");
    // A one-column graph forced to binary whose value at the baseline is no probability.
    let mut params = Params::new();
    params.insert("task".into(), "binary".into());
    params.insert("baseline".into(), "3".into());
    let e = aurum_onnx::ONNX
        .import(&identity_graph(&[Some(1)]), &params)
        .unwrap_err();
    assert!(e.is_user_error(), "{e}");
    assert!(e.to_string().contains("task=regression"), "{e}");
    // The same graph as a regression imports.
    params.insert("task".into(), "regression".into());
    params.remove("baseline");
    aurum_onnx::ONNX
        .import(&identity_graph(&[Some(1)]), &params)
        .unwrap();

    // A stored version still loads without the probe (its predictions fail as above).
    let model = aurum_onnx::ONNX.import(&graph, &identity_params()).unwrap();
    let payload = model.payload().unwrap();
    // MAGIC (9 bytes), version, length of the parameters' JSON, the JSON, the ONNX bytes.
    let len = u32::from_le_bytes(payload[13..17].try_into().unwrap()) as usize;
    let mut params: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&payload[17..17 + len]).unwrap();
    params.insert("baseline".into(), "0,0".into());
    let json = serde_json::to_vec(&params).unwrap();
    let mut old = payload[..13].to_vec();
    old.extend_from_slice(&(json.len() as u32).to_le_bytes());
    old.extend_from_slice(&json);
    old.extend_from_slice(&payload[17 + len..]);
    let reloaded = aurum_onnx::ONNX.load_payload(&old).unwrap();
    let e = reloaded
        .predict_rows(&[vec![Value::Float(0.5), Value::Float(0.9)]])
        .unwrap_err();
    assert_eq!(e.code(), "model_output_invalid", "{e}");
}

/// A batch of short rows against a wide model is refused row by row; the matrix is sized by
/// the values sent, not by rows × the declared width (100 000 empty rows against 262 144
/// features asked for 210 GB up front and aborted the process).
#[test]
fn short_rows_against_a_wide_model_allocate_nothing_by_the_width() {
    let model = aurum_onnx::ONNX
        .import(&identity_graph(&[Some(1 << 18)]), &Params::new())
        .unwrap();
    assert_eq!(model.input_schema().len(), 1 << 18);
    let rows = vec![Vec::new(); 100_000];
    let e = model.predict_rows(&rows).unwrap_err();
    assert_eq!(e.code(), "row_length_mismatch", "{e}");
}

/// Explanations of rows wider than one occlusion slice run in several runs and give the
/// same contributions as row-by-row occlusion computed here by hand.
#[test]
fn occlusion_in_slices_matches_occlusion_by_hand() {
    // [N, p] -> ReduceSum over the features (keepdims) -> Sigmoid: p(x) = σ(Σx).
    let p = 1100usize;
    let model = aurum_onnx::ONNX
        .import(&sum_sigmoid_graph(p as i64), &Params::new())
        .unwrap();
    assert_eq!(model.task(), Task::Binary);
    let b = model.as_binary().unwrap();
    let rows: Vec<Vec<Value>> = (0..2)
        .map(|r| {
            (0..p)
                .map(|j| Value::Float(((j * 7 + r * 3) % 11) as f64 / 100.0 - 0.05))
                .collect()
        })
        .collect();
    let logit = |q: f64| (q / (1.0 - q)).ln();
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    let assessed = b.assess_batch(&rows, true).unwrap();
    for (row, a) in rows.iter().zip(&assessed) {
        let x: Vec<f64> = row
            .iter()
            .map(|v| match v {
                Value::Float(f) => *f,
                _ => unreachable!(),
            })
            .collect();
        let total: f64 = x.iter().sum();
        let explanation = a.explanation.as_ref().unwrap();
        assert_eq!(explanation.contributions.len(), p);
        assert!(
            explanation.base_value.abs() < 1e-4,
            "{}",
            explanation.base_value
        );
        for c in &explanation.contributions {
            let j: usize = c.feature[1..].parse().unwrap();
            let expected = logit(sigmoid(total)) - logit(sigmoid(total - x[j]));
            assert!(
                (c.contribution - expected).abs() < 1e-3,
                "{}: {} vs {expected}",
                c.feature,
                c.contribution
            );
        }
    }
}

/// `[N, p]` float input `X` → `ReduceSum(axes=[1], keepdims=1)` → `Sigmoid` → output `Y` `[N, 1]`.
fn sum_sigmoid_graph(p: i64) -> Vec<u8> {
    use tract_onnx::pb;
    graph_2d(
        p,
        vec![
            pb::NodeProto {
                op_type: "ReduceSum".into(),
                input: vec!["X".into(), "axes".into()],
                output: vec!["S".into()],
                attribute: vec![pb::AttributeProto {
                    name: "keepdims".into(),
                    r#type: pb::attribute_proto::AttributeType::Int as i32,
                    i: 1,
                    ..Default::default()
                }],
                ..Default::default()
            },
            pb::NodeProto {
                op_type: "Sigmoid".into(),
                input: vec!["S".into()],
                output: vec!["Y".into()],
                ..Default::default()
            },
        ],
        vec![pb::TensorProto {
            name: "axes".into(),
            dims: vec![1],
            data_type: 7,
            int64_data: vec![1],
            ..Default::default()
        }],
    )
}

/// A graph of `node`s from float input `X` `[N, p]` to float output `Y` `[N, ?]` (the
/// output's width is left for the graph to say).
fn graph_2d(
    p: i64,
    node: Vec<tract_onnx::pb::NodeProto>,
    initializer: Vec<tract_onnx::pb::TensorProto>,
) -> Vec<u8> {
    use tract_onnx::pb::tensor_shape_proto::dimension;
    model_bytes(
        node,
        initializer,
        float_port("X", vec![Some(dimension::Value::DimValue(p))]),
        float_port("Y", vec![None]),
    )
}
