//! The recommenders as model families on the open contract (task `ranking`), so the service's
//! one job runner trains them, the registry versions them and the model cache serves them.
//!
//! Why one family per algorithm (`reco_als`, `reco_item_knn`, …) rather than one `recommender`
//! family with an `algorithm` parameter: each algorithm has its own parameters, and a family's
//! spec lists exactly the parameters it accepts, so `GET /v1/families` and the unknown-parameter
//! error stay precise. One generic type, [`RecoFamily`], implements all nine.
//!
//! The dataset is an interactions table, one row per (user, item) event. Parameters name its
//! columns: `user_column`, `item_column`, optionally `weight_column` (counts or amounts),
//! `rating_column` with `rating_threshold` (explicit ratings: rows at or above the threshold are
//! positives), and `time_column` (date, date-time or integer period; the job runner then holds
//! out each user's latest interactions). Attributes come from the same table:
//! `item_attributes` and `user_attributes` list categorical columns (each id takes the value of
//! its last row). Item attributes drive category filters and the content and hybrid models;
//! user attributes drive cold start (hybrid, segment popularity).
//!
//! Every fitted model also keeps segment popularity counts (`segment_column`, by default the
//! first user attribute), so a customer known only by attributes gets an answer from any
//! algorithm: the model's own when it can score a new user (hybrid, popularity), else the
//! popularity of their segment, and the answer says which (`Ranking::source`).

use std::collections::BTreeMap;

use aurum_contract::{
    FamilySpec, FitContext, FittedModel, ModelError, ModelFamily, ParamReader, Params, RankFilter,
    RankQuery, RankReason, RankedItem, Ranker, Ranking, Task, TrainingData,
};
use aurum_core::{Metrics, Schema, Table, Value};
use serde::{Deserialize, Serialize};

use crate::interactions::Csr;
use crate::models::als::{Als, AlsParams};
use crate::models::blend::{Blend, BlendParams};
use crate::models::bpr::{Bpr, BprParams};
use crate::models::content::{Content, ContentParams};
use crate::models::ease::{Ease, EaseParams, MAX_ITEMS_LIMIT};
use crate::models::hybrid::{Hybrid, HybridLoss, HybridParams};
use crate::models::item_knn::{ItemKnn, ItemKnnParams, Similarity};
use crate::models::popularity::{Popularity, PopularityParams};
use crate::models::random_walk::{RandomWalk, RandomWalkParams};
use crate::recommender::{rank, top_k};
use crate::{
    AttributeRow, AttributeTable, Filter, FitControl, History, InteractionOptions,
    InteractionRecord, Interactions, NewUser, RecoError, Recommendation, Recommender, Weighting,
};

/// Version of [`RankingModel`]'s stored form.
pub const PAYLOAD_VERSION: u32 = 1;

/// Reasons kept per recommended item when explanations are asked for.
const REASONS_PER_ITEM: usize = 3;

/// The recommendation algorithms, one family each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    Popularity,
    ItemKnn,
    Als,
    Bpr,
    Content,
    Hybrid,
    RandomWalk,
    Ease,
    Blend,
}

macro_rules! params {
    ($($extra:literal),*) => {
        &[
            "user_column", "item_column", "weight_column", "rating_column", "rating_threshold",
            "time_column", "weighting", "alpha", "epsilon", "item_attributes", "user_attributes",
            "segment_column", "min_segment_users" $(, $extra)*
        ]
    };
}

const fn spec(
    name: &'static str,
    aliases: &'static [&'static str],
    summary: &'static str,
    params: &'static [&'static str],
) -> FamilySpec {
    FamilySpec {
        name,
        aliases,
        task: Task::Ranking,
        summary,
        params,
        trainable: true,
        importable: false,
    }
}

/// A recommendation family: one [`Algorithm`] on an interactions table.
#[derive(Clone, Copy, Debug)]
pub struct RecoFamily {
    spec: FamilySpec,
    algorithm: Algorithm,
}

pub const POPULARITY: RecoFamily = RecoFamily {
    spec: spec(
        "reco_popularity",
        &[],
        "Most-held products, overall or per customer segment: the baseline and the cold-start answer.",
        params!(),
    ),
    algorithm: Algorithm::Popularity,
};
pub const ITEM_KNN: RecoFamily = RecoFamily {
    spec: spec(
        "reco_item_knn",
        &["item_knn"],
        "Item-item neighbours (cosine or BM25): customers who hold X also hold Y, explained exactly.",
        params!("similarity", "neighbours"),
    ),
    algorithm: Algorithm::ItemKnn,
};
pub const ALS: RecoFamily = RecoFamily {
    spec: spec(
        "reco_als",
        &["als"],
        "Implicit-feedback matrix factorisation by alternating least squares (conjugate gradient).",
        params!(
            "factors",
            "regularization",
            "iterations",
            "cg_steps",
            "recency_half_life",
            "threads"
        ),
    ),
    algorithm: Algorithm::Als,
};
pub const BPR: RecoFamily = RecoFamily {
    spec: spec(
        "reco_bpr",
        &["bpr"],
        "Bayesian personalised ranking matrix factorisation.",
        params!("factors", "learning_rate", "regularization", "iterations"),
    ),
    algorithm: Algorithm::Bpr,
};
pub const CONTENT: RecoFamily = RecoFamily {
    spec: spec(
        "reco_content",
        &[],
        "Content-based: TF-IDF over item attributes, matched to what the customer holds.",
        params!("categorical_weight", "text_weight"),
    ),
    algorithm: Algorithm::Content,
};
pub const HYBRID: RecoFamily = RecoFamily {
    spec: spec(
        "reco_hybrid",
        &[],
        "LightFM-style factors over user and item attributes: scores customers known only by attributes.",
        params!(
            "components",
            "loss",
            "learning_rate",
            "epochs",
            "max_sampled",
            "regularization"
        ),
    ),
    algorithm: Algorithm::Hybrid,
};
pub const RANDOM_WALK: RecoFamily = RecoFamily {
    spec: spec(
        "reco_random_walk",
        &["random_walk"],
        "Random walk with restart on the customer-product graph.",
        params!("restart", "steps"),
    ),
    algorithm: Algorithm::RandomWalk,
};

pub const EASE: RecoFamily = RecoFamily {
    spec: spec(
        "reco_ease",
        &["ease"],
        "EASE closed-form item-item model (Steck 2019): the strongest ranker on catalogues up to max_items (dense item×item inverse).",
        params!(
            "regularization",
            "dropout",
            "neighbours",
            "max_items",
            "recency_half_life",
            "threads"
        ),
    ),
    algorithm: Algorithm::Ease,
};

pub const BLEND: RecoFamily = RecoFamily {
    spec: spec(
        "reco_blend",
        &["blend"],
        "EASE and ALS scores standardised per customer and mixed by ease_weight: the strongest ranker on MovieLens (catalogues up to max_items).",
        params!(
            "ease_regularization",
            "dropout",
            "neighbours",
            "max_items",
            "ease_recency_half_life",
            "factors",
            "als_regularization",
            "als_recency_half_life",
            "iterations",
            "cg_steps",
            "threads",
            "ease_weight"
        ),
    ),
    algorithm: Algorithm::Blend,
};

/// The blend's default EASE weight: the one chosen on the MovieLens validation split with
/// recency-weighted components (BENCHMARKS.md).
pub const DEFAULT_BLEND_EASE_WEIGHT: f32 = 0.55;

