//! Live fraud scoring with state: events in, score + decision out, card and terminal history
//! updated, every acknowledged event durable.
//!
//! Why a separate path from [`Platform::predict`]: predict is stateless (the same row always gets
//! the same answer), while a fraud event changes the answer for the next one. Each model with a
//! fraud version (any [`aurum_fraud::event_family::FraudModel`]: `fraud_gbdt`, `fraud_sequence`)
//! gets one [`aurum_fraud::OnlineState`], opened at first use: by default a
//! [`aurum_fraud::LocalState`] (log + snapshots under `<data_dir>/state/<model>/`, recovered at
//! open), or, when the stores carry a shared state factory (`registry.fraud_state_url`), the
//! model's state in a store every replica reads and writes (Redis). A call is validated whole
//! before anything changes: every event parsed against the spec, then, inside the state's own
//! check-and-apply step, ids unique and unseen and timestamps within the spec's tolerance of the
//! watermark; then the batch is applied, scored by the version's learner and decided by its
//! thresholds, and one audit record is written with the canonical hash of the events (the
//! [`crate::input_sha256`] form over the event fields as the engine reads them: id and keys as
//! text, time as integer seconds, amount as float). The answer waits for both the event log's
//! commit (shared with concurrent calls: [`aurum_fraud::DurableEngine::wait_durable`]) and the
//! audit record's, which run at the same time; should the log write fail, the call fails and its
//! audit record stands for a scoring that was applied in memory but never acknowledged.
//!
//! The states live in a process-wide map keyed by state directory (or shared store and model),
//! not in [`Platform`]: one directory must have one writer per process, however many `Platform`s
//! a process opens on the same data directory (tests do). A state is opened once: the first caller
//! opens it on a blocking thread holding the model's slot, and every other caller, including one
//! that arrives after an earlier caller gave up waiting, takes what that opening made. A local
//! directory is locked by its engine, so another *process* on it is refused (503 `unavailable`,
//! naming the directory); processes that share state use the shared store.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use aurum_core::{ColumnType, Field, Schema, Value};
use aurum_fraud::event_family::FraudModel;
use aurum_fraud::{
    BatchError, DurableOptions, Event, FraudError, LabelOutcome, LabelRequest, LocalState,
    OnlineState,
};
use aurum_registry::audit::AuditEntry;

use crate::config::AuditDurability;
use crate::platform::{internal, join_error};
use crate::{CallContext, LoadedModel, Platform, ServiceError};

/// Events a call may have for its batch to be parsed, hashed, applied and decided on the calling
/// task (when the state's locks are free); a larger batch goes to the blocking pool whole, so an
/// async worker never spends more than a fraction of a millisecond on one call.
const INLINE_EVENTS: usize = 64;

/// Records between snapshots of a model's event state.
const SNAPSHOT_EVERY: u64 = 100_000;

/// Bytes each segment of a model's event log is preallocated with, so that commits overwrite
/// zeros instead of growing the file: about a snapshot interval of the handbook spec's events
/// (about 140 bytes each); a fuller segment moves on to the next prepared one.
const LOG_PREALLOCATE: u64 = 16 << 20;

pub use aurum_fraud::{Action as FraudAction, Reason as FraudReason};

/// One event's fields as sent (JSON-like values: the spec decides what they mean).
pub type EventFields = serde_json::Map<String, serde_json::Value>;

/// The answer for one event.
#[derive(Clone, Debug)]
pub struct EventOutcome {
    pub id: String,
    /// The model's fraud probability.
    pub score: f64,
    pub action: FraudAction,
    pub reasons: Vec<FraudReason>,
    /// The features the score used, in spec order, computed from state strictly before the event.
    pub features: FeatureValues,
}

/// One event's feature values in spec order, with the names (shared by the events of a call).
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureValues {
    names: Arc<[String]>,
    values: Vec<f64>,
}

impl FeatureValues {
    /// `(name, value)` in spec order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, f64)> + '_ {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.values.iter().copied())
    }

    /// The value of the feature `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// The answer for an events call.
#[derive(Clone, Debug)]
pub struct EventsOutput {
    pub model: String,
    pub version: u32,
    pub outcomes: Vec<EventOutcome>,
    pub audit_seq: Option<u64>,
    pub input_sha256: String,
}

