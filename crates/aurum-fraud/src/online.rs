//! Where a model's live state lives, behind one trait: [`OnlineState`].
//!
//! Why a trait above [`FeatureEngine`] rather than only the [`crate::EntityStore`] under it: a
//! live call is "check the whole batch, then score and apply every event, or none", and the
//! checks (is this id already applied? is this timestamp too far behind the watermark?) read
//! state that replicas must share as much as the entity windows. In one process a mutex makes
//! check-then-apply one step ([`LocalState`]); a store shared by several processes needs its own
//! transaction (optimistic, in the Redis implementation). Both run the same validation
//! ([`validate_batch`]) and the same feature and update functions
//! ([`crate::features_from_states`], [`crate::apply_event_to_state`]), so a model scores the
//! same event the same way whichever store holds its state.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::durable::{DurableEngine, DurableOptions, Notify, Ticket};
use crate::engine::{LabelOutcome, LabelRef};
use crate::error::{FraudError, Result};
use crate::event::{Event, check_bounds, check_event};
use crate::spec::{CompiledSpec, FeatureSpec};

/// A refused or failed call. `index` is the position of the event or label that was refused
/// (the caller names it `events[i]`); `None` when the call as a whole failed (store down).
#[derive(Debug)]
pub struct BatchError {
    pub index: Option<usize>,
    pub error: FraudError,
}

impl BatchError {
    pub fn at(index: usize, error: FraudError) -> BatchError {
        BatchError {
            index: Some(index),
            error,
        }
    }

    pub fn whole(error: FraudError) -> BatchError {
        BatchError { index: None, error }
    }
}

impl From<FraudError> for BatchError {
    fn from(error: FraudError) -> Self {
        BatchError::whole(error)
    }
}

/// A confirmed label for an earlier event.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelRequest {
    pub event_id: String,
    pub fraud: bool,
    /// When the label became known (Unix seconds); `None`: the state's watermark.
    pub known_at: Option<i64>,
}

/// Counts and size of a model's live state.
#[derive(Clone, Debug, PartialEq)]
pub struct StateInfo {
    /// Where the state lives (`local`, or `redis <host>:<port>/<db>`), credentials left out.
    pub backend: String,
    pub events_applied: u64,
    pub labels_applied: u64,
    pub labels_unmatched: u64,
    pub entities: usize,
    pub events_held: usize,
    pub bytes_per_entity: f64,
    /// The latest event time applied (Unix seconds).
    pub watermark: Option<i64>,
}

/// A model's live event state.
pub trait OnlineState: Send + Sync {
    /// The feature spec the state was built under.
    fn spec(&self) -> &CompiledSpec;

    /// Checks the whole batch with [`validate_batch`] against the current state, then computes
    /// each event's features from the state strictly before it and applies it, in order. Either
    /// every event is applied (and durable, as far as the store promises) or none is.
    fn score_and_apply(&self, events: &[Event]) -> std::result::Result<Vec<Vec<f64>>, BatchError>;

    /// [`OnlineState::score_and_apply`] in two steps: the batch is checked, scored and applied
    /// (later calls see it), and the returned [`Ticket`] is passed to
    /// [`OnlineState::wait_durable`], which returns once the batch is as durable as
    /// `score_and_apply` makes it. Only then may the events be acknowledged. A store that makes
    /// changes durable as it applies them (the default) returns [`Ticket::DONE`].
    fn score_and_apply_deferred(
        &self,
        events: &[Event],
    ) -> std::result::Result<Deferred, BatchError> {
        Ok((self.score_and_apply(events)?, Ticket::DONE))
    }

    /// [`OnlineState::score_and_apply_deferred`] if it can run now without waiting for a lock
    /// another caller holds: `None`, and nothing changed, when it would wait (then call
    /// `score_and_apply_deferred` where waiting is allowed). An async runtime's worker may call
    /// it. The default is `None`: a store whose step waits on the network never runs there.
    fn try_score_and_apply_deferred(
        &self,
        events: &[Event],
    ) -> Option<std::result::Result<Deferred, BatchError>> {
        let _ = events;
        None
    }

    /// Waits until the changes up to `ticket` are durable (see
    /// [`OnlineState::score_and_apply_deferred`]).
    fn wait_durable(&self, ticket: Ticket) -> Result<()> {
        let _ = ticket;
        Ok(())
    }

