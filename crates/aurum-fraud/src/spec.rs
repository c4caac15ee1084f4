//! The feature spec: what an event looks like and which streaming features to compute from it.
//!
//! Why a declarative spec instead of feature code: the same spec drives the training replay and
//! the live engine, so a feature cannot be computed one way for training and another way in
//! production. The spec is data (TOML or JSON), so it can be stored beside the model that was
//! trained on it and checked by fingerprint when online state is recovered.
//!
//! Why one flat `FeatureDef` struct with optional fields instead of a serde-tagged enum: serde's
//! internally tagged enums do not honour `deny_unknown_fields` reliably and their errors do not
//! say which list element was wrong. Here serde refuses unknown keys, and [`FeatureSpec::compile`]
//! checks, per kind, which fields are required or forbidden and names the exact field
//! (`features[3].window: "7x" is not a duration like 10m, 1h, 7d`).
//!
//! Window semantics: a window of length `w` for an event at time `t` covers the entity's earlier
//! events with timestamps in `(t − w, t]`; the event itself is never part of its own features.
//! A label-risk window with delay `d` covers `(t − d − w, t − d]` and counts only labels whose
//! `known_at` is at or before `t`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{FraudError, Result};

/// A feature spec as written by a person. Validate it with [`FeatureSpec::compile`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    pub schema: EventSchema,
    #[serde(default)]
    pub constraints: Constraints,
    pub features: Vec<FeatureDef>,
}

/// Which event fields mean what. Every other field of an incoming event is refused unless it is
/// listed in `ignore` (kept on the event as `extra`, never a feature).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSchema {
    pub id: String,
    pub timestamp: String,
    #[serde(default)]
    pub amount: Option<String>,
    pub entities: Vec<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub ignore: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// Smallest accepted amount (e.g. 0 to forbid negative amounts).
    #[serde(default)]
    pub amount_min: Option<f64>,
    /// How far behind the latest applied event a new event may be (a duration; default `0s`).
    #[serde(default)]
    pub out_of_order_tolerance: Option<String>,
    /// Memory bound: events kept per entity; the oldest are dropped first (default 10 000).
    #[serde(default)]
    pub max_events_per_entity: Option<usize>,
}

/// Default for [`Constraints::max_events_per_entity`].
pub const DEFAULT_MAX_EVENTS_PER_ENTITY: usize = 10_000;

/// One feature. Which optional fields apply depends on `kind` (see [`FeatureKind`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureDef {
    pub kind: FeatureKind,
    #[serde(default)]
    pub entity: Option<String>,
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub of: Option<String>,
    #[serde(default)]
    pub delay: Option<String>,
    /// `history` only: how many previous events (1..=256). Absent from the canonical form when
    /// not given, so specs written before the field existed keep their fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<usize>,
}

/// Longest `history` a feature may ask for.
pub const MAX_HISTORY_LENGTH: usize = 256;

/// The feature kinds. Fields: `entity` for all but `amount`; `window` for the window kinds and
/// the fraud kinds; `of` (another entity key) for `distinct` and `first_seen`; `delay` for the
/// fraud kinds, and optionally for `count`, `sum`, `mean`, `max` and `std` (the window then ends
/// `delay` before the event, as the handbook's terminal counts do); `length` for `history`
/// (which also takes `entity` and `window`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// The event's own amount.
    Amount,
    Count,
    Sum,
    Mean,
    Max,
    /// Sample standard deviation (n − 1); 0 with fewer than two events.
    Std,
    /// Distinct values of entity key `of` in the window.
    Distinct,
    /// Seconds since the entity's previous event; −1 when it has none.
    TimeSinceLast,
    /// Amount / window mean amount; 1 when the window is empty or its mean is 0.
    AmountToMean,
    /// (amount − window mean) / window std; 0 with fewer than two events or std 0.
    AmountZscore,
    /// 1 when this value of `of` was never seen with this entity before, else 0.
    FirstSeen,
    /// Known frauds in the delayed window.
    FraudCount,
    /// Known frauds / events in the delayed window; 0 when it has no events.
    FraudRate,
    /// The entity's last `length` events within the window, most recent first: three outputs
    /// per step `k` (`{entity}_prev{k}_amount_{window}`, `…_seconds_ago_{window}`,
    /// `…_fraud_{window}`: the amount, the seconds since it, 1 when a fraud label on it is known
    /// by now). A step the entity has no event for reads amount 0, seconds −1, fraud 0. What a
    /// sequence model reads as the entity's recent events.
    History,
}

