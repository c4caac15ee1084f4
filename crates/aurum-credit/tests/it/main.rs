//! Integration tests of `aurum-credit`: one test binary, one module per concern.

mod artifact;
mod artifact_fuzz;
mod binning;
mod credit;
mod german_credit;
mod imported;
mod report;

use aurum_contract::{BinaryClassifier, FamilySpec, ModelError, TrainingData};
use aurum_core::{BinaryTarget, Params, Table, Target};
use aurum_credit::FitContext;

/// The credit families by name, as the tests address them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    Logistic,
    Scorecard,
    Gbdt,
    Lightgbm,
    Xgboost,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Logistic => "logistic",
            ModelKind::Scorecard => "scorecard",
            ModelKind::Gbdt => "gbdt",
            ModelKind::Lightgbm => "lightgbm",
            ModelKind::Xgboost => "xgboost",
        }
    }

    pub fn library(self) -> aurum_credit::imported::Library {
        match self {
            ModelKind::Xgboost => aurum_credit::imported::Library::Xgboost,
            _ => aurum_credit::imported::Library::Lightgbm,
        }
    }
}

/// A registered credit family, fitting and loading straight to the binary view.
pub struct Family(&'static str);

pub fn family(kind: ModelKind) -> Family {
    Family(kind.name())
}

fn binary(m: Box<dyn aurum_credit::FittedModel>) -> Box<dyn BinaryClassifier> {
    m.into_binary().expect("a credit family fits binary models")
}

impl Family {
    fn registered(&self) -> aurum_contract::Families {
        aurum_credit::families()
    }

    pub fn spec(&self) -> FamilySpec {
        *self.registered().get(self.0).unwrap().spec()
    }

    pub fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError> {
        self.registered().get(self.0)?.validate_params(params)
    }

    pub fn fit(
        &self,
        features: &Table,
        target: &BinaryTarget,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn BinaryClassifier>, ModelError> {
        let target = Target::Binary(target.clone());
        let families = self.registered();
        let m = families
            .get(self.0)?
            .fit(&TrainingData::new(features, &target), params, ctx)?;
        Ok(binary(m))
    }

    pub fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn BinaryClassifier>, ModelError> {
        Ok(binary(
            self.registered().get(self.0)?.load_payload(payload)?,
        ))
    }
}

/// Decodes an artifact with the credit families, to the binary view.
pub fn decode_artifact_with(
    bytes: &[u8],
) -> Result<(aurum_contract::Manifest, Box<dyn BinaryClassifier>), ModelError> {
    let (manifest, model) = aurum_contract::decode_artifact(bytes, &aurum_credit::families())?;
    Ok((manifest, binary(model)))
}