/// Every recommendation family, in registration order.
pub const FAMILIES: [RecoFamily; 9] = [
    POPULARITY,
    ITEM_KNN,
    ALS,
    BPR,
    CONTENT,
    HYBRID,
    RANDOM_WALK,
    EASE,
    BLEND,
];

/// The parameters every algorithm shares: which columns mean what, and how values become
/// confidences.
#[derive(Clone, Debug, PartialEq, Serialize)]
struct Common {
    user_column: String,
    item_column: String,
    weight_column: Option<String>,
    rating_column: Option<String>,
    rating_threshold: Option<f64>,
    time_column: Option<String>,
    weighting: &'static str,
    alpha: f64,
    epsilon: f64,
    item_attributes: String,
    user_attributes: String,
    segment_column: Option<String>,
    min_segment_users: usize,
}

impl Common {
    fn list(s: &str) -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    }
    fn item_attrs(&self) -> Vec<String> {
        Self::list(&self.item_attributes)
    }
    fn user_attrs(&self) -> Vec<String> {
        Self::list(&self.user_attributes)
    }
    fn options(&self) -> InteractionOptions {
        let weighting = match self.weighting {
            "binary" => Weighting::Binary,
            "log" => Weighting::Log {
                alpha: self.alpha as f32,
                epsilon: self.epsilon as f32,
            },
            _ => Weighting::Linear {
                alpha: self.alpha as f32,
            },
        };
        InteractionOptions {
            weighting,
            rating_threshold: self.rating_threshold.map(|t| t as f32),
        }
    }
}

/// Algorithm parameters, with every default filled in.
#[derive(Clone, Debug, PartialEq)]
enum Algo {
    Popularity,
    ItemKnn(ItemKnnParams),
    Als(AlsParams),
    Bpr(BprParams),
    Content(ContentParams),
    Hybrid(HybridParams),
    RandomWalk(RandomWalkParams),
    Ease(EaseParams),
    Blend(BlendParams),
}

/// The canonical parameters of one fit.
#[derive(Clone, Debug, PartialEq)]
struct Typed {
    common: Common,
    algo: Algo,
}