/// A confirmed label for an earlier event.
#[derive(Clone, Debug)]
pub struct LabelInput {
    pub event_id: String,
    pub fraud: bool,
    /// When the label became known (Unix seconds); default the latest event time of the state.
    pub known_at: Option<i64>,
}

/// What a labels call did.
#[derive(Clone, Debug)]
pub struct LabelsOutput {
    pub model: String,
    /// Per label: whether an event in state took it (an unknown or expired id does not).
    pub applied: Vec<bool>,
    pub audit_seq: Option<u64>,
}

/// A model's event state, for operators and tests.
#[derive(Clone, Debug)]
pub struct EventStateInfo {
    pub model: String,
    pub events_applied: u64,
    pub labels_applied: u64,
    pub labels_unmatched: u64,
    pub entities: usize,
    pub events_held: usize,
    pub bytes_per_entity: f64,
    /// The latest event time applied (Unix seconds).
    pub watermark: Option<i64>,
    /// Where the state lives (`local`, or the shared store), credentials left out.
    pub backend: String,
}

struct ModelState {
    state: Arc<dyn OnlineState>,
    /// Versions of this model whose feature spec was checked against the state's.
    checked: Mutex<HashSet<u32>>,
}

/// The fraud model of a loaded version (any fraud family: `fraud_gbdt`, `fraud_sequence`).
/// A batch applied to the state: the ticket of its log records, and its outcomes with the input
/// hash, or why they could not be decided (the batch stays applied either way).
struct Scored {
    ticket: aurum_fraud::Ticket,
    decided: Result<(Vec<EventOutcome>, String), ServiceError>,
}

/// Parses the events against the spec (a bad event fails the call, naming `events[i].<field>`),
/// with the canonical hash of what was parsed.
fn parse_events(
    state: &ModelState,
    events: Vec<EventFields>,
) -> Result<(Vec<Event>, String), ServiceError> {
    let spec = state.state.spec();
    let parsed: Vec<Event> = events
        .iter()
        .enumerate()
        .map(|(i, fields)| {
            Event::from_map(spec, fields.iter().map(|(k, v)| (k.as_str(), v)))
                .map_err(|e| fraud_error(e, &format!("events[{i}].")))
        })
        .collect::<Result<_, _>>()?;
    drop(events);
    let input_sha256 = events_sha256(spec, &parsed);
    Ok((parsed, input_sha256))
}

/// What the state made of a parsed batch: its features and ticket, or why it refused the batch
/// (then nothing changed).
type Applied = Result<aurum_fraud::Deferred, BatchError>;

/// Decides each event of an applied batch with the version's learner and rules.
fn decide_batch(
    model: &LoadedModel,
    state: &ModelState,
    parsed: Vec<Event>,
    input_sha256: String,
    applied: Applied,
) -> Result<Scored, ServiceError> {
    let (results, ticket) = applied.map_err(|e| batch_error(e, "events"))?;
    let decided = fraud_model(model).and_then(|fraud| {
        let names: Arc<[String]> = state.state.spec().feature_names().into();
        let pairs: Vec<(&Event, &[f64])> = parsed
            .iter()
            .zip(&results)
            .map(|(e, x)| (e, x.as_slice()))
            .collect();
        let decisions = fraud.decide_many(&pairs)?;
        let outcomes = parsed
            .into_iter()
            .zip(results)
            .zip(decisions)
            .map(|((e, values), d)| EventOutcome {
                id: e.id,
                score: d.score,
                action: d.action,
                reasons: d.reasons,
                features: FeatureValues {
                    names: names.clone(),
                    values,
                },
            })
            .collect();
        Ok((outcomes, input_sha256))
    });
    Ok(Scored { ticket, decided })
}

fn fraud_model(model: &LoadedModel) -> Result<&FraudModel, ServiceError> {
    model
        .model
        .as_any()
        .and_then(|m| m.downcast_ref::<FraudModel>())
        .ok_or_else(|| {
            ServiceError::invalid(
                "wrong_family",
                Some("name"),
                format!(
                    "{} version {} is a {} model; events are scored by fraud models (fraud_gbdt, fraud_sequence)",
                    model.name,
                    model.version,
                    model.model.family()
                ),
            )
        })
}

