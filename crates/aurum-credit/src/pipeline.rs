//! The preprocessing pipeline: raw feature values in, a dense `f64` vector out.
//!
//! Why it lives here and is stored *inside* the model: training/serving skew is the classic way a
//! credit model goes wrong in production. The pipeline is fitted once on the training feature
//! [`Table`] and its every statistic (medians, means, standard deviations, category levels) is
//! saved in the model payload, so serving applies exactly the transforms that training saw and
//! nothing is recomputed from serving traffic.
//!
//! What it does, per raw column type:
//!
//! * **float / integer**: missing values are imputed with the training median, then the column is
//!   standardised with the training mean and (population) standard deviation of the imputed
//!   column; a standard deviation of 0 is replaced by 1. A `<name>__missing` 0/1 indicator column
//!   is added only if the training column had missing values.
//! * **categorical / boolean**: one-hot over the categories seen in training (booleans have the
//!   categories `false` and `true`). Categories seen fewer than `min_frequency` times fold into
//!   one `__other__` level; missing values get their own `__missing__` level when training had
//!   any.
//! * **date**: encoded as a number, its ordinal ([`date_ordinal`]: days since 1970-01-01), then
//!   treated exactly like a float column (median imputation, standardisation, indicator). Every
//!   family reads dates this way (the scorecard bins the ordinal, GBDT splits on it), so a date
//!   feature is one raw column everywhere and serving sends it as a date. With
//!   [`PipelineOptions::date_parts`] (the logistic family's `date_parts=true`) the date also
//!   gives its calendar year and month (1–12) as two more encoded columns, `<name>__year` and
//!   `<name>__month`, each imputed with its training median and standardised like a float: a
//!   linear model can then weigh a vintage or a season, which the day count alone cannot
//!   express. The parts are derived from the ordinal, so serving computes them exactly as
//!   training did; the statistics are stored with the model.
//! * **text, datetime**: not used as features. They are left out of
//!   [`Pipeline::input_schema`] and listed with the reason in [`Pipeline::dropped`]. So are
//!   columns with no non-missing value in training.
//!
//! # Unseen categories and unexpected missing values (public contract)
//!
//! Scoring never fails because the world moved on since training:
//!
//! * a category not seen in training maps to the feature's `__other__` level if it has one, and
//!   otherwise to all-zero indicators for that feature, i.e. the average effect of its levels
//!   (the logistic solver keeps each feature's one-hot coefficients summing to zero under the L2
//!   penalty or none, so all-zero scores exactly the unweighted mean of the level scores);
//! * a missing value in a categorical or boolean column that had no missing values in training
//!   goes the same way (`__other__` if present, else all zeros);
//! * a missing value in a numeric column that had no missing values in training is imputed with
//!   the training median (there is no indicator column to set).
//!
//! Wrong *types* are still errors naming the feature: a string for a numeric feature, a number for
//! a categorical one, NaN or an infinity in a numeric feature. `Integer` is accepted for a float
//! feature and `Float` for an integer one. A categorical feature takes only `Str`, a boolean one
//! only `Boolean`; the empty string is an ordinary (probably unseen) category, not "missing".
//!
//! The encoded layout is deterministic: features in input order; a numeric feature takes one
//! column (plus its indicator), a categorical one its levels in sorted order, then `__other__`,
//! then `__missing__`.

use std::collections::{BTreeMap, HashMap};

use aurum_core::{ColumnData, ColumnType, Field, Schema, Table, Value};
use chrono::NaiveDate;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Name of the level that rare and unseen categories fold into.
pub const OTHER_LEVEL: &str = "__other__";
/// Name of the level for missing categorical values.
pub const MISSING_LEVEL: &str = "__missing__";
/// Suffix of a numeric feature's missing-indicator column name.
pub const MISSING_INDICATOR_SUFFIX: &str = "__missing";
/// Suffixes of a date feature's year and month columns (with [`PipelineOptions::date_parts`]).
pub const YEAR_SUFFIX: &str = "__year";
pub const MONTH_SUFFIX: &str = "__month";

/// Options of [`Pipeline::fit_transform`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineOptions {
    /// Categories seen fewer times than this in training fold into `__other__` (at least 1).
    pub min_frequency: usize,
    /// Date features also give their year and month as features (see the module docs).
    pub date_parts: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            min_frequency: 1,
            date_parts: false,
        }
    }
}

/// A date as a number for models: days since 1970-01-01 (negative before).
pub fn date_ordinal(d: NaiveDate) -> f64 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (d - epoch).num_days() as f64
}

/// The calendar year and month (1–12) of a date ordinal (`None` for a missing value or one out
/// of chrono's range): the date parts of [`PipelineOptions::date_parts`].
pub fn date_parts(ordinal: Option<f64>) -> (Option<f64>, Option<f64>) {
    use chrono::Datelike;
    match ordinal.and_then(date_of_ordinal) {
        Some(d) => (Some(f64::from(d.year())), Some(f64::from(d.month()))),
        None => (None, None),
    }
}

/// The date of an ordinal, rounded to the nearest day (`None` out of chrono's range).
pub(crate) fn date_of_ordinal(x: f64) -> Option<NaiveDate> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    if !x.is_finite() || x.abs() > 1e8 {
        return None;
    }
    epoch.checked_add_signed(chrono::TimeDelta::try_days(x.round() as i64)?)
}

/// Whether a feature of this type is encoded as one number (float, integer, date).
pub(crate) fn is_numeric_feature(ty: ColumnType) -> bool {
    ty.is_numeric() || ty == ColumnType::Date
}

/// A number of a numeric feature back as a value of the feature's type (integers truncated,
/// date ordinals as dates).
pub(crate) fn value_of_number(field: &Field, x: f64) -> Value {
    match field.ty {
        ColumnType::Integer => Value::Integer(x as i64),
        ColumnType::Date => date_of_ordinal(x).map_or(Value::Float(x), Value::Date),
        _ => Value::Float(x),
    }
}

/// Why a training column is not a model feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Text and datetime columns are not encoded.
    UnsupportedType,
    /// The column had no non-missing value in training.
    AllMissing,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::UnsupportedType => "unsupported_type",
            DropReason::AllMissing => "all_missing",
        }
    }
}

/// A training column that the pipeline does not use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedColumn {
    pub name: String,
    pub ty: ColumnType,
    pub reason: DropReason,
}