/// `f32` parameters written as the decimal the caller would have typed (`0.01`, not
/// `0.009999999776482582`).
fn num(x: f32) -> serde_json::Value {
    x.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

impl Typed {
    fn parse(family: &RecoFamily, params: &Params) -> Result<Self, ModelError> {
        let r = ParamReader::new(family.spec.name, params, family.spec.params)?;
        let required = |key: &str, what: &str| {
            r.str(key)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| ModelError::invalid_param(key, "", what))
        };
        let optional = |key: &str| r.str(key).filter(|s| !s.is_empty()).map(str::to_string);
        let rating_column = optional("rating_column");
        let rating_threshold = r.f64("rating_threshold", |_| true, "a number")?;
        if rating_column.is_some() != rating_threshold.is_some() {
            return Err(ModelError::invalid_param(
                if rating_column.is_some() {
                    "rating_threshold"
                } else {
                    "rating_column"
                },
                "",
                "rating_column and rating_threshold together (ratings at or above the threshold are positives)",
            ));
        }
        let weight_column = optional("weight_column");
        if weight_column.is_some() && rating_column.is_some() {
            return Err(ModelError::invalid_param(
                "weight_column",
                weight_column.as_deref().unwrap_or_default(),
                "either weight_column or rating_column, not both",
            ));
        }
        let user_attributes = r.str("user_attributes").unwrap_or("").to_string();
        let segment_column = optional("segment_column")
            .or_else(|| Common::list(&user_attributes).into_iter().next());
        if let Some(s) = &segment_column
            && !Common::list(&user_attributes).contains(s)
        {
            return Err(ModelError::invalid_param(
                "segment_column",
                s,
                "one of the user_attributes columns",
            ));
        }
        let common = Common {
            user_column: required("user_column", "the column holding user (customer) ids")?,
            item_column: required("item_column", "the column holding item (product) ids")?,
            weight_column,
            rating_column,
            rating_threshold,
            time_column: optional("time_column"),
            weighting: r
                .choice(
                    "weighting",
                    &[("binary", "binary"), ("linear", "linear"), ("log", "log")],
                )?
                .unwrap_or("linear"),
            alpha: r
                .f64("alpha", |a| (0.0..=1e6).contains(&a), "a number in 0..=1e6")?
                .unwrap_or(1.0),
            epsilon: r
                .f64("epsilon", |e| e > 0.0 && e <= 1e6, "a number in (0, 1e6]")?
                .unwrap_or(1.0),
            item_attributes: Common::list(r.str("item_attributes").unwrap_or("")).join(","),
            user_attributes: Common::list(&user_attributes).join(","),
            segment_column,
            min_segment_users: r.usize("min_segment_users", 1..=1_000_000)?.unwrap_or(20),
        };
        let f32_in = |key: &str, lo: f64, hi: f64, default: f32| {
            r.f64(
                key,
                |x| (lo..=hi).contains(&x),
                &format!("a number in {lo}..={hi}"),
            )
            .map(|v| v.map_or(default, |x| x as f32))
        };
        let algo = match family.algorithm {
            Algorithm::Popularity => Algo::Popularity,
            Algorithm::ItemKnn => {
                let d = ItemKnnParams::default();
                let similarity = match r.choice("similarity", &[("cosine", 0), ("bm25", 1)])? {
                    Some(1) => Similarity::Bm25 { k1: 1.2, b: 0.75 },
                    _ => Similarity::Cosine,
                };
                Algo::ItemKnn(ItemKnnParams {
                    similarity,
                    neighbours: r.usize("neighbours", 1..=100_000)?.unwrap_or(d.neighbours),
                })
            }
            Algorithm::Als => {
                let d = AlsParams::default();
                Algo::Als(AlsParams {
                    factors: r.usize("factors", 1..=1024)?.unwrap_or(d.factors),
                    regularization: f32_in("regularization", 0.0, 1e6, d.regularization)?,
                    iterations: r.usize("iterations", 1..=10_000)?.unwrap_or(d.iterations),
                    cg_steps: r.usize("cg_steps", 1..=1024)?.unwrap_or(d.cg_steps),
                    seed: 0,
                    threads: r.usize("threads", 0..=1024)?.unwrap_or(0),
                    recency_half_life: f32_in("recency_half_life", 0.0, 1e3, d.recency_half_life)?,
                })
            }
            Algorithm::Bpr => {
                let d = BprParams::default();
                Algo::Bpr(BprParams {
                    factors: r.usize("factors", 1..=1024)?.unwrap_or(d.factors),
                    learning_rate: f32_in("learning_rate", 1e-9, 10.0, d.learning_rate)?,
                    regularization: f32_in("regularization", 0.0, 1e3, d.regularization)?,
                    iterations: r.usize("iterations", 1..=100_000)?.unwrap_or(d.iterations),
                    seed: 0,
                })
            }
            Algorithm::Content => {
                if common.item_attributes.is_empty() {
                    return Err(ModelError::invalid_param(
                        "item_attributes",
                        "",
                        "at least one item attribute column for the content model",
                    ));
                }
                let d = ContentParams::default();
                Algo::Content(ContentParams {
                    categorical_weight: f32_in(
                        "categorical_weight",
                        0.0,
                        1e3,
                        d.categorical_weight,
                    )?,
                    text_weight: f32_in("text_weight", 0.0, 1e3, d.text_weight)?,
                })
            }
            Algorithm::Hybrid => {
                let d = HybridParams::default();
                Algo::Hybrid(HybridParams {
                    components: r.usize("components", 1..=1024)?.unwrap_or(d.components),
                    loss: r
                        .choice(
                            "loss",
                            &[("warp", HybridLoss::Warp), ("bpr", HybridLoss::Bpr)],
                        )?
                        .unwrap_or(d.loss),
                    learning_rate: f32_in("learning_rate", 1e-9, 10.0, d.learning_rate)?,
                    epochs: r.usize("epochs", 1..=100_000)?.unwrap_or(d.epochs),
                    max_sampled: r
                        .usize("max_sampled", 1..=100_000)?
                        .unwrap_or(d.max_sampled),
                    regularization: f32_in("regularization", 0.0, 1e3, d.regularization)?,
                    seed: 0,
                })
            }
            Algorithm::RandomWalk => {
                let d = RandomWalkParams::default();
                Algo::RandomWalk(RandomWalkParams {
                    restart: f32_in("restart", 1e-6, 1.0, d.restart)?,
                    steps: r.usize("steps", 1..=1000)?.unwrap_or(d.steps),
                })
            }
            Algorithm::Ease => {
                let d = EaseParams::default();
                Algo::Ease(EaseParams {
                    regularization: f32_in("regularization", 1e-3, 1e9, d.regularization)?,
                    dropout: f32_in("dropout", 0.0, 0.95, d.dropout)?,
                    neighbours: r
                        .usize("neighbours", 1..=MAX_ITEMS_LIMIT)?
                        .unwrap_or(d.neighbours),
                    max_items: r
                        .usize("max_items", 1..=MAX_ITEMS_LIMIT)?
                        .unwrap_or(d.max_items),
                    recency_half_life: f32_in("recency_half_life", 0.0, 1e3, d.recency_half_life)?,
                    threads: r.usize("threads", 0..=1024)?.unwrap_or(0),
                })
            }
            Algorithm::Blend => {
                let (de, da) = (EaseParams::default(), AlsParams::default());
                let threads = r.usize("threads", 0..=1024)?.unwrap_or(0);
                Algo::Blend(BlendParams {
                    ease: EaseParams {
                        regularization: f32_in(
                            "ease_regularization",
                            1e-3,
                            1e9,
                            de.regularization,
                        )?,
                        dropout: f32_in("dropout", 0.0, 0.95, de.dropout)?,
                        neighbours: r
                            .usize("neighbours", 1..=MAX_ITEMS_LIMIT)?
                            .unwrap_or(de.neighbours),
                        max_items: r
                            .usize("max_items", 1..=MAX_ITEMS_LIMIT)?
                            .unwrap_or(de.max_items),
                        recency_half_life: f32_in(
                            "ease_recency_half_life",
                            0.0,
                            1e3,
                            de.recency_half_life,
                        )?,
                        threads,
                    },
                    als: AlsParams {
                        factors: r.usize("factors", 1..=1024)?.unwrap_or(da.factors),
                        regularization: f32_in("als_regularization", 0.0, 1e6, da.regularization)?,
                        iterations: r.usize("iterations", 1..=10_000)?.unwrap_or(da.iterations),
                        cg_steps: r.usize("cg_steps", 1..=1024)?.unwrap_or(da.cg_steps),
                        seed: 0,
                        threads,
                        recency_half_life: f32_in(
                            "als_recency_half_life",
                            0.0,
                            1e3,
                            da.recency_half_life,
                        )?,
                    },
                    ease_weight: f32_in("ease_weight", 0.0, 1.0, DEFAULT_BLEND_EASE_WEIGHT)?,
                })
            }
        };
        Ok(Typed { common, algo })
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.common).unwrap_or_default();
        let extra = match &self.algo {
            Algo::Popularity => serde_json::json!({}),
            Algo::ItemKnn(p) => serde_json::json!({
                "similarity": match p.similarity { Similarity::Cosine => "cosine", Similarity::Bm25 { .. } => "bm25" },
                "neighbours": p.neighbours,
            }),
            Algo::Als(p) => serde_json::json!({
                "factors": p.factors, "regularization": num(p.regularization),
                "iterations": p.iterations, "cg_steps": p.cg_steps, "threads": p.threads,
                "recency_half_life": num(p.recency_half_life),
            }),
            Algo::Bpr(p) => serde_json::json!({
                "factors": p.factors, "learning_rate": num(p.learning_rate),
                "regularization": num(p.regularization), "iterations": p.iterations,
            }),
            Algo::Content(p) => serde_json::json!({
                "categorical_weight": num(p.categorical_weight), "text_weight": num(p.text_weight),
            }),
            Algo::Hybrid(p) => serde_json::json!({
                "components": p.components,
                "loss": match p.loss { HybridLoss::Warp => "warp", HybridLoss::Bpr => "bpr" },
                "learning_rate": num(p.learning_rate), "epochs": p.epochs,
                "max_sampled": p.max_sampled, "regularization": num(p.regularization),
            }),
            Algo::RandomWalk(p) => serde_json::json!({
                "restart": num(p.restart), "steps": p.steps,
            }),
            Algo::Ease(p) => serde_json::json!({
                "regularization": num(p.regularization), "dropout": num(p.dropout),
                "neighbours": p.neighbours, "max_items": p.max_items,
                "recency_half_life": num(p.recency_half_life), "threads": p.threads,
            }),
            Algo::Blend(p) => serde_json::json!({
                "ease_regularization": num(p.ease.regularization), "dropout": num(p.ease.dropout),
                "neighbours": p.ease.neighbours, "max_items": p.ease.max_items,
                "ease_recency_half_life": num(p.ease.recency_half_life),
                "als_recency_half_life": num(p.als.recency_half_life),
                "factors": p.als.factors, "als_regularization": num(p.als.regularization),
                "iterations": p.als.iterations, "cg_steps": p.als.cg_steps,
                "threads": p.ease.threads, "ease_weight": num(p.ease_weight),
            }),
        };
        if let (Some(map), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
            map.extend(extra);
        }
        v
    }
}

/// Maps a library error to the contract's, naming the field the caller can fix.
pub(crate) fn model_error(e: RecoError) -> ModelError {
    match e {
        RecoError::InvalidRecord {
            index,
            field,
            reason,
        } => ModelError::InvalidInput {
            feature: field.to_string(),
            row: Some(index),
            reason,
        },
        RecoError::NoInteractions(reason) => ModelError::NotEnoughData { reason },
        RecoError::InvalidParameter { name, reason } => ModelError::invalid_param(name, "", reason),
        RecoError::InvalidAttribute {
            table,
            index,
            field,
            reason,
        } => ModelError::InvalidInput {
            feature: format!("{table}.{field}"),
            row: Some(index),
            reason,
        },
        e @ RecoError::UnknownIds { kind, .. } => ModelError::InvalidInput {
            feature: kind.to_string(),
            row: None,
            reason: e.to_string(),
        },
        e @ RecoError::MissingTimestamp { .. } => ModelError::InvalidInput {
            feature: "time_column".into(),
            row: None,
            reason: e.to_string(),
        },
        e @ (RecoError::Mismatch(_) | RecoError::Unsupported { .. }) => ModelError::InvalidInput {
            feature: "query".into(),
            row: None,
            reason: e.to_string(),
        },
        RecoError::BadArtifact(reason) => ModelError::InvalidArtifact { reason },
        RecoError::Cancelled => ModelError::Cancelled,
        RecoError::Internal(reason) => ModelError::Numerical { reason },
    }
}

