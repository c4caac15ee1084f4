//! Column profiles: what a person should know about a dataset before training on it.
//!
//! A profile is computed once at import and stored as JSON next to the dataset in the registry,
//! which is why these types (unlike most of this crate) derive `serde`: they are a stored format.
//! New fields must therefore be optional (`#[serde(default)]`) so that older stored profiles still
//! load.
//!
//! The warnings are the checks a credit-risk modeller runs by hand: a constant column carries no
//! signal, an identifier-like column lets a model memorise rows, a categorical column with very many
//! levels explodes one-hot encodings, and a mostly-missing column is usually a data problem.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use aurum_core::{ColumnData, ColumnType, Table};
use serde::{Deserialize, Serialize};

use crate::{CellFormat, ColumnFormats};

/// How many most frequent values a profile lists.
pub const TOP_VALUES: usize = 10;

/// A profile of every column of a table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetProfile {
    /// Number of data rows.
    pub rows: usize,
    /// One profile per column, in table order.
    pub columns: Vec<ColumnProfile>,
}

/// What one column looks like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    pub column_type: ColumnType,
    /// Missing cells (`None`, and `NaN` in float columns).
    pub missing_count: usize,
    /// `missing_count` as a percentage of the rows, 0–100 (0 for an empty table).
    pub missing_pct: f64,
    /// Distinct non-missing values.
    pub distinct_count: usize,
    /// Summary of integer and float columns with at least one value.
    #[serde(default)]
    pub numeric: Option<NumericSummary>,
    /// Earliest and latest value of date (`YYYY-MM-DD`) and datetime (`YYYY-MM-DDTHH:MM:SS`)
    /// columns.
    #[serde(default)]
    pub range: Option<(String, String)>,
    /// The [`TOP_VALUES`] most frequent values of categorical, text and boolean columns with their
    /// counts, most frequent first, ties in ascending order of the value.
    #[serde(default)]
    pub top_values: Vec<(String, u64)>,
    #[serde(default)]
    pub warnings: Vec<ColumnWarning>,
    /// How the column's values were spelled in the file, when that was more than plain numbers,
    /// ISO dates or strings: currency amounts, percentages, a date layout (see
    /// [`crate::CellFormat`]). Serving reads string inputs with the same cell parser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<CellFormat>,
}

/// Summary statistics of a numeric column's non-missing values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NumericSummary {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Sample standard deviation (divisor n − 1); 0 when there is a single value.
    pub std: f64,
}

/// Something about a column worth a second look before modelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnWarning {
    /// At most one distinct non-missing value.
    Constant,
    /// An integer, categorical or text column with more than 20 non-missing values, all distinct.
    IdLike,
    /// A categorical column with more than 50 distinct values, or (with more than 20 non-missing
    /// values) more distinct values than half its non-missing values.
    HighCardinality,
    /// More than half of the rows are missing.
    ManyMissing,
}

/// Profiles every column of `table`. Linear in the number of cells (plus hashing).
pub fn profile(table: &Table) -> DatasetProfile {
    profile_with_formats(table, &ColumnFormats::new())
}

/// [`profile`], recording the cell formats a reader found ([`crate::read_auto_with_formats`]).
pub fn profile_with_formats(table: &Table, formats: &ColumnFormats) -> DatasetProfile {
    let rows = table.n_rows();
    let columns = table
        .columns()
        .iter()
        .map(|c| {
            let mut p = profile_column(&c.name, &c.data, rows);
            p.format = formats.get(&c.name).cloned();
            p
        })
        .collect();
    DatasetProfile { rows, columns }
}

/// What the per-type passes produce; the shared fields are filled in by `profile_column`.
#[derive(Default)]
struct Stats {
    non_missing: usize,
    distinct: usize,
    numeric: Option<NumericSummary>,
    range: Option<(String, String)>,
    top_values: Vec<(String, u64)>,
}

