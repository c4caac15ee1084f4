//! Decision flows: a credit decision gating product recommendations in one call.
//!
//! A flow names a binary credit model and a ranking model (each by alias) and which products are
//! lending (item ids, and/or item categories of the recommender's catalogue). Running it scores
//! the applicant with the credit model through [`Platform::predict`] (audited as a
//! `prediction`), and asks the recommender for offers through [`Platform::recommend`] (audited
//! as a `recommendation`, same request id); unless the decision is one of `offer_lending_on`
//! (by default only `approve`), the lending products are excluded by the recommender's own
//! filter, so a declined or referred applicant is never offered credit. Definitions are
//! stored as JSON under `<data_dir>/flows/<name>.json` (written atomically, audited as
//! `flow.put`).

use std::sync::Arc;

use aurum_core::{Value, validate_name};
use serde::{Deserialize, Serialize};

use crate::models::LoadedModel;
use crate::recommend::{RecommendOutput, RecommendRequest};
use crate::{CallContext, ModelRef, Platform, PredictOptions, PredictOutput, ServiceError};

/// A stored flow definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowDefinition {
    pub credit_model: String,
    #[serde(default = "champion")]
    pub credit_alias: String,
    pub recommender: String,
    #[serde(default = "champion")]
    pub recommender_alias: String,
    /// Item categories that are lending: `(attribute, values)`.
    #[serde(default)]
    pub lending_categories: Vec<(String, Vec<String>)>,
    /// Item ids that are lending.
    #[serde(default)]
    pub lending_items: Vec<String>,
    /// Decisions that may be offered lending products.
    #[serde(default = "approve_only")]
    pub offer_lending_on: Vec<String>,
}

fn champion() -> String {
    "champion".into()
}

fn approve_only() -> Vec<String> {
    vec!["approve".into()]
}

/// The answer of one flow run.
#[derive(Debug)]
pub struct FlowOutput {
    pub credit: PredictOutput,
    pub lending_offered: bool,
    pub offers: RecommendOutput,
}

impl Platform {
    fn flow_path(&self, name: &str) -> std::path::PathBuf {
        self.data_dir().join("flows").join(format!("{name}.json"))
    }

    /// Creates or replaces a flow after checking that both models exist with the right tasks.
    pub async fn put_flow(
        &self,
        ctx: &CallContext,
        name: &str,
        def: FlowDefinition,
    ) -> Result<FlowDefinition, ServiceError> {
        validate_name(name)
            .map_err(|e| ServiceError::invalid("invalid_name", Some("name"), e.to_string()))?;
        if def.lending_categories.is_empty() && def.lending_items.is_empty() {
            return Err(ServiceError::invalid(
                "invalid_field",
                Some("lending_items"),
                "name the lending products: `lending_items` and/or `lending_categories`",
            ));
        }
        for (i, d) in def.offer_lending_on.iter().enumerate() {
            if !matches!(d.as_str(), "approve" | "refer" | "decline") {
                return Err(ServiceError::invalid(
                    "invalid_field",
                    Some(&format!("offer_lending_on[{i}]")),
                    format!("`{d}` is not a decision (approve, refer or decline)"),
                ));
            }
        }
        let credit = self
            .resolve(&ModelRef::alias(&def.credit_model, &def.credit_alias))
            .await?;
        credit.binary().map_err(|_| {
            ServiceError::invalid(
                "wrong_model_kind",
                Some("credit_model"),
                format!("`{}` is not a binary (credit) model", def.credit_model),
            )
        })?;
        let reco = self
            .resolve(&ModelRef::alias(&def.recommender, &def.recommender_alias))
            .await?;
        let Some(ranker) = reco.model.as_ranker() else {
            return Err(ServiceError::invalid(
                "wrong_model_kind",
                Some("recommender"),
                format!("`{}` is not a ranking model", def.recommender),
            ));
        };
        check_lending(ranker, &def)?;
        let (this, ctx, name, stored) = (self.clone(), ctx.clone(), name.to_string(), def.clone());
        self.detached(async move {
            let path = this.flow_path(&name);
            let bytes = serde_json::to_vec_pretty(&stored).map_err(crate::platform::internal)?;
            write_atomic(&path, &bytes).map_err(crate::platform::internal)?;
            this.audit(
                &ctx,
                "flow.put",
                None,
                serde_json::json!({"flow": name, "definition": stored}),
            )
            .await
        })
        .await?;
        Ok(def)
    }

