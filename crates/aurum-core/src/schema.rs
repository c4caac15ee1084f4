use serde::{Deserialize, Serialize};

/// The logical type of a column, as inferred at ingest or declared by the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Float,
    Integer,
    Boolean,
    Categorical,
    Date,
    DateTime,
    Text,
}

impl ColumnType {
    pub const ALL: [ColumnType; 7] = [
        ColumnType::Float,
        ColumnType::Integer,
        ColumnType::Boolean,
        ColumnType::Categorical,
        ColumnType::Date,
        ColumnType::DateTime,
        ColumnType::Text,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Float => "float",
            ColumnType::Integer => "integer",
            ColumnType::Boolean => "boolean",
            ColumnType::Categorical => "categorical",
            ColumnType::Date => "date",
            ColumnType::DateTime => "datetime",
            ColumnType::Text => "text",
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Float | ColumnType::Integer)
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ColumnType {
    type Err = SchemaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "float" | "f64" | "double" | "number" => ColumnType::Float,
            "integer" | "int" | "i64" => ColumnType::Integer,
            "boolean" | "bool" => ColumnType::Boolean,
            "categorical" | "category" => ColumnType::Categorical,
            "date" => ColumnType::Date,
            "datetime" | "timestamp" => ColumnType::DateTime,
            "text" | "string" => ColumnType::Text,
            _ => return Err(SchemaError::UnknownType(s.to_string())),
        })
    }
}

/// A named, typed column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// An explicit chrono strftime format for a date or datetime column (`%d.%m.%Y`), chosen at
    /// import. It travels with the dataset schema and the model's input schema, so re-reading
    /// the file and parsing a served string cell use the same layout. Absent (and not stored)
    /// when the built-in layouts apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

impl Field {
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        Self {
            name: name.into(),
            ty,
            format: None,
        }
    }

    /// This field with an explicit date format.
    pub fn with_format(mut self, format: impl Into<String>) -> Self {
        self.format = Some(format.into());
        self
    }
}

/// An ordered list of fields with unique names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Schema {
    pub fields: Vec<Field>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    #[error(
        "unknown column type `{0}` (expected one of float, integer, boolean, categorical, date, datetime, text)"
    )]
    UnknownType(String),
    #[error("duplicate column name `{0}`")]
    DuplicateName(String),
    #[error("unknown column `{0}`")]
    UnknownColumn(String),
    #[error("invalid name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
}

impl Schema {
    pub fn new(fields: Vec<Field>) -> Result<Self, SchemaError> {
        let mut seen = std::collections::HashSet::new();
        for f in &fields {
            if !seen.insert(f.name.as_str()) {
                return Err(SchemaError::DuplicateName(f.name.clone()));
            }
        }
        Ok(Self { fields })
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.name.as_str())
    }

    /// A copy without the named column (used to turn a dataset schema into a model input schema).
    pub fn without(&self, name: &str) -> Schema {
        Schema {
            fields: self
                .fields
                .iter()
                .filter(|f| f.name != name)
                .cloned()
                .collect(),
        }
    }
}

/// Validates a user-chosen resource name (dataset, model, alias, key name).
///
/// Names are 1–128 characters of `[A-Za-z0-9._-]`, start with a letter or digit, and are never
/// joined onto a storage path without passing through here.
pub fn validate_name(name: &str) -> Result<(), SchemaError> {
    let bad = |reason| {
        Err(SchemaError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("must not be empty");
    }
    if name.len() > 128 {
        return bad("must be at most 128 characters");
    }
    if !name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return bad("must start with a letter or digit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return bad("may contain only letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("german-credit_v1.2").is_ok());
        assert!(validate_name("../etc").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name(".hidden").is_err());
    }

    #[test]
    fn duplicate_fields_rejected() {
        let f = Field::new("a", ColumnType::Float);
        assert_eq!(
            Schema::new(vec![f.clone(), f]),
            Err(SchemaError::DuplicateName("a".into()))
        );
    }
}
