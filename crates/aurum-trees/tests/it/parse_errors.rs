//! Malformed and unsupported models give errors that say where and why.

use aurum_trees::{TreeError, TreeModel};

use crate::read_fixture;

fn lgb_err(text: &str) -> TreeError {
    TreeModel::from_lightgbm_text(text).unwrap_err()
}

fn xgb_err(json: &serde_json::Value) -> TreeError {
    TreeModel::from_xgboost_json(&serde_json::to_vec(json).unwrap()).unwrap_err()
}

fn message(e: &TreeError) -> String {
    e.to_string()
}

const SMALL_LGB: &str = "tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=1
objective=binary sigmoid:1
feature_names=a b
feature_infos=[0:1] [0:1]
tree_sizes=1

Tree=0
num_leaves=3
num_cat=0
split_feature=0 1
split_gain=1 1
threshold=0.5 1.5
decision_type=2 8
left_child=-1 -2
right_child=1 -3
leaf_value=0.25 -0.5 1
leaf_weight=1 1 1
leaf_count=10 20 30
internal_value=0 0
internal_weight=1 1
internal_count=60 50
is_linear=0
shrinkage=1

Tree=1
num_leaves=1
num_cat=0
split_feature=
split_gain=
threshold=
decision_type=
left_child=
right_child=
leaf_value=0.125
leaf_weight=
leaf_count=
internal_value=
internal_weight=
internal_count=
is_linear=0
shrinkage=1


end of trees
";

#[test]
fn hand_written_lightgbm_model_follows_the_rules() {
    let m = TreeModel::from_lightgbm_text(SMALL_LGB).unwrap();
    let raw = |a: f64, b: f64| m.predict_raw(&[a, b]).unwrap();
    // Node 0: `a <= 0.5` left, MissingType::None (decision_type 2): NaN -> 0.0 -> left.
    assert_eq!(raw(0.5, 9.0), 0.25 + 0.125);
    assert_eq!(raw(f64::NAN, 9.0), 0.25 + 0.125);
    // Node 1: `b <= 1.5`, MissingType::NaN, default right (decision_type 8).
    assert_eq!(raw(1.0, 1.5), -0.5 + 0.125);
    assert_eq!(raw(1.0, 1.6), 1.0 + 0.125);
    assert_eq!(raw(1.0, f64::NAN), 1.0 + 0.125);
    let p = m.predict(&[1.0, 1.6]).unwrap();
    assert!((p - 1.0 / (1.0 + (-1.125f64).exp())).abs() < 1e-15);
    // Contributions add up.
    let phi = m.contributions(&[1.0, 1.0]).unwrap();
    assert!((phi.iter().sum::<f64>() - raw(1.0, 1.0)).abs() < 1e-12);
    // Expected value: leaf counts weight the leaves, plus the constant tree.
    let e = (10.0 / 60.0) * 0.25 + (20.0 / 60.0) * -0.5 + (30.0 / 60.0) * 1.0 + 0.125;
    assert!((m.expected_value() - e).abs() < 1e-15);
    assert!(matches!(
        m.predict_raw(&[1.0]),
        Err(TreeError::RowLength {
            expected: 2,
            got: 1
        })
    ));
    let mut out = [0.0; 2];
    assert!(matches!(
        m.predict_batch(&[1.0; 3], 2, &mut out),
        Err(TreeError::BatchShape { .. })
    ));
}

#[test]
fn lightgbm_errors_name_the_line_and_field() {
    let e = lgb_err(&SMALL_LGB.replace("threshold=0.5 1.5", "threshold=0.5 x"));
    assert_eq!(e.code(), "invalid_tree_model");
    assert!(
        message(&e).contains("line 17 (`threshold` of Tree=0)"),
        "{e}"
    );
    assert!(message(&e).contains("value 1 (`x`)"), "{e}");

    let e = lgb_err(&SMALL_LGB.replace("left_child=-1 -2", "left_child=-1"));
    assert!(message(&e).contains("`left_child` of Tree=0"), "{e}");
    assert!(message(&e).contains("expected 2 values, found 1"), "{e}");

    let e = lgb_err(&SMALL_LGB.replace("left_child=-1 -2", "left_child=-1 0"));
    assert!(message(&e).contains("Tree=0"), "{e}");
    assert!(message(&e).contains("reached twice"), "{e}");

    let e = lgb_err(&SMALL_LGB.replace("split_feature=0 1", "split_feature=0 7"));
    assert!(message(&e).contains("feature 7"), "{e}");

    let e = lgb_err(&SMALL_LGB.replace("end of trees", ""));
    assert!(message(&e).contains("end of trees"), "{e}");

    let e = lgb_err(&SMALL_LGB.replace("Tree=1", "Tree=5"));
    assert!(message(&e).contains("expected `Tree=1`"), "{e}");

    let e = lgb_err(&SMALL_LGB.replace("max_feature_idx=1", "max_feature_idx=2"));
    assert!(message(&e).contains("feature_names"), "{e}");

    let e = lgb_err("not a model");
    assert!(message(&e).contains("line 1"), "{e}");
    assert!(lgb_err("").to_string().contains("empty"));
}

