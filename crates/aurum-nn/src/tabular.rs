//! The tabular encoder of the `mlp` family: raw feature values in, a numeric block and one
//! category index per categorical feature out.
//!
//! Like the credit pipeline it is fitted once on the training rows and stored inside the model,
//! so serving applies exactly the statistics training saw:
//!
//! * **float / integer / boolean / date**: a date becomes its ordinal (days since 1970-01-01,
//!   as in the credit pipeline), a boolean 0/1; missing values are imputed with the training
//!   median, then the column is standardised with the training mean and population standard
//!   deviation (0 replaced by 1). A 0/1 missing indicator follows when training had missing
//!   values.
//! * **categorical**: an index into the feature's embedding table. Index 0 is reserved for
//!   categories not seen in training (and for those seen fewer than `min_frequency` times);
//!   the seen levels take 1.. in sorted order; a missing value takes the last index when
//!   training had missing values, and the reserved index otherwise. An unseen category is
//!   never an error.
//! * **text**: with a text encoder ([`TextTokens`], the `mlp`'s `text_encoder=transformer`), the
//!   cell's token ids ([`crate::text::token_ids`]: the TF-IDF step's tokens and hash); a missing
//!   cell has none. Without one, text is not a feature (the job runner's TF-IDF step has already
//!   turned it into numeric columns).
//! * **datetime**, and columns with no value in training: not features; listed as dropped with
//!   the reason.
//!
//! Wrong types (a string for a number, NaN, an infinity) are errors naming the feature.

use std::collections::BTreeMap;

use aurum_contract::ModelError;
use aurum_core::{ColumnData, ColumnType, Field, Schema, Table, Value};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The reserved embedding index of categories not seen in training.
pub const UNSEEN_INDEX: u32 = 0;

/// A date as a number: days since 1970-01-01 (negative before), the credit pipeline's ordinal.
pub fn date_ordinal(d: NaiveDate) -> f64 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (d - epoch).num_days() as f64
}

/// One numeric feature's stored statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NumericStats {
    pub median: f64,
    pub mean: f64,
    pub std: f64,
    /// Whether the encoded block carries a missing indicator for this feature.
    pub indicator: bool,
}

/// One categorical feature's stored levels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategoryLevels {
    /// Seen levels in sorted order; level `k` has index `k + 1`.
    pub levels: Vec<String>,
    /// Whether training had missing values (they then take index `levels.len() + 1`).
    pub missing_level: bool,
}

impl CategoryLevels {
    /// Rows of the embedding table: the reserved index, the levels, and the missing level.
    pub fn n_indices(&self) -> usize {
        1 + self.levels.len() + usize::from(self.missing_level)
    }

    fn index(&self, value: Option<&str>) -> u32 {
        match value {
            None if self.missing_level => (self.levels.len() + 1) as u32,
            None => UNSEEN_INDEX,
            Some(s) => match self.levels.binary_search_by(|l| l.as_str().cmp(s)) {
                Ok(k) => (k + 1) as u32,
                Err(_) => UNSEEN_INDEX,
            },
        }
    }
}

/// How a text feature becomes token ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextTokens {
    /// Hash buckets: ids are `1..=vocab` (0 is padding).
    pub vocab: usize,
    /// Tokens kept per cell (the first ones).
    pub length: usize,
}

/// How one input feature is encoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureEncoding {
    Numeric(NumericStats),
    Categorical(CategoryLevels),
    Text(TextTokens),
}

/// A training column that is not a feature, with the reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    pub reason: String,
}

/// The fitted encoder, stored in the payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TabularEncoder {
    /// The input features (names and types; no date formats, which travel in the manifest).
    pub fields: Vec<Field>,
    pub encodings: Vec<FeatureEncoding>,
    pub dropped: Vec<Dropped>,
}