fn input(feature: impl Into<String>, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidInput {
        feature: feature.into(),
        row: None,
        reason: reason.into(),
    }
}

/// An id cell as text: strings as they are, integers in decimal, whole floats without `.0`.
fn id_text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Str(s) => Some(s),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(x) if x.fract() == 0.0 && x.abs() < 9e15 => Some((x as i64).to_string()),
        Value::Float(x) => Some(x.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Date(d) => Some(d.format("%Y-%m-%d").to_string()),
        Value::DateTime(t) => Some(t.format("%Y-%m-%dT%H:%M:%S").to_string()),
    }
}

fn column<'t>(
    table: &'t Table,
    param: &str,
    name: &str,
) -> Result<&'t aurum_core::Column, ModelError> {
    table.column(name).ok_or_else(|| {
        let names: Vec<&str> = table.columns().iter().map(|c| c.name.as_str()).collect();
        ModelError::invalid_param(
            param,
            name,
            format!("a column of the dataset ({})", names.join(", ")),
        )
    })
}

/// The interaction records of a table, one per row; a missing id, weight or time names its row.
fn records(table: &Table, c: &Common) -> Result<Vec<InteractionRecord>, ModelError> {
    let users = column(table, "user_column", &c.user_column)?;
    let items = column(table, "item_column", &c.item_column)?;
    let weight = match (&c.weight_column, &c.rating_column) {
        (Some(w), _) => Some(column(table, "weight_column", w)?),
        (None, Some(r)) => Some(column(table, "rating_column", r)?),
        (None, None) => None,
    };
    let time = match &c.time_column {
        Some(t) => Some(column(table, "time_column", t)?),
        None => None,
    };
    let missing = |col: &aurum_core::Column, row: usize, what: &str| ModelError::InvalidInput {
        feature: col.name.clone(),
        row: Some(row),
        reason: format!("missing {what}"),
    };
    (0..table.n_rows())
        .map(|i| {
            let user = id_text(users.data.get(i)).ok_or_else(|| missing(users, i, "user id"))?;
            let item = id_text(items.data.get(i)).ok_or_else(|| missing(items, i, "item id"))?;
            let mut rec = InteractionRecord::new(user, item);
            if let Some(w) = weight {
                let x = match w.data.get(i) {
                    Value::Float(x) => x,
                    Value::Integer(x) => x as f64,
                    Value::Boolean(b) => f64::from(u8::from(b)),
                    Value::Null => return Err(missing(w, i, "weight")),
                    _ => return Err(input(w.name.clone(), "weights must be numbers")),
                };
                rec = rec.weight(x as f32);
            }
            if let Some(t) = time {
                let at = match t.data.get(i) {
                    Value::Integer(x) => x,
                    Value::Float(x) => x as i64,
                    Value::Date(d) => i64::from(chrono::Datelike::num_days_from_ce(&d)),
                    Value::DateTime(d) => d.and_utc().timestamp(),
                    Value::Null => return Err(missing(t, i, "time")),
                    _ => {
                        return Err(input(
                            t.name.clone(),
                            "a time column must hold dates, date-times or integer periods",
                        ));
                    }
                };
                rec = rec.at(at);
            }
            Ok(rec)
        })
        .collect()
}

/// The attribute table of `columns`, each id taking the value of its last row.
fn attributes(
    table: &Table,
    id_column: &str,
    columns: &[String],
    users: bool,
) -> Result<Option<AttributeTable>, ModelError> {
    if columns.is_empty() {
        return Ok(None);
    }
    let param = if users {
        "user_attributes"
    } else {
        "item_attributes"
    };
    let ids = column(table, param, id_column)?;
    let cols = columns
        .iter()
        .map(|c| column(table, param, c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for i in 0..table.n_rows() {
        let Some(id) = id_text(ids.data.get(i)) else {
            continue;
        };
        let row = rows.entry(id).or_default();
        for c in &cols {
            if let Some(v) = id_text(c.data.get(i)) {
                row.insert(c.name.clone(), v);
            }
        }
    }
    let rows = rows
        .into_iter()
        .map(|(id, fields)| {
            let mut r = AttributeRow::new(id);
            for c in columns {
                if let Some(v) = fields.get(c) {
                    r = r.with(c.clone(), v.clone());
                }
            }
            r
        })
        .collect();
    let t = if users {
        AttributeTable::users(rows)
    } else {
        AttributeTable::items(rows)
    };
    t.map(Some).map_err(model_error)
}

/// Item popularity overall and per user segment: every model's answer for a customer known only
/// by attributes when the model itself cannot score one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SegmentCounts {
    field: Option<String>,
    overall: Vec<f32>,
    segments: BTreeMap<String, Vec<f32>>,
}

impl SegmentCounts {
    fn fit(data: &Interactions, users: Option<&AttributeTable>, c: &Common) -> Self {
        let n_items = data.items().len();
        let mut overall = vec![0f32; n_items];
        let mut by_segment: BTreeMap<String, (usize, Vec<f32>)> = BTreeMap::new();
        for (u, id) in data.users().ids().iter().enumerate() {
            let seg = c
                .segment_column
                .as_deref()
                .and_then(|f| users.and_then(|t| t.value(id, f)));
            let entry = seg.map(|s| {
                by_segment
                    .entry(s.to_string())
                    .or_insert_with(|| (0, vec![0f32; n_items]))
            });
            let held = data.user_items().row(u).0;
            for &i in held {
                overall[i as usize] += 1.0;
            }
            if let Some((n, counts)) = entry {
                *n += 1;
                for &i in held {
                    counts[i as usize] += 1.0;
                }
            }
        }
        let min = c.min_segment_users.max(1);
        SegmentCounts {
            field: c.segment_column.clone(),
            overall,
            segments: by_segment
                .into_iter()
                .filter(|(_, (n, _))| *n >= min)
                .map(|(s, (_, counts))| (s, counts))
                .collect(),
        }
    }

    /// Segment counts with the overall count as a tie-breaker below one segment count, and the
    /// `field=value` segment used (`None`: overall).
    fn scores(&self, attributes: &[(String, String)]) -> (Vec<f32>, Option<String>) {
        let seg = self.field.as_ref().and_then(|f| {
            attributes
                .iter()
                .find(|(k, _)| k == f)
                .and_then(|(_, v)| self.segments.get(v).map(|c| (format!("{f}={v}"), c)))
        });
        match seg {
            Some((name, counts)) => {
                let max = self.overall.iter().copied().fold(0.0, f32::max) + 1.0;
                (
                    counts
                        .iter()
                        .zip(&self.overall)
                        .map(|(s, o)| s + o / max)
                        .collect(),
                    Some(name),
                )
            }
            None => (self.overall.clone(), None),
        }
    }
}

/// A fitted model of any algorithm.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Model {
    Popularity(Box<Popularity>),
    ItemKnn(Box<ItemKnn>),
    Als(Box<Als>),
    Bpr(Box<Bpr>),
    Content(Box<Content>),
    Hybrid(Box<Hybrid>),
    RandomWalk(Box<RandomWalk>),
    Ease(Box<Ease>),
    Blend(Box<Blend>),
}

