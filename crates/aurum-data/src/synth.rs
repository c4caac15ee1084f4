//! What synthetic tabular data needs without a neural network: a mixed-type column layout
//! (standardised numbers, coded categories) that encodes rows and decodes generated values back
//! to the source column types, SMOTE, and distances to the closest real row for privacy checks.
//!
//! Why here and not beside the generators that need burn: SMOTE, the layout and the distances
//! are plain arithmetic on a [`Table`], and the service, the VAE (in `aurum-nn`) and the
//! synthesis report all share them, so a row means the same thing to the generator that wrote it
//! and to the privacy check that measures it.
//!
//! Column handling, for every generator:
//! * **float, integer, date** are numbers (a date is its day ordinal). Generated numbers are
//!   clipped to the observed range and rounded when the column is integer-valued (an integer or
//!   date column, or a float column whose observed values are all whole).
//! * **categorical, boolean** are coded levels (sorted; a missing value is a level of its own
//!   when the column had missing values, so the missing rate travels with the categories).
//! * **text, datetime** are not modelled: generated rows take an observed cell of the column.
//!
//! Everything random is drawn from one seeded ChaCha8 stream: the same seed gives the same rows.

use std::collections::BTreeSet;

use aurum_core::{Column, ColumnData, ColumnType, Table, Value};
use chrono::{Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Why a synthesis input was refused; [`SynthError::field`] names the input at fault.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SynthError {
    /// The rows to learn from are too few.
    #[error("{rows} rows of the class to learn from; at least {needed} are needed")]
    TooFewRows { rows: usize, needed: usize },
    /// The table has no column a generator can use.
    #[error("the table has no column to generate")]
    NoColumns,
    /// A parameter is out of range.
    #[error("{field}: {reason}")]
    InvalidParam { field: &'static str, reason: String },
}

impl SynthError {
    /// The input field at fault (`class` for too few rows).
    pub fn field(&self) -> &'static str {
        match self {
            SynthError::TooFewRows { .. } => "class",
            SynthError::NoColumns => "dataset",
            SynthError::InvalidParam { field, .. } => field,
        }
    }
}

/// How one numeric column (float, integer or date) is standardised and decoded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NumericSpec {
    pub mean: f64,
    /// Population standard deviation (1 when the column is constant).
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// Whether generated values are rounded to whole numbers.
    pub integer: bool,
    /// The share of missing cells.
    pub missing_rate: f64,
}

impl NumericSpec {
    /// `x` in standard units.
    pub fn standardise(&self, x: f64) -> f64 {
        (x - self.mean) / self.std
    }

    /// A generated value in standard units back in column units: clipped to the observed
    /// range, rounded when the column is integer-valued.
    pub fn decode(&self, z: f64) -> f64 {
        self.clip(z * self.std + self.mean)
    }

    /// A generated value in column units clipped to the observed range and rounded when the
    /// column is integer-valued.
    pub fn clip(&self, x: f64) -> f64 {
        let x = if x.is_finite() { x } else { self.mean };
        let x = x.clamp(self.min, self.max);
        if self.integer { x.round() } else { x }
    }
}

/// The levels of one categorical (or boolean) column.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CategoricalSpec {
    /// Observed levels, sorted; level `k` has code `k`.
    pub levels: Vec<String>,
    /// The share of missing cells; when above 0 the code `levels.len()` means missing.
    pub missing_rate: f64,
}

impl CategoricalSpec {
    /// The number of codes: the levels and, when the column had missing values, missing.
    pub fn n_codes(&self) -> usize {
        self.levels.len() + usize::from(self.missing_rate > 0.0)
    }

    fn code(&self, value: Option<&str>) -> u32 {
        match value.and_then(|s| self.levels.binary_search_by(|l| l.as_str().cmp(s)).ok()) {
            Some(k) => k as u32,
            // Missing (or, for a table the layout was not fitted on, an unseen level).
            None => self.levels.len() as u32,
        }
    }
}

/// How one column takes part in generation.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric(NumericSpec),
    Categorical(CategoricalSpec),
    /// Not modelled: generated rows take one of these observed cells.
    Resampled {
        #[serde(skip)]
        values: Vec<Value>,
    },
}

/// One column of a [`MixedLayout`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    #[serde(flatten)]
    pub kind: ColumnKind,
}

/// The fitted layout of a table's columns, in table order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MixedLayout {
    pub columns: Vec<ColumnSpec>,
}

/// Rows encoded by a [`MixedLayout`], row-major: standardised numbers (NaN when missing) and
/// category codes.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedRows {
    pub n_rows: usize,
    pub n_numeric: usize,
    pub n_categorical: usize,
    pub numeric: Vec<f64>,
    pub codes: Vec<u32>,
}