/// A dense row-major matrix of encoded rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    n_rows: usize,
    n_cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Row `i` (panics if out of bounds, like slice indexing).
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.n_cols..(i + 1) * self.n_cols]
    }

    /// All rows in order.
    pub fn rows(&self) -> impl Iterator<Item = &[f64]> {
        (0..self.n_rows).map(|i| self.row(i))
    }

    /// The row-major values.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// A matrix over row-major `data` (panics unless `data.len() == n_rows * n_cols`).
    pub(crate) fn from_row_major(n_rows: usize, n_cols: usize, data: Vec<f64>) -> Self {
        assert_eq!(data.len(), n_rows * n_cols, "matrix shape");
        Matrix {
            n_rows,
            n_cols,
            data,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct NumericEncoder {
    median: f64,
    mean: f64,
    std: f64,
    indicator: bool,
}

impl NumericEncoder {
    fn width(&self) -> usize {
        1 + usize::from(self.indicator)
    }

    /// Writes the encoded value of `x` (`None` = missing) into `out[..self.width()]`.
    #[inline]
    fn put(&self, x: Option<f64>, out: &mut [f64]) {
        out[0] = (x.unwrap_or(self.median) - self.mean) / self.std;
        if self.indicator {
            out[1] = if x.is_none() { 1.0 } else { 0.0 };
        }
    }
}

/// Training levels to their positions. The keys are fixed at fit, so a fast non-keyed hash is
/// safe: a caller's strings are only looked up, never inserted.
pub(crate) type LevelIndex = HashMap<String, usize, rustc_hash::FxBuildHasher>;

#[derive(Clone, Debug, PartialEq)]
struct CategoricalEncoder {
    levels: Vec<String>,
    index: LevelIndex,
    other: bool,
    missing: bool,
}

impl CategoricalEncoder {
    fn new(levels: Vec<String>, other: bool, missing: bool) -> Self {
        let index = levels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i))
            .collect();
        Self {
            levels,
            index,
            other,
            missing,
        }
    }

    fn width(&self) -> usize {
        self.levels.len() + usize::from(self.other) + usize::from(self.missing)
    }

    fn other_slot(&self) -> Option<usize> {
        self.other.then_some(self.levels.len())
    }

    fn missing_slot(&self) -> Option<usize> {
        self.missing
            .then(|| self.levels.len() + usize::from(self.other))
    }

    /// The unseen-category rule lives here: unknown → `__other__` or nothing.
    #[inline]
    fn slot(&self, category: Option<&str>) -> Option<usize> {
        match category {
            None => self.missing_slot().or(self.other_slot()),
            Some(c) => self.index.get(c).copied().or(self.other_slot()),
        }
    }

    /// Writes the one-hot encoding of `category` into `out[..self.width()]`.
    #[inline]
    fn put(&self, category: Option<&str>, out: &mut [f64]) {
        out.fill(0.0);
        if let Some(s) = self.slot(category) {
            out[s] = 1.0;
        }
    }
}

/// A date feature with its parts: the ordinal (with its missing indicator), then the year and
/// the month, each standardised with its own training statistics (no indicators of their own).
#[derive(Clone, Debug, PartialEq)]
struct DateEncoder {
    ordinal: NumericEncoder,
    year: NumericEncoder,
    month: NumericEncoder,
}

impl DateEncoder {
    fn width(&self) -> usize {
        self.ordinal.width() + 2
    }

    /// Writes the encoded ordinal `x` (`None` = missing) and its parts into `out[..width]`.
    #[inline]
    fn put(&self, x: Option<f64>, out: &mut [f64]) {
        let w = self.ordinal.width();
        self.ordinal.put(x, &mut out[..w]);
        let (year, month) = date_parts(x);
        self.year.put(year, &mut out[w..=w]);
        self.month.put(month, &mut out[w + 1..w + 2]);
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Encoder {
    Numeric(NumericEncoder),
    Categorical(CategoricalEncoder),
    Date(DateEncoder),
}

impl Encoder {
    fn width(&self) -> usize {
        match self {
            Encoder::Numeric(e) => e.width(),
            Encoder::Categorical(e) => e.width(),
            Encoder::Date(e) => e.width(),
        }
    }
}

/// Where [`Pipeline::visit_rows`] puts each checked cell of a block of rows: cell of row `i`
/// (within the block) for the field encoded from column `offset` on.
trait CellSink {
    fn numeric(&mut self, i: usize, offset: usize, e: &NumericEncoder, x: Option<f64>);
    fn date(&mut self, i: usize, offset: usize, e: &DateEncoder, x: Option<f64>);
    fn categorical(&mut self, i: usize, offset: usize, e: &CategoricalEncoder, c: Option<&str>);
}

/// Encoded rows, row-major, `n_cols` wide.
struct RowMajor<'a> {
    out: &'a mut [f64],
    n_cols: usize,
}

impl CellSink for RowMajor<'_> {
    #[inline]
    fn numeric(&mut self, i: usize, offset: usize, e: &NumericEncoder, x: Option<f64>) {
        let at = i * self.n_cols + offset;
        e.put(x, &mut self.out[at..at + e.width()]);
    }

    #[inline]
    fn date(&mut self, i: usize, offset: usize, e: &DateEncoder, x: Option<f64>) {
        let at = i * self.n_cols + offset;
        e.put(x, &mut self.out[at..at + e.width()]);
    }

    #[inline]
    fn categorical(&mut self, i: usize, offset: usize, e: &CategoricalEncoder, c: Option<&str>) {
        let at = i * self.n_cols + offset;
        e.put(c, &mut self.out[at..at + e.width()]);
    }
}

/// `z[i] += coef[j] · x_j` for each nonzero encoded value of row `i`, in encoded-column order.
struct Linear<'a> {
    z: &'a mut [f64],
    coef: &'a [f64],
}

impl Linear<'_> {
    #[inline]
    fn add(&mut self, i: usize, offset: usize, x: &[f64]) {
        for (c, x) in self.coef[offset..offset + x.len()].iter().zip(x) {
            if *x != 0.0 {
                self.z[i] += c * x;
            }
        }
    }
}

impl CellSink for Linear<'_> {
    #[inline]
    fn numeric(&mut self, i: usize, offset: usize, e: &NumericEncoder, x: Option<f64>) {
        let mut buf = [0.0; 2];
        let w = e.width();
        e.put(x, &mut buf[..w]);
        self.add(i, offset, &buf[..w]);
    }

    #[inline]
    fn date(&mut self, i: usize, offset: usize, e: &DateEncoder, x: Option<f64>) {
        let mut buf = [0.0; 4];
        let w = e.width();
        e.put(x, &mut buf[..w]);
        self.add(i, offset, &buf[..w]);
    }

    /// One-hot: the slot's coefficient times 1, the other slots' zeros skipped.
    #[inline]
    fn categorical(&mut self, i: usize, offset: usize, e: &CategoricalEncoder, c: Option<&str>) {
        if let Some(s) = e.slot(c) {
            self.z[i] += self.coef[offset + s] * 1.0;
        }
    }
}

/// A fitted preprocessing pipeline (see the module docs for what it does and the unseen-category
/// rule).
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    input_schema: Schema,
    /// One per input field: the first encoded column and the encoder.
    encoders: Vec<(usize, Encoder)>,
    encoded_names: Vec<String>,
    encoded_to_raw: Vec<usize>,
    encoded_means: Vec<f64>,
    dropped: Vec<DroppedColumn>,
}

