//! Text as a feature: a hashed TF-IDF step in front of any tabular family.
//!
//! Why a step of the contract and not of a family: free-text columns (a loan's stated purpose, a
//! merchant description) are useful to every tabular family, and each family already knows how
//! to read numeric columns. So the job runner fits a [`TextStep`] on the training rows, turns each
//! text column into `buckets` numeric columns, fits the family on those, and wraps the result in
//! a [`TextModel`]: a fitted model whose input schema is the raw one (the text column as sent)
//! and which applies the same step to every row it scores, on every protocol. The step is stored
//! in the artifact's manifest and rebuilt around the family's own payload at load, so training
//! and serving cannot disagree. A family that reads text itself (a neural text encoder) says so
//! with [`crate::ModelFamily::reads_text`], which depends on the job's parameters (the `mlp`
//! and `sequence` read text themselves with `text_encoder=transformer`), and gets the raw column
//! instead; it tokenises with [`for_each_token`] and hashes with [`fnv1a64`], so both paths read
//! the same words.
//!
//! The transform, per text column (documented contract):
//!
//! * **Tokens**: the cell is split on every character that is not alphanumeric, lowercased;
//!   tokens shorter than two characters and tokens made only of digits (amounts, ids) are
//!   dropped.
//! * **Hashing**: a token goes to bucket `fnv1a64(token) mod buckets`; the bucket's term
//!   frequency is the count of its tokens in the cell.
//! * **Weights**: `(1 + ln tf) × idf`, with `idf = ln((1 + n) / (1 + df)) + 1` fitted on the
//!   training rows (`n` rows, `df` rows with at least one token in the bucket; scikit-learn's
//!   smoothed idf), then the cell's vector is scaled to unit L2 norm. A missing or token-less
//!   cell is all zeros.
//! * **Columns**: `<column>__tfidf00` … in bucket order, floats, at the text column's place.
//!
//! Explanations and adverse-action reasons of a wrapped binary model are given per raw column:
//! the contributions of a column's buckets are summed into one contribution of the column, so a
//! notice names `purpose`, never a hash bucket. Each bucket keeps its most frequent training
//! tokens ([`TextColumn::top_tokens`]) so a reviewer can read what it stands for.

use std::collections::{BTreeMap, HashMap};

use aurum_core::{
    Column, ColumnData, ColumnType, Explanation, Field, Metrics, Schema, Table, Value,
};
use serde::{Deserialize, Serialize};

use crate::policy::{CreditDecision, DecisionPolicy};
use crate::reasons::{self, Reason};
use crate::{
    Assessment, BinaryClassifier, FittedModel, ModelError, Output, OutputSpec, Prediction,
    TableScores, Task,
};

/// Buckets per text column unless the training request says otherwise.
pub const DEFAULT_BUCKETS: usize = 16;
/// The most buckets a column may have (the step must stay small next to the family).
pub const MAX_BUCKETS: usize = 256;
/// Most frequent training tokens kept per bucket, for reading the model.
const TOP_TOKENS: usize = 3;

/// The separator between a text column's name and its bucket number.
pub const BUCKET_INFIX: &str = "__tfidf";

/// One text column's fitted step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextColumn {
    pub column: String,
    /// Smoothed inverse document frequency per bucket, fitted on the training rows.
    pub idf: Vec<f64>,
    /// Up to three most frequent training tokens per bucket (most frequent first).
    pub top_tokens: Vec<Vec<String>>,
    /// Training rows with at least one token.
    pub rows_with_tokens: usize,
}

impl TextColumn {
    /// The name of bucket `b`'s encoded column.
    pub fn bucket_name(&self, b: usize) -> String {
        bucket_name(&self.column, b)
    }

