//! Financial product recommendation: which product should we offer this customer next?
//!
//! A pure library: interaction records (customer, product, count or rating, time) become sparse
//! matrices ([`Interactions`]); [`split`] cuts them per user by time or leave-k-out; eight model
//! families rank products; [`metrics`] measures them on held-out data. No IO, async, logging or
//! HTTP: the service layer decides where data comes from and how answers travel.
//!
//! Why these models, and why all of them: each answers a different situation a bank meets.
//! - [`models::popularity`]: the baseline every model must beat, and the answer for a customer
//!   about whom nothing is known (optionally per segment, e.g. age band).
//! - [`models::item_knn`]: "customers who hold X also hold Y", explainable exactly.
//! - [`models::als`] and [`models::bpr`]: matrix factorisation for implicit feedback, the
//!   strongest rankers when customers hold enough products.
//! - [`models::content`]: product attributes, so a new product or a one-product customer is
//!   still scored, with attribute-level explanations.
//! - [`models::hybrid`]: LightFM-style factors over attributes, for customers and products known
//!   only by their attributes (cold start).
//! - [`models::random_walk`]: multi-hop candidates on the customer–product graph.
//! - [`models::ease`]: the closed-form item-item model (EASE), the strongest ranker here on
//!   catalogues small enough for a dense item×item inverse (up to `max_items`); optionally
//!   weighting a customer's recent products more (`recency_half_life`).
//! - [`models::blend`]: EASE and ALS scores standardised per customer and mixed by one weight.
//!
//! Why one [`Recommender`] trait that returns scores: filtering (held products, categories,
//! eligibility predicates), top-k and evaluation are written once and cannot drift between
//! families. Fitted models derive serde because they are *stored* (see [`encode`]).

mod attributes;
pub mod bank;
mod error;
pub mod family;
mod interactions;
pub mod metrics;
pub mod models;
mod recommender;
pub mod split;

pub use attributes::{AttributeRow, AttributeTable, tokenize};
pub use error::RecoError;
pub use interactions::{
    Csr, History, IdMap, InteractionOptions, InteractionRecord, Interactions, Weighting,
};
pub use recommender::{
    FORMAT_VERSION, Filter, FitControl, NewUser, Reason, Recommendation, Recommender, decode,
    encode,
};