pub(crate) fn bool_category(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn input_error(feature: &str, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidInput {
        feature: feature.to_string(),
        row: None,
        reason: reason.into(),
    }
}

impl Pipeline {
    /// Fits the pipeline on the training features and returns it with the encoded training
    /// matrix (which the model is then fitted on).
    pub fn fit_transform(
        features: &Table,
        options: &PipelineOptions,
    ) -> Result<(Pipeline, Matrix), ModelError> {
        if options.min_frequency == 0 {
            return Err(ModelError::invalid_param(
                "min_frequency",
                0,
                "an integer >= 1",
            ));
        }
        if features.n_rows() == 0 {
            return Err(ModelError::NotEnoughData {
                reason: "the feature table has no rows".into(),
            });
        }
        let mut fields = Vec::new();
        let mut encoders = Vec::new();
        let mut dropped = Vec::new();
        for col in features.columns() {
            let ty = col.data.column_type();
            let encoder = match &col.data {
                ColumnData::Float(v) => fit_numeric(&col.name, v.iter().copied())?,
                ColumnData::Integer(v) => {
                    fit_numeric(&col.name, v.iter().map(|x| x.map(|i| i as f64)))?
                }
                ColumnData::Boolean(v) => fit_categorical(
                    v.iter().map(|b| b.map(bool_category)),
                    options.min_frequency,
                ),
                ColumnData::Categorical(v) => {
                    fit_categorical(v.iter().map(|s| s.as_deref()), options.min_frequency)
                }
                ColumnData::Date(v) if options.date_parts => fit_date(&col.name, v)?,
                ColumnData::Date(v) => {
                    fit_numeric(&col.name, v.iter().map(|d| d.map(date_ordinal)))?
                }
                ColumnData::Text(_) | ColumnData::DateTime(_) => {
                    dropped.push(DroppedColumn {
                        name: col.name.clone(),
                        ty,
                        reason: DropReason::UnsupportedType,
                    });
                    continue;
                }
            };
            match encoder {
                Some(e) => {
                    fields.push(Field::new(col.name.clone(), ty));
                    encoders.push(e);
                }
                None => dropped.push(DroppedColumn {
                    name: col.name.clone(),
                    ty,
                    reason: DropReason::AllMissing,
                }),
            }
        }
        if encoders.is_empty() {
            let reason = if dropped.is_empty() {
                "the feature table has no columns".to_string()
            } else {
                let list: Vec<String> = dropped
                    .iter()
                    .map(|d| format!("{} ({}: {})", d.name, d.ty, d.reason.as_str()))
                    .collect();
                format!("every column was dropped: {}", list.join(", "))
            };
            return Err(ModelError::NoUsableFeatures { reason });
        }
        let mut pipeline = Pipeline::assemble(Schema { fields }, encoders, dropped);
        let matrix = pipeline.transform_table(features)?;
        let n = matrix.n_rows() as f64;
        let mut means = vec![0.0; matrix.n_cols()];
        for row in matrix.rows() {
            for (m, x) in means.iter_mut().zip(row) {
                *m += x;
            }
        }
        for m in &mut means {
            *m /= n;
        }
        pipeline.encoded_means = means;
        Ok((pipeline, matrix))
    }

    /// Lays out the encoded columns. `encoded_means` is left at zero for the caller to fill.
    fn assemble(input_schema: Schema, encoders: Vec<Encoder>, dropped: Vec<DroppedColumn>) -> Self {
        let mut with_offsets = Vec::with_capacity(encoders.len());
        let mut names = Vec::new();
        let mut to_raw = Vec::new();
        for (raw, (field, enc)) in input_schema.fields.iter().zip(encoders).enumerate() {
            with_offsets.push((names.len(), enc.clone()));
            match &enc {
                Encoder::Numeric(e) => {
                    names.push(field.name.clone());
                    if e.indicator {
                        names.push(format!("{}{MISSING_INDICATOR_SUFFIX}", field.name));
                    }
                }
                Encoder::Date(e) => {
                    names.push(field.name.clone());
                    if e.ordinal.indicator {
                        names.push(format!("{}{MISSING_INDICATOR_SUFFIX}", field.name));
                    }
                    names.push(format!("{}{YEAR_SUFFIX}", field.name));
                    names.push(format!("{}{MONTH_SUFFIX}", field.name));
                }
                Encoder::Categorical(e) => {
                    for l in &e.levels {
                        names.push(format!("{}={l}", field.name));
                    }
                    if e.other {
                        names.push(format!("{}={OTHER_LEVEL}", field.name));
                    }
                    if e.missing {
                        names.push(format!("{}={MISSING_LEVEL}", field.name));
                    }
                }
            }
            to_raw.resize(names.len(), raw);
        }
        let n_encoded = names.len();
        Pipeline {
            input_schema,
            encoders: with_offsets,
            encoded_names: names,
            encoded_to_raw: to_raw,
            encoded_means: vec![0.0; n_encoded],
            dropped,
        }
    }

    /// The raw feature columns the model consumes, in order. Prediction rows are aligned to it.
    pub fn input_schema(&self) -> &Schema {
        &self.input_schema
    }

    /// Number of encoded columns.
    pub fn n_encoded(&self) -> usize {
        self.encoded_names.len()
    }

    /// Names of the encoded columns (`age`, `age__missing`, `purpose=car`, `purpose=__other__`).
    pub fn encoded_names(&self) -> &[String] {
        &self.encoded_names
    }

    /// For each encoded column, the index of the raw feature (in [`Pipeline::input_schema`]) it
    /// came from.
    pub fn encoded_to_raw(&self) -> &[usize] {
        &self.encoded_to_raw
    }

    /// Mean of each encoded column over the training rows (the reference point of explanations).
    pub fn encoded_means(&self) -> &[f64] {
        &self.encoded_means
    }

    /// The encoded column ranges of each categorical or boolean feature. On the training rows
    /// exactly one column of each range is 1 and the others 0, so every range is collinear with
    /// the intercept; solvers use this to remove that flat direction.
    pub(crate) fn one_hot_groups(&self) -> Vec<std::ops::Range<usize>> {
        self.encoders
            .iter()
            .filter_map(|(offset, enc)| match enc {
                Encoder::Categorical(e) => Some(*offset..*offset + e.width()),
                Encoder::Numeric(_) | Encoder::Date(_) => None,
            })
            .collect()
    }

    /// Training columns that are not features, with the reason.
    pub fn dropped(&self) -> &[DroppedColumn] {
        &self.dropped
    }

    /// Encodes one row aligned to [`Pipeline::input_schema`] into `out` (cleared first).
    ///
    /// This is the serving hot path: it allocates nothing once `out` has grown to
    /// [`Pipeline::n_encoded`], except to build an error.
    pub fn transform_row(&self, row: &[Value], out: &mut Vec<f64>) -> Result<(), ModelError> {
        if row.len() != self.input_schema.len() {
            return Err(ModelError::RowLength {
                row: None,
                expected: self.input_schema.len(),
                got: row.len(),
            });
        }
        out.clear();
        out.resize(self.n_encoded(), 0.0);
        for ((field, (offset, enc)), value) in
            self.input_schema.fields.iter().zip(&self.encoders).zip(row)
        {
            let slot = &mut out[*offset..*offset + enc.width()];
            match enc {
                Encoder::Numeric(e) => e.put(read_numeric(field, value)?, slot),
                Encoder::Date(e) => e.put(read_numeric(field, value)?, slot),
                Encoder::Categorical(e) => e.put(read_category(field, value)?, slot),
            }
        }
        Ok(())
    }

    /// Encodes every row of `table`, which must hold (at least) the input columns, found by name,
    /// with compatible types. Float NaN cells count as missing, as everywhere in `aurum-core`.
    pub fn transform_table(&self, table: &Table) -> Result<Matrix, ModelError> {
        /// Rows per task when a table is encoded on several threads.
        const ROWS: usize = 1024;
        let n_rows = table.n_rows();
        let n_cols = self.n_encoded();
        let columns = self.columns_of(table)?;
        let mut data = vec![0.0; n_rows * n_cols];
        if n_rows > ROWS && n_cols > 0 {
            let spread = data
                .par_chunks_mut(ROWS * n_cols)
                .enumerate()
                .try_for_each(|(b, out)| {
                    self.fill_rows(&columns, b * ROWS, out.len() / n_cols, out)
                });
            if let Err(e) = spread {
                // The error one pass in field order finds first, whichever task hit one.
                self.fill_rows(&columns, 0, n_rows, &mut data)?;
                return Err(e);
            }
        } else {
            self.fill_rows(&columns, 0, n_rows, &mut data)?;
        }
        Ok(Matrix {
            n_rows,
            n_cols,
            data,
        })
    }

    /// `f` of every encoded row of `table`, in row order: the rows of
    /// [`Pipeline::transform_table`], encoded a block at a time into a buffer each thread
    /// reuses (the whole matrix is never built: a wide one-hot matrix costs more in page faults
    /// than the model spends on it), the blocks spread over rayon's threads. The error is
    /// `transform_table`'s.
    pub fn map_table_rows<T: Send>(
        &self,
        table: &Table,
        f: impl Fn(&[f64]) -> T + Sync + Send,
    ) -> Result<Vec<T>, ModelError> {
        /// Rows per block: small enough for a wide one-hot block to stay in the core's cache.
        const ROWS: usize = 64;
        let n_rows = table.n_rows();
        let n_cols = self.n_encoded();
        if n_cols == 0 || n_rows == 0 {
            // Nothing to encode; the table is still checked.
            let m = self.transform_table(table)?;
            return Ok(m.rows().map(f).collect());
        }
        let columns = self.columns_of(table)?;
        let starts: Vec<usize> = (0..n_rows).step_by(ROWS).collect();
        let blocks: Vec<Result<Vec<T>, ModelError>> = starts
            .par_iter()
            .map_init(
                || vec![0.0; ROWS * n_cols],
                |buf, &start| {
                    let len = ROWS.min(n_rows - start);
                    let buf = &mut buf[..len * n_cols];
                    self.fill_rows(&columns, start, len, buf)?;
                    Ok(buf.chunks_exact(n_cols).map(&f).collect())
                },
            )
            .collect();
        let mut out = Vec::with_capacity(n_rows);
        for block in blocks {
            match block {
                Ok(values) => out.extend(values),
                Err(e) => {
                    // The error one pass in field order finds first, whichever block hit one.
                    self.transform_table(table)?;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// The input columns of `table`, in input order.
    fn columns_of<'t>(&self, table: &'t Table) -> Result<Vec<&'t ColumnData>, ModelError> {
        self.input_schema
            .fields
            .iter()
            .map(|field| {
                table
                    .column(&field.name)
                    .map(|c| &c.data)
                    .ok_or_else(|| input_error(&field.name, "the column is missing from the table"))
            })
            .collect()
    }

    /// Encodes rows `start..start + len` of `columns` (the input columns, in input order) into
    /// `out`, row-major; errors name the table's row.
    fn fill_rows(
        &self,
        columns: &[&ColumnData],
        start: usize,
        len: usize,
        out: &mut [f64],
    ) -> Result<(), ModelError> {
        let n_cols = self.n_encoded().max(1);
        self.visit_rows(columns, start, len, &mut RowMajor { out, n_cols })
    }

    /// `Σ_j coef[j] · x_j` over the nonzero encoded values `x_j` of each row of `table`, added
    /// in encoded-column order: the bits of that sum over [`Pipeline::transform_table`]'s rows,
    /// computed column by column without building any row (a one-hot block adds one
    /// coefficient, not its width of zeros). Blocks of rows spread over rayon's threads; the
    /// error is `transform_table`'s.
    pub fn linear_table(&self, table: &Table, coef: &[f64]) -> Result<Vec<f64>, ModelError> {
        /// Rows per task.
        const ROWS: usize = 1024;
        if coef.len() != self.n_encoded() {
            return Err(ModelError::Numerical {
                reason: format!(
                    "{} coefficients for {} encoded columns",
                    coef.len(),
                    self.n_encoded()
                ),
            });
        }
        let n_rows = table.n_rows();
        let columns = self.columns_of(table)?;
        let mut z = vec![0.0; n_rows];
        let spread = z.par_chunks_mut(ROWS).enumerate().try_for_each(|(b, z)| {
            let len = z.len();
            self.visit_rows(&columns, b * ROWS, len, &mut Linear { z, coef })
        });
        if let Err(e) = spread {
            // The error one pass in field order finds first, whichever task hit one.
            self.transform_table(table)?;
            return Err(e);
        }
        Ok(z)
    }

    /// Reads rows `start..start + len` of `columns` (the input columns, in input order) field
    /// by field, checking each cell as the row path does, and hands each cell with its
    /// encoder to `sink`; errors name the table's row.
    fn visit_rows(
        &self,
        columns: &[&ColumnData],
        start: usize,
        len: usize,
        sink: &mut impl CellSink,
    ) -> Result<(), ModelError> {
        let range = start..start + len;
        for ((field, (offset, enc)), data) in self
            .input_schema
            .fields
            .iter()
            .zip(&self.encoders)
            .zip(columns)
        {
            let offset = *offset;
            let rows = 0..len;
            match (enc, *data) {
                (Encoder::Numeric(e), ColumnData::Float(v)) if field.ty.is_numeric() => {
                    for (i, x) in rows.zip(&v[range.clone()]) {
                        let x = match x {
                            Some(x) if x.is_infinite() => {
                                return Err(ModelError::InvalidInput {
                                    feature: field.name.clone(),
                                    row: Some(start + i),
                                    reason: format!("{x} is not a finite number"),
                                });
                            }
                            Some(x) if x.is_nan() => None,
                            other => *other,
                        };
                        sink.numeric(i, offset, e, x);
                    }
                }
                (Encoder::Numeric(e), ColumnData::Integer(v)) if field.ty.is_numeric() => {
                    for (i, x) in rows.zip(&v[range.clone()]) {
                        sink.numeric(i, offset, e, x.map(|i| i as f64));
                    }
                }
                (Encoder::Numeric(e), ColumnData::Date(v)) if field.ty == ColumnType::Date => {
                    for (i, d) in rows.zip(&v[range.clone()]) {
                        sink.numeric(i, offset, e, d.map(date_ordinal));
                    }
                }
                (Encoder::Date(e), ColumnData::Date(v)) if field.ty == ColumnType::Date => {
                    for (i, d) in rows.zip(&v[range.clone()]) {
                        sink.date(i, offset, e, d.map(date_ordinal));
                    }
                }
                (Encoder::Categorical(e), ColumnData::Categorical(v))
                    if field.ty == ColumnType::Categorical =>
                {
                    for (i, c) in rows.zip(&v[range.clone()]) {
                        sink.categorical(i, offset, e, c.as_deref());
                    }
                }
                (Encoder::Categorical(e), ColumnData::Boolean(v))
                    if field.ty == ColumnType::Boolean =>
                {
                    for (i, b) in rows.zip(&v[range.clone()]) {
                        sink.categorical(i, offset, e, b.map(bool_category));
                    }
                }
                (_, data) => {
                    return Err(input_error(
                        &field.name,
                        format!("expected a {} column, got {}", field.ty, data.column_type()),
                    ));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn to_stored(&self) -> StoredPipeline {
        let features = self
            .input_schema
            .fields
            .iter()
            .zip(&self.encoders)
            .map(|(field, (_, enc))| match enc {
                Encoder::Numeric(e) => StoredFeature::Numeric {
                    name: field.name.clone(),
                    ty: field.ty,
                    median: e.median,
                    mean: e.mean,
                    std: e.std,
                    missing_indicator: e.indicator,
                },
                Encoder::Categorical(e) => StoredFeature::Categorical {
                    name: field.name.clone(),
                    ty: field.ty,
                    levels: e.levels.clone(),
                    other: e.other,
                    missing: e.missing,
                },
                Encoder::Date(e) => StoredFeature::DateParts {
                    name: field.name.clone(),
                    median: e.ordinal.median,
                    mean: e.ordinal.mean,
                    std: e.ordinal.std,
                    missing_indicator: e.ordinal.indicator,
                    year: [e.year.median, e.year.mean, e.year.std],
                    month: [e.month.median, e.month.mean, e.month.std],
                },
            })
            .collect();
        let dropped = self
            .dropped
            .iter()
            .map(|d| StoredDropped {
                name: d.name.clone(),
                ty: d.ty,
                reason: match d.reason {
                    DropReason::UnsupportedType => StoredDropReason::UnsupportedType,
                    DropReason::AllMissing => StoredDropReason::AllMissing,
                },
            })
            .collect();
        StoredPipeline {
            features,
            dropped,
            encoded_means: self.encoded_means.clone(),
        }
    }

    /// Rebuilds a pipeline from its stored form, checking everything a later `transform_row`
    /// relies on, so that a damaged payload is refused here rather than panicking at serving.
    pub(crate) fn from_stored(stored: StoredPipeline) -> Result<Self, ModelError> {
        let bad = |msg: String| Err(ModelError::invalid_artifact(format!("pipeline: {msg}")));
        if stored.features.is_empty() {
            return bad("no features".into());
        }
        let mut fields = Vec::with_capacity(stored.features.len());
        let mut encoders = Vec::with_capacity(stored.features.len());
        for f in stored.features {
            match f {
                StoredFeature::Numeric {
                    name,
                    ty,
                    median,
                    mean,
                    std,
                    missing_indicator,
                } => {
                    if !is_numeric_feature(ty) {
                        return bad(format!("numeric feature `{name}` has type {ty}"));
                    }
                    if !(median.is_finite() && mean.is_finite() && std.is_finite() && std > 0.0) {
                        return bad(format!("feature `{name}` has invalid statistics"));
                    }
                    fields.push(Field::new(name, ty));
                    encoders.push(Encoder::Numeric(NumericEncoder {
                        median,
                        mean,
                        std,
                        indicator: missing_indicator,
                    }));
                }
                StoredFeature::DateParts {
                    name,
                    median,
                    mean,
                    std,
                    missing_indicator,
                    year,
                    month,
                } => {
                    let stats = [median, mean, std].into_iter().chain(year).chain(month);
                    if stats.clone().any(|x| !x.is_finite())
                        || [std, year[2], month[2]].iter().any(|s| *s <= 0.0)
                    {
                        return bad(format!("feature `{name}` has invalid statistics"));
                    }
                    let part = |[median, mean, std]: [f64; 3]| NumericEncoder {
                        median,
                        mean,
                        std,
                        indicator: false,
                    };
                    fields.push(Field::new(name, ColumnType::Date));
                    encoders.push(Encoder::Date(DateEncoder {
                        ordinal: NumericEncoder {
                            median,
                            mean,
                            std,
                            indicator: missing_indicator,
                        },
                        year: part(year),
                        month: part(month),
                    }));
                }
                StoredFeature::Categorical {
                    name,
                    ty,
                    levels,
                    other,
                    missing,
                } => {
                    match ty {
                        ColumnType::Categorical => {}
                        ColumnType::Boolean => {
                            if levels.iter().any(|l| l != "true" && l != "false") {
                                return bad(format!(
                                    "boolean feature `{name}` has a non-boolean level"
                                ));
                            }
                        }
                        _ => return bad(format!("categorical feature `{name}` has type {ty}")),
                    }
                    let enc = CategoricalEncoder::new(levels, other, missing);
                    if enc.index.len() != enc.levels.len() {
                        return bad(format!("feature `{name}` has duplicate levels"));
                    }
                    if enc.width() == 0 {
                        return bad(format!("feature `{name}` has no levels"));
                    }
                    fields.push(Field::new(name, ty));
                    encoders.push(Encoder::Categorical(enc));
                }
            }
        }
        let schema = match Schema::new(fields) {
            Ok(s) => s,
            Err(e) => return bad(e.to_string()),
        };
        let dropped = stored
            .dropped
            .into_iter()
            .map(|d| DroppedColumn {
                name: d.name,
                ty: d.ty,
                reason: match d.reason {
                    StoredDropReason::UnsupportedType => DropReason::UnsupportedType,
                    StoredDropReason::AllMissing => DropReason::AllMissing,
                },
            })
            .collect();
        let mut pipeline = Pipeline::assemble(schema, encoders, dropped);
        if stored.encoded_means.len() != pipeline.n_encoded() {
            return bad(format!(
                "{} encoded means for {} encoded columns",
                stored.encoded_means.len(),
                pipeline.n_encoded()
            ));
        }
        if stored.encoded_means.iter().any(|m| !m.is_finite()) {
            return bad("non-finite encoded mean".into());
        }
        pipeline.encoded_means = stored.encoded_means;
        Ok(pipeline)
    }
}

/// Reads one serving value of a numeric feature (the pipeline's rules: `Integer` and `Float` are
/// both accepted, `Null` is missing, NaN and infinities are errors naming the feature; a date
/// feature takes a `Date`, read as its [`date_ordinal`]).
pub(crate) fn read_numeric(field: &Field, value: &Value) -> Result<Option<f64>, ModelError> {
    if field.ty == ColumnType::Date {
        return match value {
            Value::Null => Ok(None),
            Value::Date(d) => Ok(Some(date_ordinal(*d))),
            other => Err(type_error(field, other)),
        };
    }
    match value {
        Value::Null => Ok(None),
        Value::Float(x) if x.is_finite() => Ok(Some(*x)),
        Value::Float(x) => Err(input_error(
            &field.name,
            format!("{x} is not a finite number"),
        )),
        Value::Integer(i) => Ok(Some(*i as f64)),
        other => Err(type_error(field, other)),
    }
}

/// Reads one serving value of a categorical or boolean feature as its category (`"true"` /
/// `"false"` for booleans); `Null` is missing.
pub(crate) fn read_category<'a>(
    field: &Field,
    value: &'a Value,
) -> Result<Option<&'a str>, ModelError> {
    match (field.ty, value) {
        (_, Value::Null) => Ok(None),
        (ColumnType::Boolean, Value::Boolean(b)) => Ok(Some(bool_category(*b))),
        (ColumnType::Categorical, Value::Str(s)) => Ok(Some(s.as_str())),
        (_, other) => Err(type_error(field, other)),
    }
}

/// A float cell of column `name`, row `row`: `None` for NaN (missing, as everywhere in
/// `aurum-core`), an error naming the cell for ±∞.
pub(crate) fn finite_cell(name: &str, row: usize, x: f64) -> Result<Option<f64>, ModelError> {
    if x.is_infinite() {
        Err(ModelError::InvalidInput {
            feature: name.to_string(),
            row: Some(row),
            reason: format!("{x} is not a finite number"),
        })
    } else if x.is_nan() {
        Ok(None)
    } else {
        Ok(Some(x))
    }
}

/// A training or scoring column read as numbers (`None` = missing, NaN counts as missing), with
/// infinities refused naming the feature and row. `None` when the column is not numeric.
pub(crate) fn numeric_column(
    name: &str,
    data: &ColumnData,
) -> Option<Result<Vec<Option<f64>>, ModelError>> {
    let finite = |i: usize, x: f64| finite_cell(name, i, x);
    match data {
        ColumnData::Float(v) => Some(
            v.iter()
                .enumerate()
                .map(|(i, x)| x.map_or(Ok(None), |x| finite(i, x)))
                .collect(),
        ),
        ColumnData::Integer(v) => Some(Ok(v.iter().map(|x| x.map(|i| i as f64)).collect())),
        ColumnData::Date(v) => Some(Ok(v.iter().map(|d| d.map(date_ordinal)).collect())),
        _ => None,
    }
}

/// A categorical or boolean column read as categories (`"true"` / `"false"` for booleans).
/// `None` when the column is neither.
pub(crate) fn category_column(data: &ColumnData) -> Option<Vec<Option<&str>>> {
    match data {
        ColumnData::Categorical(v) => Some(v.iter().map(|s| s.as_deref()).collect()),
        ColumnData::Boolean(v) => Some(v.iter().map(|b| b.map(bool_category)).collect()),
        _ => None,
    }
}

/// [`table_column`] for each of `fields`, in order: the first missing or mistyped column's
/// error.
pub(crate) fn table_columns<'a>(
    table: &'a Table,
    fields: &[Field],
) -> Result<Vec<&'a ColumnData>, ModelError> {
    fields
        .iter()
        .map(|field| table_column(table, field))
        .collect()
}

/// Checks that `table` has a column named like `field` with a compatible type (the rule of
/// [`Pipeline::transform_table`]) and returns it.
pub(crate) fn table_column<'a>(
    table: &'a Table,
    field: &Field,
) -> Result<&'a ColumnData, ModelError> {
    let col = table
        .column(&field.name)
        .ok_or_else(|| input_error(&field.name, "the column is missing from the table"))?;
    let ok = match field.ty {
        ColumnType::Float | ColumnType::Integer => col.data.column_type().is_numeric(),
        ty => col.data.column_type() == ty,
    };
    if ok {
        Ok(&col.data)
    } else {
        Err(input_error(
            &field.name,
            format!(
                "expected a {} column, got {}",
                field.ty,
                col.data.column_type()
            ),
        ))
    }
}

fn type_error(field: &Field, got: &Value) -> ModelError {
    let got = match got {
        Value::Null => "null",
        Value::Float(_) => "a float",
        Value::Integer(_) => "an integer",
        Value::Boolean(_) => "a boolean",
        Value::Str(_) => "a string",
        Value::Date(_) => "a date",
        Value::DateTime(_) => "a datetime",
    };
    let expected = match field.ty {
        ColumnType::Float | ColumnType::Integer => "a number",
        ColumnType::Boolean => "a boolean",
        ColumnType::Categorical => "a string",
        ColumnType::Date => "a date",
        ColumnType::DateTime | ColumnType::Text => "nothing (not a feature)",
    };
    input_error(
        &field.name,
        format!("expected {expected} ({} feature), got {got}", field.ty),
    )
}

/// A date column with its year and month (see [`DateEncoder`]); `None` when the column has no
/// date.
fn fit_date(name: &str, v: &[Option<NaiveDate>]) -> Result<Option<Encoder>, ModelError> {
    let ordinals: Vec<Option<f64>> = v.iter().map(|d| d.map(date_ordinal)).collect();
    let numeric = |e: Option<Encoder>| match e {
        Some(Encoder::Numeric(e)) => Some(e),
        _ => None,
    };
    let Some(ordinal) = numeric(fit_numeric(name, ordinals.iter().copied())?) else {
        return Ok(None);
    };
    let parts: Vec<(Option<f64>, Option<f64>)> = ordinals.iter().map(|&x| date_parts(x)).collect();
    let year = numeric(fit_numeric(name, parts.iter().map(|p| p.0))?);
    let month = numeric(fit_numeric(name, parts.iter().map(|p| p.1))?);
    let (Some(year), Some(month)) = (year, month) else {
        return Ok(None);
    };
    let no_indicator = |e: NumericEncoder| NumericEncoder {
        indicator: false,
        ..e
    };
    Ok(Some(Encoder::Date(DateEncoder {
        ordinal,
        year: no_indicator(year),
        month: no_indicator(month),
    })))
}

/// `None` when the column has no usable value.
fn fit_numeric(
    name: &str,
    values: impl ExactSizeIterator<Item = Option<f64>>,
) -> Result<Option<Encoder>, ModelError> {
    let n = values.len();
    let mut present = Vec::with_capacity(n);
    for (i, x) in values.enumerate() {
        match x {
            Some(x) if x.is_infinite() => {
                return Err(ModelError::InvalidInput {
                    feature: name.to_string(),
                    row: Some(i),
                    reason: format!("{x} is not a finite number"),
                });
            }
            Some(x) if !x.is_nan() => present.push(x),
            _ => {}
        }
    }
    if present.is_empty() {
        return Ok(None);
    }
    let n_missing = n - present.len();
    present.sort_unstable_by(f64::total_cmp);
    let k = present.len();
    let median = if k % 2 == 1 {
        present[k / 2]
    } else {
        present[k / 2 - 1] / 2.0 + present[k / 2] / 2.0
    };
    let nf = n as f64;
    let mean = (present.iter().sum::<f64>() + n_missing as f64 * median) / nf;
    let ss = present.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>()
        + n_missing as f64 * (median - mean) * (median - mean);
    let std = (ss / nf).sqrt();
    if !(mean.is_finite() && std.is_finite()) {
        return Err(input_error(name, "values are too large to standardise"));
    }
    // A constant column (up to rounding in the mean) is centred but not scaled.
    let std = if std > 1e-12 * mean.abs() && std > 0.0 {
        std
    } else {
        1.0
    };
    Ok(Some(Encoder::Numeric(NumericEncoder {
        median,
        mean,
        std,
        indicator: n_missing > 0,
    })))
}

/// `None` when the column has no usable value.
fn fit_categorical<'a>(
    values: impl Iterator<Item = Option<&'a str>>,
    min_frequency: usize,
) -> Option<Encoder> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut n_missing = 0usize;
    for v in values {
        match v {
            Some(c) => *counts.entry(c).or_default() += 1,
            None => n_missing += 1,
        }
    }
    if counts.is_empty() {
        return None;
    }
    let levels: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n >= min_frequency)
        .map(|(c, _)| c.to_string())
        .collect();
    let other = levels.len() < counts.len();
    Some(Encoder::Categorical(CategoricalEncoder::new(
        levels,
        other,
        n_missing > 0,
    )))
}