/// A model's state once opened; the slot's lock is held while it is being opened.
type StateSlot = Arc<Mutex<Slot>>;

#[derive(Default)]
struct Slot {
    state: Option<Arc<ModelState>>,
    /// When the last opening failed, and why: callers that were already waiting behind it get the
    /// same answer instead of each trying again in turn (a shared store that is down would
    /// otherwise hold every one of them for its timeout, one after another); a caller that asks
    /// later tries again.
    failed: Option<(std::time::Instant, ServiceError)>,
}

/// The same error again, for another caller.
fn copy_error(e: &ServiceError) -> ServiceError {
    match e {
        ServiceError::Conflict(m) => ServiceError::Conflict(m.clone()),
        ServiceError::Internal(m) => ServiceError::Internal(m.clone()),
        ServiceError::Invalid {
            code,
            field,
            message,
        } => ServiceError::Invalid {
            code,
            field: field.clone(),
            message: message.clone(),
        },
        other => ServiceError::Unavailable(other.to_string()),
    }
}

fn states() -> &'static Mutex<HashMap<String, StateSlot>> {
    static STATES: OnceLock<Mutex<HashMap<String, StateSlot>>> = OnceLock::new();
    STATES.get_or_init(Default::default)
}

/// Opens a model's event state: from the shared store when there is one, else recovered from
/// its local directory (which one engine per machine may hold: another process on it is refused).
fn open_state(
    shared: Option<Arc<dyn aurum_fraud::OnlineStateFactory>>,
    name: &str,
    spec: &aurum_fraud::FeatureSpec,
    dir: &std::path::Path,
) -> Result<Arc<dyn OnlineState>, ServiceError> {
    let refused = |e: FraudError| match e {
        FraudError::SpecMismatch(m) => ServiceError::Conflict(format!(
            "the event state of `{name}` was built under another feature spec: {m}"
        )),
        other => fraud_error(other, ""),
    };
    if let Some(factory) = shared {
        return factory.open(name, spec).map_err(refused);
    }
    let options = DurableOptions {
        snapshot_every: Some(SNAPSHOT_EVERY),
        preallocate: LOG_PREALLOCATE,
    };
    let (local, report) = LocalState::recover_with(dir, spec, options).map_err(refused)?;
    tracing::info!(
        model = %name,
        events = report.events_replayed,
        labels = report.labels_replayed,
        snapshot = report.snapshot_loaded,
        torn_tail_bytes = report.torn_tail_bytes,
        "fraud event state recovered"
    );
    Ok(Arc::new(local))
}

/// A refused or failed batch as the caller sees it: `events[i].<field>` for a refused event.
fn batch_error(e: BatchError, list: &str) -> ServiceError {
    match e.index {
        Some(i) => fraud_error(e.error, &format!("{list}[{i}].")),
        None => fraud_error(e.error, ""),
    }
}

fn fraud_error(e: FraudError, at: &str) -> ServiceError {
    let field = |f: &str| format!("{at}{f}");
    match e {
        FraudError::MissingField { field: f } => ServiceError::invalid(
            "missing_field",
            Some(&field(&f)),
            format!("{at}{f} is missing"),
        ),
        FraudError::UnknownField { field: f } => ServiceError::invalid(
            "unknown_field",
            Some(&field(&f)),
            format!("{at}{f} is not a field of this model's events"),
        ),
        FraudError::InvalidField { field: f, message } => ServiceError::invalid(
            "invalid_field",
            Some(&field(&f)),
            format!("{at}{f}: {message}"),
        ),
        e @ FraudError::OutOfOrder { .. } => {
            let FraudError::OutOfOrder { field: f, .. } = &e else {
                unreachable!()
            };
            ServiceError::invalid(
                "out_of_order",
                Some(&field(f)),
                format!("{}: {e}", field(f)),
            )
        }
        e @ FraudError::DuplicateEvent { .. } => {
            let FraudError::DuplicateEvent { field: f, .. } = &e else {
                unreachable!()
            };
            ServiceError::invalid(
                "duplicate_event",
                Some(&field(f)),
                format!("{}: {e}", field(f)),
            )
        }
        e @ (FraudError::SpecMismatch(_)
        | FraudError::InvalidInput { .. }
        | FraudError::SpecSyntax(_)
        | FraudError::InvalidSpec { .. }) => {
            ServiceError::invalid("invalid_event", None, format!("{at}{e}"))
        }
        e @ (FraudError::Unavailable(_) | FraudError::Contended(_) | FraudError::InUse { .. }) => {
            ServiceError::Unavailable(format!("{at}{e}"))
        }
        e @ (FraudError::Corrupt { .. } | FraudError::Poisoned | FraudError::Io(_)) => internal(e),
    }
}

