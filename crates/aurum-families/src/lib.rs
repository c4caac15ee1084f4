//! The model families built into aurum.
//!
//! Why a crate of its own: this is the one place that names every family crate. The service
//! receives a [`Families`] registry and never a concrete family; adding a family is its crate
//! plus one line in [`builtin`] (see ARCHITECTURE.md, "Adding a model family").

pub use aurum_contract::Families;

/// Makes the neural forecasters (`lstm`, `gru`, from aurum-nn) available to aurum-forecast's
/// `model` strings (`model = "lstm"`, `auto+lstm+gru`) and to the loading of their saved models.
/// Idempotent; [`builtin`] calls it, and so does anything that forecasts without a registry.
pub fn register_forecasters() {
    // Fails only for a built-in forecaster name, which `lstm` and `gru` are not.
    aurum_nn::register_forecasters().expect("lstm and gru are not built-in forecaster names");
}

/// Every family this build of aurum trains, imports or serves.
pub fn builtin() -> Families {
    register_forecasters();
    Families::new()
        .with(aurum_credit::logistic::LogisticFamily)
        .with(aurum_credit::scorecard::ScorecardFamily)
        .with(aurum_credit::gbdt::GbdtFamily)
        .with(aurum_credit::imported::LIGHTGBM)
        .with(aurum_credit::imported::XGBOOST)
        .with(aurum_forecast::family::ForecastFamily)
        .with(aurum_fraud::family::IsolationForestFamily)
        .with(aurum_reco::family::POPULARITY)
        .with(aurum_reco::family::ITEM_KNN)
        .with(aurum_reco::family::ALS)
        .with(aurum_reco::family::BPR)
        .with(aurum_reco::family::CONTENT)
        .with(aurum_reco::family::HYBRID)
        .with(aurum_reco::family::RANDOM_WALK)
        .with(aurum_reco::family::EASE)
        .with(aurum_reco::family::BLEND)
        .with(aurum_fraud::gbdt_family::FRAUD_GBDT)
        .with(aurum_nn::MlpFamily)
        .with(aurum_nn::CnnFamily)
        .with(aurum_nn::SequenceFamily)
        .with(aurum_nn::FRAUD_SEQUENCE)
        .with(aurum_credit::forest::RandomForestFamily)
        .with(aurum_credit::svm::LinearSvmFamily)
        .with(aurum_onnx::ONNX)
        .with(aurum_onnx::ONNX_MULTICLASS)
        .with(aurum_onnx::ONNX_REGRESSION)
}

#[cfg(test)]
mod tests {
    use aurum_contract::Task;

    #[test]
    fn every_builtin_family_is_registered_once_with_its_task() {
        let families = super::builtin();
        assert_eq!(
            families.names(),
            [
                "logistic",
                "scorecard",
                "gbdt",
                "lightgbm",
                "xgboost",
                "forecast",
                "isolation_forest",
                "reco_popularity",
                "reco_item_knn",
                "reco_als",
                "reco_bpr",
                "reco_content",
                "reco_hybrid",
                "reco_random_walk",
                "reco_ease",
                "reco_blend",
                "fraud_gbdt",
                "mlp",
                "cnn",
                "sequence",
                "fraud_sequence",
                "random_forest",
                "linear_svm",
                "onnx",
                "onnx_multiclass",
                "onnx_regression"
            ]
        );
        for alias in ["logreg", "gbm", "gradient_boosting", "rf"] {
            assert!(families.get(alias).is_ok(), "{alias}");
        }
        assert_eq!(families.get("gbdt").unwrap().spec().task, Task::Binary);
        assert_eq!(
            families.get("forecast").unwrap().spec().task,
            Task::Forecast
        );
        assert_eq!(families.get("als").unwrap().spec().task, Task::Ranking);
        assert_eq!(families.get("mlp").unwrap().spec().task, Task::Binary);
        assert_eq!(families.get("cnn").unwrap().spec().task, Task::Multiclass);
        assert_eq!(
            families.get("sequence").unwrap().spec().task,
            Task::SequenceClassification
        );
        let e = families.get("svm").err().unwrap();
        assert_eq!(
            e.to_string(),
            "unknown model family `svm` (known families: logistic, scorecard, gbdt, lightgbm, xgboost, forecast, isolation_forest, reco_popularity, reco_item_knn, reco_als, reco_bpr, reco_content, reco_hybrid, reco_random_walk, reco_ease, reco_blend, fraud_gbdt, mlp, cnn, sequence, fraud_sequence, random_forest, linear_svm, onnx, onnx_multiclass, onnx_regression)"
        );
    }
}