impl EncodedRows {
    /// Row `i`'s standardised numbers.
    pub fn numeric_row(&self, i: usize) -> &[f64] {
        &self.numeric[i * self.n_numeric..(i + 1) * self.n_numeric]
    }

    /// Row `i`'s category codes.
    pub fn code_row(&self, i: usize) -> &[u32] {
        &self.codes[i * self.n_categorical..(i + 1) * self.n_categorical]
    }

    /// The distance between row `i` of `self` and row `j` of `other`: Euclidean over the
    /// standardised numbers and one per categorical mismatch (a number missing on one side only
    /// counts as a mismatch, on both sides as equal).
    pub fn distance(&self, i: usize, other: &EncodedRows, j: usize) -> f64 {
        let mut d2 = 0.0;
        for (a, b) in self.numeric_row(i).iter().zip(other.numeric_row(j)) {
            d2 += match (a.is_nan(), b.is_nan()) {
                (false, false) => (a - b) * (a - b),
                (true, true) => 0.0,
                _ => 1.0,
            };
        }
        for (a, b) in self.code_row(i).iter().zip(other.code_row(j)) {
            if a != b {
                d2 += 1.0;
            }
        }
        d2.sqrt()
    }
}

/// The day ordinal of a date (days since 1970-01-01).
pub fn date_ordinal(d: NaiveDate) -> f64 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (d - epoch).num_days() as f64
}

fn ordinal_date(days: f64) -> Option<NaiveDate> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let days = days.round();
    if days >= 0.0 {
        epoch.checked_add_days(Days::new(days as u64))
    } else {
        epoch.checked_sub_days(Days::new((-days) as u64))
    }
}

/// The number in a numeric column's cell (`None` when missing).
fn number(data: &ColumnData, row: usize) -> Option<f64> {
    match data {
        ColumnData::Float(v) => v[row].filter(|x| x.is_finite()),
        ColumnData::Integer(v) => v[row].map(|x| x as f64),
        ColumnData::Date(v) => v[row].map(date_ordinal),
        _ => None,
    }
}

/// The text of a categorical or boolean cell (`None` when missing).
fn category(data: &ColumnData, row: usize) -> Option<String> {
    match data {
        ColumnData::Categorical(v) => v[row].clone(),
        ColumnData::Boolean(v) => v[row].map(|b| b.to_string()),
        _ => None,
    }
}

impl MixedLayout {
    /// Fits the layout on `table` (statistics, levels and observed ranges).
    pub fn fit(table: &Table) -> Result<Self, SynthError> {
        let n = table.n_rows();
        if n == 0 {
            return Err(SynthError::TooFewRows { rows: 0, needed: 1 });
        }
        if table.n_cols() == 0 {
            return Err(SynthError::NoColumns);
        }
        let columns = table
            .columns()
            .iter()
            .map(|c| {
                let ty = c.data.column_type();
                let kind = match ty {
                    ColumnType::Float | ColumnType::Integer | ColumnType::Date => {
                        let xs: Vec<f64> = (0..n).filter_map(|i| number(&c.data, i)).collect();
                        numeric_spec(&xs, n, ty != ColumnType::Float)
                    }
                    ColumnType::Categorical | ColumnType::Boolean => {
                        let mut levels = BTreeSet::new();
                        let mut missing = 0usize;
                        for i in 0..n {
                            match category(&c.data, i) {
                                Some(s) => {
                                    levels.insert(s);
                                }
                                None => missing += 1,
                            }
                        }
                        ColumnKind::Categorical(CategoricalSpec {
                            levels: levels.into_iter().collect(),
                            missing_rate: missing as f64 / n as f64,
                        })
                    }
                    ColumnType::Text | ColumnType::DateTime => ColumnKind::Resampled {
                        values: (0..n).map(|i| c.data.get(i)).collect(),
                    },
                };
                ColumnSpec {
                    name: c.name.clone(),
                    ty,
                    kind,
                }
            })
            .collect();
        Ok(Self { columns })
    }

    /// The numeric columns' specs, in order.
    pub fn numeric(&self) -> impl Iterator<Item = &NumericSpec> {
        self.columns.iter().filter_map(|c| match &c.kind {
            ColumnKind::Numeric(s) => Some(s),
            _ => None,
        })
    }

    /// The categorical columns' specs, in order.
    pub fn categorical(&self) -> impl Iterator<Item = &CategoricalSpec> {
        self.columns.iter().filter_map(|c| match &c.kind {
            ColumnKind::Categorical(s) => Some(s),
            _ => None,
        })
    }

