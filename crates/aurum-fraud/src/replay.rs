//! Point-in-time replay: the training feature matrix, computed by the live code path.
//!
//! Why replay instead of a batch (SQL/dataframe) computation of the same features: a batch job
//! is a second implementation, and it must re-derive "what was known at the time" for every
//! label. Replay feeds the history, in time order, through the very calls a live process makes:
//! before each event, every label that had become known by then is delivered with
//! [`FeatureEngine::add_label`]; then [`FeatureEngine::score_and_apply`] returns the row. A label
//! of event `e` becomes known at `e.ts + label_delay` unless the caller says when it was known.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::engine::{FeatureEngine, LabelRef};
use crate::error::{FraudError, Result};
use crate::event::Event;
use crate::spec::FeatureSpec;

/// The label of one event for training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingLabel {
    pub event_id: String,
    pub fraud: bool,
    /// When the label became known; `None` means `event time + label_delay`.
    pub known_at: Option<i64>,
}

/// Rows in event order: one feature vector per event.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureMatrix {
    pub names: Vec<String>,
    pub ids: Vec<String>,
    pub ts: Vec<i64>,
    pub rows: Vec<Vec<f64>>,
    /// Each event's own label, if given (the target; never a feature).
    pub labels: Vec<Option<bool>>,
}

impl FeatureMatrix {
    /// CSV with a header: `id`, `ts` (Unix seconds), the features, `label` (empty when unknown).
    /// Floats are written in Rust's shortest round-trip form.
    pub fn write_csv<W: Write>(&self, mut w: W) -> std::io::Result<()> {
        write!(w, "id,ts")?;
        for n in &self.names {
            write!(w, ",{n}")?;
        }
        writeln!(w, ",label")?;
        let mut line = String::new();
        for i in 0..self.rows.len() {
            line.clear();
            line.push_str(&csv_cell(&self.ids[i]));
            line.push(',');
            line.push_str(&self.ts[i].to_string());
            for x in &self.rows[i] {
                line.push(',');
                line.push_str(&x.to_string());
            }
            line.push(',');
            match self.labels[i] {
                Some(true) => line.push('1'),
                Some(false) => line.push('0'),
                None => {}
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        Ok(())
    }
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The labels carried by the events themselves (the schema's label column).
pub fn labels_from_events(events: &[Event]) -> Vec<TrainingLabel> {
    events
        .iter()
        .filter_map(|e| {
            e.label.map(|fraud| TrainingLabel {
                event_id: e.id.clone(),
                fraud,
                known_at: None,
            })
        })
        .collect()
}

/// Replays `events` (sorted by time, within the spec's tolerance) through a fresh engine and
/// returns one feature row per event. Labels of events not in `events` are refused.
pub fn replay(
    spec: &FeatureSpec,
    events: &[Event],
    labels: &[TrainingLabel],
    label_delay_s: i64,
) -> Result<FeatureMatrix> {
    let engine = FeatureEngine::new(spec)?;
    replay_into(&engine, events, labels, label_delay_s)
}

/// [`replay`] into a given engine (fresh, or holding earlier history).
pub fn replay_into(
    engine: &FeatureEngine,
    events: &[Event],
    labels: &[TrainingLabel],
    label_delay_s: i64,
) -> Result<FeatureMatrix> {
    if label_delay_s < 0 {
        return Err(FraudError::input(
            "label_delay",
            format!("{label_delay_s} s is negative"),
        ));
    }
    let mut by_id: HashMap<&str, &TrainingLabel> = HashMap::with_capacity(labels.len());
    for l in labels {
        if by_id.insert(l.event_id.as_str(), l).is_some() {
            return Err(FraudError::input(
                "labels",
                format!("event `{}` has two labels", l.event_id),
            ));
        }
    }
    let mut pending: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    let mut out = FeatureMatrix {
        names: engine.feature_names().to_vec(),
        ids: Vec::with_capacity(events.len()),
        ts: Vec::with_capacity(events.len()),
        rows: Vec::with_capacity(events.len()),
        labels: Vec::with_capacity(events.len()),
    };
    let mut used = 0;
    for (i, e) in events.iter().enumerate() {
        while let Some(Reverse((known_at, j))) = pending.peek().copied() {
            if known_at > e.ts {
                break;
            }
            pending.pop();
            let fraud = by_id.get(events[j].id.as_str()).is_some_and(|l| l.fraud);
            engine.add_label(&LabelRef::EventId(events[j].id.clone()), fraud, known_at)?;
        }
        let row = engine.score_and_apply(e).map_err(|err| match err {
            FraudError::OutOfOrder { .. } | FraudError::DuplicateEvent { .. } => FraudError::input(
                format!("events[{i}]"),
                format!("{err} (replay needs events sorted by time)"),
            ),
            other => other,
        })?;
        let label = by_id.get(e.id.as_str());
        if let Some(l) = label {
            used += 1;
            pending.push(Reverse((
                l.known_at.unwrap_or(e.ts.saturating_add(label_delay_s)),
                i,
            )));
        }
        out.ids.push(e.id.clone());
        out.ts.push(e.ts);
        out.rows.push(row);
        out.labels.push(label.map(|l| l.fraud).or(e.label));
    }
    if used != by_id.len() {
        let missing = labels
            .iter()
            .find(|l| !events.iter().any(|e| e.id == l.event_id));
        if let Some(l) = missing {
            return Err(FraudError::input(
                "labels",
                format!("event `{}` is not in the replayed events", l.event_id),
            ));
        }
    }
    Ok(out)
}
