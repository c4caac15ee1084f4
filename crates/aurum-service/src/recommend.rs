//! Recommendation: training evaluation for ranking models, and serving recommendations and
//! similar items with an audit record per answer.
//!
//! Why a holdout of its own rather than the row split other tasks use: a random row split puts
//! some of a customer's products in test while the model still sees later ones, and says nothing
//! about "what will this customer take up next". Each user's latest 20 % of interactions
//! (by the family's `time_column`) are held out instead, or, without a time column, one seeded
//! random interaction of every user who has two or more. The model fitted on the rest is
//! measured with the family's own ranking metrics at k = 10 (precision, recall, MAP, NDCG,
//! catalogue coverage, novelty) next to a popularity baseline fitted on the same rows; the
//! version then serves a model refitted on every row, so customers' latest holdings are known
//! and excluded (as a forecaster is refitted on its whole series after its backtest).
//!
//! Serving goes through [`aurum_contract::Ranker`] on the cached model ([`Platform::resolve`],
//! so aliases and versions work), and every answer is audited like a prediction: the same
//! durability ([`Platform::append_prediction`]), and an input hash over the canonical form of
//! the request (documented on [`recommend_input_sha256`]).

use std::sync::Arc;
use std::time::Instant;

use aurum_contract::{
    FitContext, FittedModel, ModelError, ModelFamily, RankQuery, Ranker, TrainingData,
};
use aurum_core::{Metrics, Params, Table, Target, Value};
use aurum_registry::audit::AuditEntry;

use crate::platform::join_error;
use crate::{CallContext, LoadedModel, Platform, ServiceError};

pub use aurum_contract::{RankFilter, RankReason, RankedItem};

/// The largest `k` a recommendation or similar-items call may ask for.
pub const MAX_K: usize = 100;
/// The cut-off of the recorded ranking metrics.
const EVAL_K: usize = 10;
/// Share of each user's latest interactions held out when the family names a time column.
const HOLDOUT_FRACTION: f64 = 0.2;

/// A recommendation request, converted from its wire form at the edge.
#[derive(Clone, Debug, Default)]
pub struct RecommendRequest {
    /// A user the model was trained on.
    pub user: Option<String>,
    /// `(field, value)` user attributes, for a user the model does not know (cold start).
    pub attributes: Vec<(String, String)>,
    pub k: usize,
    pub filter: RankFilter,
    /// Return the reasons behind each item.
    pub explain: bool,
    /// When the request started (for the recorded latency); defaults to the call time.
    pub started: Option<Instant>,
}

/// A recommendation answer.
#[derive(Clone, Debug)]
pub struct RecommendOutput {
    pub model: String,
    pub version: u32,
    pub items: Vec<RankedItem>,
    /// The algorithm that answered, or the popularity fallback for a cold-start user.
    pub source: String,
    /// Whether the answer is for a user known only by attributes.
    pub cold_start: bool,
    pub audit_seq: Option<u64>,
    pub input_sha256: String,
}

/// A similar-items answer.
#[derive(Clone, Debug)]
pub struct SimilarOutput {
    pub model: String,
    pub version: u32,
    pub item: String,
    pub items: Vec<RankedItem>,
    pub audit_seq: Option<u64>,
    pub input_sha256: String,
}

/// The ranking view of a loaded model, or a 400 `wrong_model_kind`.
fn ranker(model: &LoadedModel) -> Result<&dyn Ranker, ServiceError> {
    model.model.as_ranker().ok_or_else(|| {
        ServiceError::invalid(
            "wrong_model_kind",
            Some("model"),
            format!(
                "{} v{} is a {} model and cannot recommend",
                model.name,
                model.version,
                model.task()
            ),
        )
    })
}