    /// Encodes the rows of `table`, which must have the layout's columns (by name) with the
    /// same types; a column that is absent encodes as missing.
    pub fn encode(&self, table: &Table) -> EncodedRows {
        let n = table.n_rows();
        let n_numeric = self.numeric().count();
        let n_categorical = self.categorical().count();
        let mut numeric = vec![f64::NAN; n * n_numeric];
        let mut codes = vec![0u32; n * n_categorical];
        let (mut jn, mut jc) = (0, 0);
        for spec in &self.columns {
            let data = table.column(&spec.name).map(|c| &c.data);
            match &spec.kind {
                ColumnKind::Numeric(s) => {
                    if let Some(data) = data {
                        for i in 0..n {
                            if let Some(x) = number(data, i) {
                                numeric[i * n_numeric + jn] = s.standardise(x);
                            }
                        }
                    }
                    jn += 1;
                }
                ColumnKind::Categorical(s) => {
                    for i in 0..n {
                        let cell = data.and_then(|d| category(d, i));
                        codes[i * n_categorical + jc] = s.code(cell.as_deref());
                    }
                    jc += 1;
                }
                ColumnKind::Resampled { .. } => {}
            }
        }
        EncodedRows {
            n_rows: n,
            n_numeric,
            n_categorical,
            numeric,
            codes,
        }
    }

    /// A table in the layout's column order and types from one generated cell list per column.
    pub fn build(&self, cells: Vec<Vec<Value>>) -> Table {
        let columns = self
            .columns
            .iter()
            .zip(cells)
            .map(|(spec, values)| Column {
                name: spec.name.clone(),
                data: column_of(spec.ty, values),
            })
            .collect();
        // Names are unique and every list has the same length by construction.
        Table::new(columns).unwrap_or_default()
    }
}

fn numeric_spec(xs: &[f64], n: usize, integer_type: bool) -> ColumnKind {
    let m = xs.len();
    let mean = if m == 0 {
        0.0
    } else {
        xs.iter().sum::<f64>() / m as f64
    };
    let var = if m == 0 {
        0.0
    } else {
        xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / m as f64
    };
    let std = if var > 0.0 && var.is_finite() {
        var.sqrt()
    } else {
        1.0
    };
    let (min, max) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    let (min, max) = if m == 0 { (0.0, 0.0) } else { (min, max) };
    ColumnKind::Numeric(NumericSpec {
        mean,
        std,
        min,
        max,
        integer: integer_type || (m > 0 && xs.iter().all(|x| x.fract() == 0.0)),
        missing_rate: (n - m) as f64 / n as f64,
    })
}

/// The cell of a numeric column holding `x` (column units), `Null` for `None`.
pub fn numeric_value(ty: ColumnType, x: Option<f64>) -> Value {
    match (ty, x) {
        (_, None) => Value::Null,
        (ColumnType::Integer, Some(x)) => Value::Integer(x.round() as i64),
        (ColumnType::Date, Some(x)) => ordinal_date(x).map_or(Value::Null, Value::Date),
        (_, Some(x)) => Value::Float(x),
    }
}

/// The cell of a categorical (or boolean) column for `code`, `Null` for the missing code.
pub fn category_value(ty: ColumnType, spec: &CategoricalSpec, code: usize) -> Value {
    match spec.levels.get(code) {
        None => Value::Null,
        Some(s) if ty == ColumnType::Boolean => Value::Boolean(s == "true"),
        Some(s) => Value::Str(s.clone()),
    }
}

/// A column of type `ty` from cells (cells of another type become missing).
pub fn column_of(ty: ColumnType, values: Vec<Value>) -> ColumnData {
    match ty {
        ColumnType::Float => ColumnData::Float(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Float(x) => Some(x),
                    Value::Integer(i) => Some(i as f64),
                    _ => None,
                })
                .collect(),
        ),
        ColumnType::Integer => ColumnData::Integer(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Integer(i) => Some(i),
                    Value::Float(x) if x.is_finite() => Some(x.round() as i64),
                    _ => None,
                })
                .collect(),
        ),
        ColumnType::Boolean => ColumnData::Boolean(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Boolean(b) => Some(b),
                    _ => None,
                })
                .collect(),
        ),
        ColumnType::Categorical | ColumnType::Text => {
            let cells = values
                .into_iter()
                .map(|v| match v {
                    Value::Null => None,
                    Value::Str(s) => Some(s),
                    other => Some(other.to_string()),
                })
                .collect();
            if ty == ColumnType::Text {
                ColumnData::Text(cells)
            } else {
                ColumnData::Categorical(cells)
            }
        }
        ColumnType::Date => ColumnData::Date(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Date(d) => Some(d),
                    _ => None,
                })
                .collect(),
        ),
        ColumnType::DateTime => ColumnData::DateTime(
            values
                .into_iter()
                .map(|v| match v {
                    Value::DateTime(d) => Some(d),
                    _ => None,
                })
                .collect(),
        ),
    }
}