impl FeatureKind {
    fn as_str(self) -> &'static str {
        match self {
            FeatureKind::Amount => "amount",
            FeatureKind::Count => "count",
            FeatureKind::Sum => "sum",
            FeatureKind::Mean => "mean",
            FeatureKind::Max => "max",
            FeatureKind::Std => "std",
            FeatureKind::Distinct => "distinct",
            FeatureKind::TimeSinceLast => "time_since_last",
            FeatureKind::AmountToMean => "amount_to_mean",
            FeatureKind::AmountZscore => "amount_zscore",
            FeatureKind::FirstSeen => "first_seen",
            FeatureKind::FraudCount => "fraud_count",
            FeatureKind::FraudRate => "fraud_rate",
            FeatureKind::History => "history",
        }
    }

    fn needs_window(self) -> bool {
        !matches!(
            self,
            FeatureKind::Amount | FeatureKind::TimeSinceLast | FeatureKind::FirstSeen
        )
    }

    fn needs_of(self) -> bool {
        matches!(self, FeatureKind::Distinct | FeatureKind::FirstSeen)
    }

    fn needs_delay(self) -> bool {
        matches!(self, FeatureKind::FraudCount | FeatureKind::FraudRate)
    }

    fn may_delay(self) -> bool {
        self.needs_delay()
            || matches!(
                self,
                FeatureKind::Count
                    | FeatureKind::Sum
                    | FeatureKind::Mean
                    | FeatureKind::Max
                    | FeatureKind::Std
            )
    }

    fn needs_amount(self) -> bool {
        matches!(
            self,
            FeatureKind::Amount
                | FeatureKind::Sum
                | FeatureKind::Mean
                | FeatureKind::Max
                | FeatureKind::Std
                | FeatureKind::AmountToMean
                | FeatureKind::AmountZscore
        )
    }
}

/// Summary statistics of one window, computed once per (entity, window) per event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stat {
    Count,
    Sum,
    Mean,
    Max,
    Std,
    ToMean,
    Zscore,
}

/// A validated feature, with entity keys resolved to their index in `schema.entities`.
#[derive(Clone, Debug)]
pub(crate) enum Compiled {
    Amount,
    Window {
        group: usize,
        stat: Stat,
    },
    Distinct {
        window: i64,
        slot: usize,
    },
    SinceLast,
    FirstSeen {
        slot: usize,
    },
    Fraud {
        window: i64,
        delay: i64,
        rate: bool,
    },
    /// Step `back` (1 = the previous event) of a `history` feature.
    History {
        window: i64,
        back: usize,
        field: HistoryField,
    },
}

/// What a `history` output reads of its step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HistoryField {
    Amount,
    SecondsAgo,
    Fraud,
}

/// Where the outputs of one `history` feature sit in the feature vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryLayout {
    /// The entity key column.
    pub entity: String,
    pub window_s: i64,
    /// Per step, most recent first: the indices of its amount, seconds-ago and fraud outputs.
    pub steps: Vec<[usize; 3]>,
}

/// A validated spec, ready for an engine. Built only by [`FeatureSpec::compile`].
#[derive(Clone, Debug)]
pub struct CompiledSpec {
    pub(crate) source: FeatureSpec,
    pub(crate) names: Vec<String>,
    pub(crate) features: Vec<Compiled>,
    /// Per output: the index of the `features` entry that declared it (a `history` declares
    /// several outputs, every other kind one).
    pub(crate) def_of: Vec<usize>,
    /// Distinct (entity, window, delay) triples whose summary statistics some feature reads.
    pub(crate) groups: Vec<(usize, i64, i64)>,
    /// Per group: whether a feature reads its standard deviation (std or z-score).
    pub(crate) group_std: Vec<bool>,
    /// Per entity key: how long an event must be kept (longest window, plus delay).
    pub(crate) horizon: Vec<i64>,
    /// Per entity key: whether its events are kept at all (some window feature reads them).
    pub(crate) keeps_events: Vec<bool>,
    /// Per entity key: the `of` keys whose hashed values are stored with each event (distinct).
    pub(crate) distinct_of: Vec<Vec<usize>>,
    /// Per entity key: the `of` keys tracked for first-seen flags.
    pub(crate) first_seen_of: Vec<Vec<usize>>,
    /// Per entity key: the features that read it, in output order.
    pub(crate) by_entity: Vec<Vec<usize>>,
    pub(crate) tolerance: i64,
    pub(crate) amount_min: Option<f64>,
    pub(crate) max_events: usize,
    pub(crate) fingerprint: String,
}

