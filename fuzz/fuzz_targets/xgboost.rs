//! XGBoost JSON models (`save_model("model.json")`): `TreeModel::from_xgboost_json` on arbitrary
//! bytes.
//!
//! A model that parses must also predict and explain any row without panicking, and must survive
//! the stored format: `to_bytes`, `from_bytes` and `to_bytes` again give the same bytes (a model
//! that imports but cannot be reloaded from the registry is a bug).
#![no_main]

use aurum_trees::TreeModel;
use libfuzzer_sys::fuzz_target;

fn exercise(model: &TreeModel) {
    let n = model.n_features();
    for row in [
        vec![0.0; n],
        vec![f64::NAN; n],
        vec![1e300; n],
        vec![-3.5; n],
    ] {
        let _ = model.predict(&row);
        let _ = model.contributions(&row);
    }
    if let Ok(bytes) = model.to_bytes() {
        match TreeModel::from_bytes(&bytes) {
            Ok(back) => assert_eq!(
                back.to_bytes().ok().as_deref(),
                Some(&bytes[..]),
                "a reloaded model stores different bytes"
            ),
            Err(e) => panic!("a model that parsed cannot be reloaded from its stored bytes: {e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = TreeModel::from_xgboost_json(data) {
        exercise(&model);
    }
});