/// A row encoded: the numeric block (standardised values, then indicators, in feature order),
/// one category index per categorical feature and the token ids of each text feature.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EncodedRow {
    pub numeric: Vec<f64>,
    pub categories: Vec<u32>,
    pub tokens: Vec<Vec<u32>>,
}

fn input_error(feature: &str, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidInput {
        feature: feature.to_string(),
        row: None,
        reason: reason.into(),
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Float(_) => "a float",
        Value::Integer(_) => "an integer",
        Value::Boolean(_) => "a boolean",
        Value::Str(_) => "a string",
        Value::Date(_) => "a date",
        Value::DateTime(_) => "a datetime",
    }
}

/// The number of a numeric feature's cell (`None` when missing).
fn read_number(field: &Field, value: &Value) -> Result<Option<f64>, ModelError> {
    let x = match (field.ty, value) {
        (_, Value::Null) => return Ok(None),
        (ColumnType::Float | ColumnType::Integer, Value::Float(x)) => *x,
        (ColumnType::Float | ColumnType::Integer, Value::Integer(i)) => *i as f64,
        (ColumnType::Boolean, Value::Boolean(b)) => f64::from(u8::from(*b)),
        (ColumnType::Date, Value::Date(d)) => date_ordinal(*d),
        _ => {
            return Err(input_error(
                &field.name,
                format!(
                    "expected a value of a {} feature, got {}",
                    field.ty,
                    describe(value)
                ),
            ));
        }
    };
    if x.is_finite() {
        Ok(Some(x))
    } else {
        Err(input_error(
            &field.name,
            format!("{x} is not a finite number"),
        ))
    }
}

fn read_category<'v>(field: &Field, value: &'v Value) -> Result<Option<&'v str>, ModelError> {
    read_string(field, value, "categorical feature")
}

fn read_string<'v>(
    field: &Field,
    value: &'v Value,
    what: &str,
) -> Result<Option<&'v str>, ModelError> {
    match value {
        Value::Null => Ok(None),
        Value::Str(s) => Ok(Some(s)),
        other => Err(input_error(
            &field.name,
            format!("expected a string ({what}), got {}", describe(other)),
        )),
    }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}

impl TabularEncoder {
    /// Fits the encoder on the training table. Categories seen fewer than `min_frequency` times
    /// share the reserved index with unseen ones; text columns are dropped.
    pub fn fit(table: &Table, min_frequency: usize) -> Result<Self, ModelError> {
        Self::fit_with_text(table, min_frequency, None)
    }

    /// [`TabularEncoder::fit`], keeping the text columns as token ids when `text` is given.
    pub fn fit_with_text(
        table: &Table,
        min_frequency: usize,
        text: Option<TextTokens>,
    ) -> Result<Self, ModelError> {
        let mut fields = Vec::new();
        let mut encodings = Vec::new();
        let mut dropped = Vec::new();
        for column in table.columns() {
            let field = Field::new(column.name.clone(), column.data.column_type());
            let drop = |reason: &str| Dropped {
                name: field.name.clone(),
                ty: field.ty,
                reason: reason.to_string(),
            };
            let encoding = match (&column.data, text) {
                (ColumnData::Text(values), Some(tokens)) => {
                    if values.iter().all(Option::is_none) {
                        dropped.push(drop("all_missing"));
                        continue;
                    }
                    FeatureEncoding::Text(tokens)
                }
                (ColumnData::Text(_) | ColumnData::DateTime(_), _) => {
                    dropped.push(drop("unsupported_type"));
                    continue;
                }
                (ColumnData::Categorical(values), _) => {
                    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                    let mut missing = 0usize;
                    for v in values {
                        match v {
                            Some(s) => *counts.entry(s.as_str()).or_default() += 1,
                            None => missing += 1,
                        }
                    }
                    if counts.is_empty() {
                        dropped.push(drop("all_missing"));
                        continue;
                    }
                    FeatureEncoding::Categorical(CategoryLevels {
                        levels: counts
                            .into_iter()
                            .filter(|(_, c)| *c >= min_frequency)
                            .map(|(s, _)| s.to_string())
                            .collect(),
                        missing_level: missing > 0,
                    })
                }
                (data, _) => {
                    let n = data.len();
                    let mut present = Vec::with_capacity(n);
                    for i in 0..n {
                        if let Some(x) = read_number(&field, &data.get(i))? {
                            present.push(x);
                        }
                    }
                    if present.is_empty() {
                        dropped.push(drop("all_missing"));
                        continue;
                    }
                    let indicator = present.len() < n;
                    let mut sorted = present.clone();
                    sorted.sort_by(f64::total_cmp);
                    let med = median(&sorted);
                    let n_missing = (n - present.len()) as f64;
                    let mean = (present.iter().sum::<f64>() + n_missing * med) / n as f64;
                    let var = (present.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
                        + n_missing * (med - mean).powi(2))
                        / n as f64;
                    let std = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
                    FeatureEncoding::Numeric(NumericStats {
                        median: med,
                        mean,
                        std,
                        indicator,
                    })
                }
            };
            fields.push(field);
            encodings.push(encoding);
        }
        if fields.is_empty() {
            return Err(ModelError::NoUsableFeatures {
                reason: "every column is text, a datetime, or empty".into(),
            });
        }
        Ok(Self {
            fields,
            encodings,
            dropped,
        })
    }