impl CompiledSpec {
    /// Output feature names, in vector order.
    pub fn feature_names(&self) -> &[String] {
        &self.names
    }

    pub fn schema(&self) -> &EventSchema {
        &self.source.schema
    }

    pub fn source(&self) -> &FeatureSpec {
        &self.source
    }

    /// SHA-256 (hex) of the spec's canonical JSON: durable state records it and refuses to load
    /// under another spec.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The out-of-order tolerance in seconds.
    pub fn tolerance_s(&self) -> i64 {
        self.tolerance
    }

    pub fn max_events_per_entity(&self) -> usize {
        self.max_events
    }

    /// The `history` features, in spec order.
    pub fn histories(&self) -> Vec<HistoryLayout> {
        let mut out: Vec<(usize, HistoryLayout)> = Vec::new();
        for (c, outputs) in self.by_entity.iter().enumerate() {
            for &fi in outputs {
                let Compiled::History {
                    window,
                    back,
                    field,
                } = self.features[fi]
                else {
                    continue;
                };
                let def = self.def_of[fi];
                let at = match out.iter().position(|(d, _)| *d == def) {
                    Some(at) => at,
                    None => {
                        out.push((
                            def,
                            HistoryLayout {
                                entity: self.source.schema.entities[c].clone(),
                                window_s: window,
                                steps: Vec::new(),
                            },
                        ));
                        out.len() - 1
                    }
                };
                let steps = &mut out[at].1.steps;
                if steps.len() < back {
                    steps.resize(back, [0; 3]);
                }
                let slot = match field {
                    HistoryField::Amount => 0,
                    HistoryField::SecondsAgo => 1,
                    HistoryField::Fraud => 2,
                };
                steps[back - 1][slot] = fi;
            }
        }
        out.sort_by_key(|(d, _)| *d);
        out.into_iter().map(|(_, h)| h).collect()
    }

    /// The longest time any event stays in state, over all entity keys (seconds).
    pub fn max_horizon_s(&self) -> i64 {
        self.horizon.iter().copied().max().unwrap_or(0)
    }
}

/// Parses `10m`, `1h`, `7d` (units s, m, h, d, w) to seconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let t = text.trim();
    let unit_at = t.find(|c: char| !c.is_ascii_digit())?;
    if unit_at == 0 {
        return None;
    }
    let (digits, unit) = t.split_at(unit_at);
    let n: i64 = digits.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    let secs = n.checked_mul(scale)?;
    // Ten years is far beyond any fraud window and keeps every later sum far from overflow.
    (secs <= 3_650 * 86_400).then_some(secs)
}