    /// The unit-norm TF-IDF vector of one cell (`None`: missing).
    pub fn vector(&self, cell: Option<&str>) -> Vec<f64> {
        let buckets = self.idf.len();
        let mut v = vec![0.0; buckets];
        let Some(text) = cell else {
            return v;
        };
        let mut tf = vec![0u32; buckets];
        for_each_token(text, |t| tf[bucket_of(t, buckets)] += 1);
        let mut norm = 0.0;
        for ((out, &count), &idf) in v.iter_mut().zip(&tf).zip(&self.idf) {
            if count > 0 {
                *out = (1.0 + f64::from(count).ln()) * idf;
                norm += *out * *out;
            }
        }
        if norm > 0.0 {
            let norm = norm.sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

fn bucket_name(column: &str, b: usize) -> String {
    format!("{column}{BUCKET_INFIX}{b:02}")
}

/// Calls `f` with every token of `text` (see the module docs), lowercased.
pub fn for_each_token(text: &str, mut f: impl FnMut(&str)) {
    let mut token = String::new();
    let mut flush = |token: &mut String| {
        if token.chars().count() >= 2 && !token.chars().all(|c| c.is_ascii_digit()) {
            f(token);
        }
        token.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            token.extend(c.to_lowercase());
        } else {
            flush(&mut token);
        }
    }
    flush(&mut token);
}

/// FNV-1a, 64 bits, of the token's UTF-8 bytes: the pinned hash every stored text model
/// depends on (the TF-IDF buckets here, the token ids of a family that reads text itself), stable
/// across platforms and releases.
pub fn fnv1a64(token: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in token.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The bucket of a token: `fnv1a64(token) mod buckets`.
fn bucket_of(token: &str, buckets: usize) -> usize {
    (fnv1a64(token) % buckets as u64) as usize
}

/// How often a column's tokens recur, for deciding whether it is usable text.
#[derive(Clone, Debug, PartialEq)]
pub struct TextProfile {
    /// Non-missing cells.
    pub rows: usize,
    /// Distinct non-missing cells.
    pub distinct: usize,
    /// Tokens that appear in at least `min_rows` cells but not in every non-missing cell.
    pub recurring_tokens: usize,
    /// Share of non-missing cells holding at least one recurring token.
    pub covered: f64,
    /// Tokens per non-missing cell, on average.
    pub mean_tokens: f64,
}

impl TextProfile {
    /// Short cells nearly unique per row: a name or an identifier, not prose.
    pub fn looks_like_identifier(&self) -> bool {
        self.rows > 0 && self.distinct * 10 >= self.rows * 9 && self.mean_tokens < 3.0
    }
}

/// The number of cells a token must appear in to count as recurring for `rows` cells.
pub fn min_token_rows(rows: usize) -> usize {
    (rows / 1000).max(3)
}

/// Profiles the text cells of a column (`None`: missing).
pub fn profile<'a>(cells: impl Iterator<Item = Option<&'a str>> + Clone) -> TextProfile {
    let mut df: HashMap<String, usize> = HashMap::new();
    let mut distinct = std::collections::HashSet::new();
    let mut rows = 0usize;
    let mut tokens = 0usize;
    for cell in cells.clone().flatten() {
        rows += 1;
        distinct.insert(cell);
        let mut seen = std::collections::HashSet::new();
        for_each_token(cell, |t| {
            tokens += 1;
            if seen.insert(t.to_string()) {
                *df.entry(t.to_string()).or_default() += 1;
            }
        });
    }
    let min = min_token_rows(rows);
    let recurring: std::collections::HashSet<&str> = df
        .iter()
        .filter(|(_, d)| **d >= min && **d < rows)
        .map(|(t, _)| t.as_str())
        .collect();
    let mut covered = 0usize;
    for cell in cells.flatten() {
        let mut hit = false;
        for_each_token(cell, |t| hit |= recurring.contains(t));
        covered += usize::from(hit);
    }
    TextProfile {
        rows,
        distinct: distinct.len(),
        recurring_tokens: recurring.len(),
        covered: if rows == 0 {
            0.0
        } else {
            covered as f64 / rows as f64
        },
        mean_tokens: if rows == 0 {
            0.0
        } else {
            tokens as f64 / rows as f64
        },
    }
}

/// The string cells of a text or categorical column.
fn string_cells(data: &ColumnData) -> Option<&[Option<String>]> {
    match data {
        ColumnData::Text(v) | ColumnData::Categorical(v) => Some(v),
        _ => None,
    }
}

/// The fitted text step: one [`TextColumn`] per text feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextStep {
    pub buckets: usize,
    pub columns: Vec<TextColumn>,
}

impl TextStep {
    /// Fits the step for `columns` of `table` (text or categorical columns) on its rows.
    pub fn fit(table: &Table, columns: &[String], buckets: usize) -> Result<Self, ModelError> {
        if !(2..=MAX_BUCKETS).contains(&buckets) {
            return Err(ModelError::InvalidParam {
                name: "text_buckets".into(),
                value: buckets.to_string(),
                expected: format!("an integer from 2 to {MAX_BUCKETS}"),
            });
        }
        let mut out = Vec::with_capacity(columns.len());
        for name in columns {
            let col = table.column(name).ok_or_else(|| ModelError::InvalidInput {
                feature: name.clone(),
                row: None,
                reason: "not a column of the training table".into(),
            })?;
            let cells = string_cells(&col.data).ok_or_else(|| ModelError::InvalidInput {
                feature: name.clone(),
                row: None,
                reason: format!(
                    "a {} column cannot be read as text",
                    col.data.column_type().as_str()
                ),
            })?;
            let n = cells.len();
            let mut df = vec![0usize; buckets];
            let mut token_rows: HashMap<String, usize> = HashMap::new();
            let mut rows_with_tokens = 0usize;
            for cell in cells.iter().flatten() {
                let mut seen_tokens = std::collections::BTreeSet::new();
                for_each_token(cell, |t| {
                    if !seen_tokens.contains(t) {
                        seen_tokens.insert(t.to_string());
                    }
                });
                let mut seen_buckets = vec![false; buckets];
                for t in &seen_tokens {
                    seen_buckets[bucket_of(t, buckets)] = true;
                }
                rows_with_tokens += usize::from(!seen_tokens.is_empty());
                for (d, s) in df.iter_mut().zip(&seen_buckets) {
                    *d += usize::from(*s);
                }
                for t in seen_tokens {
                    *token_rows.entry(t).or_default() += 1;
                }
            }
            let idf = df
                .iter()
                .map(|&d| ((1.0 + n as f64) / (1.0 + d as f64)).ln() + 1.0)
                .collect();
            let mut per_bucket: Vec<Vec<(usize, String)>> = vec![Vec::new(); buckets];
            for (t, d) in token_rows {
                per_bucket[bucket_of(&t, buckets)].push((d, t));
            }
            let top_tokens = per_bucket
                .into_iter()
                .map(|mut v| {
                    v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
                    v.into_iter().take(TOP_TOKENS).map(|(_, t)| t).collect()
                })
                .collect();
            out.push(TextColumn {
                column: name.clone(),
                idf,
                top_tokens,
                rows_with_tokens,
            });
        }
        Ok(Self {
            buckets,
            columns: out,
        })
    }