impl Model {
    fn rec(&self) -> &dyn Recommender {
        match self {
            Model::Popularity(m) => m.as_ref(),
            Model::ItemKnn(m) => m.as_ref(),
            Model::Als(m) => m.as_ref(),
            Model::Bpr(m) => m.as_ref(),
            Model::Content(m) => m.as_ref(),
            Model::Hybrid(m) => m.as_ref(),
            Model::RandomWalk(m) => m.as_ref(),
            Model::Ease(m) => m.as_ref(),
            Model::Blend(m) => m.as_ref(),
        }
    }
}

/// What is stored: everything needed to serve, plus the raw parameters (re-validated on load).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    payload_version: u32,
    algorithm: Algorithm,
    params: Params,
    schema: Schema,
    item_attributes: Option<AttributeTable>,
    user_attributes: Option<AttributeTable>,
    fallback: SegmentCounts,
    model: Model,
}

/// A fitted recommender served through [`Ranker`].
#[derive(Debug)]
pub struct RankingModel {
    family: RecoFamily,
    typed: Typed,
    stored: Stored,
}

impl RecoFamily {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn fit_model(
        &self,
        typed: &Typed,
        data: &Interactions,
        users: Option<&AttributeTable>,
        items: Option<&AttributeTable>,
        seed: u64,
        ctl: &FitControl<'_>,
    ) -> Result<Model, RecoError> {
        Ok(match &typed.algo {
            Algo::Popularity => Model::Popularity(Box::new(Popularity::fit(
                data,
                users,
                &PopularityParams {
                    segment_field: typed.common.segment_column.clone(),
                    min_segment_users: typed.common.min_segment_users,
                },
                ctl,
            )?)),
            Algo::ItemKnn(p) => Model::ItemKnn(Box::new(ItemKnn::fit(data, p, ctl)?)),
            Algo::Als(p) => Model::Als(Box::new(Als::fit(
                data,
                &AlsParams { seed, ..p.clone() },
                ctl,
            )?)),
            Algo::Bpr(p) => Model::Bpr(Box::new(Bpr::fit(
                data,
                &BprParams { seed, ..p.clone() },
                ctl,
            )?)),
            Algo::Content(p) => {
                let items = items.ok_or_else(|| {
                    RecoError::param("item_attributes", "the content model needs item attributes")
                })?;
                Model::Content(Box::new(Content::fit(data, items, p, ctl)?))
            }
            Algo::Hybrid(p) => Model::Hybrid(Box::new(Hybrid::fit(
                data,
                users,
                items,
                &HybridParams { seed, ..p.clone() },
                ctl,
            )?)),
            Algo::RandomWalk(p) => Model::RandomWalk(Box::new(RandomWalk::fit(data, p, ctl)?)),
            Algo::Ease(p) => Model::Ease(Box::new(Ease::fit(data, p, ctl)?)),
            Algo::Blend(p) => Model::Blend(Box::new(Blend::fit(
                data,
                &BlendParams {
                    als: AlsParams {
                        seed,
                        ..p.als.clone()
                    },
                    ..p.clone()
                },
                ctl,
            )?)),
        })
    }
}

impl ModelFamily for RecoFamily {
    fn spec(&self) -> &FamilySpec {
        &self.spec
    }

    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError> {
        Typed::parse(self, params).map(|t| t.to_json())
    }

    fn fit(
        &self,
        data: &TrainingData<'_>,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FittedModel>, ModelError> {
        let typed = Typed::parse(self, params)?;
        let c = &typed.common;
        let table = data.features;
        let recs = records(table, c)?;
        let interactions = Interactions::build(&recs, &c.options()).map_err(model_error)?;
        let items = attributes(table, &c.item_column, &c.item_attrs(), false)?;
        let users = attributes(table, &c.user_column, &c.user_attrs(), true)?;
        ctx.check_cancelled()?;
        let ctl = FitControl {
            progress: ctx.progress,
            cancel: Some(ctx.cancel),
        };
        let model = self
            .fit_model(
                &typed,
                &interactions,
                users.as_ref(),
                items.as_ref(),
                ctx.seed,
                &ctl,
            )
            .map_err(model_error)?;
        let fallback = SegmentCounts::fit(&interactions, users.as_ref(), c);
        let mut used: Vec<String> = [&c.weight_column, &c.rating_column, &c.time_column]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        used.extend([c.user_column.clone(), c.item_column.clone()]);
        used.extend(c.item_attrs());
        used.extend(c.user_attrs());
        let schema = Schema {
            fields: table
                .schema()
                .fields
                .into_iter()
                .filter(|f| used.contains(&f.name))
                .collect(),
        };
        Ok(Box::new(RankingModel {
            family: *self,
            stored: Stored {
                payload_version: PAYLOAD_VERSION,
                algorithm: self.algorithm,
                params: params.clone(),
                schema,
                item_attributes: items,
                user_attributes: users,
                fallback,
                model,
            },
            typed,
        }))
    }

    fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn FittedModel>, ModelError> {
        let bad = |reason: String| ModelError::InvalidArtifact { reason };
        let stored: Stored = serde_json::from_slice(payload)
            .map_err(|e| bad(format!("{} payload: {e}", self.spec.name)))?;
        if stored.payload_version != PAYLOAD_VERSION {
            return Err(bad(format!(
                "{} payload version {} is not supported (this build reads {PAYLOAD_VERSION})",
                self.spec.name, stored.payload_version
            )));
        }
        if stored.algorithm != self.algorithm {
            return Err(bad(format!(
                "payload holds a {:?} model, not {}",
                stored.algorithm, self.spec.name
            )));
        }
        let n_items = stored.model.rec().history().items.len();
        if stored.fallback.overall.len() != n_items
            || stored
                .fallback
                .segments
                .values()
                .any(|s| s.len() != n_items)
        {
            return Err(bad("popularity counts do not match the catalogue".into()));
        }
        let typed = Typed::parse(self, &stored.params)?;
        Ok(Box::new(RankingModel {
            family: *self,
            typed,
            stored,
        }))
    }
}

impl FittedModel for RankingModel {
    fn family(&self) -> &str {
        self.family.spec.name
    }

    fn task(&self) -> Task {
        Task::Ranking
    }

    fn input_schema(&self) -> &Schema {
        &self.stored.schema
    }

    fn params(&self) -> serde_json::Value {
        self.typed.to_json()
    }

    fn summary(&self) -> serde_json::Value {
        let h = self.stored.model.rec().history();
        serde_json::json!({
            "algorithm": self.stored.algorithm,
            "users": h.users.len(),
            "items": h.items.len(),
            "interactions": h.user_items.nnz(),
            "segments": self.stored.fallback.segments.len(),
        })
    }

    fn payload(&self) -> Result<Vec<u8>, ModelError> {
        serde_json::to_vec(&self.stored).map_err(|e| ModelError::Serialization {
            reason: e.to_string(),
        })
    }

    fn as_ranker(&self) -> Option<&dyn Ranker> {
        Some(self)
    }
}

fn items_out(list: Vec<Recommendation>) -> Vec<RankedItem> {
    list.into_iter()
        .map(|r| RankedItem {
            item: r.item,
            score: f64::from(r.score),
            reasons: Vec::new(),
        })
        .collect()
}

impl RankingModel {
    fn history(&self) -> &History {
        self.stored.model.rec().history()
    }