fn duration_field(field: &str, text: &str, allow_zero: bool) -> Result<i64> {
    let secs = parse_duration(text).ok_or_else(|| {
        FraudError::spec(
            field,
            format!("{text:?} is not a duration like 10m, 1h, 7d (at most 3650d)"),
        )
    })?;
    if secs == 0 && !allow_zero {
        return Err(FraudError::spec(
            field,
            format!("{text:?} must be longer than 0s"),
        ));
    }
    Ok(secs)
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl FeatureSpec {
    pub fn from_toml_str(text: &str) -> Result<FeatureSpec> {
        toml::from_str(text).map_err(|e| FraudError::SpecSyntax(e.to_string().trim().to_string()))
    }

    pub fn from_json_str(text: &str) -> Result<FeatureSpec> {
        serde_json::from_str(text).map_err(|e| FraudError::SpecSyntax(e.to_string()))
    }

    /// Validates the spec and resolves it for an engine. The first problem is returned, naming
    /// its field.
    pub fn compile(&self) -> Result<CompiledSpec> {
        let s = &self.schema;
        let mut used: Vec<(String, String)> = Vec::new();
        let mut claim = |field: String, name: &str| -> Result<()> {
            if name.trim().is_empty() {
                return Err(FraudError::spec(field, "is empty"));
            }
            if let Some((other, _)) = used.iter().find(|(_, n)| n == name) {
                return Err(FraudError::spec(
                    field,
                    format!("{name:?} is already used as {other}"),
                ));
            }
            used.push((field, name.to_string()));
            Ok(())
        };
        claim("schema.id".into(), &s.id)?;
        claim("schema.timestamp".into(), &s.timestamp)?;
        if let Some(a) = &s.amount {
            claim("schema.amount".into(), a)?;
        }
        if s.entities.is_empty() {
            return Err(FraudError::spec(
                "schema.entities",
                "needs at least one entity key",
            ));
        }
        if s.entities.len() > u16::MAX as usize {
            return Err(FraudError::spec("schema.entities", "too many entity keys"));
        }
        for (i, e) in s.entities.iter().enumerate() {
            claim(format!("schema.entities[{i}]"), e)?;
        }
        if let Some(l) = &s.label {
            claim("schema.label".into(), l)?;
        }
        for (i, e) in s.ignore.iter().enumerate() {
            claim(format!("schema.ignore[{i}]"), e)?;
        }

        let c = &self.constraints;
        if let Some(m) = c.amount_min
            && !m.is_finite()
        {
            return Err(FraudError::spec(
                "constraints.amount_min",
                "must be a finite number",
            ));
        }
        if c.amount_min.is_some() && s.amount.is_none() {
            return Err(FraudError::spec(
                "constraints.amount_min",
                "needs schema.amount",
            ));
        }
        let tolerance = match &c.out_of_order_tolerance {
            Some(t) => duration_field("constraints.out_of_order_tolerance", t, true)?,
            None => 0,
        };
        let max_events = c
            .max_events_per_entity
            .unwrap_or(DEFAULT_MAX_EVENTS_PER_ENTITY);
        if max_events == 0 {
            return Err(FraudError::spec(
                "constraints.max_events_per_entity",
                "must be at least 1",
            ));
        }

        if self.features.is_empty() {
            return Err(FraudError::spec("features", "needs at least one feature"));
        }
        let n = s.entities.len();
        let entity_index = |field: String, name: &str| -> Result<usize> {
            s.entities.iter().position(|e| e == name).ok_or_else(|| {
                FraudError::spec(
                    field,
                    format!(
                        "{name:?} is not one of schema.entities ({})",
                        s.entities.join(", ")
                    ),
                )
            })
        };
        let mut out = CompiledSpec {
            source: self.clone(),
            names: Vec::new(),
            features: Vec::new(),
            def_of: Vec::new(),
            groups: Vec::new(),
            group_std: Vec::new(),
            horizon: vec![0; n],
            keeps_events: vec![false; n],
            distinct_of: vec![Vec::new(); n],
            first_seen_of: vec![Vec::new(); n],
            by_entity: vec![Vec::new(); n],
            tolerance,
            amount_min: c.amount_min,
            max_events,
            fingerprint: String::new(),
        };
        for (i, f) in self.features.iter().enumerate() {
            let at = |field: &str| format!("features[{i}].{field}");
            let kind = f.kind;
            let check = |field: &str, present: bool, needed: bool| -> Result<()> {
                match (present, needed) {
                    (false, true) => Err(FraudError::spec(
                        at(field),
                        format!("is required for kind {:?}", kind.as_str()),
                    )),
                    (true, false) => Err(FraudError::spec(
                        at(field),
                        format!("is not used by kind {:?}", kind.as_str()),
                    )),
                    _ => Ok(()),
                }
            };
            check("entity", f.entity.is_some(), kind != FeatureKind::Amount)?;
            check("window", f.window.is_some(), kind.needs_window())?;
            check("of", f.of.is_some(), kind.needs_of())?;
            if !(f.delay.is_some() && kind.may_delay()) {
                check("delay", f.delay.is_some(), kind.needs_delay())?;
            }
            check("length", f.length.is_some(), kind == FeatureKind::History)?;
            if let Some(l) = f.length
                && !(1..=MAX_HISTORY_LENGTH).contains(&l)
            {
                return Err(FraudError::spec(
                    at("length"),
                    format!("{l} is not in 1..={MAX_HISTORY_LENGTH}"),
                ));
            }
            if kind.needs_amount() && s.amount.is_none() {
                return Err(FraudError::spec(
                    at("kind"),
                    format!("{:?} needs schema.amount", kind.as_str()),
                ));
            }
            let window_text = f.window.as_deref().unwrap_or("");
            let window = match &f.window {
                Some(w) => duration_field(&at("window"), w, false)?,
                None => 0,
            };
            let entity_name = f.entity.as_deref().unwrap_or("");
            let entity = match &f.entity {
                Some(e) => Some(entity_index(at("entity"), e)?),
                None => None,
            };
            let of = match &f.of {
                Some(o) => {
                    let idx = entity_index(at("of"), o)?;
                    if Some(idx) == entity {
                        return Err(FraudError::spec(
                            at("of"),
                            format!("{o:?} must differ from the entity"),
                        ));
                    }
                    Some(idx)
                }
                None => None,
            };
            let e_slug = slug(entity_name);
            let delay = match &f.delay {
                Some(d) => duration_field(&at("delay"), d, true)?,
                None => 0,
            };
            // "_delay_7d" for delayed windows, nothing otherwise.
            let delay_suffix = f
                .delay
                .as_deref()
                .map(|d| format!("_delay_{d}"))
                .unwrap_or_default();
            let w = format!("{window_text}{delay_suffix}");
            let mut group = |stat: Stat| -> Compiled {
                let key = (entity.unwrap_or(0), window, delay);
                let g = match out.groups.iter().position(|x| *x == key) {
                    Some(g) => g,
                    None => {
                        out.groups.push(key);
                        out.groups.len() - 1
                    }
                };
                if out.group_std.len() < out.groups.len() {
                    out.group_std.resize(out.groups.len(), false);
                }
                out.group_std[g] |= matches!(stat, Stat::Std | Stat::Zscore);
                Compiled::Window { group: g, stat }
            };
            let one = |name: String, compiled: Compiled| vec![(name, compiled)];
            let outputs: Vec<(String, Compiled)> = match kind {
                FeatureKind::Amount => one(
                    slug(s.amount.as_deref().unwrap_or("amount")),
                    Compiled::Amount,
                ),
                FeatureKind::Count => one(format!("{e_slug}_count_{w}"), group(Stat::Count)),
                FeatureKind::Sum => one(format!("{e_slug}_amount_sum_{w}"), group(Stat::Sum)),
                FeatureKind::Mean => one(format!("{e_slug}_amount_mean_{w}"), group(Stat::Mean)),
                FeatureKind::Max => one(format!("{e_slug}_amount_max_{w}"), group(Stat::Max)),
                FeatureKind::Std => one(format!("{e_slug}_amount_std_{w}"), group(Stat::Std)),
                FeatureKind::AmountToMean => one(
                    format!("{e_slug}_amount_to_mean_{window_text}"),
                    group(Stat::ToMean),
                ),
                FeatureKind::AmountZscore => one(
                    format!("{e_slug}_amount_zscore_{window_text}"),
                    group(Stat::Zscore),
                ),
                FeatureKind::Distinct => {
                    let (e, o) = (entity.unwrap_or(0), of.unwrap_or(0));
                    let slots = &mut out.distinct_of[e];
                    let slot = slots.iter().position(|x| *x == o).unwrap_or_else(|| {
                        slots.push(o);
                        slots.len() - 1
                    });
                    let name = format!("{e_slug}_distinct_{}_{window_text}", slug(&s.entities[o]));
                    one(name, Compiled::Distinct { window, slot })
                }
                FeatureKind::TimeSinceLast => {
                    one(format!("{e_slug}_seconds_since_last"), Compiled::SinceLast)
                }
                FeatureKind::FirstSeen => {
                    let (e, o) = (entity.unwrap_or(0), of.unwrap_or(0));
                    let slots = &mut out.first_seen_of[e];
                    let slot = slots.iter().position(|x| *x == o).unwrap_or_else(|| {
                        slots.push(o);
                        slots.len() - 1
                    });
                    one(
                        format!("{e_slug}_first_{}", slug(&s.entities[o])),
                        Compiled::FirstSeen { slot },
                    )
                }
                FeatureKind::FraudCount | FeatureKind::FraudRate => {
                    let rate = kind == FeatureKind::FraudRate;
                    let what = if rate { "fraud_rate" } else { "fraud_count" };
                    one(
                        format!("{e_slug}_{what}_{w}"),
                        Compiled::Fraud {
                            window,
                            delay,
                            rate,
                        },
                    )
                }
                FeatureKind::History => {
                    let fields = [
                        ("amount", HistoryField::Amount),
                        ("seconds_ago", HistoryField::SecondsAgo),
                        ("fraud", HistoryField::Fraud),
                    ];
                    let mut outputs = Vec::new();
                    for back in 1..=f.length.unwrap_or(1) {
                        for (what, field) in fields {
                            outputs.push((
                                format!("{e_slug}_prev{back}_{what}_{window_text}"),
                                Compiled::History {
                                    window,
                                    back,
                                    field,
                                },
                            ));
                        }
                    }
                    outputs
                }
            };
            for (name, compiled) in outputs {
                if let Some(j) = out.names.iter().position(|x| *x == name) {
                    return Err(FraudError::spec(
                        format!("features[{i}]"),
                        format!("duplicates features[{}] ({name})", out.def_of[j]),
                    ));
                }
                if let Some(e) = entity {
                    let reach = match compiled {
                        Compiled::Fraud { .. } | Compiled::Window { .. } => window + delay,
                        Compiled::Distinct { .. } | Compiled::History { .. } => window,
                        Compiled::Amount | Compiled::SinceLast | Compiled::FirstSeen { .. } => 0,
                    };
                    if reach > 0 {
                        out.keeps_events[e] = true;
                        out.horizon[e] = out.horizon[e].max(reach);
                    }
                    out.by_entity[e].push(out.names.len());
                }
                out.names.push(name);
                out.features.push(compiled);
                out.def_of.push(i);
            }
        }
        let canonical =
            serde_json::to_string(self).map_err(|e| FraudError::SpecSyntax(e.to_string()))?;
        out.fingerprint = Sha256::digest(canonical.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::SCHEMA as BASE;

    fn spec_with(features: &str) -> Result<CompiledSpec> {
        FeatureSpec::from_toml_str(&format!("{BASE}\n{features}"))?.compile()
    }

    #[test]
    fn history_needs_a_length_and_keeps_old_fingerprints() {
        let ok = spec_with(
            "[[features]]\nkind = \"history\"\nentity = \"customer_id\"\nwindow = \"7d\"\nlength = 3",
        )
        .unwrap();
        assert_eq!(ok.feature_names().len(), 9);
        assert_eq!(ok.feature_names()[8], "customer_id_prev3_fraud_7d");
        assert_eq!(ok.max_horizon_s(), 7 * 86_400);
        let err = |f: &str| spec_with(f).unwrap_err().to_string();
        let e = err("[[features]]\nkind = \"history\"\nentity = \"customer_id\"\nwindow = \"7d\"");
        assert!(e.contains("features[0].length"), "{e}");
        let e = err(
            "[[features]]\nkind = \"history\"\nentity = \"customer_id\"\nwindow = \"7d\"\nlength = 0",
        );
        assert!(
            e.contains("features[0].length") && e.contains("1..=256"),
            "{e}"
        );
        let e = err(
            "[[features]]\nkind = \"count\"\nentity = \"customer_id\"\nwindow = \"7d\"\nlength = 2",
        );
        assert!(
            e.contains("features[0].length") && e.contains("not used"),
            "{e}"
        );
        // Two outputs of the second feature collide with the first: named by declaring feature.
        let e = err(
            "[[features]]\nkind = \"history\"\nentity = \"customer_id\"\nwindow = \"7d\"\nlength = 1\n\
             [[features]]\nkind = \"history\"\nentity = \"customer_id\"\nwindow = \"7d\"\nlength = 2",
        );
        assert!(
            e.contains("features[1]") && e.contains("features[0]"),
            "{e}"
        );
        // A spec without `length` serialises as before, so its fingerprint (which recovered
        // state is checked against) does not change.
        let plain = spec_with("[[features]]\nkind = \"amount\"").unwrap();
        assert!(
            !serde_json::to_string(plain.source())
                .unwrap()
                .contains("length")
        );
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10m"), Some(600));
        assert_eq!(parse_duration("1h"), Some(3600));
        assert_eq!(parse_duration("7d"), Some(604_800));
        assert_eq!(parse_duration("2w"), Some(1_209_600));
        assert_eq!(parse_duration("0s"), Some(0));
        for bad in ["7x", "d", "", "1.5h", "-1d", "99999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_are_deterministic() {
        let c = spec_with(
            r#"
[[features]]
kind = "count"
entity = "customer_id"
window = "1d"
[[features]]
kind = "fraud_rate"
entity = "terminal_id"
window = "7d"
delay = "7d"
[[features]]
kind = "first_seen"
entity = "customer_id"
of = "terminal_id"
[[features]]
kind = "amount"
[[features]]
kind = "count"
entity = "terminal_id"
window = "30d"
delay = "7d"
"#,
        )
        .unwrap();
        assert_eq!(
            c.feature_names(),
            [
                "customer_id_count_1d",
                "terminal_id_fraud_rate_7d_delay_7d",
                "customer_id_first_terminal_id",
                "amount",
                "terminal_id_count_30d_delay_7d",
            ]
        );
        assert_eq!(c.horizon, vec![86_400, 37 * 86_400]);
    }

    #[test]
    fn bad_window_names_the_field() {
        let err = spec_with(
            r#"
[[features]]
kind = "count"
entity = "customer_id"
window = "1d"
[[features]]
kind = "count"
entity = "customer_id"
window = "7x"
"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"features[1].window: "7x" is not a duration like 10m, 1h, 7d (at most 3650d)"#
        );
        assert_eq!(err.code(), "fraud_invalid_spec");
    }

    #[test]
    fn kind_fields_are_checked() {
        let missing =
            spec_with("[[features]]\nkind = \"count\"\nentity = \"customer_id\"").unwrap_err();
        assert_eq!(
            missing.to_string(),
            r#"features[0].window: is required for kind "count""#
        );
        let extra = spec_with(
            "[[features]]\nkind = \"time_since_last\"\nentity = \"customer_id\"\nwindow = \"1d\"",
        )
        .unwrap_err();
        assert_eq!(
            extra.to_string(),
            r#"features[0].window: is not used by kind "time_since_last""#
        );
        let entity =
            spec_with("[[features]]\nkind = \"count\"\nentity = \"card\"\nwindow = \"1d\"")
                .unwrap_err();
        assert!(
            entity
                .to_string()
                .starts_with("features[0].entity: \"card\" is not one of"),
            "{entity}"
        );
        let same = spec_with("[[features]]\nkind = \"distinct\"\nentity = \"customer_id\"\nof = \"customer_id\"\nwindow = \"1d\"")
            .unwrap_err();
        assert!(same.to_string().starts_with("features[0].of:"), "{same}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = spec_with("[[features]]\nkind = \"count\"\nentity = \"customer_id\"\nwindow = \"1d\"\nwindw = \"2d\"")
            .unwrap_err();
        assert_eq!(err.code(), "fraud_spec_syntax");
        assert!(err.to_string().contains("windw"), "{err}");
        let kind =
            spec_with("[[features]]\nkind = \"median\"\nentity = \"customer_id\"").unwrap_err();
        assert!(kind.to_string().contains("median"), "{kind}");
    }

    #[test]
    fn duplicate_columns_and_features_are_refused() {
        let dup = FeatureSpec::from_toml_str(
            "[schema]\nid = \"id\"\ntimestamp = \"id\"\nentities = [\"c\"]\n[[features]]\nkind = \"time_since_last\"\nentity = \"c\"",
        )
        .unwrap()
        .compile()
        .unwrap_err();
        assert_eq!(
            dup.to_string(),
            r#"schema.timestamp: "id" is already used as schema.id"#
        );
        let twice = spec_with(
            "[[features]]\nkind = \"count\"\nentity = \"customer_id\"\nwindow = \"1d\"\n[[features]]\nkind = \"count\"\nentity = \"customer_id\"\nwindow = \"1d\"",
        )
        .unwrap_err();
        assert_eq!(
            twice.to_string(),
            "features[1]: duplicates features[0] (customer_id_count_1d)"
        );
    }

    #[test]
    fn json_specs_work_too() {
        let json = r#"{"schema": {"id": "id", "timestamp": "ts", "entities": ["c"]},
                       "features": [{"kind": "time_since_last", "entity": "c"}]}"#;
        let c = FeatureSpec::from_json_str(json).unwrap().compile().unwrap();
        assert_eq!(c.feature_names(), ["c_seconds_since_last"]);
        assert_eq!(c.fingerprint().len(), 64);
        let amount = FeatureSpec::from_json_str(
            r#"{"schema": {"id": "id", "timestamp": "ts", "entities": ["c"]},
                "features": [{"kind": "mean", "entity": "c", "window": "1d"}]}"#,
        )
        .unwrap()
        .compile()
        .unwrap_err();
        assert_eq!(
            amount.to_string(),
            r#"features[0].kind: "mean" needs schema.amount"#
        );
    }
}
