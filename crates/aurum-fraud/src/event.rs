//! The event: one transaction as the engine sees it.
//!
//! Why a small typed struct rather than a map: the engine touches the timestamp, the entity keys
//! and the amount of every event on the hot path, so they are parsed and checked once, at the
//! edge ([`Event::from_map`]), with errors naming the field. Timestamps are whole seconds since
//! the Unix epoch (naive date-times are read as UTC), which is the resolution the windows use.
//! The label and the `schema.ignore` fields travel on the event (`label`, `extra`) but no feature
//! can read them: the spec has no way to name them.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{FraudError, Result};
use crate::spec::CompiledSpec;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    /// Seconds since 1970-01-01 00:00:00 UTC.
    pub ts: i64,
    /// One value per `schema.entities`, in that order.
    pub keys: Vec<String>,
    /// Present exactly when the schema has an amount column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
    /// The label carried by the event, if the schema has a label column and the field was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<bool>,
    /// Fields listed in `schema.ignore`, kept as sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
}

impl Event {
    /// Builds an event from JSON-like values, checking every field against the spec.
    ///
    /// Numbers may come as JSON numbers or as strings (CSV cells); entity keys and ids as
    /// strings or integers; the timestamp as integer seconds, `YYYY-MM-DD HH:MM:SS` (or with
    /// `T`), optionally with fractional seconds, or RFC 3339 with an offset.
    pub fn from_map<'a, I>(spec: &CompiledSpec, fields: I) -> Result<Event>
    where
        I: IntoIterator<Item = (&'a str, &'a Value)>,
    {
        let s = spec.schema();
        let mut id = None;
        let mut ts = None;
        let mut keys: Vec<Option<String>> = vec![None; s.entities.len()];
        let mut amount = None;
        let mut label = None;
        let mut extra = BTreeMap::new();
        for (name, value) in fields {
            if name == s.id {
                id = Some(key_text(name, value)?);
            } else if name == s.timestamp {
                ts = Some(parse_timestamp(name, value)?);
            } else if s.amount.as_deref() == Some(name) {
                amount = Some(number(name, value)?);
            } else if s.label.as_deref() == Some(name) {
                label = parse_label(name, value)?;
            } else if let Some(i) = s.entities.iter().position(|e| e == name) {
                keys[i] = Some(key_text(name, value)?);
            } else if s.ignore.iter().any(|x| x == name) {
                extra.insert(name.to_string(), value.clone());
            } else {
                return Err(FraudError::UnknownField {
                    field: name.to_string(),
                });
            }
        }
        let missing = |f: &str| FraudError::MissingField {
            field: f.to_string(),
        };
        let event = Event {
            id: id.ok_or_else(|| missing(&s.id))?,
            ts: ts.ok_or_else(|| missing(&s.timestamp))?,
            keys: keys
                .into_iter()
                .zip(&s.entities)
                .map(|(k, name)| k.ok_or_else(|| missing(name)))
                .collect::<Result<_>>()?,
            amount: match &s.amount {
                Some(a) => Some(amount.ok_or_else(|| missing(a))?),
                None => None,
            },
            label,
            extra,
        };
        check_event(spec, &event)?;
        check_bounds(spec, &event)?;
        Ok(event)
    }

    /// The timestamp as a naive UTC date-time.
    pub fn datetime(&self) -> Option<NaiveDateTime> {
        DateTime::from_timestamp(self.ts, 0).map(|d| d.naive_utc())
    }
}

/// Earliest timestamp an event may carry: 0001-01-01T00:00:00Z.
pub const MIN_TIMESTAMP: i64 = -62_135_596_800;

/// Latest timestamp an event may carry: 9999-12-31T23:59:59Z. Dates cannot spell more, and it
/// keeps the engine's window arithmetic (watermark minus tolerance minus horizon) far from
/// overflow.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// Largest amount magnitude an event may carry (10^15, a quadrillion in any currency): sums and
/// sums of squares over an entity's events (at most `max_events_per_entity`) stay finite.
pub const MAX_ABS_AMOUNT: f64 = 1e15;