    fn filter(&self, f: &RankFilter) -> Result<Filter, ModelError> {
        let mut out = Filter::new();
        if f.include_held {
            out = out.include_held();
        }
        let fields = self.category_fields();
        let table = |kind: &str, field: &str| {
            self.stored
                .item_attributes
                .as_ref()
                .filter(|_| fields.iter().any(|x| x == field))
                .ok_or_else(|| {
                    input(
                        format!("{kind}.{field}"),
                        if fields.is_empty() {
                            "this model has no item attributes to filter on (train it with item_attributes)".to_string()
                        } else {
                            format!("unknown category field; known: {}", fields.join(", "))
                        },
                    )
                })
        };
        for (field, values) in &f.include_categories {
            let t = table("include_categories", field)?;
            let vals: Vec<&str> = values.iter().map(String::as_str).collect();
            out = out
                .include_categories(t, field, &vals)
                .map_err(model_error)?;
        }
        for (field, values) in &f.exclude_categories {
            let t = table("exclude_categories", field)?;
            let vals: Vec<&str> = values.iter().map(String::as_str).collect();
            out = out
                .exclude_categories(t, field, &vals)
                .map_err(model_error)?;
        }
        if !f.exclude_items.is_empty() {
            self.history()
                .items
                .resolve("item", &f.exclude_items)
                .map_err(|e| input("exclude_items", e.to_string()))?;
            out = out.exclude_items(&f.exclude_items);
        }
        if let Some(allow) = &f.allow {
            let allow = allow.clone();
            out = out.allow(move |id| allow(id));
        }
        Ok(out)
    }

    fn explain(&self, user: &str, item: &str) -> Vec<RankReason> {
        let reasons = match &self.stored.model {
            Model::ItemKnn(m) => m.explain(user, item, REASONS_PER_ITEM),
            Model::Als(m) => m.explain(user, item, REASONS_PER_ITEM),
            Model::Content(m) => m.explain(user, item, REASONS_PER_ITEM),
            Model::Ease(m) => m.explain(user, item, REASONS_PER_ITEM),
            Model::Blend(m) => m.explain(user, item, REASONS_PER_ITEM),
            _ => Ok(Vec::new()),
        };
        reasons
            .unwrap_or_default()
            .into_iter()
            .map(|r| RankReason {
                because: r.because,
                contribution: f64::from(r.contribution),
            })
            .collect()
    }

    /// Co-occurrence cosine between item columns of the user×item matrix, for algorithms
    /// without their own item similarity.
    fn cooccurrence(&self, j: u32) -> Vec<f32> {
        let h = self.history();
        let m = &h.user_items;
        let mut counts = vec![0f32; h.items.len()];
        let mut holders = vec![0f32; h.items.len()];
        for u in 0..m.rows() {
            let row = m.row(u).0;
            for &i in row {
                holders[i as usize] += 1.0;
            }
            if row.binary_search(&j).is_ok() {
                for &i in row {
                    counts[i as usize] += 1.0;
                }
            }
        }
        let nj = holders[j as usize].sqrt().max(f32::MIN_POSITIVE);
        counts
            .iter()
            .zip(&holders)
            .map(|(c, h)| c / (nj * h.sqrt().max(f32::MIN_POSITIVE)))
            .collect()
    }
}

impl Ranker for RankingModel {
    fn catalogue_size(&self) -> usize {
        self.history().items.len()
    }

    fn category_fields(&self) -> Vec<String> {
        self.typed.common.item_attrs()
    }

    fn items_in_category(&self, field: &str, value: &str) -> Result<usize, ModelError> {
        let fields = self.category_fields();
        let table = self
            .stored
            .item_attributes
            .as_ref()
            .filter(|_| fields.iter().any(|x| x == field))
            .ok_or_else(|| {
                input(
                    field,
                    if fields.is_empty() {
                        "this model has no item attributes (train it with item_attributes)"
                            .to_string()
                    } else {
                        format!("unknown category field; known: {}", fields.join(", "))
                    },
                )
            })?;
        Ok(table.ids_with(field, &[value]).map_err(model_error)?.len())
    }

    fn knows_item(&self, item: &str) -> bool {
        self.history().items.get(item).is_some()
    }

    fn recommend(
        &self,
        query: RankQuery<'_>,
        k: usize,
        filter: &RankFilter,
        explain: bool,
    ) -> Result<Ranking, ModelError> {
        let f = self.filter(filter)?;
        let rec = self.stored.model.rec();
        let own = rec.kind().to_string();
        match query {
            RankQuery::User(user) => {
                let h = rec.history();
                if h.users.get(user).is_none() {
                    return Err(input(
                        "user",
                        format!(
                            "unknown user `{user}`; send `attributes` instead for a customer the model was not trained on"
                        ),
                    ));
                }
                let mut items = items_out(rec.recommend(user, k, &f).map_err(model_error)?);
                if explain {
                    for it in &mut items {
                        it.reasons = self.explain(user, &it.item);
                    }
                    if matches!(self.stored.model, Model::Popularity(_)) {
                        for it in &mut items {
                            it.reasons = vec![RankReason {
                                because: "held by many customers".into(),
                                contribution: it.score,
                            }];
                        }
                    }
                }
                Ok(Ranking { items, source: own })
            }
            RankQuery::Attributes(attrs) => {
                let known = self.typed.common.user_attrs();
                if attrs.is_empty() {
                    return Err(input("attributes", "no attributes given"));
                }
                if let Some((field, _)) = attrs.iter().find(|(f, _)| !known.contains(f)) {
                    return Err(input(
                        format!("attributes.{field}"),
                        if known.is_empty() {
                            "this model has no user attributes (train it with user_attributes)"
                                .to_string()
                        } else {
                            format!("unknown attribute; known: {}", known.join(", "))
                        },
                    ));
                }
                let new = NewUser {
                    items: Vec::new(),
                    attributes: attrs.to_vec(),
                };
                let segment_aware =
                    matches!(self.stored.model, Model::Hybrid(_) | Model::Popularity(_));
                if segment_aware && let Ok(list) = rec.recommend_new(&new, k, &f) {
                    return Ok(Ranking {
                        items: items_out(list),
                        source: own,
                    });
                }
                let (scores, segment) = self.stored.fallback.scores(attrs);
                let mut items = items_out(rank(rec.history(), &scores, &[], k, &f));
                if explain {
                    let because = match &segment {
                        Some(s) => format!("held by many customers with {s}"),
                        None => "held by many customers".to_string(),
                    };
                    for it in &mut items {
                        it.reasons = vec![RankReason {
                            because: because.clone(),
                            contribution: it.score,
                        }];
                    }
                }
                let source = if segment.is_some() {
                    "segment_popularity"
                } else {
                    "popularity"
                };
                Ok(Ranking {
                    items,
                    source: source.into(),
                })
            }
        }
    }

    fn similar_items(&self, item: &str, k: usize) -> Result<Vec<RankedItem>, ModelError> {
        let h = self.history();
        let Some(j) = h.items.get(item) else {
            return Err(input("item", format!("unknown item `{item}`")));
        };
        let list = match &self.stored.model {
            Model::ItemKnn(m) => m.similar_items(item, k).map_err(model_error)?,
            Model::Als(m) => m.similar_items(item, k).map_err(model_error)?,
            Model::Ease(m) => m.similar_items(item, k).map_err(model_error)?,
            Model::Blend(m) => m.ease().similar_items(item, k).map_err(model_error)?,
            _ => top_k(&self.cooccurrence(j), |i| i != j as usize, k)
                .into_iter()
                .filter(|(_, s)| *s > 0.0)
                .map(|(i, score)| Recommendation {
                    item: h.items.id(i).to_string(),
                    score,
                })
                .collect(),
        };
        Ok(items_out(list))
    }

