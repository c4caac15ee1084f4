//! ONNX import through the platform: a scikit-learn pipeline and a PyTorch LSTM are imported with
//! `format=onnx`, registered, served, and give the same outputs after a restart; an unsupported
//! operator and a wrong input width are caller errors naming the operator or input.

use std::path::PathBuf;

use aurum_contract::Output;
use aurum_core::{Params, Value};
use aurum_service::{CallContext, Config, ErrorClass, ModelRef, Platform};

fn fixture(name: &str) -> (Vec<u8>, Vec<Vec<Value>>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../aurum-onnx/tests/fixtures");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let rows = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| Value::Float(v.as_f64().unwrap()))
                .collect()
        })
        .collect();
    (
        std::fs::read(dir.join(format!("{name}.onnx"))).unwrap(),
        rows,
    )
}

async fn open(dir: &std::path::Path) -> Platform {
    Platform::open(Config {
        data_dir: dir.join("data"),
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onnx_models_import_serve_and_reload_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let platform = open(dir.path()).await;
    let ctx = CallContext::cli();

    // A binary scikit-learn pipeline, with feature names and labels passed through.
    let (bytes, rows) = fixture("sklearn_logistic");
    let mut params = Params::new();
    params.insert(
        "features".into(),
        "duration,amount,rate,residence,age,credits".into(),
    );
    params.insert("labels".into(), "1,0".into());
    params.insert("threshold".into(), "0.3".into());
    let v = platform
        .import_model_with_params(&ctx, "pd_onnx", "onnx", bytes, params, Some("champion"))
        .await
        .unwrap();
    assert_eq!(v.kind, "onnx");
    let model = platform
        .resolve(&ModelRef::champion("pd_onnx"))
        .await
        .unwrap();
    assert_eq!(model.input_schema().fields[1].name, "amount");
    let before = platform
        .predict(&ctx, model, rows.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(before.threshold, 0.3);
    assert!(before.records.iter().any(|r| !r.reasons.is_empty()));

    // A PyTorch LSTM: `onnx` finds a regression graph and registers it as `onnx_regression`.
    let (lstm, seq_rows) = fixture("lstm_regression");
    let lstm_version = platform
        .import_model_with_params(&ctx, "lstm", "onnx", lstm, Params::new(), None)
        .await
        .unwrap();
    assert_eq!(lstm_version.kind, "onnx_regression");
    let loaded = platform
        .resolve(&ModelRef::version("lstm", lstm_version.version))
        .await
        .unwrap();
    let values = platform
        .predict_outputs(&ctx, loaded, seq_rows.clone())
        .await
        .unwrap()
        .outputs;
    assert!(matches!(values[0], Output::Value(_)));

    // Caller errors, named.
    let unsupported = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../aurum-onnx/tests/fixtures/unsupported_tree_regressor.onnx"),
    )
    .unwrap();
    let e = platform
        .import_model_with_params(&ctx, "bad", "onnx", unsupported, Params::new(), None)
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::BadRequest);
    assert!(e.to_string().contains("TreeEnsembleRegressor"), "{e}");
    let (bytes, _) = fixture("mlp_binary");
    let mut params = Params::new();
    params.insert("features".into(), "a,b".into());
    let e = platform
        .import_model_with_params(&ctx, "bad", "onnx", bytes, params, None)
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::BadRequest);
    assert!(e.to_string().contains("input `features`"), "{e}");

    // Restart: the stored artifacts give the same bits.
    platform.shutdown().await;
    drop(platform);
    let platform = open(dir.path()).await;
    let model = platform
        .resolve(&ModelRef::champion("pd_onnx"))
        .await
        .unwrap();
    let after = platform
        .predict(&ctx, model, rows, Default::default())
        .await
        .unwrap();
    for (a, b) in before.records.iter().zip(&after.records) {
        assert_eq!(a.probability.to_bits(), b.probability.to_bits());
        assert_eq!(a.decision, b.decision);
        assert_eq!(a.reasons, b.reasons);
    }
    let loaded = platform
        .resolve(&ModelRef::version("lstm", lstm_version.version))
        .await
        .unwrap();
    let again = platform
        .predict_outputs(&ctx, loaded, seq_rows)
        .await
        .unwrap()
        .outputs;
    assert_eq!(again, values);
    platform.shutdown().await;
}
