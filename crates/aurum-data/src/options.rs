//! What a caller can tell the readers, and the file-format sniffing that picks one.
//!
//! Inference is a guess; [`ReadOptions`] is how a person (a type override) or the registry (the
//! stored schema of a dataset) replaces the guess with a decision. Both are checked against the
//! file's columns before any data is converted, so a typo in an override is reported by name
//! instead of silently doing nothing.

use std::collections::BTreeMap;

use aurum_core::{ColumnType, Schema};

use crate::DataError;
use crate::error::ColumnRef;

/// How to read a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// CSV field delimiter (ignored for Parquet). Default `b','`.
    pub delimiter: u8,
    /// An explicit type per column name; wins over `schema` and over inference. Naming a column
    /// that the file does not have is an [`DataError::UnknownColumn`] error.
    pub overrides: BTreeMap<String, ColumnType>,
    /// A full schema to force, used when a stored dataset is re-read so that it gets exactly the
    /// types it was imported with. The file must have exactly these columns (any order);
    /// otherwise [`DataError::MissingColumn`] or [`DataError::UnexpectedColumn`].
    pub schema: Option<Schema>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            overrides: BTreeMap::new(),
            schema: None,
        }
    }
}

impl ReadOptions {
    /// The forced type of each column of `names` (`None`: infer it), after checking that every
    /// override and every schema field names a column of the file.
    pub(crate) fn forced_types(
        &self,
        names: &[String],
    ) -> Result<Vec<Option<ColumnType>>, DataError> {
        for name in self.overrides.keys() {
            if !names.contains(name) {
                return Err(DataError::UnknownColumn {
                    name: name.clone(),
                    context: "type override",
                    available: names.to_vec(),
                });
            }
        }
        if let Some(schema) = &self.schema {
            for field in &schema.fields {
                if !names.contains(&field.name) {
                    return Err(DataError::MissingColumn {
                        name: field.name.clone(),
                    });
                }
            }
            for (i, name) in names.iter().enumerate() {
                if schema.field(name).is_none() {
                    return Err(DataError::UnexpectedColumn {
                        column: ColumnRef::new(name, i),
                    });
                }
            }
        }
        Ok(names
            .iter()
            .map(|name| {
                self.overrides.get(name).copied().or_else(|| {
                    self.schema
                        .as_ref()
                        .and_then(|s| s.field(name))
                        .map(|f| f.ty)
                })
            })
            .collect())
    }
}

/// A dataset file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    /// Parquet when `bytes` start with the `PAR1` magic, CSV otherwise.
    pub fn detect(bytes: &[u8]) -> Format {
        if bytes.starts_with(b"PAR1") {
            Format::Parquet
        } else {
            Format::Csv
        }
    }

    /// `"csv"` or `"parquet"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use aurum_core::Field;

    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn detect() {
        assert_eq!(Format::detect(b"PAR1\0\0"), Format::Parquet);
        assert_eq!(Format::detect(b"a,b\n1,2\n"), Format::Csv);
        assert_eq!(Format::detect(b""), Format::Csv);
    }

    #[test]
    fn overrides_win_over_schema() {
        let opts = ReadOptions {
            overrides: [("a".to_string(), ColumnType::Float)].into(),
            schema: Some(Schema {
                fields: vec![
                    Field::new("a", ColumnType::Integer),
                    Field::new("b", ColumnType::Text),
                ],
            }),
            ..ReadOptions::default()
        };
        assert_eq!(
            opts.forced_types(&names(&["b", "a"])).unwrap(),
            vec![Some(ColumnType::Text), Some(ColumnType::Float)]
        );
    }

    #[test]
    fn unknown_override_is_named() {
        let opts = ReadOptions {
            overrides: [("agee".to_string(), ColumnType::Float)].into(),
            ..ReadOptions::default()
        };
        let err = opts.forced_types(&names(&["age"])).unwrap_err();
        assert_eq!(err.code(), "unknown_column");
        assert!(err.to_string().contains("`agee`"), "{err}");
    }

    #[test]
    fn schema_must_match_columns() {
        let opts = ReadOptions {
            schema: Some(Schema {
                fields: vec![Field::new("a", ColumnType::Integer)],
            }),
            ..ReadOptions::default()
        };
        assert_eq!(
            opts.forced_types(&names(&["b"])).unwrap_err().code(),
            "missing_column"
        );
        assert_eq!(
            opts.forced_types(&names(&["a", "b"])).unwrap_err().code(),
            "unexpected_column"
        );
    }
}