    /// Checks what serving relies on (stored statistics are finite, lengths agree).
    pub fn check(&self) -> Result<(), String> {
        if self.fields.len() != self.encodings.len() {
            return Err(format!(
                "{} fields for {} encodings",
                self.fields.len(),
                self.encodings.len()
            ));
        }
        for (f, e) in self.fields.iter().zip(&self.encodings) {
            match e {
                FeatureEncoding::Numeric(s) => {
                    if !matches!(
                        f.ty,
                        ColumnType::Float
                            | ColumnType::Integer
                            | ColumnType::Boolean
                            | ColumnType::Date
                    ) {
                        return Err(format!(
                            "feature `{}` of type {} is not numeric",
                            f.name, f.ty
                        ));
                    }
                    if !(s.median.is_finite() && s.mean.is_finite() && s.std.is_finite())
                        || s.std <= 0.0
                    {
                        return Err(format!("feature `{}` has invalid statistics", f.name));
                    }
                }
                FeatureEncoding::Categorical(c) => {
                    if f.ty != ColumnType::Categorical {
                        return Err(format!(
                            "feature `{}` of type {} is not categorical",
                            f.name, f.ty
                        ));
                    }
                    if c.levels.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(format!("feature `{}` has unsorted levels", f.name));
                    }
                }
                FeatureEncoding::Text(t) => {
                    if f.ty != ColumnType::Text {
                        return Err(format!("feature `{}` of type {} is not text", f.name, f.ty));
                    }
                    if t.vocab == 0 || t.length == 0 || t.vocab > u32::MAX as usize - 1 {
                        return Err(format!("feature `{}` has an empty vocabulary", f.name));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn schema(&self) -> Schema {
        Schema {
            fields: self.fields.clone(),
        }
    }

    /// Width of the numeric block: one column per numeric feature, then one per indicator.
    pub fn n_numeric(&self) -> usize {
        self.encodings
            .iter()
            .map(|e| match e {
                FeatureEncoding::Numeric(s) => 1 + usize::from(s.indicator),
                FeatureEncoding::Categorical(_) | FeatureEncoding::Text(_) => 0,
            })
            .sum()
    }

    /// The categorical features' embedding table sizes, in feature order.
    pub fn category_sizes(&self) -> Vec<usize> {
        self.encodings
            .iter()
            .filter_map(|e| match e {
                FeatureEncoding::Categorical(c) => Some(c.n_indices()),
                FeatureEncoding::Numeric(_) | FeatureEncoding::Text(_) => None,
            })
            .collect()
    }

    /// For each column of the numeric block, the input feature it belongs to.
    pub fn numeric_owner(&self) -> Vec<usize> {
        let mut values = Vec::new();
        let mut indicators = Vec::new();
        for (f, e) in self.encodings.iter().enumerate() {
            if let FeatureEncoding::Numeric(s) = e {
                values.push(f);
                if s.indicator {
                    indicators.push(f);
                }
            }
        }
        values.extend(indicators);
        values
    }

    /// For each categorical feature (in order), the input feature index.
    pub fn category_owner(&self) -> Vec<usize> {
        self.encodings
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, FeatureEncoding::Categorical(_)))
            .map(|(f, _)| f)
            .collect()
    }

    /// For each text feature (in order), the input feature index and its tokenisation.
    pub fn text_features(&self) -> Vec<(usize, TextTokens)> {
        self.encodings
            .iter()
            .enumerate()
            .filter_map(|(f, e)| match e {
                FeatureEncoding::Text(t) => Some((f, *t)),
                _ => None,
            })
            .collect()
    }

    /// For each text feature (in order), its name and its tokenisation.
    pub fn named_text_features(&self) -> Vec<(&str, TextTokens)> {
        self.text_features()
            .into_iter()
            .map(|(f, t)| (self.fields[f].name.as_str(), t))
            .collect()
    }

    /// Encodes one row aligned to the input features.
    pub fn encode_row(&self, row: &[Value], out: &mut EncodedRow) -> Result<(), ModelError> {
        if row.len() != self.fields.len() {
            return Err(ModelError::RowLength {
                row: None,
                expected: self.fields.len(),
                got: row.len(),
            });
        }
        out.numeric.clear();
        out.categories.clear();
        out.tokens.clear();
        let mut indicators = Vec::new();
        for ((field, enc), value) in self.fields.iter().zip(&self.encodings).zip(row) {
            match enc {
                FeatureEncoding::Numeric(s) => {
                    let x = read_number(field, value)?;
                    out.numeric.push((x.unwrap_or(s.median) - s.mean) / s.std);
                    if s.indicator {
                        indicators.push(if x.is_none() { 1.0 } else { 0.0 });
                    }
                }
                FeatureEncoding::Categorical(c) => {
                    out.categories.push(c.index(read_category(field, value)?));
                }
                FeatureEncoding::Text(t) => {
                    out.tokens.push(
                        read_string(field, value, "free text")?
                            .map(|s| crate::text::token_ids(s, t.vocab, t.length))
                            .unwrap_or_default(),
                    );
                }
            }
        }
        out.numeric.extend(indicators);
        Ok(())
    }

    /// Encodes every row of a table holding (at least) the input columns, found by name.
    pub fn encode_table(&self, table: &Table) -> Result<Vec<EncodedRow>, ModelError> {
        let inputs = table
            .select(self.fields.iter().map(|f| f.name.as_str()))
            .map_err(|e| input_error("table", e.to_string()))?;
        (0..inputs.n_rows())
            .map(|i| {
                let mut out = EncodedRow::default();
                self.encode_row(&inputs.row(i), &mut out)
                    .map_err(|e| e.at_row(i))?;
                Ok(out)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurum_core::Column;

    fn table() -> Table {
        Table::new(vec![
            Column {
                name: "amount".into(),
                data: ColumnData::Float(vec![Some(1.0), None, Some(3.0), Some(4.0)]),
            },
            Column {
                name: "purpose".into(),
                data: ColumnData::Categorical(vec![
                    Some("car".into()),
                    Some("tv".into()),
                    None,
                    Some("car".into()),
                ]),
            },
            Column {
                name: "opened".into(),
                data: ColumnData::Date(vec![NaiveDate::from_ymd_opt(1970, 1, 11); 4]),
            },
            Column {
                name: "note".into(),
                data: ColumnData::Text(vec![None; 4]),
            },
        ])
        .unwrap()
    }

    #[test]
    fn encodes_numbers_dates_and_categories_with_a_reserved_unseen_index() {
        let enc = TabularEncoder::fit(&table(), 1).unwrap();
        assert_eq!(enc.fields.len(), 3);
        assert_eq!(enc.dropped[0].name, "note");
        assert_eq!(enc.n_numeric(), 3); // amount, opened, amount's indicator
        assert_eq!(enc.category_sizes(), [4]); // reserved, car, tv, missing
        let mut out = EncodedRow::default();
        let row = [
            Value::Null,
            Value::Str("boat".into()),
            Value::Date(NaiveDate::from_ymd_opt(1970, 1, 11).unwrap()),
        ];
        enc.encode_row(&row, &mut out).unwrap();
        // The missing amount is the median 3, standardised; the indicator is set.
        let FeatureEncoding::Numeric(s) = &enc.encodings[0] else {
            panic!()
        };
        assert_eq!(out.numeric[0], (3.0 - s.mean) / s.std);
        assert_eq!(out.numeric[2], 1.0);
        assert_eq!(out.categories, [UNSEEN_INDEX]);
        enc.encode_row(&[Value::Integer(2), Value::Null, Value::Null], &mut out)
            .unwrap();
        assert_eq!(out.categories, [3]);
        let e = enc
            .encode_row(
                &[Value::Str("x".into()), Value::Null, Value::Null],
                &mut out,
            )
            .unwrap_err();
        assert!(e.to_string().contains("`amount`"), "{e}");
        let e = enc
            .encode_row(
                &[Value::Float(f64::NAN), Value::Null, Value::Null],
                &mut out,
            )
            .unwrap_err();
        assert!(e.to_string().contains("`amount`"), "{e}");
    }

    #[test]
    fn rare_categories_share_the_reserved_index() {
        let enc = TabularEncoder::fit(&table(), 2).unwrap();
        assert_eq!(enc.category_sizes(), [3]); // reserved, car, missing
        let mut out = EncodedRow::default();
        enc.encode_row(
            &[Value::Float(1.0), Value::Str("tv".into()), Value::Null],
            &mut out,
        )
        .unwrap();
        assert_eq!(out.categories, [UNSEEN_INDEX]);
    }

    #[test]
    fn text_columns_become_token_ids_with_a_text_encoder() {
        let t = Table::new(vec![
            Column {
                name: "amount".into(),
                data: ColumnData::Float(vec![Some(1.0), Some(2.0), Some(3.0)]),
            },
            Column {
                name: "purpose".into(),
                data: ColumnData::Text(vec![
                    Some("Debt consolidation".into()),
                    None,
                    Some("12 $".into()),
                ]),
            },
        ])
        .unwrap();
        let tokens = TextTokens {
            vocab: 64,
            length: 1,
        };
        let enc = TabularEncoder::fit_with_text(&t, 1, Some(tokens)).unwrap();
        assert!(enc.dropped.is_empty());
        assert_eq!(enc.text_features(), [(1, tokens)]);
        assert_eq!(enc.schema().fields[1].ty, ColumnType::Text);
        assert!(enc.check().is_ok());
        let rows = enc.encode_table(&t).unwrap();
        // The first token only (length 1); a missing or token-less cell has none.
        assert_eq!(rows[0].tokens, [crate::text::token_ids("debt", 64, 1)]);
        assert!(rows[1].tokens[0].is_empty() && rows[2].tokens[0].is_empty());
        assert_eq!(rows[0].numeric.len(), 1);
        let mut out = EncodedRow::default();
        let e = enc
            .encode_row(&[Value::Float(1.0), Value::Integer(3)], &mut out)
            .unwrap_err();
        assert!(e.to_string().contains("`purpose`"), "{e}");
        // Without a text encoder, text is not a feature.
        let plain = TabularEncoder::fit(&t, 1).unwrap();
        assert_eq!(plain.dropped[0].name, "purpose");
        assert!(plain.text_features().is_empty());
    }
}