/// A caller's mistake in a ranking query becomes a 400 naming the request field.
fn query_error(e: ModelError) -> ServiceError {
    match e {
        ModelError::InvalidInput {
            feature, reason, ..
        } => {
            let code = match feature.as_str() {
                "user" => "unknown_user",
                "item" | "exclude_items" => "unknown_item",
                _ => "invalid_field",
            };
            ServiceError::invalid(code, Some(&feature), reason)
        }
        other => ServiceError::Model(other),
    }
}

fn check_k(k: usize) -> Result<(), ServiceError> {
    if k == 0 || k > MAX_K {
        return Err(ServiceError::invalid(
            "invalid_field",
            Some("k"),
            format!("k must be between 1 and {MAX_K}, got {k}"),
        ));
    }
    Ok(())
}

/// The audited input hash of a recommendation: lowercase hex SHA-256 of the audit log's
/// canonical JSON (`aurum_registry::audit::canonical_json`, keys sorted) of
/// `{"user", "attributes": [[field, value], …], "k", "explain", "filters": {"exclude_held",
/// "include_categories": [[field, [values]], …], "exclude_categories": …, "exclude_items"}}`,
/// with `user` `null` when absent and lists in request order.
pub fn recommend_input_sha256(req: &RecommendRequest) -> String {
    let f = &req.filter;
    aurum_registry::audit::hash_input(&serde_json::json!({
        "user": req.user,
        "attributes": req.attributes,
        "k": req.k,
        "explain": req.explain,
        "filters": {
            "exclude_held": !f.include_held,
            "include_categories": f.include_categories,
            "exclude_categories": f.exclude_categories,
            "exclude_items": f.exclude_items,
        },
    }))
}

impl Platform {
    /// The top `k` items for a known user, or for a user known only by attributes, after the
    /// filter; audited as event `recommendation`.
    pub async fn recommend(
        &self,
        ctx: &CallContext,
        model: Arc<LoadedModel>,
        req: RecommendRequest,
    ) -> Result<RecommendOutput, ServiceError> {
        model.check_scoring()?;
        let started = req.started.unwrap_or_else(Instant::now);
        check_k(req.k)?;
        ranker(&model)?;
        if req.user.is_none() && req.attributes.is_empty() {
            return Err(ServiceError::invalid(
                "invalid_field",
                Some("user"),
                "give a `user` the model was trained on, or `attributes` for a new customer",
            ));
        }
        let input_sha256 = recommend_input_sha256(&req);
        let run = {
            let model = model.clone();
            let req = req.clone();
            move || {
                let r = ranker(&model)?;
                let answer = |q| r.recommend(q, req.k, &req.filter, req.explain);
                match &req.user {
                    Some(user) => match answer(RankQuery::User(user)) {
                        Err(ModelError::InvalidInput { feature, .. })
                            if feature == "user" && !req.attributes.is_empty() =>
                        {
                            answer(RankQuery::Attributes(&req.attributes)).map(|a| (a, true))
                        }
                        other => other.map(|a| (a, false)),
                    },
                    None => answer(RankQuery::Attributes(&req.attributes)).map(|a| (a, true)),
                }
                .map_err(query_error)
            }
        };
        // Explanations solve a small system per item: off the async workers.
        let (ranking, cold_start) = if req.explain {
            tokio::task::spawn_blocking(run)
                .await
                .map_err(join_error)??
        } else {
            run()?
        };
        let latency_us = started.elapsed().as_micros() as u64;
        let entry = AuditEntry {
            event: "recommendation".into(),
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
            model: Some(model.name.clone()),
            version: Some(model.version),
            input_sha256: Some(input_sha256.clone()),
            details: serde_json::json!({
                "k": req.k,
                "items": ranking.items.iter().map(|i| &i.item).collect::<Vec<_>>(),
                "source": ranking.source,
                "cold_start": cold_start,
                "latency_us": latency_us,
            }),
        };
        let audit_seq = self.append_prediction(entry).await?;
        metrics::counter!("aurum_recommendations_total", "model" => model.name.clone())
            .increment(1);
        Ok(RecommendOutput {
            model: model.name.clone(),
            version: model.version,
            items: ranking.items,
            source: ranking.source,
            cold_start,
            audit_seq,
            input_sha256,
        })
    }

