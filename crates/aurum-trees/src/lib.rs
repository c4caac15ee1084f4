//! Serve LightGBM and XGBoost models trained elsewhere: same numbers, fast, with exact
//! explanations.
//!
//! Why this crate exists: data scientists train gradient-boosted trees in Python; aurum must
//! answer with *their* model, bit for bit, without Python or the C++ libraries in the server.
//! [`TreeModel::from_lightgbm_text`] and [`TreeModel::from_xgboost_json`] read the files the
//! libraries save (untrusted input: every malformed file is an error naming the line/field or
//! JSON path, never a panic) into one flat, validated representation that:
//!
//! * decides every split exactly as the library does — LightGBM `x <= threshold` with its three
//!   missing-value types and categorical bitsets, XGBoost `(f32) x < threshold` with default
//!   directions and categorical sets (details in the `model` module);
//! * sums leaf values as the library does: LightGBM in f64 from 0, XGBoost in **f32** starting
//!   from its base score, so raw margins match the libraries' own predictions;
//! * applies the objective's link the library's way (LightGBM's f64 sigmoid with its `sigmoid:`
//!   parameter, XGBoost's f32 sigmoid);
//! * explains with exact path-dependent TreeSHAP ([`TreeModel::contributions`],
//!   [`TreeModel::contributions_batch`]), the values of LightGBM's `pred_contrib` and XGBoost's
//!   `pred_contribs`, with the same covers. Contributions add up to the raw margin; for XGBoost,
//!   to the f64 sum of its f32 leaves, which differs from XGBoost's own f32-accumulated margin by
//!   f32 rounding (about 1e-7 relative). They are computed from per-leaf tables built once per
//!   model (Fast TreeSHAP v2's idea; the `shap_tables` module proves the identity and bounds the
//!   memory), 5–10× cheaper per row than the libraries' recursion, which stays as the
//!   reference and for trees too deep to table.
//!
//! Prediction ([`TreeModel::predict_batch`]) allocates nothing and walks contiguous node arrays.
//! A model is stored as versioned JSON ([`TreeModel::to_bytes`], [`TREE_MODEL_FORMAT_VERSION`]).
//!
//! Deliberately absent: training, multiclass / multi-target models, LightGBM linear trees and
//! random-forest averaging, XGBoost DART and gblinear (all refused with
//! [`TreeError::Unsupported`]), and mapping category strings to codes (rows carry the integer
//! codes the library's predictor sees).

mod error;
mod lightgbm;
mod model;
mod shap;
mod shap_tables;
mod stored;
mod xgboost;

pub use error::TreeError;
pub use model::{Library, MAX_FEATURES, MAX_TREE_DEPTH, Objective, TreeModel};
pub use shap_tables::{MAX_TABLE_FEATURES, ShapNode, ShapTree, TABLE_BUDGET_BYTES, TreeShap};
pub use stored::TREE_MODEL_FORMAT_VERSION;

impl TreeModel {
    /// Parses a LightGBM text model (`Booster.save_model` / `model.txt`).
    pub fn from_lightgbm_text(text: &str) -> Result<TreeModel, TreeError> {
        lightgbm::parse(text)
    }

    /// Parses an XGBoost JSON model (`Booster.save_model("model.json")`).
    pub fn from_xgboost_json(bytes: &[u8]) -> Result<TreeModel, TreeError> {
        xgboost::parse(bytes)
    }
}