    fn column(&self, name: &str) -> Option<&TextColumn> {
        self.columns.iter().find(|c| c.column == name)
    }

    /// `table` with every text column of the step replaced, in place, by its bucket columns.
    pub fn transform_table(&self, table: &Table) -> Result<Table, ModelError> {
        let mut cols = Vec::with_capacity(table.n_cols() + self.columns.len() * self.buckets);
        for c in table.columns() {
            let Some(step) = self.column(&c.name) else {
                cols.push(c.clone());
                continue;
            };
            let cells = string_cells(&c.data).ok_or_else(|| ModelError::InvalidInput {
                feature: c.name.clone(),
                row: None,
                reason: "expected text".into(),
            })?;
            let mut buckets: Vec<Vec<Option<f64>>> =
                vec![Vec::with_capacity(cells.len()); self.buckets];
            for cell in cells {
                for (b, x) in step.vector(cell.as_deref()).into_iter().enumerate() {
                    buckets[b].push(Some(x));
                }
            }
            for (b, data) in buckets.into_iter().enumerate() {
                cols.push(Column {
                    name: step.bucket_name(b),
                    data: ColumnData::Float(data),
                });
            }
        }
        Table::new(cols).map_err(|e| ModelError::InvalidInput {
            feature: "table".into(),
            row: None,
            reason: e.to_string(),
        })
    }