/// The bounds on a new event's values: a timestamp within 0001..9999 and an amount within
/// ±[`MAX_ABS_AMOUNT`]. Run where events enter (parsing, [`crate::validate_batch`]), not by the
/// engine itself, so that a log written before the bounds existed still replays.
pub fn check_bounds(spec: &CompiledSpec, e: &Event) -> Result<()> {
    let s = spec.schema();
    if !(MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&e.ts) {
        return Err(FraudError::InvalidField {
            field: s.timestamp.clone(),
            message: format!(
                "{} is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z \
                 ({MIN_TIMESTAMP}..{MAX_TIMESTAMP} Unix seconds)",
                e.ts
            ),
        });
    }
    if let (Some(name), Some(a)) = (&s.amount, e.amount)
        && a.abs() > MAX_ABS_AMOUNT
    {
        return Err(FraudError::InvalidField {
            field: name.clone(),
            message: format!(
                "{a} is beyond ±{MAX_ABS_AMOUNT:e}, the largest amount accepted \
                 (the entity's running sums must stay finite)"
            ),
        });
    }
    Ok(())
}

/// The checks that do not depend on state: shape against the spec and the amount constraints.
/// The engine runs them again on every event, since `Event`'s fields are public.
pub fn check_event(spec: &CompiledSpec, e: &Event) -> Result<()> {
    let s = spec.schema();
    if e.keys.len() != s.entities.len() {
        return Err(FraudError::SpecMismatch(format!(
            "event `{}` has {} entity keys, the spec has {} ({})",
            e.id,
            e.keys.len(),
            s.entities.len(),
            s.entities.join(", ")
        )));
    }
    if e.id.is_empty() {
        return Err(FraudError::InvalidField {
            field: s.id.clone(),
            message: "is empty".into(),
        });
    }
    for (k, name) in e.keys.iter().zip(&s.entities) {
        if k.is_empty() {
            return Err(FraudError::InvalidField {
                field: name.clone(),
                message: "is empty".into(),
            });
        }
    }
    match (&s.amount, e.amount) {
        (Some(name), Some(a)) => {
            if !a.is_finite() {
                return Err(FraudError::InvalidField {
                    field: name.clone(),
                    message: format!("{a} is not finite"),
                });
            }
            if let Some(min) = spec.amount_min
                && a < min
            {
                return Err(FraudError::InvalidField {
                    field: name.clone(),
                    message: format!("{a} is below constraints.amount_min ({min})"),
                });
            }
        }
        (Some(name), None) => {
            return Err(FraudError::MissingField {
                field: name.clone(),
            });
        }
        (None, Some(_)) => {
            return Err(FraudError::SpecMismatch(format!(
                "event `{}` has an amount; the schema has none",
                e.id
            )));
        }
        (None, None) => {}
    }
    Ok(())
}

fn key_text(field: &str, v: &Value) -> Result<String> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Null => {
            return Err(FraudError::InvalidField {
                field: field.into(),
                message: "is null".into(),
            });
        }
        other => {
            return Err(FraudError::InvalidField {
                field: field.into(),
                message: format!("{other} is not a string or an integer"),
            });
        }
    };
    if text.is_empty() {
        return Err(FraudError::InvalidField {
            field: field.into(),
            message: "is empty".into(),
        });
    }
    Ok(text)
}

fn number(field: &str, v: &Value) -> Result<f64> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match x {
        Some(x) if x.is_finite() => Ok(x),
        _ => Err(FraudError::InvalidField {
            field: field.into(),
            message: format!("{v} is not a finite number"),
        }),
    }
}

fn parse_label(field: &str, v: &Value) -> Result<Option<bool>> {
    let bad = || FraudError::InvalidField {
        field: field.into(),
        message: format!("{v} is not 0/1 or true/false"),
    };
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => Ok(Some(false)),
            Some(1.0) => Ok(Some(true)),
            _ => Err(bad()),
        },
        Value::String(s) => match s.trim() {
            "" => Ok(None),
            "0" | "false" | "False" => Ok(Some(false)),
            "1" | "true" | "True" => Ok(Some(true)),
            _ => Err(bad()),
        },
        Value::Array(_) | Value::Object(_) => Err(bad()),
    }
}