fn profile_column(name: &str, data: &ColumnData, rows: usize) -> ColumnProfile {
    let stats = match data {
        ColumnData::Float(v) => {
            let values: Vec<f64> = v
                .iter()
                .flatten()
                .copied()
                .filter(|x| !x.is_nan())
                .collect();
            // `+ 0.0` folds -0.0 into 0.0 so they count as one value.
            let distinct = count_distinct(values.iter().map(|x| (x + 0.0).to_bits()));
            numeric_stats(&values, distinct)
        }
        ColumnData::Integer(v) => {
            let ints: Vec<i64> = v.iter().flatten().copied().collect();
            let distinct = count_distinct(ints.iter().copied());
            let values: Vec<f64> = ints.iter().map(|&i| i as f64).collect();
            numeric_stats(&values, distinct)
        }
        ColumnData::Boolean(v) => counted(
            v.iter()
                .flatten()
                .map(|b| if *b { "true" } else { "false" }),
        ),
        ColumnData::Categorical(v) | ColumnData::Text(v) => {
            counted(v.iter().flatten().map(String::as_str))
        }
        ColumnData::Date(v) => ranged(v.iter().flatten(), |d| d.format("%Y-%m-%d").to_string()),
        ColumnData::DateTime(v) => ranged(v.iter().flatten(), |d| {
            d.format("%Y-%m-%dT%H:%M:%S").to_string()
        }),
    };
    let column_type = data.column_type();
    let missing_count = rows - stats.non_missing;
    ColumnProfile {
        name: name.to_string(),
        column_type,
        missing_count,
        missing_pct: if rows == 0 {
            0.0
        } else {
            100.0 * missing_count as f64 / rows as f64
        },
        distinct_count: stats.distinct,
        warnings: warnings(
            column_type,
            rows,
            missing_count,
            stats.non_missing,
            stats.distinct,
        ),
        numeric: stats.numeric,
        range: stats.range,
        top_values: stats.top_values,
        format: None,
    }
}

fn count_distinct<T: Hash + Eq>(values: impl Iterator<Item = T>) -> usize {
    values.collect::<HashSet<T>>().len()
}

/// Min, max, mean and sample std in one pass (Welford's update, stable for large means).
fn numeric_stats(values: &[f64], distinct: usize) -> Stats {
    let mut mean = 0.0;
    let mut m2 = 0.0;
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for (i, &x) in values.iter().enumerate() {
        let delta = x - mean;
        mean += delta / (i + 1) as f64;
        m2 += delta * (x - mean);
        min = min.min(x);
        max = max.max(x);
    }
    let n = values.len();
    let numeric = (n > 0).then(|| NumericSummary {
        min,
        max,
        mean,
        std: if n > 1 {
            (m2 / (n - 1) as f64).sqrt()
        } else {
            0.0
        },
    });
    Stats {
        non_missing: n,
        distinct,
        numeric,
        ..Stats::default()
    }
}

fn counted<'a>(values: impl Iterator<Item = &'a str>) -> Stats {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    let mut non_missing = 0;
    for v in values {
        *counts.entry(v).or_default() += 1;
        non_missing += 1;
    }
    let distinct = counts.len();
    let mut top: Vec<(&str, u64)> = counts.into_iter().collect();
    fn order<'a>(entry: &(&'a str, u64)) -> (Reverse<u64>, &'a str) {
        (Reverse(entry.1), entry.0)
    }
    if top.len() > TOP_VALUES {
        top.select_nth_unstable_by_key(TOP_VALUES - 1, order);
        top.truncate(TOP_VALUES);
    }
    top.sort_unstable_by_key(order);
    let top_values = top.into_iter().map(|(v, n)| (v.to_string(), n)).collect();
    Stats {
        non_missing,
        distinct,
        top_values,
        ..Stats::default()
    }
}

fn ranged<'a, T: Ord + Hash + 'a>(
    values: impl Iterator<Item = &'a T>,
    show: impl Fn(&T) -> String,
) -> Stats {
    let mut non_missing = 0;
    let set: HashSet<&T> = values.inspect(|_| non_missing += 1).collect();
    let range = set
        .iter()
        .min()
        .zip(set.iter().max())
        .map(|(a, b)| (show(a), show(b)));
    Stats {
        non_missing,
        distinct: set.len(),
        range,
        ..Stats::default()
    }
}

fn warnings(
    ty: ColumnType,
    rows: usize,
    missing: usize,
    non_missing: usize,
    distinct: usize,
) -> Vec<ColumnWarning> {
    let mut out = Vec::new();
    if distinct <= 1 {
        out.push(ColumnWarning::Constant);
    }
    let id_capable = matches!(
        ty,
        ColumnType::Integer | ColumnType::Categorical | ColumnType::Text
    );
    if id_capable && non_missing > 20 && distinct == non_missing {
        out.push(ColumnWarning::IdLike);
    }
    if ty == ColumnType::Categorical
        && (distinct > 50 || (non_missing > 20 && distinct * 2 > non_missing))
    {
        out.push(ColumnWarning::HighCardinality);
    }
    if missing * 2 > rows {
        out.push(ColumnWarning::ManyMissing);
    }
    out
}