    /// What [`TextStep::transform_table`] makes of a table with `schema`.
    pub fn output_schema(&self, schema: &Schema) -> Schema {
        let mut fields = Vec::new();
        for f in &schema.fields {
            match self.column(&f.name) {
                None => fields.push(f.clone()),
                Some(step) => fields.extend(
                    (0..self.buckets).map(|b| Field::new(step.bucket_name(b), ColumnType::Float)),
                ),
            }
        }
        Schema { fields }
    }
}

/// Where an input of the wrapped model comes from in a raw row.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Source {
    /// The raw value at this index.
    Raw(usize),
    /// Bucket `bucket` of the text column at raw index `raw`, step column `step`.
    Bucket {
        raw: usize,
        step: usize,
        bucket: usize,
    },
}

/// A fitted model behind a [`TextStep`]: raw rows in, the family's answers out.
#[derive(Debug)]
pub struct TextModel {
    step: TextStep,
    raw_schema: Schema,
    inner: Box<dyn FittedModel>,
    sources: Vec<Source>,
    /// Per step column, its raw index (`None`: no bucket of it is used).
    text_raw: Vec<Option<usize>>,
}

impl TextModel {
    /// Wraps `inner`, fitted on `step.output_schema(training)`. The raw schema is what callers
    /// send: the training columns the inner model reads, directly or through one of a text
    /// column's buckets, in training order. Step columns the model does not read are pruned.
    pub fn wrap(
        step: TextStep,
        training: &Schema,
        inner: Box<dyn FittedModel>,
    ) -> Result<Self, ModelError> {
        let used: Vec<&Field> = training
            .fields
            .iter()
            .filter(|f| match step.column(&f.name) {
                None => inner.input_schema().field(&f.name).is_some(),
                Some(c) => (0..step.buckets)
                    .any(|b| inner.input_schema().field(&c.bucket_name(b)).is_some()),
            })
            .collect();
        let raw_schema = Schema {
            fields: used.into_iter().cloned().collect(),
        };
        let step = TextStep {
            buckets: step.buckets,
            columns: step
                .columns
                .into_iter()
                .filter(|c| raw_schema.field(&c.column).is_some())
                .collect(),
        };
        Self::from_parts(step, raw_schema, inner)
    }

    /// Rebuilds the wrapper from its stored parts (the artifact's manifest and the family's
    /// payload); a step that does not produce the inner model's inputs is an invalid artifact.
    pub fn from_parts(
        step: TextStep,
        raw_schema: Schema,
        inner: Box<dyn FittedModel>,
    ) -> Result<Self, ModelError> {
        if step.columns.iter().any(|c| {
            c.idf.len() != step.buckets
                || c.top_tokens.len() != step.buckets
                || c.idf.iter().any(|x| !x.is_finite())
        }) {
            return Err(ModelError::invalid_artifact(
                "text step: a column's tables do not match its bucket count",
            ));
        }
        let mut sources = Vec::with_capacity(inner.input_schema().fields.len());
        for f in &inner.input_schema().fields {
            let source = if let Some(i) = raw_schema.index_of(&f.name) {
                Source::Raw(i)
            } else {
                step.columns
                    .iter()
                    .enumerate()
                    .find_map(|(s, c)| {
                        let rest = f.name.strip_prefix(&c.column)?;
                        let b: usize = rest.strip_prefix(BUCKET_INFIX)?.parse().ok()?;
                        (b < step.buckets && c.bucket_name(b) == f.name).then_some((s, c, b))
                    })
                    .and_then(|(s, c, b)| {
                        raw_schema.index_of(&c.column).map(|raw| Source::Bucket {
                            raw,
                            step: s,
                            bucket: b,
                        })
                    })
                    .ok_or_else(|| {
                        ModelError::invalid_artifact(format!(
                            "text step: the model's input `{}` is neither a raw column nor a text bucket",
                            f.name
                        ))
                    })?
            };
            sources.push(source);
        }
        let text_raw = step
            .columns
            .iter()
            .map(|c| raw_schema.index_of(&c.column))
            .collect();
        Ok(Self {
            step,
            raw_schema,
            inner,
            sources,
            text_raw,
        })
    }

