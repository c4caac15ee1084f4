//! Real-time card fraud scoring: streaming per-entity features, durable online state, and the
//! models, rules and metrics that sit on top of them.
//!
//! Why this crate exists apart from `aurum-models`: fraud scoring is stateful. A transaction's
//! risk depends on the card's and the terminal's recent history (counts, amounts, first use of a
//! terminal, the terminal's recent fraud rate), so the features are not columns of a table but
//! a function of the event stream. The most common failure of such systems is training/serving
//! skew: features computed one way in a batch job for training and another way online. Here one
//! code path ([`FeatureEngine::score_and_apply`] and [`FeatureEngine::add_label`]) serves both:
//! [`replay`] feeds history through it in time order, and a live process feeds events as they
//! come. Labels carry the time they became known, so a replay uses a label only where the live
//! system could have.
//!
//! Layers, bottom to top:
//! - [`FeatureSpec`] (TOML/JSON) → [`CompiledSpec`]: what an event is and which features to
//!   compute; [`Event`]: one validated transaction.
//! - [`FeatureEngine`] over an [`EntityStore`] ([`ShardedStore`] in process): exact sliding
//!   windows per entity.
//! - [`DurableEngine`]: an append-only checksummed log plus snapshots, so state survives a crash.
//! - [`OnlineState`]: a model's live state as the service sees it, in this process
//!   ([`LocalState`]) or in a store shared by replicas (an [`OnlineStateFactory`]).
//! - [`IsolationForest`], [`RuleSet`] → [`Decision`]; [`metrics`] for evaluation.
//!
//! The crate does no HTTP, no async and no logging; the durable engine is its only file IO.

mod durable;
mod engine;
mod error;
mod event;
pub mod event_family;
pub mod family;
pub mod gbdt_family;
mod iforest;
mod index;
pub mod metrics;
mod online;
mod replay;
mod rules;
mod spec;
mod store;
#[cfg(test)]
mod testing;

pub use durable::{
    DurableEngine, DurableOptions, LogRecord, Logged, Notify, RecoveryReport, Ticket,
};
pub use engine::{
    ApplyCounts, EngineSnapshot, EngineStats, FeatureEngine, LabelOutcome, LabelRef,
    MemoryEstimate, apply_event_to_state, features_from_states, label_in_state, labelled_columns,
    stateful_columns,
};
pub use error::{FraudError, Result};
pub use event::{
    Event, MAX_ABS_AMOUNT, MAX_TIMESTAMP, MIN_TIMESTAMP, check_bounds, check_event, parse_timestamp,
};
pub use iforest::{IsolationForest, IsolationForestParams, average_path_length};
pub use online::{
    BatchError, Deferred, LabelRequest, LocalState, MAX_AHEAD_OF_CLOCK_S, OnlineState,
    OnlineStateFactory, StateInfo, validate_batch,
};
pub use replay::{FeatureMatrix, TrainingLabel, labels_from_events, replay, replay_into};
pub use rules::{Action, Decision, ListEntry, Op, Reason, Rule, RuleSet};
pub use spec::{
    CompiledSpec, Constraints, EventSchema, FeatureDef, FeatureKind, FeatureSpec, HistoryLayout,
    MAX_HISTORY_LENGTH, parse_duration,
};
pub use store::{EntityState, EntityStore, ShardedStore};