impl Platform {
    fn state_dir(&self, model: &str) -> std::path::PathBuf {
        self.inner.config.data_dir.join("state").join(model)
    }

    /// The model's event state, recovered at first use; every version scored on it must have
    /// been trained under the state's feature spec.
    async fn fraud_state(&self, model: &LoadedModel) -> Result<Arc<ModelState>, ServiceError> {
        let fraud = fraud_model(model)?;
        let shared = self.inner.fraud_state.clone();
        let key = match &shared {
            Some(f) => format!("shared {} {}", f.describe(), model.name),
            None => format!("local {}", self.state_dir(&model.name).display()),
        };
        let slot = states()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .clone();
        // Opened once per process, whoever asks first: the check and the opening happen on one
        // blocking thread with the model's slot held, so a caller that stops waiting (a timeout,
        // a dropped connection) cannot leave a second opening running beside the next caller's.
        let ready = match slot.try_lock() {
            Ok(s) => s.state.clone(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().state.clone(),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        let state = match ready {
            Some(s) => s,
            None => {
                let spec = fraud.feature_spec().clone();
                let name = model.name.clone();
                let d = self.state_dir(&model.name);
                let asked = std::time::Instant::now();
                tokio::task::spawn_blocking(move || {
                    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(s) = &slot.state {
                        return Ok(s.clone());
                    }
                    if let Some((at, e)) = &slot.failed
                        && *at >= asked
                    {
                        return Err(copy_error(e));
                    }
                    match open_state(shared, &name, &spec, &d) {
                        Ok(state) => {
                            let state = Arc::new(ModelState {
                                state,
                                checked: Mutex::new(HashSet::new()),
                            });
                            *slot = Slot {
                                state: Some(state.clone()),
                                failed: None,
                            };
                            Ok(state)
                        }
                        Err(e) => {
                            let answer = copy_error(&e);
                            slot.failed = Some((std::time::Instant::now(), e));
                            Err(answer)
                        }
                    }
                })
                .await
                .map_err(join_error)??
            }
        };
        let mut checked = state.checked.lock().unwrap_or_else(|p| p.into_inner());
        if !checked.contains(&model.version) {
            if fraud.feature_spec() != state.state.spec().source() {
                return Err(ServiceError::Conflict(format!(
                    "{} version {} has another feature spec than the model's event state",
                    model.name, model.version
                )));
            }
            checked.insert(model.version);
        }
        drop(checked);
        Ok(state)
    }

    /// Scores a batch of events in arrival order and applies them to the model's state. The whole
    /// batch is checked first; a bad event fails the call naming `events[i].<field>` and nothing
    /// changes.
    pub async fn score_events(
        &self,
        ctx: &CallContext,
        model: Arc<LoadedModel>,
        events: Vec<EventFields>,
    ) -> Result<EventsOutput, ServiceError> {
        model.check_scoring()?;
        if events.is_empty() {
            return Err(ServiceError::invalid(
                "empty_batch",
                Some("events"),
                "no events to score",
            ));
        }
        let state = self.fraud_state(&model).await?;
        // Once the batch is applied it must get its audit record even if the caller stops
        // waiting (a request timeout, a dropped connection): the rest runs as its own task.
        let (this, ctx) = (self.clone(), ctx.clone());
        self.detached(async move { this.score_events_now(&ctx, model, state, events).await })
            .await
    }

    /// [`Platform::score_events`] after the state is open. A batch of up to [`INLINE_EVENTS`]
    /// events is parsed and hashed on the calling task, then applied to the state there too when
    /// the state's locks are free ([`aurum_fraud::OnlineState::try_score_and_apply_deferred`]: no
    /// hand-off to another thread), else on the blocking pool; a larger batch runs on the pool
    /// from the start. An async worker never waits for a lock: a
    /// snapshot holds the state's queue while it copies the state in memory (milliseconds every
    /// [`SNAPSHOT_EVERY`] records), a shared store waits on the network, and a worker stalled
    /// there would stall every other request it serves. Then the event log's group commit and
    /// the audit record's commit run at the same time; neither holds a thread while the disk
    /// works (the log's background committer tells this task,
    /// [`aurum_fraud::OnlineState::when_durable`]). The call answers once both are done.
    async fn score_events_now(
        &self,
        ctx: &CallContext,
        model: Arc<LoadedModel>,
        state: Arc<ModelState>,
        events: Vec<EventFields>,
    ) -> Result<EventsOutput, ServiceError> {
        fraud_model(&model)?;
        let (m, s) = (model.clone(), state.clone());
        let scored = if events.len() <= INLINE_EVENTS {
            let (parsed, input_sha256) = parse_events(&state, events)?;
            match state.state.try_score_and_apply_deferred(&parsed) {
                Some(applied) => decide_batch(&model, &state, parsed, input_sha256, applied)?,
                None => tokio::task::spawn_blocking(move || {
                    let applied = s.state.score_and_apply_deferred(&parsed);
                    decide_batch(&m, &s, parsed, input_sha256, applied)
                })
                .await
                .map_err(join_error)??,
            }
        } else {
            tokio::task::spawn_blocking(move || {
                let (parsed, input_sha256) = parse_events(&s, events)?;
                let applied = s.state.score_and_apply_deferred(&parsed);
                decide_batch(&m, &s, parsed, input_sha256, applied)
            })
            .await
            .map_err(join_error)??
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        state.state.clone().when_durable(
            scored.ticket,
            Box::new(move |done| {
                // The receiver is gone only if this task was, which `detached` prevents.
                let _ = tx.send(done);
            }),
        );
        let durable = async {
            rx.await
                .map_err(|_| internal("the event log's committer went away"))?
                .map_err(|e| fraud_error(e, ""))
        };
        // The batch is applied whether or not it could be decided: it must be durable before
        // the call answers, even with an error.
        let (outcomes, input_sha256) = match scored.decided {
            Ok(decided) => decided,
            Err(e) => {
                durable.await?;
                return Err(e);
            }
        };
        let summary: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|o| serde_json::json!({"id": o.id, "score": o.score, "action": action_str(o.action)}))
            .collect();
        let entry = AuditEntry {
            event: "fraud.events".into(),
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
            model: Some(model.name.clone()),
            version: Some(model.version),
            input_sha256: Some(input_sha256.clone()),
            details: serde_json::json!({"events": outcomes.len(), "outputs": summary}),
        };
        let (audit_seq, durable) = tokio::join!(self.append_event_audit(entry), durable);
        durable?;
        let audit_seq = audit_seq?;
        metrics::counter!("aurum_fraud_events_total", "model" => model.name.clone())
            .increment(outcomes.len() as u64);
        Ok(EventsOutput {
            model: model.name.clone(),
            version: model.version,
            outcomes,
            audit_seq,
            input_sha256,
        })
    }

    /// Feeds confirmed labels back into the model's state (they reach the label features of
    /// later events once `known_at` is reached). Every label is checked before any is applied.
    pub async fn add_labels(
        &self,
        ctx: &CallContext,
        model: Arc<LoadedModel>,
        labels: Vec<LabelInput>,
    ) -> Result<LabelsOutput, ServiceError> {
        if labels.is_empty() {
            return Err(ServiceError::invalid(
                "empty_batch",
                Some("labels"),
                "no labels to apply",
            ));
        }
        for (i, l) in labels.iter().enumerate() {
            if l.event_id.trim().is_empty() {
                return Err(ServiceError::invalid(
                    "invalid_field",
                    Some(&format!("labels[{i}].event_id")),
                    format!("labels[{i}].event_id is empty"),
                ));
            }
        }
        let state = self.fraud_state(&model).await?;
        // Once labels are applied they must get their audit record even if the caller stops
        // waiting (a request timeout, a dropped connection): the rest runs as its own task.
        let (this, ctx) = (self.clone(), ctx.clone());
        self.detached(async move { this.add_labels_now(&ctx, model, state, labels).await })
            .await
    }

    /// [`Platform::add_labels`] after the state is open.
    async fn add_labels_now(
        &self,
        ctx: &CallContext,
        model: Arc<LoadedModel>,
        state: Arc<ModelState>,
        labels: Vec<LabelInput>,
    ) -> Result<LabelsOutput, ServiceError> {
        let details_labels: Vec<serde_json::Value> = labels
            .iter()
            .map(|l| serde_json::json!({"event_id": l.event_id, "fraud": l.fraud, "known_at": l.known_at}))
            .collect();
        let requests: Vec<LabelRequest> = labels
            .into_iter()
            .map(|l| LabelRequest {
                event_id: l.event_id,
                fraud: l.fraud,
                known_at: l.known_at,
            })
            .collect();
        let applied = tokio::task::spawn_blocking(move || {
            state
                .state
                .add_labels(&requests)
                .map(|outcomes| {
                    outcomes
                        .iter()
                        .map(|o| matches!(o, LabelOutcome::Applied { .. }))
                        .collect::<Vec<bool>>()
                })
                .map_err(|e| batch_error(e, "labels"))
        })
        .await
        .map_err(join_error)??;
        let entry = AuditEntry {
            event: "fraud.labels".into(),
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
            model: Some(model.name.clone()),
            version: Some(model.version),
            input_sha256: None,
            details: serde_json::json!({"labels": details_labels, "applied": applied}),
        };
        let audit_seq = self.append_event_audit(entry).await?;
        Ok(LabelsOutput {
            model: model.name.clone(),
            applied,
            audit_seq,
        })
    }

    /// Counts and memory of a model's event state (recovering it if this process has not yet).
    pub async fn event_state(
        &self,
        model: Arc<LoadedModel>,
    ) -> Result<EventStateInfo, ServiceError> {
        let state = self.fraud_state(&model).await?;
        let name = model.name.clone();
        let info = tokio::task::spawn_blocking(move || state.state.info())
            .await
            .map_err(join_error)?
            .map_err(|e| fraud_error(e, ""))?;
        Ok(EventStateInfo {
            model: name,
            events_applied: info.events_applied,
            labels_applied: info.labels_applied,
            labels_unmatched: info.labels_unmatched,
            entities: info.entities,
            events_held: info.events_held,
            bytes_per_entity: info.bytes_per_entity,
            watermark: info.watermark,
            backend: info.backend,
        })
    }

    /// The audit record of an events or labels call, under `audit.durability` exactly as a
    /// prediction's.
    async fn append_event_audit(&self, entry: AuditEntry) -> Result<Option<u64>, ServiceError> {
        Ok(match self.inner.config.audit.durability {
            AuditDurability::Sync => Some(self.inner.audit.append(entry).await?.seq),
            AuditDurability::Buffered => {
                self.inner.audit.append_nowait(entry)?;
                None
            }
        })
    }
}

/// `allow`, `review` or `block`.
pub fn action_str(a: FraudAction) -> &'static str {
    match a {
        FraudAction::Allow => "allow",
        FraudAction::Review => "review",
        FraudAction::Block => "block",
    }
}

/// [`crate::input_sha256`] of the events as the engine reads them.
fn events_sha256(spec: &aurum_fraud::CompiledSpec, events: &[Event]) -> String {
    let s = spec.schema();
    let mut fields = vec![
        Field::new(s.id.clone(), ColumnType::Text),
        Field::new(s.timestamp.clone(), ColumnType::Integer),
    ];
    fields.extend(
        s.entities
            .iter()
            .map(|e| Field::new(e.clone(), ColumnType::Text)),
    );
    fields.extend(
        s.amount
            .iter()
            .map(|a| Field::new(a.clone(), ColumnType::Float)),
    );
    let rows: Vec<Vec<Value>> = events
        .iter()
        .map(|e| {
            let mut row = vec![Value::Str(e.id.clone()), Value::Integer(e.ts)];
            row.extend(e.keys.iter().map(|k| Value::Str(k.clone())));
            row.extend(e.amount.map(Value::Float));
            row
        })
        .collect();
    crate::input_sha256(&Schema { fields }, &rows)
}
