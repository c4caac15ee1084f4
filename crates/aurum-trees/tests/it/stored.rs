use aurum_trees::{TREE_MODEL_FORMAT_VERSION, TreeError, TreeModel};

use crate::read_fixture;

fn models() -> Vec<TreeModel> {
    vec![
        TreeModel::from_lightgbm_text(&read_fixture("lgb_german.txt")).unwrap(),
        TreeModel::from_lightgbm_text(&read_fixture("lgb_regression.txt")).unwrap(),
        TreeModel::from_lightgbm_text(&read_fixture("lgb_constant.txt")).unwrap(),
        TreeModel::from_xgboost_json(read_fixture("xgb_german.json").as_bytes()).unwrap(),
    ]
}

#[test]
fn stored_models_round_trip_exactly() {
    for model in models() {
        let bytes = model.to_bytes().unwrap();
        let back = TreeModel::from_bytes(&bytes).unwrap();
        assert_eq!(back, model);
        assert_eq!(back.to_bytes().unwrap(), bytes);
    }
}

#[test]
fn newer_format_versions_are_refused() {
    let bytes = models()[0].to_bytes().unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["format_version"] = 2.into();
    let err = TreeModel::from_bytes(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert_eq!(
        err,
        TreeError::UnsupportedFormatVersion {
            found: 2,
            supported: TREE_MODEL_FORMAT_VERSION
        }
    );
    assert_eq!(err.code(), "unsupported_format_version");
    assert!(!err.is_user_error());
}

#[test]
fn corrupt_stored_models_are_refused() {
    let bytes = models()[0].to_bytes().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "cycle",
            Box::new(|v| v["trees"][0]["left_child"][0] = 0.into()),
        ),
        (
            "child out of range",
            Box::new(|v| v["trees"][0]["right_child"][0] = 999.into()),
        ),
        (
            "feature out of range",
            Box::new(|v| v["trees"][0]["split_feature"][0] = 99.into()),
        ),
        (
            "unknown kind",
            Box::new(|v| v["trees"][0]["split_kind"][0] = 9.into()),
        ),
        (
            "short array",
            Box::new(|v| {
                v["trees"][0]["threshold"].as_array_mut().unwrap().pop();
            }),
        ),
        ("unknown field", Box::new(|v| v["extra"] = 1.into())),
        ("no trees", Box::new(|v| v["trees"] = serde_json::json!([]))),
        (
            "missing version",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("format_version");
            }),
        ),
    ];
    for (what, mutate) in cases {
        let mut m = v.clone();
        mutate(&mut m);
        let err = TreeModel::from_bytes(&serde_json::to_vec(&m).unwrap()).unwrap_err();
        assert_eq!(err.code(), "invalid_artifact", "{what}: {err}");
    }
    assert!(TreeModel::from_bytes(b"\xff\x00").is_err());
}