    /// Calls `done` once the changes up to `ticket` are durable, without holding the caller's
    /// thread while the disk works (what an async runtime's worker needs). The default calls
    /// [`OnlineState::wait_durable`] on the caller's thread, which is right for a store whose
    /// wait returns at once (the default one); a store with a real wait overrides both.
    fn when_durable(self: Arc<Self>, ticket: Ticket, done: Notify) {
        done(self.wait_durable(ticket));
    }

    /// Attaches labels by event id. An id not in state (unknown, or past every window) is
    /// [`LabelOutcome::NotFound`], not an error.
    fn add_labels(
        &self,
        labels: &[LabelRequest],
    ) -> std::result::Result<Vec<LabelOutcome>, BatchError>;

    /// Counts and size.
    fn info(&self) -> Result<StateInfo>;
}

/// Opens the state of a model in a store shared by replicas.
pub trait OnlineStateFactory: Send + Sync {
    /// The state of `model` under `spec`. States of different specs never mix.
    fn open(&self, model: &str, spec: &FeatureSpec) -> Result<Arc<dyn OnlineState>>;

    /// Where the states live, credentials left out (for logs and `/v1/...state`).
    fn describe(&self) -> String;
}

/// How far ahead of this server's clock a live event's timestamp may be (one day: clock skew
/// and time-zone slips, not events from the future). The watermark only moves forward, so one
/// event dated years ahead would otherwise put every later event out of order.
pub const MAX_AHEAD_OF_CLOCK_S: i64 = 86_400;

/// The checks every store runs before a batch changes anything: each event against the spec,
/// ids unique within the batch and not already applied (`applied`), each timestamp at most
/// [`MAX_AHEAD_OF_CLOCK_S`] ahead of this server's clock and no more than the spec's tolerance
/// behind the watermark as it moves through the batch.
pub fn validate_batch(
    spec: &CompiledSpec,
    events: &[Event],
    watermark: Option<i64>,
    applied: impl Fn(&str) -> bool,
) -> std::result::Result<(), BatchError> {
    let tolerance = spec.tolerance_s();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut latest = watermark;
    let mut seen = HashSet::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        check_event(spec, e)
            .and_then(|()| check_bounds(spec, e))
            .map_err(|err| BatchError::at(i, err))?;
        if e.ts > now.saturating_add(MAX_AHEAD_OF_CLOCK_S) {
            return Err(BatchError::at(
                i,
                FraudError::InvalidField {
                    field: spec.schema().timestamp.clone(),
                    message: format!(
                        "{} is {} s ahead of this server's clock ({now}); at most \
                         {MAX_AHEAD_OF_CLOCK_S} s is accepted, since every later event must \
                         not be older than the latest applied one",
                        e.ts,
                        e.ts - now
                    ),
                },
            ));
        }
        if !seen.insert(e.id.as_str()) || applied(&e.id) {
            return Err(BatchError::at(
                i,
                FraudError::DuplicateEvent {
                    field: spec.schema().id.clone(),
                    id: e.id.clone(),
                },
            ));
        }
        if let Some(w) = latest
            && e.ts < w - tolerance
        {
            return Err(BatchError::at(
                i,
                FraudError::OutOfOrder {
                    field: spec.schema().timestamp.clone(),
                    timestamp: e.ts,
                    watermark: w,
                    behind_s: w - e.ts,
                    tolerance_s: tolerance,
                },
            ));
        }
        latest = Some(latest.map_or(e.ts, |w| w.max(e.ts)));
    }
    Ok(())
}

/// A batch applied to the state: each event's features, and the ticket to wait for before
/// acknowledging them ([`OnlineState::score_and_apply_deferred`]).
pub type Deferred = (Vec<Vec<f64>>, Ticket);

/// A batch's per-event results, or the first event's error with its index.
fn per_event(results: Vec<Result<Vec<f64>>>) -> std::result::Result<Vec<Vec<f64>>, BatchError> {
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| BatchError::at(i, e)))
        .collect()
}

/// The state in this process: a [`DurableEngine`] (log + snapshots in a directory) and a mutex
/// that makes check-then-apply one step.
pub struct LocalState {
    engine: Arc<DurableEngine>,
    gate: Mutex<()>,
}

