use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::ColumnType;

/// One cell: a typed value or missing.
///
/// Categorical and text cells are both `Str`; which one a column holds is the schema's business.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum Value {
    Null,
    Float(f64),
    Integer(i64),
    Boolean(bool),
    Str(String),
    Date(NaiveDate),
    DateTime(NaiveDateTime),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The numeric reading of a value, if it has one (booleans read as 0/1).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(x) => Some(*x),
            Value::Integer(i) => Some(*i as f64),
            Value::Boolean(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Null | Value::Str(_) | Value::Date(_) | Value::DateTime(_) => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The column type this value naturally belongs to (`None` for `Null`).
    pub fn natural_type(&self) -> Option<ColumnType> {
        Some(match self {
            Value::Null => return None,
            Value::Float(_) => ColumnType::Float,
            Value::Integer(_) => ColumnType::Integer,
            Value::Boolean(_) => ColumnType::Boolean,
            Value::Str(_) => ColumnType::Categorical,
            Value::Date(_) => ColumnType::Date,
            Value::DateTime(_) => ColumnType::DateTime,
        })
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str(""),
            Value::Float(x) => write!(f, "{x}"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Str(s) => f.write_str(s),
            Value::Date(d) => write!(f, "{d}"),
            Value::DateTime(d) => write!(f, "{}", d.format("%Y-%m-%dT%H:%M:%S")),
        }
    }
}