/// Parameters of [`smote`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SmoteParams {
    /// Neighbours each seed row interpolates towards (clamped to the rows available).
    pub k: usize,
    pub rows: usize,
    pub seed: u64,
}

/// SMOTE (Chawla et al. 2002) on the rows of one class: each synthetic row picks a seed row
/// (cycling through the rows in a seeded order), one of its `k` nearest neighbours among the
/// class rows (the [`EncodedRows::distance`] on standardised numbers and categories), and a gap
/// `u` in [0, 1): numbers are `a + u·(b − a)` (then rounded when the column is integer-valued),
/// categories, missing numbers and unmodelled cells come from the nearer parent (`a` when
/// `u < 0.5`). The result has `table`'s columns and types.
pub fn smote(table: &Table, params: &SmoteParams) -> Result<Table, SynthError> {
    let n = table.n_rows();
    if n < 2 {
        return Err(SynthError::TooFewRows { rows: n, needed: 2 });
    }
    if params.k == 0 {
        return Err(SynthError::InvalidParam {
            field: "k",
            reason: "at least 1 neighbour".into(),
        });
    }
    let layout = MixedLayout::fit(table)?;
    let enc = layout.encode(table);
    let k = params.k.min(n - 1);
    // The k nearest neighbours of each row (ties by index, so the order is deterministic).
    let neighbours: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            let mut d: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (enc.distance(i, &enc, j), j))
                .collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            d.into_iter().take(k).map(|(_, j)| j).collect()
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut cells: Vec<Vec<Value>> = vec![Vec::with_capacity(params.rows); table.n_cols()];
    for r in 0..params.rows {
        if r % n == 0 {
            rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
        }
        let a = order[r % n];
        let b = neighbours[a][rng.random_range(0..neighbours[a].len())];
        let u: f64 = rng.random();
        let nearer = if u < 0.5 { a } else { b };
        for ((spec, col), out) in layout
            .columns
            .iter()
            .zip(table.columns())
            .zip(cells.iter_mut())
        {
            let value = match &spec.kind {
                ColumnKind::Numeric(s) => match (number(&col.data, a), number(&col.data, b)) {
                    (Some(xa), Some(xb)) => {
                        numeric_value(spec.ty, Some(s.clip(xa + u * (xb - xa))))
                    }
                    _ => col.data.get(nearer),
                },
                _ => col.data.get(nearer),
            };
            out.push(value);
        }
    }
    Ok(layout.build(cells))
}

/// For each row of `from`, the distance to its closest row of `to` (both encoded by the same
/// layout): the distance to closest record (DCR) of a privacy check.
pub fn closest_distances(from: &EncodedRows, to: &EncodedRows) -> Vec<f64> {
    (0..from.n_rows)
        .map(|i| {
            (0..to.n_rows)
                .map(|j| from.distance(i, to, j))
                .fold(f64::INFINITY, f64::min)
        })
        .collect()
}