    /// The `k` items most similar to `item`; audited as event `similar_items`.
    pub async fn similar_items(
        &self,
        ctx: &CallContext,
        model: Arc<LoadedModel>,
        item: &str,
        k: usize,
    ) -> Result<SimilarOutput, ServiceError> {
        model.check_scoring()?;
        let started = Instant::now();
        check_k(k)?;
        let items = ranker(&model)?
            .similar_items(item, k)
            .map_err(query_error)?;
        let input_sha256 =
            aurum_registry::audit::hash_input(&serde_json::json!({"item": item, "k": k}));
        let entry = AuditEntry {
            event: "similar_items".into(),
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
            model: Some(model.name.clone()),
            version: Some(model.version),
            input_sha256: Some(input_sha256.clone()),
            details: serde_json::json!({
                "k": k,
                "items": items.iter().map(|i| &i.item).collect::<Vec<_>>(),
                "latency_us": started.elapsed().as_micros() as u64,
            }),
        };
        let audit_seq = self.append_prediction(entry).await?;
        Ok(SimilarOutput {
            model: model.name.clone(),
            version: model.version,
            item: item.to_string(),
            items,
            audit_seq,
            input_sha256,
        })
    }
}

/// A user id or time cell as a grouping key.
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Str(s) => Some(s.clone()),
        other => Some(crate::canonical_value(other).to_string()),
    }
}

fn time_key(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Float(x) if x.is_finite() => Some(*x as i64),
        Value::Date(d) => Some(i64::from(chrono::Datelike::num_days_from_ce(d))),
        Value::DateTime(t) => Some(t.and_utc().timestamp()),
        _ => None,
    }
}

