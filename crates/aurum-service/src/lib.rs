//! The application service layer shared by the REST server and the CLI.
//!
//! [`Platform`] composes the lower crates into the product's operations: import a dataset, run a
//! training job, register a version, move an alias, answer a prediction, record every step in the
//! audit log. It knows nothing about HTTP, gRPC or JSON wire formats: the server crate parses
//! requests into these calls and renders their results, and the CLI calls the same methods in
//! process. Keeping one layer for both is what makes `aurum train` on the command line and
//! `POST /v1/training-jobs` behave identically.

mod alerts;
pub mod batch;
mod batching;
mod challenger;
mod coherence;
pub mod config;
mod console_sessions;
mod document;
mod document_pdf;
mod error;
mod events;
mod flows;
mod forecast;
mod keys;
mod models;
mod monitoring;
mod outcomes;
mod platform;
mod predict;
mod recommend;
mod synthesis;
mod training;

pub use alerts::{Alert, AlertSink};
pub use aurum_forecast::spec::ForecastSpec;
pub use challenger::{
    ChallengerConfig, ChallengerMode, ChallengerReport, PairComparison, SplitArm,
};
pub use config::{AuditDurability, Config, ConfigError, ConfigLayer, UnknownFields};
pub use document::DocumentOptions;
pub use error::{ErrorClass, ServiceError};
pub use events::{
    EventFields, EventOutcome, EventStateInfo, EventsOutput, FeatureValues, FraudAction,
    FraudReason, LabelInput, LabelsOutput, action_str,
};
pub use flows::{FlowDefinition, FlowOutput};
pub use forecast::{BacktestOutput, DecompositionOutput, ForecastOutput, SeriesInput};
pub use keys::{
    KeyPolicy, LEASE_LIFE, OVER_LIMIT_DELAY, Principal, Role, SHARED_RETRY, SharedLimits,
    SharedTake, failure_batch, lease_size,
};
pub use models::{LoadedModel, ModelRef, Selector, VersionState};
pub use monitoring::{DriftReport, WindowDrift};
pub use outcomes::{FairnessOut, OutcomeIn, OutcomeLabel, PerformanceReport};
pub use platform::{CallContext, DatasetImport, JOB_STALE_AFTER, Platform, Stores};
pub use predict::{
    InputHasher, PredictOptions, PredictOutput, RecordOutput, TaskPredictOutput, canonical_value,
    input_sha256, output_json,
};
pub use recommend::{
    MAX_K, RankFilter, RankReason, RankedItem, RecommendOutput, RecommendRequest, SimilarOutput,
    recommend_input_sha256,
};
pub use synthesis::{
    DistanceSummary, Lineage, MAX_SYNTHETIC_ROWS, SYNTHESIS_JOB_KIND, SynthesisJob,
    SynthesisMethod, SynthesisOutcome, SynthesisReport, SynthesisRequest, UtilityRow,
};
pub use training::TrainRequest;

/// Re-exported lower-layer types that appear in this crate's signatures, so adapters do not
/// depend on the lower crates directly.
pub mod types {
    pub use aurum_contract::families::{FamilyInfo, FamilySpec};
    pub use aurum_contract::{Output, OutputSpec};
    pub use aurum_core::{
        ColumnType, Contribution, Explanation, FamilyName, Field, InvalidFamilyName, Params,
        Schema, SchemaError, Task, Value, sha256_hex,
    };
    pub use aurum_credit::report::{CreditReport, html as report_html};
    pub use aurum_data::{
        CellError, ColumnProfile, ColumnWarning, DatasetProfile, parse_cell, parse_field_cell,
    };
    pub use aurum_registry::audit::{AuditQuery, AuditRecord, VerifyReport};
    pub use aurum_registry::{
        AliasHistoryRecord, ConsoleSessionRecord, DatasetRecord, JobRecord, JobState, KeyRecord,
        ModelRecord, VersionRecord,
    };
}