    /// The step (stored in the artifact's manifest).
    pub fn step(&self) -> &TextStep {
        &self.step
    }

    /// The wrapped family model.
    pub fn inner(&self) -> &dyn FittedModel {
        self.inner.as_ref()
    }

    fn transform_row(&self, row: &[Value]) -> Result<Vec<Value>, ModelError> {
        if row.len() != self.raw_schema.fields.len() {
            return Err(ModelError::RowLength {
                row: None,
                expected: self.raw_schema.fields.len(),
                got: row.len(),
            });
        }
        let mut vectors: Vec<Option<Vec<f64>>> = Vec::with_capacity(self.step.columns.len());
        for (c, raw) in self.step.columns.iter().zip(&self.text_raw) {
            let v = match raw.map(|i| &row[i]) {
                None => None,
                Some(Value::Null) => Some(c.vector(None)),
                Some(Value::Str(s)) => Some(c.vector(Some(s))),
                Some(_) => {
                    return Err(ModelError::InvalidInput {
                        feature: c.column.clone(),
                        row: None,
                        reason: "expected a string (free text)".into(),
                    });
                }
            };
            vectors.push(v);
        }
        Ok(self
            .sources
            .iter()
            .map(|s| match *s {
                Source::Raw(i) => row[i].clone(),
                Source::Bucket { step, bucket, .. } => Value::Float(
                    vectors[step]
                        .as_ref()
                        .map_or(0.0, |v| v.get(bucket).copied().unwrap_or(0.0)),
                ),
            })
            .collect())
    }

    fn transform_rows(&self, rows: &[Vec<Value>]) -> Result<Vec<Vec<Value>>, ModelError> {
        rows.iter()
            .enumerate()
            .map(|(i, r)| self.transform_row(r).map_err(|e| e.at_row(i)))
            .collect()
    }

    fn transform_table(&self, table: &Table) -> Result<Table, ModelError> {
        let raw = table
            .select(self.raw_schema.names())
            .map_err(|e| ModelError::InvalidInput {
                feature: "table".into(),
                row: None,
                reason: e.to_string(),
            })?;
        let encoded = self.step.transform_table(&raw)?;
        encoded
            .select(self.inner.input_schema().names())
            .map_err(|e| ModelError::InvalidInput {
                feature: "table".into(),
                row: None,
                reason: e.to_string(),
            })
    }

    /// The raw column an inner feature name belongs to (a bucket's text column, or itself).
    fn raw_feature<'a>(&'a self, inner_feature: &'a str) -> &'a str {
        self.inner
            .input_schema()
            .index_of(inner_feature)
            .and_then(|i| match self.sources.get(i) {
                Some(Source::Bucket { raw, .. }) => {
                    Some(self.raw_schema.fields[*raw].name.as_str())
                }
                _ => None,
            })
            .unwrap_or(inner_feature)
    }

    /// Merges bucket contributions into their text column.
    fn merge_explanation(&self, e: Explanation, row: &[Value]) -> Explanation {
        let mut merged: Vec<aurum_core::Contribution> = Vec::new();
        for c in e.contributions {
            let feature = self.raw_feature(&c.feature).to_string();
            if let Some(m) = merged.iter_mut().find(|m| m.feature == feature) {
                m.contribution += c.contribution;
                continue;
            }
            let value = match self.raw_schema.index_of(&feature) {
                Some(i) if feature != c.feature => row[i].clone(),
                _ => c.value,
            };
            merged.push(aurum_core::Contribution {
                feature,
                value,
                contribution: c.contribution,
            });
        }
        merged.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        Explanation {
            space: e.space,
            base_value: e.base_value,
            contributions: merged,
        }
    }