impl LocalState {
    /// Recovers the state in `dir` (snapshot, then log), or starts an empty one.
    pub fn recover(
        dir: &Path,
        spec: &FeatureSpec,
        snapshot_every: Option<u64>,
    ) -> Result<(LocalState, crate::RecoveryReport)> {
        LocalState::recover_with(dir, spec, DurableOptions::unpreallocated(snapshot_every))
    }

    /// [`LocalState::recover`] with every option of the log.
    pub fn recover_with(
        dir: &Path,
        spec: &FeatureSpec,
        options: DurableOptions,
    ) -> Result<(LocalState, crate::RecoveryReport)> {
        let (engine, report) = DurableEngine::recover_with(dir, spec, options)?;
        Ok((
            LocalState {
                engine: Arc::new(engine),
                gate: Mutex::new(()),
            },
            report,
        ))
    }

    /// The durable engine underneath (snapshots, recovery reports).
    pub fn durable(&self) -> &DurableEngine {
        &self.engine
    }
}

impl OnlineState for LocalState {
    fn spec(&self) -> &CompiledSpec {
        self.engine.engine().spec()
    }

    fn score_and_apply(&self, events: &[Event]) -> std::result::Result<Vec<Vec<f64>>, BatchError> {
        let (out, ticket) = self.score_and_apply_deferred(events)?;
        self.engine.wait_durable(ticket)?;
        Ok(out)
    }

    fn score_and_apply_deferred(
        &self,
        events: &[Event],
    ) -> std::result::Result<Deferred, BatchError> {
        // The gate covers check-then-apply only; the wait for the disk happens outside it, so
        // concurrent calls share a commit.
        let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        let engine = self.engine.engine();
        validate_batch(engine.spec(), events, engine.watermark(), |id| {
            engine.contains_event(id)
        })?;
        let (results, ticket) = self.engine.score_and_apply_logged(events)?;
        Ok((per_event(results)?, ticket))
    }