#[cfg(test)]
mod tests {
    use aurum_core::Column;
    use chrono::NaiveDate;

    use super::*;

    fn table(columns: Vec<(&str, ColumnData)>) -> Table {
        Table::new(
            columns
                .into_iter()
                .map(|(n, data)| Column {
                    name: n.into(),
                    data,
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn numeric_summary_matches_hand_computation() {
        let t = table(vec![(
            "x",
            ColumnData::Float(vec![Some(2.0), None, Some(4.0), Some(f64::NAN), Some(9.0)]),
        )]);
        let p = profile(&t);
        let c = &p.columns[0];
        assert_eq!(c.missing_count, 2);
        assert!((c.missing_pct - 40.0).abs() < 1e-12);
        assert_eq!(c.distinct_count, 3);
        let n = c.numeric.unwrap();
        assert_eq!((n.min, n.max, n.mean), (2.0, 9.0, 5.0));
        // Sample variance: ((9 + 1 + 16) / 2) = 13.
        assert!((n.std - 13f64.sqrt()).abs() < 1e-12);
        assert!(c.top_values.is_empty());
    }

    #[test]
    fn top_values_ordered_by_count_then_value() {
        let vals = ["b", "a", "c", "b", "a", "d"];
        let t = table(vec![(
            "s",
            ColumnData::Categorical(vals.iter().map(|s| Some(s.to_string())).collect()),
        )]);
        let c = &profile(&t).columns[0];
        assert_eq!(
            c.top_values,
            vec![
                ("a".into(), 2),
                ("b".into(), 2),
                ("c".into(), 1),
                ("d".into(), 1)
            ]
        );
    }

    #[test]
    fn top_values_keep_ten() {
        let vals: Vec<Option<String>> = (0..30).map(|i| Some(format!("v{:02}", i % 15))).collect();
        let t = table(vec![("s", ColumnData::Text(vals))]);
        let c = &profile(&t).columns[0];
        assert_eq!(c.top_values.len(), TOP_VALUES);
        assert_eq!(c.top_values[0], ("v00".into(), 2));
        assert_eq!(c.top_values[9], ("v09".into(), 2));
    }

    #[test]
    fn warnings_fire() {
        let ids: Vec<Option<i64>> = (0..30).map(Some).collect();
        let constant: Vec<Option<bool>> = (0..30).map(|_| Some(true)).collect();
        let sparse: Vec<Option<f64>> = (0..30).map(|i| (i < 10).then_some(i as f64)).collect();
        let many: Vec<Option<String>> = (0..30).map(|i| Some(format!("c{}", i % 20))).collect();
        let t = table(vec![
            ("id", ColumnData::Integer(ids)),
            ("k", ColumnData::Boolean(constant)),
            ("sparse", ColumnData::Float(sparse)),
            ("cat", ColumnData::Categorical(many)),
        ]);
        let p = profile(&t);
        assert_eq!(p.columns[0].warnings, vec![ColumnWarning::IdLike]);
        assert_eq!(p.columns[1].warnings, vec![ColumnWarning::Constant]);
        assert_eq!(p.columns[2].warnings, vec![ColumnWarning::ManyMissing]);
        assert_eq!(p.columns[3].warnings, vec![ColumnWarning::HighCardinality]);
    }

    #[test]
    fn dates_have_a_range() {
        let d = |s| Some(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        let t = table(vec![(
            "d",
            ColumnData::Date(vec![d("2024-03-01"), None, d("2023-01-31")]),
        )]);
        let c = &profile(&t).columns[0];
        assert_eq!(c.range, Some(("2023-01-31".into(), "2024-03-01".into())));
        assert_eq!(c.distinct_count, 2);
        assert_eq!(c.missing_count, 1);
    }

    #[test]
    fn serde_names_are_snake_case_and_round_trip() {
        let t = table(vec![(
            "b",
            ColumnData::Boolean(vec![Some(true), Some(false), None]),
        )]);
        let p = profile(&t);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["columns"][0]["column_type"], "boolean");
        assert_eq!(json["columns"][0]["top_values"][0][0], "false");
        let w = serde_json::to_value(ColumnWarning::HighCardinality).unwrap();
        assert_eq!(w, "high_cardinality");
        let back: DatasetProfile = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }
}