/// Parses a timestamp cell to Unix seconds (see [`Event::from_map`] for the accepted forms).
pub fn parse_timestamp(field: &str, v: &Value) -> Result<i64> {
    let bad = || FraudError::InvalidField {
        field: field.into(),
        message: format!("{v} is not a timestamp (Unix seconds or YYYY-MM-DD HH:MM:SS)"),
    };
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(bad),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(secs) = s.parse::<i64>() {
                return Ok(secs);
            }
            for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
                if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
                    return Ok(dt.and_utc().timestamp());
                }
            }
            DateTime::parse_from_rfc3339(s)
                .map(|d| d.timestamp())
                .map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::FeatureSpec;
    use serde_json::json;

    fn spec() -> CompiledSpec {
        FeatureSpec::from_toml_str(
            r#"
[schema]
id = "id"
timestamp = "ts"
amount = "amount"
entities = ["customer_id", "terminal_id"]
label = "fraud"
ignore = ["scenario"]
[constraints]
amount_min = 0.0
[[features]]
kind = "count"
entity = "customer_id"
window = "1d"
"#,
        )
        .unwrap()
        .compile()
        .unwrap()
    }

    fn build(v: Value) -> Result<Event> {
        let map = v.as_object().unwrap().clone();
        Event::from_map(&spec(), map.iter().map(|(k, v)| (k.as_str(), v)))
    }

    #[test]
    fn builds_from_strings_and_numbers() {
        let e = build(json!({"id": 7, "ts": "2018-04-01 00:10:34", "amount": "57.16",
                             "customer_id": 596, "terminal_id": "3156", "fraud": "0", "scenario": 0}))
        .unwrap();
        assert_eq!(e.id, "7");
        assert_eq!(e.ts, 1_522_541_434);
        assert_eq!(e.keys, ["596", "3156"]);
        assert_eq!(e.amount, Some(57.16));
        assert_eq!(e.label, Some(false));
        assert_eq!(e.extra["scenario"], json!(0));
        assert_eq!(e.datetime().unwrap().to_string(), "2018-04-01 00:10:34");
        let iso = build(
            json!({"id": "a", "ts": "2018-04-01T00:10:34+00:00", "amount": 1.0,
                               "customer_id": "c", "terminal_id": "t"}),
        )
        .unwrap();
        assert_eq!(iso.ts, 1_522_541_434);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"id": 1, "ts": 0, "amount": 1.0, "terminal_id": "t"}),
                "fraud_missing_field",
                "customer_id",
            ),
            (
                json!({"id": 1, "ts": 0, "amount": -1.0, "customer_id": "c", "terminal_id": "t"}),
                "fraud_invalid_field",
                "amount",
            ),
            (
                json!({"id": 1, "ts": 0, "amount": 1.0, "customer_id": "c", "terminal_id": "t", "mcc": 1}),
                "fraud_unknown_field",
                "mcc",
            ),
            (
                json!({"id": 1, "ts": "yesterday", "amount": 1.0, "customer_id": "c", "terminal_id": "t"}),
                "fraud_invalid_field",
                "ts",
            ),
            (
                json!({"id": 1, "ts": 0, "amount": "x", "customer_id": "c", "terminal_id": "t"}),
                "fraud_invalid_field",
                "amount",
            ),
            (
                json!({"id": 1, "ts": 0, "amount": 1.0, "customer_id": null, "terminal_id": "t"}),
                "fraud_invalid_field",
                "customer_id",
            ),
            (
                json!({"id": 1, "ts": 0, "amount": 1.0, "customer_id": 1.5, "terminal_id": "t"}),
                "fraud_invalid_field",
                "customer_id",
            ),
            (
                json!({"id": 1, "ts": 0, "amount": 1.0, "customer_id": "c", "terminal_id": "t", "fraud": 2}),
                "fraud_invalid_field",
                "fraud",
            ),
            (
                json!({"ts": 0, "amount": 1.0, "customer_id": "c", "terminal_id": "t"}),
                "fraud_missing_field",
                "id",
            ),
        ];
        for (input, code, field) in cases {
            let err = build(input.clone()).unwrap_err();
            assert_eq!(err.code(), code, "{input}: {err}");
            assert!(
                err.to_string().contains(&format!("`{field}`")),
                "{input}: {err}"
            );
        }
    }
}