/// The stored form of a [`Pipeline`], inside each model payload. Changing it means a new payload
/// version of every family that embeds it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredPipeline {
    features: Vec<StoredFeature>,
    dropped: Vec<StoredDropped>,
    encoded_means: Vec<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "encoder", rename_all = "snake_case", deny_unknown_fields)]
enum StoredFeature {
    Numeric {
        name: String,
        #[serde(rename = "type")]
        ty: ColumnType,
        median: f64,
        mean: f64,
        std: f64,
        missing_indicator: bool,
    },
    Categorical {
        name: String,
        #[serde(rename = "type")]
        ty: ColumnType,
        levels: Vec<String>,
        other: bool,
        missing: bool,
    },
    /// A date feature with its year and month (`[median, mean, std]` each). Written only by
    /// models fitted with `date_parts`; a reader without this variant refuses the payload.
    DateParts {
        name: String,
        median: f64,
        mean: f64,
        std: f64,
        missing_indicator: bool,
        year: [f64; 3],
        month: [f64; 3],
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredDropped {
    name: String,
    #[serde(rename = "type")]
    ty: ColumnType,
    reason: StoredDropReason,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredDropReason {
    UnsupportedType,
    AllMissing,
}

#[cfg(test)]
mod tests {
    use aurum_core::Column;

    use super::*;

    fn col(name: &str, data: ColumnData) -> Column {
        Column {
            name: name.into(),
            data,
        }
    }

    fn cats(v: &[Option<&str>]) -> ColumnData {
        ColumnData::Categorical(v.iter().map(|s| s.map(String::from)).collect())
    }

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn encode(p: &Pipeline, row: &[Value]) -> Vec<f64> {
        let mut out = Vec::new();
        p.transform_row(row, &mut out).unwrap();
        out
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn numeric_impute_standardise_indicator() {
        // x = [1, 2, NaN→missing, 5]: median of {1,2,5} = 2; imputed column [1,2,2,5];
        // mean = 10/4 = 2.5; variance = (2.25+0.25+0.25+6.25)/4 = 2.25; std = 1.5.
        // y = [3, 3, 3, 3] has no missing value and std 0 → 1, no indicator.
        let t = Table::new(vec![
            col(
                "x",
                ColumnData::Float(vec![Some(1.0), Some(2.0), Some(f64::NAN), Some(5.0)]),
            ),
            col("y", ColumnData::Integer(vec![Some(3); 4])),
        ])
        .unwrap();
        let (p, m) = Pipeline::fit_transform(&t, &PipelineOptions::default()).unwrap();
        assert_eq!(p.encoded_names(), ["x", "x__missing", "y"]);
        assert_eq!(p.encoded_to_raw(), [0, 0, 1]);
        assert!(close(m.row(0), &[-1.0, 0.0, 0.0]));
        assert!(close(m.row(2), &[-1.0 / 3.0, 1.0, 0.0]));
        assert!(close(m.row(3), &[5.0 / 3.0, 0.0, 0.0]));
        assert!(close(p.encoded_means(), &[0.0, 0.25, 0.0]));
        // Serving: Integer is fine for a float feature; missing y (never missing in training) is
        // imputed with the median 3.
        assert!(close(
            &encode(&p, &[Value::Integer(4), Value::Null]),
            &[1.0, 0.0, 0.0]
        ));
        assert!(close(
            &encode(&p, &[Value::Null, Value::Float(7.0)]),
            &[-1.0 / 3.0, 1.0, 4.0]
        ));
    }

    #[test]
    fn categorical_levels_other_and_missing() {
        // a×3, b×2, c×1, missing×1 with min_frequency 2 → levels a, b; c folds into __other__.
        let t = Table::new(vec![col(
            "c",
            cats(&[
                Some("a"),
                Some("b"),
                Some("a"),
                Some("c"),
                None,
                Some("b"),
                Some("a"),
            ]),
        )])
        .unwrap();
        let opts = PipelineOptions {
            min_frequency: 2,
            ..PipelineOptions::default()
        };
        let (p, m) = Pipeline::fit_transform(&t, &opts).unwrap();
        assert_eq!(
            p.encoded_names(),
            ["c=a", "c=b", "c=__other__", "c=__missing__"]
        );
        assert_eq!(m.row(3), [0.0, 0.0, 1.0, 0.0]);
        assert_eq!(m.row(4), [0.0, 0.0, 0.0, 1.0]);
        assert!(close(
            p.encoded_means(),
            &[3.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0, 1.0 / 7.0]
        ));
        // Unseen → __other__; missing → __missing__.
        assert_eq!(encode(&p, &[s("zzz")]), [0.0, 0.0, 1.0, 0.0]);
        assert_eq!(encode(&p, &[Value::Null]), [0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn unseen_without_other_is_all_zero() {
        let t = Table::new(vec![
            col("c", cats(&[Some("a"), Some("b")])),
            col("flag", ColumnData::Boolean(vec![Some(true), Some(false)])),
        ])
        .unwrap();
        let (p, _) = Pipeline::fit_transform(&t, &PipelineOptions::default()).unwrap();
        assert_eq!(p.encoded_names(), ["c=a", "c=b", "flag=false", "flag=true"]);
        assert_eq!(
            encode(&p, &[s("zzz"), Value::Boolean(true)]),
            [0.0, 0.0, 0.0, 1.0]
        );
        assert_eq!(encode(&p, &[Value::Null, Value::Null]), [0.0; 4]);
        assert_eq!(
            encode(&p, &[s(""), Value::Boolean(false)]),
            [0.0, 0.0, 1.0, 0.0]
        );
    }

    #[test]
    fn wrong_types_and_non_finite_name_the_feature() {
        let t = Table::new(vec![
            col("amount", ColumnData::Float(vec![Some(1.0), Some(2.0)])),
            col("purpose", cats(&[Some("car"), Some("tv")])),
            col("flag", ColumnData::Boolean(vec![Some(true), Some(false)])),
        ])
        .unwrap();
        let (p, _) = Pipeline::fit_transform(&t, &PipelineOptions::default()).unwrap();
        let mut out = Vec::new();
        let err = |row: &[Value], out: &mut Vec<f64>| p.transform_row(row, out).unwrap_err();
        let ok = [Value::Float(1.0), s("car"), Value::Boolean(true)];
        for (i, bad) in [s("1.0"), Value::Integer(1), Value::Integer(1)]
            .into_iter()
            .enumerate()
        {
            let mut row = ok.to_vec();
            row[i] = bad;
            let e = err(&row, &mut out);
            let ModelError::InvalidInput { feature, .. } = &e else {
                panic!("{e:?}")
            };
            assert_eq!(feature, &p.input_schema().fields[i].name);
        }
        for x in [f64::NAN, f64::INFINITY] {
            let e = err(&[Value::Float(x), s("car"), Value::Boolean(true)], &mut out);
            assert_eq!(e.code(), "invalid_input");
            assert!(e.to_string().contains("`amount`"), "{e}");
        }
        let e = err(&ok[..2], &mut out);
        assert_eq!(
            e,
            ModelError::RowLength {
                row: None,
                expected: 3,
                got: 2
            }
        );
        let e = err(&[Value::Float(1.0), s("car"), s("true")], &mut out);
        assert_eq!(
            e.to_string(),
            "invalid value for feature `flag`: expected a boolean (boolean feature), got a string"
        );
    }

    #[test]
    fn unsupported_and_empty_columns_are_dropped_and_recorded() {
        let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 1);
        let t = Table::new(vec![
            col("note", ColumnData::Text(vec![Some("hi".into()), None])),
            col("opened", ColumnData::Date(vec![date, date])),
            col("empty", ColumnData::Float(vec![None, Some(f64::NAN)])),
            col("x", ColumnData::Integer(vec![Some(1), Some(2)])),
        ])
        .unwrap();
        let (p, _) = Pipeline::fit_transform(&t, &PipelineOptions::default()).unwrap();
        assert_eq!(
            p.input_schema().fields,
            [
                Field::new("opened", ColumnType::Date),
                Field::new("x", ColumnType::Integer)
            ]
        );
        let dropped: Vec<_> = p
            .dropped()
            .iter()
            .map(|d| (d.name.as_str(), d.reason))
            .collect();
        assert_eq!(
            dropped,
            [
                ("note", DropReason::UnsupportedType),
                ("empty", DropReason::AllMissing)
            ]
        );
        let only_text = t
            .take(&[0, 1])
            .drop_column("x")
            .unwrap()
            .drop_column("opened")
            .unwrap();
        let e = Pipeline::fit_transform(&only_text, &PipelineOptions::default()).unwrap_err();
        assert_eq!(e.code(), "no_usable_features");
        assert!(
            e.to_string().contains("note (text: unsupported_type)"),
            "{e}"
        );
    }

    #[test]
    fn training_infinity_is_an_error_naming_feature_and_row() {
        let t = Table::new(vec![col(
            "x",
            ColumnData::Float(vec![Some(1.0), Some(f64::INFINITY)]),
        )])
        .unwrap();
        let e = Pipeline::fit_transform(&t, &PipelineOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value for feature `x` (row 1): inf is not a finite number"
        );
    }

    #[test]
    fn table_and_row_paths_agree_and_extra_columns_are_ignored() {
        let t = Table::new(vec![
            col("x", ColumnData::Float(vec![Some(1.0), None, Some(4.0)])),
            col("c", cats(&[Some("a"), None, Some("b")])),
            col("target", cats(&[Some("good"), Some("bad"), Some("good")])),
        ])
        .unwrap();
        let features = t.drop_column("target").unwrap();
        let (p, m) = Pipeline::fit_transform(&features, &PipelineOptions::default()).unwrap();
        let m2 = p.transform_table(&t).unwrap();
        assert_eq!(m, m2);
        for i in 0..t.n_rows() {
            assert_eq!(encode(&p, &features.row(i)), m.row(i));
        }
        let wrong = Table::new(vec![
            col("x", cats(&[Some("1")])),
            col("c", cats(&[Some("a")])),
        ])
        .unwrap();
        let e = p.transform_table(&wrong).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value for feature `x`: expected a float column, got categorical"
        );
        let e = p
            .transform_table(&wrong.drop_column("x").unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("missing from the table"), "{e}");
    }

    #[test]
    fn stored_form_round_trips_and_is_checked() {
        let t = Table::new(vec![
            col("x", ColumnData::Float(vec![Some(1.0), None, Some(4.0)])),
            col("c", cats(&[Some("a"), None, Some("b")])),
            col("d", ColumnData::Text(vec![None, None, None])),
        ])
        .unwrap();
        let (p, _) = Pipeline::fit_transform(&t, &PipelineOptions::default()).unwrap();
        let json = serde_json::to_string(&p.to_stored()).unwrap();
        let back = Pipeline::from_stored(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back, p);

        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["encoded_means"].as_array_mut().unwrap().pop();
        let e = Pipeline::from_stored(serde_json::from_value(v).unwrap()).unwrap_err();
        assert_eq!(e.code(), "invalid_artifact");

        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["features"][0]["std"] = 0.0.into();
        assert!(Pipeline::from_stored(serde_json::from_value(v).unwrap()).is_err());
    }

    /// `date_parts`: a date gives its ordinal, year and month, each standardised with its own
    /// training statistics; a missing date takes each part's median; the row and table paths
    /// agree; the stored form round-trips; and without the option the layout is unchanged.
    #[test]
    fn date_parts_add_year_and_month() {
        let d = |y, m, day| chrono::NaiveDate::from_ymd_opt(y, m, day);
        let dates = vec![d(2019, 1, 15), d(2020, 6, 1), None, d(2021, 12, 31)];
        let t = Table::new(vec![
            col("opened", ColumnData::Date(dates.clone())),
            col(
                "x",
                ColumnData::Float(vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0)]),
            ),
        ])
        .unwrap();
        let plain = Pipeline::fit_transform(&t, &PipelineOptions::default())
            .unwrap()
            .0;
        assert_eq!(plain.encoded_names(), ["opened", "opened__missing", "x"]);
        let options = PipelineOptions {
            date_parts: true,
            ..PipelineOptions::default()
        };
        let (p, m) = Pipeline::fit_transform(&t, &options).unwrap();
        assert_eq!(
            p.encoded_names(),
            [
                "opened",
                "opened__missing",
                "opened__year",
                "opened__month",
                "x"
            ]
        );
        assert_eq!(p.encoded_to_raw(), [0, 0, 0, 0, 1]);
        assert_eq!(p.input_schema().fields[0].ty, ColumnType::Date);
        // Years 2019, 2020, median 2020 (missing), 2021: mean 2020, population std √0.5.
        let years = [2019.0, 2020.0, 2020.0, 2021.0];
        let months = [1.0, 6.0, 6.0, 12.0];
        let stats = |v: &[f64]| {
            let mean = v.iter().sum::<f64>() / 4.0;
            let std = (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 4.0).sqrt();
            (mean, std)
        };
        let ((ym, ys), (mm, ms)) = (stats(&years), stats(&months));
        for i in 0..4 {
            let row = m.row(i);
            assert!(
                (row[2] - (years[i] - ym) / ys).abs() < 1e-12,
                "row {i}: {row:?}"
            );
            assert!(
                (row[3] - (months[i] - mm) / ms).abs() < 1e-12,
                "row {i}: {row:?}"
            );
            assert_eq!(row[1], f64::from(u8::from(dates[i].is_none())));
            let values = [
                dates[i].map_or(Value::Null, Value::Date),
                Value::Float((i + 1) as f64),
            ];
            assert_eq!(encode(&p, &values), row, "row {i}");
        }
        // A date never seen in training is encoded by the same rule.
        let later = encode(
            &p,
            &[Value::Date(d(2024, 3, 9).unwrap()), Value::Float(1.0)],
        );
        assert!((later[2] - (2024.0 - ym) / ys).abs() < 1e-12);
        assert!((later[3] - (3.0 - mm) / ms).abs() < 1e-12);

        let json = serde_json::to_string(&p.to_stored()).unwrap();
        assert!(json.contains("\"date_parts\""), "{json}");
        let back = Pipeline::from_stored(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back, p);
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["features"][0]["month"][2] = 0.0.into();
        assert!(Pipeline::from_stored(serde_json::from_value(v).unwrap()).is_err());
    }
}
