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
    /// types (and explicit date formats, `Field::format`) it was imported with. The file must have exactly these columns (any order);
    /// otherwise [`DataError::MissingColumn`] or [`DataError::UnexpectedColumn`].
    pub schema: Option<Schema>,
    /// An explicit chrono strftime format per column name (`"%d.%m.%Y"`, `"%d/%m/%Y"`), for date
    /// layouts the built-in ones do not cover (see the `infer` module). The column is read as a
    /// date (or a datetime, when its type is forced to datetime) with this format only. Naming a
    /// column the file lacks is [`DataError::UnknownColumn`]; a format chrono cannot parse with,
    /// or a column forced to a type other than date or datetime, is
    /// [`DataError::InvalidDateFormat`].
    pub date_formats: BTreeMap<String, String>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            overrides: BTreeMap::new(),
            schema: None,
            date_formats: BTreeMap::new(),
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
        let forced: Vec<Option<ColumnType>> = names
            .iter()
            .map(|name| {
                self.overrides.get(name).copied().or_else(|| {
                    self.schema
                        .as_ref()
                        .and_then(|s| s.field(name))
                        .map(|f| f.ty)
                })
            })
            .collect();
        for (name, format) in &self.date_formats {
            let Some(i) = names.iter().position(|n| n == name) else {
                return Err(DataError::UnknownColumn {
                    name: name.clone(),
                    context: "date format",
                    available: names.to_vec(),
                });
            };
            let bad = |reason| {
                Err(DataError::InvalidDateFormat {
                    column: name.clone(),
                    format: format.clone(),
                    reason,
                })
            };
            if !crate::infer::valid_format(format) {
                return bad("it is not a chrono strftime format");
            }
            if forced[i].is_some_and(|ty| !matches!(ty, ColumnType::Date | ColumnType::DateTime)) {
                return bad("the column's type is neither date nor datetime");
            }
        }
        Ok(forced
            .into_iter()
            .zip(names)
            .map(|(ty, name)| {
                ty.or_else(|| {
                    self.date_formats
                        .contains_key(name)
                        .then_some(ColumnType::Date)
                })
            })
            .collect())
    }

    /// The explicit date format of a column, if one was given: in `date_formats`, else in the
    /// forced schema's field (a dataset re-read with the format it was imported with).
    pub(crate) fn date_format(&self, name: &str) -> Option<&str> {
        self.date_formats.get(name).map(String::as_str).or_else(|| {
            self.schema
                .as_ref()
                .and_then(|s| s.field(name))
                .and_then(|f| f.format.as_deref())
        })
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
    fn date_formats_are_checked_and_force_a_date() {
        let opts = |format: &str, ty: Option<ColumnType>| ReadOptions {
            date_formats: [("d".to_string(), format.to_string())].into(),
            overrides: ty.map(|t| ("d".to_string(), t)).into_iter().collect(),
            ..ReadOptions::default()
        };
        assert_eq!(
            opts("%d.%m.%Y", None)
                .forced_types(&names(&["d", "x"]))
                .unwrap(),
            vec![Some(ColumnType::Date), None]
        );
        assert_eq!(
            opts("%d.%m.%Y", Some(ColumnType::DateTime))
                .forced_types(&names(&["d"]))
                .unwrap(),
            vec![Some(ColumnType::DateTime)]
        );
        for (format, ty) in [("%Q", None), ("%d.%m.%Y", Some(ColumnType::Float))] {
            let err = opts(format, ty).forced_types(&names(&["d"])).unwrap_err();
            assert_eq!(err.code(), "invalid_date_format", "{err}");
        }
        let err = opts("%d", None).forced_types(&names(&["x"])).unwrap_err();
        assert_eq!(err.code(), "unknown_column");
    }

    #[test]
    fn a_forced_schema_carries_its_date_formats() {
        let opts = ReadOptions {
            schema: Some(Schema {
                fields: vec![
                    Field::new("d", ColumnType::Date).with_format("%d.%m.%Y"),
                    Field::new("x", ColumnType::Float),
                ],
            }),
            ..ReadOptions::default()
        };
        assert_eq!(opts.date_format("d"), Some("%d.%m.%Y"));
        assert_eq!(opts.date_format("x"), None);
        let table = crate::read_csv(b"d,x\n28.02.1997,1\nNA,2\n", &opts).unwrap();
        assert_eq!(
            table.column("d").unwrap().data,
            aurum_core::ColumnData::Date(vec![chrono::NaiveDate::from_ymd_opt(1997, 2, 28), None])
        );
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