/// SplitMix64: a seeded, portable choice of the held-out row without a random-number crate.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The training and held-out rows of an interactions table, per user: the latest
/// `round(n · 0.2)` rows by time (ties by row order, at least one row kept in training), or one
/// seeded random row of every user with two or more rows. Returns the method's name too.
fn holdout_rows(
    table: &Table,
    user_column: &str,
    time_column: Option<&str>,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>, &'static str), ServiceError> {
    let column = |param: &str, name: &str| {
        table.column(name).ok_or_else(|| {
            ServiceError::invalid(
                "unknown_column",
                Some(param),
                format!("column `{name}` does not exist"),
            )
        })
    };
    let users = column("user_column", user_column)?;
    let times = time_column.map(|t| column("time_column", t)).transpose()?;
    let mut by_user: std::collections::BTreeMap<String, Vec<(i64, usize)>> = Default::default();
    for i in 0..table.n_rows() {
        let Some(u) = key_text(&users.data.get(i)) else {
            continue;
        };
        let t = match times {
            Some(c) => time_key(&c.data.get(i)).ok_or_else(|| {
                ServiceError::invalid(
                    "missing_date",
                    Some("time_column"),
                    format!(
                        "time column `{}` is missing or not a date, date-time or integer on data row {}",
                        c.name,
                        i + 1
                    ),
                )
            })?,
            None => 0,
        };
        by_user.entry(u).or_default().push((t, i));
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (u, mut rows) in by_user {
        let n = rows.len();
        let held: Vec<usize> = if times.is_some() {
            rows.sort_unstable();
            let k = ((n as f64 * HOLDOUT_FRACTION).round() as usize).min(n - 1);
            (n - k..n).collect()
        } else if n >= 2 {
            let h = u.bytes().fold(seed, |acc, b| splitmix(acc ^ u64::from(b)));
            vec![(h % n as u64) as usize]
        } else {
            Vec::new()
        };
        for (j, (_, row)) in rows.into_iter().enumerate() {
            if held.contains(&j) {
                test.push(row);
            } else {
                train.push(row);
            }
        }
    }
    if test.is_empty() {
        return Err(ServiceError::Model(ModelError::NotEnoughData {
            reason: "no user has enough interactions to hold any out for evaluation".into(),
        }));
    }
    train.sort_unstable();
    test.sort_unstable();
    let method = if times.is_some() {
        "latest_20_percent_per_user"
    } else {
        "leave_one_out_per_user"
    };
    Ok((train, test, method))
}

/// The job runner's ranking branch: hold out per user, fit, measure against the popularity
/// baseline, then refit on every row for serving.
pub(crate) fn fit_and_evaluate(
    family: &dyn ModelFamily,
    table: &Table,
    params: &Params,
    canonical: &serde_json::Value,
    ctx: &FitContext<'_>,
) -> Result<(Box<dyn FittedModel>, Metrics), ServiceError> {
    let (user_column, time_column) = aurum_contract::ranking_columns(canonical)?;
    ctx.progress.report("splitting", 0.0);
    let (train, test, method) =
        holdout_rows(table, &user_column, time_column.as_deref(), ctx.seed)?;
    let held_in = table.take(&train);
    let model = family.fit(&TrainingData::new(&held_in, &Target::None), params, ctx)?;
    let Some(r) = model.as_ranker() else {
        return Err(ServiceError::Internal(format!(
            "family {} is a ranking family without the ranking view",
            family.spec().name
        )));
    };
    ctx.progress.report("evaluating", 0.9);
    let mut metrics = r.evaluate(&table.take(&test), EVAL_K)?;
    metrics.insert("train_rows".into(), train.len() as f64);
    metrics.insert("test_rows".into(), test.len() as f64);
    metrics.insert(
        "holdout_latest_fraction".into(),
        if method == "latest_20_percent_per_user" {
            HOLDOUT_FRACTION
        } else {
            0.0
        },
    );
    ctx.progress.report("refitting on all rows", 0.95);
    let full = family.fit(&TrainingData::new(table, &Target::None), params, ctx)?;
    metrics.retain(|_, v| v.is_finite());
    Ok((full, metrics))
}

#[cfg(test)]
mod tests {
    use aurum_core::{Column, ColumnData};

    use super::*;

    fn table(users: &[&str], times: &[i64]) -> Table {
        Table::new(vec![
            Column {
                name: "u".into(),
                data: ColumnData::Categorical(users.iter().map(|s| Some(s.to_string())).collect()),
            },
            Column {
                name: "t".into(),
                data: ColumnData::Integer(times.iter().map(|&t| Some(t)).collect()),
            },
        ])
        .unwrap()
    }

    #[test]
    fn the_latest_fifth_of_each_user_is_held_out() {
        // a: 5 rows → the latest one; b: 1 row → kept in training.
        let t = table(&["a", "a", "a", "a", "a", "b"], &[5, 1, 9, 3, 7, 0]);
        let (train, test, method) = holdout_rows(&t, "u", Some("t"), 1).unwrap();
        assert_eq!(test, vec![2]);
        assert_eq!(train, vec![0, 1, 3, 4, 5]);
        assert_eq!(method, "latest_20_percent_per_user");
        let (train, test, _) = holdout_rows(&t, "u", None, 1).unwrap();
        assert_eq!(test.len(), 1);
        assert_eq!(train.len(), 5);
        let one = table(&["a"], &[0]);
        assert!(holdout_rows(&one, "u", None, 1).is_err());
    }

    #[test]
    fn the_input_hash_pins_the_canonical_request() {
        let req = RecommendRequest {
            user: Some("c1".into()),
            k: 3,
            ..Default::default()
        };
        let canonical = r#"{"attributes":[],"explain":false,"filters":{"exclude_categories":[],"exclude_held":true,"exclude_items":[],"include_categories":[]},"k":3,"user":"c1"}"#;
        assert_eq!(
            recommend_input_sha256(&req),
            aurum_core::sha256_hex(canonical.as_bytes())
        );
    }
}