    /// The gate and the log's queue taken without waiting; the batch checked with both held.
    fn try_score_and_apply_deferred(
        &self,
        events: &[Event],
    ) -> Option<std::result::Result<Deferred, BatchError>> {
        let _gate = match self.gate.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(g)) => g.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let applied = self.engine.try_score_and_apply_logged(events, |engine| {
            validate_batch(engine.spec(), events, engine.watermark(), |id| {
                engine.contains_event(id)
            })
        })?;
        Some(applied.and_then(|(results, ticket)| Ok((per_event(results)?, ticket))))
    }

    fn wait_durable(&self, ticket: Ticket) -> Result<()> {
        self.engine.wait_durable(ticket)
    }

    /// The engine's background committer tells `done` ([`DurableEngine::when_durable`]).
    fn when_durable(self: Arc<Self>, ticket: Ticket, done: Notify) {
        self.engine.when_durable(ticket, done);
    }

    fn add_labels(
        &self,
        labels: &[LabelRequest],
    ) -> std::result::Result<Vec<LabelOutcome>, BatchError> {
        let (outcomes, ticket) = {
            let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            let now = self.engine.engine().watermark().unwrap_or(0);
            let mut ticket = Ticket::DONE;
            let mut outcomes = Vec::with_capacity(labels.len());
            for (i, l) in labels.iter().enumerate() {
                let logged = self.engine.add_label_logged(
                    &LabelRef::EventId(l.event_id.clone()),
                    l.fraud,
                    l.known_at.unwrap_or(now),
                );
                match logged {
                    Ok((outcome, t)) => {
                        ticket = ticket.max(t);
                        outcomes.push(Ok(outcome));
                    }
                    Err(e) => {
                        outcomes.push(Err(BatchError::at(i, e)));
                        break;
                    }
                }
            }
            (outcomes, ticket)
        };
        // Labels before a refused one stay applied, as they did one by one, and are durable
        // before the call answers either way.
        self.engine.wait_durable(ticket)?;
        outcomes.into_iter().collect()
    }

    fn info(&self) -> Result<StateInfo> {
        let engine = self.engine.engine();
        let stats = engine.stats();
        let mem = engine.memory_estimate();
        Ok(StateInfo {
            backend: "local".into(),
            events_applied: stats.events_applied,
            labels_applied: stats.labels_applied,
            labels_unmatched: stats.labels_unmatched,
            entities: mem.entities,
            events_held: mem.events_held,
            bytes_per_entity: mem.bytes_per_entity(),
            watermark: engine.watermark(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::{SCHEMA, ev};

    const FEATURES: &str = r#"
[[features]]
kind = "count"
entity = "customer_id"
window = "1d"
[[features]]
kind = "mean"
entity = "terminal_id"
window = "1d"
"#;

    /// A live event dated more than a day ahead of the clock is refused before it can move the
    /// watermark (which would put every later event out of order); a day ahead is accepted.
    #[test]
    fn a_live_event_from_the_future_is_refused_before_it_moves_the_watermark() {
        let spec = FeatureSpec::from_toml_str(&format!("{SCHEMA}{FEATURES}")).unwrap();
        let compiled = spec.compile().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let ok = [
            ev("a", now, "c", "t", 1.0),
            ev("b", now + 3600, "c", "t", 1.0),
        ];
        validate_batch(&compiled, &ok, Some(now - 10), |_| false).unwrap();
        let far = now + 10 * MAX_AHEAD_OF_CLOCK_S;
        let refused = validate_batch(
            &compiled,
            &[ev("a", now, "c", "t", 1.0), ev("b", far, "c", "t", 1.0)],
            None,
            |_| false,
        )
        .unwrap_err();
        assert_eq!(refused.index, Some(1));
        assert_eq!(refused.error.code(), "fraud_invalid_field");
        assert!(
            refused
                .error
                .to_string()
                .contains("ahead of this server's clock"),
            "{}",
            refused.error
        );
        // Past the calendar, or an amount whose square overflows: refused at the same place,
        // before the batch changes anything.
        for bad in [
            ev("c", i64::MAX, "c", "t", 1.0),
            ev("d", now, "c", "t", 1e308),
        ] {
            let refused =
                validate_batch(&compiled, &[ok[0].clone(), bad], None, |_| false).unwrap_err();
            assert_eq!(refused.index, Some(1));
            assert_eq!(refused.error.code(), "fraud_invalid_field");
        }
    }

    /// The try path never waits: with the gate or the log's queue held elsewhere it does nothing
    /// and says so; free, it applies what the waiting path applies, durably, and a refused
    /// batch changes nothing.
    #[test]
    fn the_try_path_never_waits_and_applies_what_the_waiting_path_does() {
        let dir = std::env::temp_dir().join(format!("aurum-fraud-try-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spec = FeatureSpec::from_toml_str(&format!("{SCHEMA}{FEATURES}")).unwrap();
        let (state, _) = LocalState::recover(&dir, &spec, None).unwrap();
        let reference_dir = dir.with_extension("reference");
        let _ = std::fs::remove_dir_all(&reference_dir);
        let (reference, _) = LocalState::recover(&reference_dir, &spec, None).unwrap();
        let batch = [ev("a", 10, "c", "t", 5.0), ev("b", 20, "c", "t", 7.0)];
        {
            let _gate = state.gate.lock().unwrap();
            assert!(state.try_score_and_apply_deferred(&batch).is_none());
        }
        {
            let _queue = state.engine.pending();
            assert!(state.try_score_and_apply_deferred(&batch).is_none());
        }
        assert_eq!(state.info().unwrap().events_applied, 0, "nothing applied");
        let (got, ticket) = state.try_score_and_apply_deferred(&batch).unwrap().unwrap();
        let (want, _) = reference.score_and_apply_deferred(&batch).unwrap();
        assert_eq!(got, want);
        assert_eq!(got[1], [1.0, 5.0]);
        state.wait_durable(ticket).unwrap();
        // A duplicate id in the batch's second event: refused whole, at index 1.
        let refused = state
            .try_score_and_apply_deferred(&[ev("c", 30, "c", "t", 1.0), ev("a", 40, "c", "t", 1.0)])
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.index, Some(1));
        assert_eq!(state.info().unwrap().events_applied, 2);
        drop(state);
        let (recovered, report) = LocalState::recover(&dir, &spec, None).unwrap();
        assert_eq!(report.events_replayed, 2);
        assert!(recovered.durable().engine().contains_event("b"));
        drop((recovered, reference));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&reference_dir);
    }
}