#[test]
fn unsupported_lightgbm_models_say_so() {
    for (from, to, needle) in [
        ("num_class=1", "num_class=3", "multiclass"),
        (
            "objective=binary sigmoid:1",
            "objective=multiclass num_class:3",
            "multiclass",
        ),
        (
            "objective=binary sigmoid:1",
            "objective=lambdarank",
            "lambdarank",
        ),
        (
            "objective=binary sigmoid:1",
            "objective=regression sqrt",
            "sqrt",
        ),
        (
            "is_linear=0\nshrinkage=1\n\nTree=1",
            "is_linear=1\nshrinkage=1\n\nTree=1",
            "linear",
        ),
        (
            "tree_sizes=1",
            "average_output\ntree_sizes=1",
            "average_output",
        ),
    ] {
        let e = lgb_err(&SMALL_LGB.replacen(from, to, 1));
        assert_eq!(e.code(), "unsupported_tree_model", "{e}");
        assert!(message(&e).contains(needle), "{e}");
        assert!(e.is_user_error());
    }
}

fn xgb_fixture() -> serde_json::Value {
    serde_json::from_str(&read_fixture("xgb_german.json")).unwrap()
}

#[test]
fn xgboost_errors_name_the_json_path() {
    let mut v = xgb_fixture();
    v["learner"]["gradient_booster"]["model"]["trees"][3]["split_conditions"][2] = "x".into();
    let e = xgb_err(&v);
    assert!(
        message(&e).contains("learner.gradient_booster.model.trees[3].split_conditions[2]"),
        "{e}"
    );

    let mut v = xgb_fixture();
    v["learner"]["gradient_booster"]["model"]["trees"][1]["left_children"][0] = 0.into();
    let e = xgb_err(&v);
    assert!(message(&e).contains("trees[1]"), "{e}");

    let mut v = xgb_fixture();
    v["learner"]["gradient_booster"]["model"]["trees"][0]["split_indices"][0] = 99.into();
    let e = xgb_err(&v);
    assert!(message(&e).contains("feature 99"), "{e}");

    let mut v = xgb_fixture();
    v["learner"]["learner_model_param"]["base_score"] = "[1.5E0]".into();
    let e = xgb_err(&v);
    assert!(message(&e).contains("base_score"), "{e}");

    let mut v = xgb_fixture();
    v["learner"]["gradient_booster"]["model"]["trees"][0]
        .as_object_mut()
        .unwrap()
        .remove("sum_hessian");
    assert!(message(&xgb_err(&v)).contains("missing `sum_hessian`"));

    let e = TreeModel::from_xgboost_json(b"\x7bUBJ").unwrap_err();
    assert!(message(&e).contains("not valid JSON"), "{e}");
    let e = TreeModel::from_xgboost_json(b"UBJ").unwrap_err();
    assert!(message(&e).contains("UBJSON"), "{e}");
}

#[test]
fn unsupported_xgboost_models_say_so() {
    let mut v = xgb_fixture();
    v["learner"]["objective"]["name"] = "multi:softprob".into();
    assert!(message(&xgb_err(&v)).contains("multiclass"));

    let mut v = xgb_fixture();
    v["learner"]["objective"]["name"] = "rank:ndcg".into();
    assert_eq!(xgb_err(&v).code(), "unsupported_tree_model");

    let mut v = xgb_fixture();
    v["learner"]["gradient_booster"]["name"] = "dart".into();
    assert!(message(&xgb_err(&v)).contains("dart"));

    let mut v = xgb_fixture();
    v["learner"]["learner_model_param"]["num_class"] = "3".into();
    assert!(message(&xgb_err(&v)).contains("num_class=3"));
}

#[test]
fn xgboost_base_score_forms() {
    // 3.x writes "[p]", 1.x/2.x "p": both are probabilities for logistic objectives.
    let mut v = xgb_fixture();
    let a = TreeModel::from_xgboost_json(&serde_json::to_vec(&v).unwrap()).unwrap();
    let s = v["learner"]["learner_model_param"]["base_score"]
        .as_str()
        .unwrap()
        .to_string();
    v["learner"]["learner_model_param"]["base_score"] =
        s.trim_start_matches('[').trim_end_matches(']').into();
    let b = TreeModel::from_xgboost_json(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(a, b);
}