    /// Merges bucket reasons into one reason per text column, most adverse first.
    fn merge_reasons(&self, list: Vec<Reason>, max: usize) -> Vec<Reason> {
        let mut merged: Vec<Reason> = Vec::new();
        for r in list {
            let feature = self.raw_feature(&r.feature).to_string();
            if feature == r.feature {
                merged.push(r);
                continue;
            }
            if let Some(m) = merged.iter_mut().find(|m| m.feature == feature) {
                m.contribution += r.contribution;
                continue;
            }
            merged.push(Reason {
                code: feature.clone(),
                text: reasons::default_text(&feature),
                feature,
                contribution: r.contribution,
            });
        }
        merged.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
        merged.truncate(max);
        merged
    }

    /// The decision with reasons per raw column. When a column's buckets took several of the
    /// inner model's `max` reason slots, the reasons are asked for again with room to spare, so
    /// a notice still lists `max` distinct features when the model has that many.
    fn merge_decision(
        &self,
        mut d: CreditDecision,
        encoded: &[Value],
        max: usize,
    ) -> Result<CreditDecision, ModelError> {
        let full = d.reasons.len() >= max;
        d.reasons = self.merge_reasons(std::mem::take(&mut d.reasons), max);
        if full && d.reasons.len() < max {
            let list = self.binary()?.reasons(encoded, self.inner_max(max))?;
            d.reasons = self.merge_reasons(list, max);
        }
        Ok(d)
    }

    /// How many inner reasons to ask for so that `max` merged ones survive.
    fn inner_max(&self, max: usize) -> usize {
        max.saturating_mul(self.step.buckets.max(1) + 1)
    }

    fn binary(&self) -> Result<&dyn BinaryClassifier, ModelError> {
        self.inner.as_binary().ok_or_else(|| ModelError::WrongTask {
            family: self.inner.family().to_string(),
            task: self.inner.task(),
            operation: "binary scoring",
        })
    }
}

impl FittedModel for TextModel {
    fn family(&self) -> &str {
        self.inner.family()
    }

    fn task(&self) -> Task {
        self.inner.task()
    }

    fn input_schema(&self) -> &Schema {
        &self.raw_schema
    }

    fn params(&self) -> serde_json::Value {
        self.inner.params()
    }

    fn summary(&self) -> serde_json::Value {
        let mut s = self.inner.summary();
        let text: BTreeMap<&str, serde_json::Value> = self
            .step
            .columns
            .iter()
            .map(|c| {
                (
                    c.column.as_str(),
                    serde_json::json!({
                        "buckets": self.step.buckets,
                        "rows_with_tokens": c.rows_with_tokens,
                        "top_tokens": c.top_tokens,
                    }),
                )
            })
            .collect();
        if let Some(obj) = s.as_object_mut() {
            obj.insert("text_features".into(), serde_json::json!(text));
        }
        s
    }

    fn details(&self) -> serde_json::Value {
        self.inner.details()
    }

    fn payload(&self) -> Result<Vec<u8>, ModelError> {
        self.inner.payload()
    }

    fn output_spec(&self) -> OutputSpec {
        self.inner.output_spec()
    }

    fn predict_rows(&self, rows: &[Vec<Value>]) -> Result<Vec<Output>, ModelError> {
        self.inner.predict_rows(&self.transform_rows(rows)?)
    }

    fn fit_metrics(&self) -> Metrics {
        self.inner.fit_metrics()
    }

    fn dropped_columns(&self) -> Vec<(String, String)> {
        self.inner
            .dropped_columns()
            .into_iter()
            .filter(|(n, _)| !n.contains(BUCKET_INFIX))
            .collect()
    }

    fn as_binary(&self) -> Option<&dyn BinaryClassifier> {
        self.inner
            .as_binary()
            .map(|_| self as &dyn BinaryClassifier)
    }

