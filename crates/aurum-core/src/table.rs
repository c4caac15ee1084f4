use chrono::{NaiveDate, NaiveDateTime};

use crate::{ColumnType, Field, Schema, Value};

/// The values of one column, stored by type. `None` is a missing value.
///
/// Categorical and text columns both hold strings.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    Float(Vec<Option<f64>>),
    Integer(Vec<Option<i64>>),
    Boolean(Vec<Option<bool>>),
    Categorical(Vec<Option<String>>),
    Text(Vec<Option<String>>),
    Date(Vec<Option<NaiveDate>>),
    DateTime(Vec<Option<NaiveDateTime>>),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Float(v) => v.len(),
            ColumnData::Integer(v) => v.len(),
            ColumnData::Boolean(v) => v.len(),
            ColumnData::Categorical(v) | ColumnData::Text(v) => v.len(),
            ColumnData::Date(v) => v.len(),
            ColumnData::DateTime(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn column_type(&self) -> ColumnType {
        match self {
            ColumnData::Float(_) => ColumnType::Float,
            ColumnData::Integer(_) => ColumnType::Integer,
            ColumnData::Boolean(_) => ColumnType::Boolean,
            ColumnData::Categorical(_) => ColumnType::Categorical,
            ColumnData::Text(_) => ColumnType::Text,
            ColumnData::Date(_) => ColumnType::Date,
            ColumnData::DateTime(_) => ColumnType::DateTime,
        }
    }

    /// The value at `row` (panics if out of bounds, like slice indexing).
    pub fn get(&self, row: usize) -> Value {
        match self {
            ColumnData::Float(v) => v[row].map_or(Value::Null, Value::Float),
            ColumnData::Integer(v) => v[row].map_or(Value::Null, Value::Integer),
            ColumnData::Boolean(v) => v[row].map_or(Value::Null, Value::Boolean),
            ColumnData::Categorical(v) | ColumnData::Text(v) => v[row]
                .as_ref()
                .map_or(Value::Null, |s| Value::Str(s.clone())),
            ColumnData::Date(v) => v[row].map_or(Value::Null, Value::Date),
            ColumnData::DateTime(v) => v[row].map_or(Value::Null, Value::DateTime),
        }
    }

    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            ColumnData::Float(v) => v[row].is_none_or(|x| x.is_nan()),
            ColumnData::Integer(v) => v[row].is_none(),
            ColumnData::Boolean(v) => v[row].is_none(),
            ColumnData::Categorical(v) | ColumnData::Text(v) => v[row].is_none(),
            ColumnData::Date(v) => v[row].is_none(),
            ColumnData::DateTime(v) => v[row].is_none(),
        }
    }

    /// A new column holding the rows at `indices`, in that order.
    pub fn take(&self, indices: &[usize]) -> ColumnData {
        fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
            idx.iter().map(|&i| v[i].clone()).collect()
        }
        match self {
            ColumnData::Float(v) => ColumnData::Float(pick(v, indices)),
            ColumnData::Integer(v) => ColumnData::Integer(pick(v, indices)),
            ColumnData::Boolean(v) => ColumnData::Boolean(pick(v, indices)),
            ColumnData::Categorical(v) => ColumnData::Categorical(pick(v, indices)),
            ColumnData::Text(v) => ColumnData::Text(pick(v, indices)),
            ColumnData::Date(v) => ColumnData::Date(pick(v, indices)),
            ColumnData::DateTime(v) => ColumnData::DateTime(pick(v, indices)),
        }
    }
}

/// A named column.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub data: ColumnData,
}

/// An in-memory columnar table: equal-length columns with unique names.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Table {
    columns: Vec<Column>,
    n_rows: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TableError {
    #[error("column `{name}` has {got} rows but the table has {expected}")]
    RaggedColumn {
        name: String,
        expected: usize,
        got: usize,
    },
    #[error("duplicate column name `{0}`")]
    DuplicateName(String),
    #[error("unknown column `{0}`")]
    UnknownColumn(String),
}

impl Table {
    pub fn new(columns: Vec<Column>) -> Result<Self, TableError> {
        let n_rows = columns.first().map_or(0, |c| c.data.len());
        let mut seen = std::collections::HashSet::new();
        for c in &columns {
            if c.data.len() != n_rows {
                return Err(TableError::RaggedColumn {
                    name: c.name.clone(),
                    expected: n_rows,
                    got: c.data.len(),
                });
            }
            if !seen.insert(c.name.as_str()) {
                return Err(TableError::DuplicateName(c.name.clone()));
            }
        }
        Ok(Self { columns, n_rows })
    }

    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    pub fn n_cols(&self) -> usize {
        self.columns.len()
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn schema(&self) -> Schema {
        Schema {
            fields: self
                .columns
                .iter()
                .map(|c| Field::new(c.name.clone(), c.data.column_type()))
                .collect(),
        }
    }

    /// Row `i` as values in column order.
    pub fn row(&self, i: usize) -> Vec<Value> {
        self.columns.iter().map(|c| c.data.get(i)).collect()
    }

    /// A new table holding the rows at `indices`.
    pub fn take(&self, indices: &[usize]) -> Table {
        Table {
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    data: c.data.take(indices),
                })
                .collect(),
            n_rows: indices.len(),
        }
    }

    /// A new table holding the named columns, in that order (a model's input schema applied to
    /// a dataset: rows of the result align with the schema).
    pub fn select<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Table, TableError> {
        let columns = names
            .into_iter()
            .map(|name| {
                self.column(name)
                    .cloned()
                    .ok_or_else(|| TableError::UnknownColumn(name.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Table::new(columns)
    }

    /// A new table without the named column.
    pub fn drop_column(&self, name: &str) -> Result<Table, TableError> {
        if self.column(name).is_none() {
            return Err(TableError::UnknownColumn(name.to_string()));
        }
        Ok(Table {
            columns: self
                .columns
                .iter()
                .filter(|c| c.name != name)
                .cloned()
                .collect(),
            n_rows: self.n_rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ragged_rejected_and_take_works() {
        let a = Column {
            name: "a".into(),
            data: ColumnData::Float(vec![Some(1.0), None]),
        };
        let b = Column {
            name: "b".into(),
            data: ColumnData::Integer(vec![Some(1)]),
        };
        assert!(matches!(
            Table::new(vec![a.clone(), b]),
            Err(TableError::RaggedColumn { .. })
        ));
        let c = Column {
            name: "c".into(),
            data: ColumnData::Categorical(vec![Some("x".into()), Some("y".into())]),
        };
        let t = Table::new(vec![a, c]).unwrap();
        let t2 = t.take(&[1, 0]);
        let picked = t.select(["c", "a"]).unwrap();
        assert_eq!(
            picked.row(0),
            vec![Value::Str("x".into()), Value::Float(1.0)]
        );
        assert_eq!(
            t.select(["zz"]),
            Err(TableError::UnknownColumn("zz".into()))
        );
        assert_eq!(t2.row(0), vec![Value::Null, Value::Str("y".into())]);
        assert_eq!(t2.row(1), vec![Value::Float(1.0), Value::Str("x".into())]);
    }
}