/// The `q` quantile (0..=1) of `xs` by linear interpolation between order statistics; NaN when
/// `xs` is empty.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (pos - lo as f64) * (v[hi] - v[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(n: usize) -> Table {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x: Vec<Option<f64>> = (0..n)
            .map(|i| (i % 7 != 0).then(|| rng.random_range(0.0..10.0)))
            .collect();
        let y: Vec<Option<f64>> = (0..n).map(|_| Some(rng.random_range(-5.0..5.0))).collect();
        let k: Vec<Option<i64>> = (0..n).map(|i| Some((i % 4) as i64 * 10)).collect();
        let c: Vec<Option<String>> = (0..n)
            .map(|i| (i % 5 != 0).then(|| ["a", "b", "c"][i % 3].to_string()))
            .collect();
        let b: Vec<Option<bool>> = (0..n).map(|i| Some(i % 2 == 0)).collect();
        Table::new(vec![
            Column {
                name: "x".into(),
                data: ColumnData::Float(x),
            },
            Column {
                name: "y".into(),
                data: ColumnData::Float(y),
            },
            Column {
                name: "k".into(),
                data: ColumnData::Integer(k),
            },
            Column {
                name: "c".into(),
                data: ColumnData::Categorical(c),
            },
            Column {
                name: "b".into(),
                data: ColumnData::Boolean(b),
            },
        ])
        .unwrap()
    }

    #[test]
    fn smote_rows_lie_on_segments_between_class_neighbours() {
        let t = table(40);
        let s = smote(
            &t,
            &SmoteParams {
                k: 3,
                rows: 200,
                seed: 9,
            },
        )
        .unwrap();
        assert_eq!(s.n_rows(), 200);
        assert_eq!(s.schema(), t.schema());
        let layout = MixedLayout::fit(&t).unwrap();
        let enc = layout.encode(&t);
        let num = |t: &Table, c: &str, i: usize| number(&t.column(c).unwrap().data, i);
        let (xs, ys) = (&t.column("x").unwrap().data, &t.column("y").unwrap().data);
        for r in 0..s.n_rows() {
            // Some pair of class rows (a, b), b among a's 3 nearest, has this row on the
            // segment between them for the float columns, with u shared by both columns.
            let (sy, sx) = (num(&s, "y", r).unwrap(), num(&s, "x", r));
            let on_segment = (0..t.n_rows()).any(|a| {
                let mut d: Vec<(f64, usize)> = (0..t.n_rows())
                    .filter(|&j| j != a)
                    .map(|j| (enc.distance(a, &enc, j), j))
                    .collect();
                d.sort_by(|p, q| p.0.total_cmp(&q.0).then(p.1.cmp(&q.1)));
                d.iter().take(3).any(|&(_, b)| {
                    let (ya, yb) = (number(ys, a).unwrap(), number(ys, b).unwrap());
                    let u = if (yb - ya).abs() > 1e-12 {
                        (sy - ya) / (yb - ya)
                    } else {
                        0.0
                    };
                    if !(-1e-9..=1.0 + 1e-9).contains(&u) || (ya + u * (yb - ya) - sy).abs() > 1e-9
                    {
                        return false;
                    }
                    match (number(xs, a), number(xs, b), sx) {
                        (Some(xa), Some(xb), Some(sx)) => (xa + u * (xb - xa) - sx).abs() < 1e-6,
                        // A missing side: the value is the nearer parent's.
                        (pa, pb, sx) => sx == if u < 0.5 { pa } else { pb },
                    }
                })
            });
            assert!(on_segment, "synthetic row {r} is on no neighbour segment");
        }
        // Integers stay whole and in range; categories are observed levels (or missing).
        for r in 0..s.n_rows() {
            let k = num(&s, "k", r).unwrap();
            assert!(k.fract() == 0.0 && (0.0..=30.0).contains(&k));
            if let Value::Str(c) = s.column("c").unwrap().data.get(r) {
                assert!(["a", "b", "c"].contains(&c.as_str()));
            }
        }
        // Seeded.
        assert_eq!(
            s,
            smote(
                &t,
                &SmoteParams {
                    k: 3,
                    rows: 200,
                    seed: 9
                }
            )
            .unwrap()
        );
        assert_ne!(
            s,
            smote(
                &t,
                &SmoteParams {
                    k: 3,
                    rows: 200,
                    seed: 10
                }
            )
            .unwrap()
        );
    }

    #[test]
    fn smote_refuses_too_few_rows() {
        let t = table(1);
        let e = smote(
            &t,
            &SmoteParams {
                k: 5,
                rows: 3,
                seed: 1,
            },
        )
        .unwrap_err();
        assert_eq!(e.field(), "class");
    }

    #[test]
    fn distances_count_mismatches_and_copies_are_zero() {
        let t = table(30);
        let layout = MixedLayout::fit(&t).unwrap();
        let enc = layout.encode(&t);
        let d = closest_distances(&enc, &enc);
        assert!(d.iter().all(|&x| x == 0.0));
        let other = layout.encode(&t.take(&[1, 2]));
        // Row 1 vs row 2: categories b/c differ, booleans differ, k differs.
        let expect = {
            let s: Vec<&NumericSpec> = layout.numeric().collect();
            let x = |i| number(&t.column("x").unwrap().data, i).unwrap();
            let y = |i| number(&t.column("y").unwrap().data, i).unwrap();
            let dx = s[0].standardise(x(1)) - s[0].standardise(x(2));
            let dy = s[1].standardise(y(1)) - s[1].standardise(y(2));
            let dk = 10.0 / s[2].std;
            (dx * dx + dy * dy + dk * dk + 2.0).sqrt()
        };
        assert!((other.distance(0, &other, 1) - expect).abs() < 1e-12);
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert_eq!(quantile(&[0.0, 10.0], 0.05), 0.5);
    }
}