    fn into_binary(self: Box<Self>) -> Option<Box<dyn BinaryClassifier>> {
        if self.inner.as_binary().is_some() {
            Some(self)
        } else {
            None
        }
    }

    fn text_step(&self) -> Option<&TextStep> {
        Some(&self.step)
    }
}

impl BinaryClassifier for TextModel {
    fn threshold(&self) -> f64 {
        self.inner.as_binary().map_or(0.5, |b| b.threshold())
    }

    fn labels(&self) -> (&str, &str) {
        self.inner.as_binary().map_or(("1", "0"), |b| b.labels())
    }

    fn predict(&self, rows: &[Vec<Value>]) -> Result<Vec<Prediction>, ModelError> {
        self.binary()?.predict(&self.transform_rows(rows)?)
    }

    fn predict_proba_one(&self, row: &[Value]) -> Result<f64, ModelError> {
        self.binary()?.predict_proba_one(&self.transform_row(row)?)
    }

    fn predict_proba_table(&self, table: &Table) -> Result<Vec<f64>, ModelError> {
        self.binary()?
            .predict_proba_table(&self.transform_table(table)?)
    }

    fn explain(&self, row: &[Value]) -> Result<Explanation, ModelError> {
        let e = self.binary()?.explain(&self.transform_row(row)?)?;
        Ok(self.merge_explanation(e, row))
    }

    fn score_points(&self, row: &[Value]) -> Result<Option<f64>, ModelError> {
        self.binary()?.score_points(&self.transform_row(row)?)
    }

    fn policy(&self) -> DecisionPolicy {
        self.inner
            .as_binary()
            .map_or_else(|| DecisionPolicy::at_threshold(0.5), |b| b.policy())
    }

    fn reasons(&self, row: &[Value], max: usize) -> Result<Vec<Reason>, ModelError> {
        let list = self
            .binary()?
            .reasons(&self.transform_row(row)?, self.inner_max(max))?;
        Ok(self.merge_reasons(list, max))
    }

    fn assess(&self, row: &[Value], explain: bool) -> Result<Assessment, ModelError> {
        let max = self.policy().max_reasons;
        let encoded = self.transform_row(row)?;
        let a = self.binary()?.assess(&encoded, explain)?;
        Ok(Assessment {
            decision: self.merge_decision(a.decision, &encoded, max)?,
            explanation: a.explanation.map(|e| self.merge_explanation(e, row)),
        })
    }

    fn assess_batch(
        &self,
        rows: &[Vec<Value>],
        explain: bool,
    ) -> Result<Vec<Assessment>, ModelError> {
        let max = self.policy().max_reasons;
        let encoded = self.transform_rows(rows)?;
        let out = self.binary()?.assess_batch(&encoded, explain)?;
        out.into_iter()
            .zip(rows.iter().zip(&encoded))
            .enumerate()
            .map(|(i, (a, (row, enc)))| {
                Ok(Assessment {
                    decision: self
                        .merge_decision(a.decision, enc, max)
                        .map_err(|e| e.at_row(i))?,
                    explanation: a.explanation.map(|e| self.merge_explanation(e, row)),
                })
            })
            .collect()
    }

    fn score_points_table(&self, table: &Table) -> Result<Option<Vec<f64>>, ModelError> {
        self.binary()?
            .score_points_table(&self.transform_table(table)?)
    }

    /// One text transform of the table for both.
    fn score_table(&self, table: &Table) -> Result<TableScores, ModelError> {
        self.binary()?.score_table(&self.transform_table(table)?)
    }