    /// A stored flow, or 404 `flow_not_found`.
    pub async fn get_flow(&self, name: &str) -> Result<FlowDefinition, ServiceError> {
        let not_found = || ServiceError::NotFound {
            resource: "flow",
            name: name.to_string(),
        };
        if validate_name(name).is_err() {
            return Err(not_found());
        }
        let text = match fs_err::read_to_string(self.flow_path(name)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) => return Err(crate::platform::internal(e)),
        };
        serde_json::from_str(&text).map_err(crate::platform::internal)
    }

    /// Runs a flow for one applicant (`row`, aligned to `credit`'s input schema).
    pub async fn run_flow(
        &self,
        ctx: &CallContext,
        flow: &FlowDefinition,
        credit: Arc<LoadedModel>,
        row: Vec<Value>,
        mut offers: RecommendRequest,
    ) -> Result<FlowOutput, ServiceError> {
        let decision = self
            .predict(ctx, credit, vec![row], PredictOptions::default())
            .await?;
        let lending_offered = decision.records.first().is_some_and(|r| {
            flow.offer_lending_on
                .iter()
                .any(|d| d == r.decision.as_str())
        });
        if !lending_offered {
            offers
                .filter
                .exclude_categories
                .extend(flow.lending_categories.iter().cloned());
            offers
                .filter
                .exclude_items
                .extend(flow.lending_items.iter().cloned());
            // An explicit request for lending categories cannot bring them back.
            for (field, values) in &flow.lending_categories {
                for (f, vs) in offers.filter.include_categories.iter_mut() {
                    if f == field {
                        vs.retain(|v| !values.contains(v));
                    }
                }
            }
        }
        let reco = self
            .resolve(&ModelRef::alias(&flow.recommender, &flow.recommender_alias))
            .await?;
        let offers = self.recommend(ctx, reco, offers).await?;
        Ok(FlowOutput {
            credit: decision,
            lending_offered,
            offers,
        })
    }
}

/// Every lending product a flow names exists in its recommender's catalogue: a misspelt
/// category or item would otherwise exclude nothing, and declined applicants would be offered
/// loans. Categories are compared exactly, as the recommender's filters compare them.
fn check_lending(
    ranker: &dyn aurum_contract::Ranker,
    def: &FlowDefinition,
) -> Result<(), ServiceError> {
    let fields = ranker.category_fields();
    for (field, values) in &def.lending_categories {
        let at = format!("lending_categories.{field}");
        if !fields.contains(field) {
            return Err(ServiceError::invalid(
                "invalid_field",
                Some(&at),
                if fields.is_empty() {
                    format!(
                        "`{}` has no item categories (train it with item_attributes); name lending products with `lending_items`",
                        def.recommender
                    )
                } else {
                    format!(
                        "`{field}` is not an item category of `{}`; its categories: {}",
                        def.recommender,
                        fields.join(", ")
                    )
                },
            ));
        }
        if values.is_empty() {
            return Err(ServiceError::invalid(
                "invalid_field",
                Some(&at),
                format!("`{field}` lists no values"),
            ));
        }
        for (j, value) in values.iter().enumerate() {
            let n = ranker
                .items_in_category(field, value)
                .map_err(ServiceError::Model)?;
            if n == 0 {
                return Err(ServiceError::invalid(
                    "invalid_field",
                    Some(&format!("{at}[{j}]")),
                    format!(
                        "no item of `{}` has {field} = `{value}` (values are compared exactly, case included)",
                        def.recommender
                    ),
                ));
            }
        }
    }
    for (i, item) in def.lending_items.iter().enumerate() {
        if !ranker.knows_item(item) {
            return Err(ServiceError::invalid(
                "unknown_item",
                Some(&format!("lending_items[{i}]")),
                format!("`{item}` is not an item of `{}`", def.recommender),
            ));
        }
    }
    Ok(())
}

/// Writes a small state file whole or not at all (flows, challenger settings, drift windows):
/// [`aurum_registry::atomic_file::write`], whose unique temporary names keep concurrent writers of
/// one file from tearing it.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    aurum_registry::atomic_file::write(path, bytes, aurum_registry::atomic_file::Access::Default)
}