    fn evaluate(&self, held_out: &Table, k: usize) -> Result<Metrics, ModelError> {
        let h = self.history();
        let recs = records(held_out, &self.typed.common)?;
        let opts = self.typed.common.options();
        let mut pairs = std::collections::BTreeSet::new();
        let mut unknown = 0usize;
        for r in &recs {
            if let Some(t) = opts.rating_threshold
                && r.weight.is_some_and(|w| w < t)
            {
                continue;
            }
            match (h.users.get(&r.user), h.items.get(&r.item)) {
                (Some(u), Some(i)) if !h.user_items.contains(u as usize, i) => {
                    pairs.insert((u, i));
                }
                (Some(_), Some(_)) => {}
                _ => unknown += 1,
            }
        }
        let test = Csr::from_triplets(
            h.users.len(),
            h.items.len(),
            pairs.iter().map(|&(u, i)| (u, i, 1.0)).collect(),
        );
        let train =
            Interactions::from_parts(h.users.clone(), h.items.clone(), h.user_items.clone(), None);
        let test = Interactions::from_parts(h.users.clone(), h.items.clone(), test, None);
        let own = crate::metrics::evaluate(self.stored.model.rec(), &train, &test, k)
            .map_err(model_error)?;
        let baseline = Popularity::fit(
            &train,
            None,
            &PopularityParams::default(),
            &FitControl::default(),
        )
        .and_then(|p| crate::metrics::evaluate(&p, &train, &test, k))
        .map_err(model_error)?;
        let mut m = Metrics::new();
        for (prefix, e) in [("", &own), ("popularity_", &baseline)] {
            m.insert(format!("{prefix}precision_at_{k}"), e.precision);
            m.insert(format!("{prefix}recall_at_{k}"), e.recall);
            m.insert(format!("{prefix}map_at_{k}"), e.map);
            m.insert(format!("{prefix}ndcg_at_{k}"), e.ndcg);
            m.insert(format!("{prefix}coverage_at_{k}"), e.coverage);
            m.insert(format!("{prefix}novelty_at_{k}"), e.novelty);
        }
        m.insert("evaluated_users".into(), own.users as f64);
        m.insert("test_interactions".into(), pairs.len() as f64);
        m.insert("test_rows_unknown_ids".into(), unknown as f64);
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use aurum_core::{CancelToken, Column, ColumnData, NoProgress, Target};

    use super::*;

    /// Bank-like holdings: two segments with different favourite products, one loan category.
    pub(crate) fn holdings() -> Table {
        let mut user = Vec::new();
        let mut item = Vec::new();
        let mut job = Vec::new();
        let mut category = Vec::new();
        let mut time = Vec::new();
        let cat = |p: &str| {
            if p.starts_with("loan") {
                "lending"
            } else {
                "savings"
            }
        };
        for u in 0..60 {
            let (j, products): (&str, &[&str]) = if u % 2 == 0 {
                ("student", &["current", "card", "loan_small", "isa"])
            } else {
                ("retired", &["current", "pension", "bond", "loan_home"])
            };
            for (t, p) in products.iter().enumerate().take(2 + u % 3) {
                user.push(Some(format!("c{u}")));
                item.push(Some(p.to_string()));
                job.push(Some(j.to_string()));
                category.push(Some(cat(p).to_string()));
                time.push(Some(t as i64));
            }
        }
        Table::new(vec![
            Column {
                name: "customer".into(),
                data: ColumnData::Text(user),
            },
            Column {
                name: "product".into(),
                data: ColumnData::Categorical(item),
            },
            Column {
                name: "job".into(),
                data: ColumnData::Categorical(job),
            },
            Column {
                name: "category".into(),
                data: ColumnData::Categorical(category),
            },
            Column {
                name: "period".into(),
                data: ColumnData::Integer(time),
            },
        ])
        .unwrap()
    }

    fn params(extra: &[(&str, &str)]) -> Params {
        let mut p: Params = [
            ("user_column", "customer"),
            ("item_column", "product"),
            ("time_column", "period"),
            ("item_attributes", "category"),
            ("user_attributes", "job"),
            ("min_segment_users", "5"),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        p.retain(|_, v| !v.is_empty());
        p
    }

    fn fit(family: &RecoFamily, p: &Params) -> Box<dyn FittedModel> {
        let t = holdings();
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 7,
        };
        family
            .fit(&TrainingData::new(&t, &Target::None), p, &ctx)
            .unwrap()
    }

    #[test]
    fn every_algorithm_round_trips_bit_identically_and_ranks() {
        for family in FAMILIES {
            let extra: &[(&str, &str)] = match family.algorithm {
                Algorithm::Als => &[("factors", "8"), ("iterations", "3")],
                Algorithm::Bpr => &[("factors", "8"), ("iterations", "5")],
                Algorithm::Hybrid => &[("components", "8"), ("epochs", "3")],
                Algorithm::Blend => &[("factors", "8"), ("iterations", "3")],
                _ => &[],
            };
            let m = fit(&family, &params(extra));
            let bytes = m.payload().unwrap();
            let back = family.load_payload(&bytes).unwrap();
            assert_eq!(back.payload().unwrap(), bytes, "{}", family.spec.name);
            assert_eq!(back.params(), m.params(), "{}", family.spec.name);
            let r = back.as_ranker().unwrap();
            let a = m
                .as_ranker()
                .unwrap()
                .recommend(RankQuery::User("c0"), 3, &RankFilter::default(), true)
                .unwrap();
            let b = r
                .recommend(RankQuery::User("c0"), 3, &RankFilter::default(), true)
                .unwrap();
            assert_eq!(a, b, "{}", family.spec.name);
            assert!(!a.items.is_empty(), "{}", family.spec.name);
            assert!(
                !a.items
                    .iter()
                    .any(|i| i.item == "current" || i.item == "card"),
                "{}: held items are excluded by default",
                family.spec.name
            );
            let s = r.similar_items("current", 2).unwrap();
            assert!(s.iter().all(|i| i.item != "current"));
        }
    }

    #[test]
    fn filters_and_cold_start_name_their_fields() {
        let m = fit(&ALS, &params(&[("factors", "8")]));
        let r = m.as_ranker().unwrap();
        let no_lending = RankFilter {
            exclude_categories: vec![("category".into(), vec!["lending".into()])],
            ..Default::default()
        };
        let out = r
            .recommend(RankQuery::User("c0"), 10, &no_lending, false)
            .unwrap();
        assert!(out.items.iter().all(|i| !i.item.starts_with("loan")));
        let attrs = vec![("job".to_string(), "retired".to_string())];
        let cold = r
            .recommend(
                RankQuery::Attributes(&attrs),
                2,
                &RankFilter::default(),
                true,
            )
            .unwrap();
        assert_eq!(cold.source, "segment_popularity");
        assert_eq!(cold.items[0].item, "current");
        assert!(["pension", "bond"].contains(&cold.items[1].item.as_str()));
        assert_eq!(
            cold.items[0].reasons[0].because,
            "held by many customers with job=retired"
        );
        let field = |e: ModelError| match e {
            ModelError::InvalidInput { feature, .. } => feature,
            other => panic!("{other:?}"),
        };
        let e = r
            .recommend(RankQuery::User("nobody"), 2, &RankFilter::default(), false)
            .unwrap_err();
        assert_eq!(field(e), "user");
        let bad = vec![("age".to_string(), "40".to_string())];
        let e = r
            .recommend(
                RankQuery::Attributes(&bad),
                2,
                &RankFilter::default(),
                false,
            )
            .unwrap_err();
        assert_eq!(field(e), "attributes.age");
        let f = RankFilter {
            include_categories: vec![("colour".into(), vec!["red".into()])],
            ..Default::default()
        };
        let e = r
            .recommend(RankQuery::User("c0"), 2, &f, false)
            .unwrap_err();
        assert_eq!(field(e), "include_categories.colour");
        let f = RankFilter {
            exclude_items: vec!["yacht".into()],
            ..Default::default()
        };
        let e = r
            .recommend(RankQuery::User("c0"), 2, &f, false)
            .unwrap_err();
        assert_eq!(field(e), "exclude_items");
        assert_eq!(field(r.similar_items("yacht", 2).unwrap_err()), "item");
    }

    #[test]
    fn parameters_are_checked_by_name() {
        let e = ALS.validate_params(&Params::new()).unwrap_err();
        assert!(e.to_string().contains("user_column"), "{e}");
        let e = ALS
            .validate_params(&params(&[("neighbours", "3")]))
            .unwrap_err();
        assert_eq!(e.code(), "unknown_param");
        let e = CONTENT
            .validate_params(&params(&[("item_attributes", "")]))
            .unwrap_err();
        assert!(e.to_string().contains("item_attributes"), "{e}");
        let v = ALS.validate_params(&params(&[])).unwrap();
        assert_eq!(v["regularization"], serde_json::json!(0.01));
        assert_eq!(v["segment_column"], "job");
    }

    #[test]
    fn ease_explains_exactly_and_refuses_large_catalogues() {
        let m = fit(&EASE, &params(&[("regularization", "1")]));
        let out = m
            .as_ranker()
            .unwrap()
            .recommend(RankQuery::User("c0"), 2, &RankFilter::default(), true)
            .unwrap();
        assert_eq!(out.source, "ease");
        for it in &out.items {
            // c0 holds two items and REASONS_PER_ITEM is 3: every share is listed, and the
            // shares add up to the score.
            let sum: f64 = it.reasons.iter().map(|r| r.contribution).sum();
            assert!((sum - it.score).abs() < 1e-5, "{it:?}");
        }
        let t = holdings();
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 7,
        };
        let e = EASE
            .fit(
                &TrainingData::new(&t, &Target::None),
                &params(&[("max_items", "5")]),
                &ctx,
            )
            .unwrap_err();
        assert!(e.to_string().contains("max_items"), "{e}");
        assert!(e.to_string().contains("7 items"), "{e}");
        let e = EASE
            .validate_params(&params(&[("regularization", "0")]))
            .unwrap_err();
        assert!(e.to_string().contains("regularization"), "{e}");
        let v = EASE.validate_params(&params(&[])).unwrap();
        assert_eq!(v["max_items"], 10_000);
    }