    fn decide(&self, row: &[Value]) -> Result<CreditDecision, ModelError> {
        let max = self.policy().max_reasons;
        let encoded = self.transform_row(row)?;
        let d = self.binary()?.decide(&encoded)?;
        self.merge_decision(d, &encoded, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_token(s, |t| out.push(t.to_string()));
        out
    }

    fn table(cells: &[Option<&str>]) -> Table {
        Table::new(vec![
            Column {
                name: "purpose".into(),
                data: ColumnData::Text(cells.iter().map(|c| c.map(String::from)).collect()),
            },
            Column {
                name: "x".into(),
                data: ColumnData::Float(cells.iter().map(|_| Some(1.0)).collect()),
            },
        ])
        .unwrap()
    }

    #[test]
    fn tokens_are_lowercased_words_without_numbers_or_single_letters() {
        assert_eq!(
            tokens("Pay off 2 credit-cards ($5,000) & a Médical BILL"),
            ["pay", "off", "credit", "cards", "médical", "bill"]
        );
        assert!(tokens("  12 345 - a ").is_empty());
        assert_eq!(tokens("x9z"), ["x9z"]);
    }

    #[test]
    fn bucket_hashing_is_pinned() {
        // Stored models depend on these: FNV-1a 64 of the UTF-8 bytes, modulo the buckets.
        assert_eq!(bucket_of("debt", 16), 12);
        assert_eq!(bucket_of("business", 16), 11);
        assert_eq!(bucket_of("debt", 256), 28);
        assert_eq!(bucket_of("médical", 256), 193);
        assert_eq!(fnv1a64(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64("debt") % 16, 12);
    }

    #[test]
    fn vectors_are_unit_norm_tf_idf_and_missing_is_zero() {
        let t = table(&[
            Some("debt consolidation"),
            Some("debt debt"),
            Some("business"),
            None,
        ]);
        let step = TextStep::fit(&t, &["purpose".into()], 16).unwrap();
        let c = &step.columns[0];
        assert_eq!(c.rows_with_tokens, 3);
        // `debt` is in 2 of 4 rows: idf = ln(5/3) + 1.
        let debt = bucket_of("debt", 16);
        assert!((c.idf[debt] - ((5.0f64 / 3.0).ln() + 1.0)).abs() < 1e-12);
        assert_eq!(c.top_tokens[debt][0], "debt");
        let v = c.vector(Some("Debt, debt!"));
        let norm: f64 = v.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-12);
        assert!((v[debt] - 1.0).abs() < 1e-12);
        assert!(c.vector(None).iter().all(|x| *x == 0.0));
        assert!(c.vector(Some("12 --")).iter().all(|x| *x == 0.0));
        let out = step.transform_table(&t).unwrap();
        let schema = out.schema();
        let names: Vec<&str> = schema.names().collect();
        assert_eq!(names.len(), 17);
        assert_eq!(names[0], "purpose__tfidf00");
        assert_eq!(names[16], "x");
        assert_eq!(
            out.schema().fields[..16].to_vec(),
            step.output_schema(&t.schema()).fields[..16].to_vec()
        );
    }

    #[test]
    fn bucket_counts_outside_the_range_are_refused() {
        let t = table(&[Some("a b")]);
        for b in [0, 1, MAX_BUCKETS + 1] {
            let e = TextStep::fit(&t, &["purpose".into()], b).unwrap_err();
            assert!(e.to_string().contains("text_buckets"), "{e}");
        }
        let e = TextStep::fit(&t, &["x".into()], 4).unwrap_err();
        assert!(e.to_string().contains("cannot be read as text"), "{e}");
    }

    #[test]
    fn profiles_tell_names_from_free_text() {
        let names: Vec<String> = (0..200).map(|i| format!("Borrower {i}")).collect();
        let p = profile(names.iter().map(|s| Some(s.as_str())));
        assert_eq!(p.distinct, 200);
        assert_eq!(p.recurring_tokens, 0, "`borrower` is in every cell");
        assert!(p.looks_like_identifier());
        let purposes: Vec<Option<&str>> = (0..200)
            .map(|i| match i % 3 {
                0 => Some("debt consolidation"),
                1 => Some("small business"),
                _ => None,
            })
            .collect();
        let p = profile(purposes.iter().copied());
        assert_eq!((p.rows, p.distinct, p.recurring_tokens), (134, 2, 4));
        assert!((p.covered - 1.0).abs() < 1e-12);
        assert!((p.mean_tokens - 2.0).abs() < 1e-12);
        assert!(!p.looks_like_identifier());
    }
}