    #[test]
    fn blend_serves_explains_and_names_its_parameters() {
        let p = params(&[
            ("ease_regularization", "1"),
            ("factors", "8"),
            ("ease_weight", "0.3"),
            ("ease_recency_half_life", "0.5"),
            ("als_recency_half_life", "0.5"),
        ]);
        let m = fit(&BLEND, &p);
        let r = m.as_ranker().unwrap();
        let out = r
            .recommend(RankQuery::User("c0"), 2, &RankFilter::default(), true)
            .unwrap();
        assert_eq!(out.source, "blend");
        assert_eq!(out.items.len(), 2);
        for it in &out.items {
            assert!(!it.reasons.is_empty(), "{it:?}");
            // c0 holds `current` and `card`: every reason is a held item.
            assert!(
                it.reasons
                    .iter()
                    .all(|x| x.because == "current" || x.because == "card"),
                "{it:?}"
            );
        }
        let v = m.params();
        assert_eq!(v["ease_weight"], serde_json::json!(0.3));
        assert_eq!(v["ease_regularization"], serde_json::json!(1.0));
        assert_eq!(v["als_regularization"], serde_json::json!(0.01));
        // A payload stored with another weight scores differently once loaded: the weight is
        // part of the model, not of the query.
        let mut other = p.clone();
        other.insert("ease_weight".into(), "0.9".into());
        let m2 = fit(&BLEND, &other);
        let a = out.items.iter().map(|i| i.score).collect::<Vec<_>>();
        let b = m2
            .as_ranker()
            .unwrap()
            .recommend(RankQuery::User("c0"), 2, &RankFilter::default(), false)
            .unwrap()
            .items
            .iter()
            .map(|i| i.score)
            .collect::<Vec<_>>();
        assert_ne!(a, b);
        for (key, value) in [
            ("ease_weight", "1.5"),
            ("ease_regularization", "0"),
            ("als_regularization", "-1"),
            ("factors", "0"),
        ] {
            let e = BLEND.validate_params(&params(&[(key, value)])).unwrap_err();
            assert!(e.to_string().contains(key), "{key}: {e}");
        }
        let e = BLEND
            .validate_params(&params(&[("regularization", "5")]))
            .unwrap_err();
        assert_eq!(e.code(), "unknown_param");
        let t = holdings();
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 7,
        };
        let e = BLEND
            .fit(
                &TrainingData::new(&t, &Target::None),
                &params(&[("max_items", "5")]),
                &ctx,
            )
            .unwrap_err();
        assert!(e.to_string().contains("max_items"), "{e}");
        // Recency needs the time column; the error names the blend's own parameter.
        for key in ["ease_recency_half_life", "als_recency_half_life"] {
            let e = BLEND
                .fit(
                    &TrainingData::new(&t, &Target::None),
                    &params(&[(key, "0.5"), ("time_column", "")]),
                    &ctx,
                )
                .unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
        let e = ALS
            .fit(
                &TrainingData::new(&t, &Target::None),
                &params(&[("recency_half_life", "0.5"), ("time_column", "")]),
                &ctx,
            )
            .unwrap_err();
        assert!(e.to_string().contains("`recency_half_life`"), "{e}");
    }

    #[test]
    fn evaluation_reports_model_and_popularity_figures() {
        let m = fit(&ITEM_KNN, &params(&[]));
        let col = |name: &str, v: &[&str]| Column {
            name: name.into(),
            data: ColumnData::Categorical(v.iter().map(|s| Some(s.to_string())).collect()),
        };
        let held = Table::new(vec![
            col("customer", &["c0", "c3", "c1", "nobody"]),
            col("product", &["isa", "bond", "loan_home", "isa"]),
            Column {
                name: "period".into(),
                data: ColumnData::Integer(vec![Some(9); 4]),
            },
        ])
        .unwrap();
        let metrics = m.as_ranker().unwrap().evaluate(&held, 10).unwrap();
        for key in [
            "precision_at_10",
            "recall_at_10",
            "map_at_10",
            "ndcg_at_10",
            "coverage_at_10",
            "novelty_at_10",
            "popularity_ndcg_at_10",
        ] {
            assert!(metrics.contains_key(key), "{key}: {metrics:?}");
        }
        assert_eq!(metrics["test_rows_unknown_ids"], 1.0);
        assert_eq!(metrics["evaluated_users"], 3.0);
    }
}
