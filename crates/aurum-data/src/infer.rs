//! Cell parsing and column type inference, shared by the CSV and Parquet readers.
//!
//! Why one module: the same rules must hold whichever way a dataset arrives. A column re-read from
//! storage with a forced schema, a column a user overrode, and a column typed by inference all go
//! through [`convert`], so "what counts as an integer" is written down exactly once.
//!
//! # Rules
//!
//! * Every CSV field is trimmed of surrounding whitespace before anything else.
//! * A trimmed field equal to one of [`MISSING_TOKENS`] is missing (`None`).
//! * Inference looks at **every** non-missing value of a column and picks the first type that
//!   accepts all of them, in this order:
//!   1. boolean — `true`/`false`, `True`/`False`, `TRUE`/`FALSE` only (a 0/1 column is an
//!      integer column unless a type override says boolean);
//!   2. integer — an `i64` in decimal, optional sign;
//!   3. float — a finite `f64` in decimal or exponent notation (`inf`, `infinity` and `nan`
//!      spellings are *not* numbers, so such a column stays a string column);
//!   4. date — `YYYY-MM-DD`;
//!   5. datetime — RFC 3339 (converted to UTC), `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`,
//!      optionally with fractional seconds; a column mixing dates and datetimes is a datetime column
//!      (dates read as midnight);
//!   6. otherwise a string column: categorical when it has at most [`categorical_limit`]`(n)`
//!      distinct values (n = non-missing count), text otherwise.
//! * A column with no non-missing value is categorical (every value `None`): it carries no
//!   information, and categorical is the type that every consumer can encode without failing.
//! * When a type is *forced* (a type override or a stored schema), parsing is a little more lenient
//!   than inference: booleans also accept `1`/`0`, `yes`/`no`, `y`/`n`, `t`/`f` in any case, and a
//!   datetime also accepts a plain date. A value that still does not parse is an error naming the
//!   line, column and value.

use std::collections::HashSet;

use aurum_core::{ColumnData, ColumnType};
use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// The spellings of a missing value (compared after trimming surrounding whitespace, case-sensitive).
pub const MISSING_TOKENS: &[&str] = &[
    "", "NA", "N/A", "na", "n/a", "null", "NULL", "None", "NaN", "nan", "?",
];

/// The most distinct values a string column may have and still be inferred as categorical.
///
/// `max(20, min(1000, n / 20))` for `n` non-missing values: up to 20 levels always (small tables,
/// codes, yes/no answers), then 5% of the rows, capped at 1000 levels. Credit-style code columns
/// (purpose, credit history, housing, ...) have a handful of levels and are categorical at any
/// size; names, addresses, free-text notes and identifiers are mostly unique and become text.
pub fn categorical_limit(non_missing: usize) -> usize {
    (non_missing / 20).clamp(20, 1000)
}

/// The type a string column gets from its distinct and non-missing counts.
pub(crate) fn string_type(distinct: usize, non_missing: usize) -> ColumnType {
    if distinct <= categorical_limit(non_missing) {
        ColumnType::Categorical
    } else {
        ColumnType::Text
    }
}

pub(crate) fn is_missing(trimmed: &str) -> bool {
    MISSING_TOKENS.contains(&trimmed)
}

/// The strict boolean spellings used by inference.
fn parse_bool_strict(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// The boolean spellings accepted when the type is forced.
fn parse_bool_forced(s: &str) -> Option<bool> {
    const TRUE: [&str; 5] = ["true", "t", "yes", "y", "1"];
    const FALSE: [&str; 5] = ["false", "f", "no", "n", "0"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(false)
    } else {
        None
    }
}

fn parse_int(s: &str) -> Option<i64> {
    s.parse().ok()
}

/// A finite float in plain decimal or exponent notation; `inf`, `nan` and friends are rejected.
fn parse_float(s: &str) -> Option<f64> {
    let plausible = s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if !plausible {
        return None;
    }
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn looks_like_date_prefix(s: &[u8]) -> bool {
    s.len() >= 10 && s[4] == b'-' && s[7] == b'-' && s[..4].iter().all(u8::is_ascii_digit)
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 || !looks_like_date_prefix(s.as_bytes()) {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// A datetime with a time part (dates alone are handled by the callers).
fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() < 19 || !looks_like_date_prefix(b) {
        return None;
    }
    let naive = match b[10] {
        b'T' | b't' => NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok(),
        b' ' => NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok(),
        _ => return None,
    };
    naive.or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|d| d.naive_utc()))
}

fn parse_datetime_forced(s: &str) -> Option<NaiveDateTime> {
    parse_datetime(s).or_else(|| parse_date(s).and_then(|d| d.and_hms_opt(0, 0, 0)))
}

/// One column of raw text cells, trimmed, in a single buffer (one allocation per column rather
/// than per cell). A missing cell is stored as the empty string.
#[derive(Debug, Default)]
pub(crate) struct RawColumn {
    buf: String,
    ends: Vec<usize>,
}

impl RawColumn {
    pub(crate) fn with_capacity(rows: usize) -> Self {
        Self {
            buf: String::new(),
            ends: Vec::with_capacity(rows),
        }
    }

    /// Appends a cell; `None` (or a missing token) is stored as missing.
    pub(crate) fn push(&mut self, trimmed: Option<&str>) {
        if let Some(s) = trimmed.filter(|s| !is_missing(s)) {
            self.buf.push_str(s);
        }
        self.ends.push(self.buf.len());
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The cells in order; `None` for missing.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Option<&str>> + Clone + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let s = &self.buf[start..end];
            start = end;
            (!s.is_empty()).then_some(s)
        })
    }
}

/// Infers the type of a column of trimmed cells (see the module docs for the rules).
pub(crate) fn infer(col: &RawColumn) -> ColumnType {
    let (mut boolean, mut integer, mut float, mut date, mut datetime) =
        (true, true, true, true, true);
    let mut any = false;
    for s in col.iter().flatten() {
        any = true;
        if boolean && parse_bool_strict(s).is_none() {
            boolean = false;
        }
        let is_int = integer && parse_int(s).is_some();
        integer = is_int;
        if float && !is_int && parse_float(s).is_none() {
            float = false;
        }
        if date || datetime {
            let is_date = parse_date(s).is_some();
            date &= is_date;
            datetime &= is_date || parse_datetime(s).is_some();
        }
        if !(boolean || integer || float || date || datetime) {
            break;
        }
    }
    if !any {
        return ColumnType::Categorical;
    }
    if boolean {
        ColumnType::Boolean
    } else if integer {
        ColumnType::Integer
    } else if float {
        ColumnType::Float
    } else if date {
        ColumnType::Date
    } else if datetime {
        ColumnType::DateTime
    } else {
        infer_string(col.iter().flatten())
    }
}

/// Categorical or text for a column of non-missing strings, counting distinct values only as far
/// as the decision needs.
pub(crate) fn infer_string<'a>(values: impl Iterator<Item = &'a str> + Clone) -> ColumnType {
    let non_missing = values.clone().count();
    let limit = categorical_limit(non_missing);
    let mut seen = HashSet::new();
    for v in values {
        seen.insert(v);
        if seen.len() > limit {
            return ColumnType::Text;
        }
    }
    string_type(seen.len(), non_missing)
}

/// Converts a column of trimmed cells to `ty`.
///
/// On failure returns the 0-based row and the offending cell, for the caller to turn into an
/// error with its own notion of location.
pub(crate) fn convert(col: &RawColumn, ty: ColumnType) -> Result<ColumnData, (usize, String)> {
    fn typed<T>(
        col: &RawColumn,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<Option<T>>, (usize, String)> {
        let mut out = Vec::with_capacity(col.len());
        for (row, cell) in col.iter().enumerate() {
            match cell {
                None => out.push(None),
                Some(s) => match parse(s) {
                    Some(v) => out.push(Some(v)),
                    None => return Err((row, s.to_string())),
                },
            }
        }
        Ok(out)
    }
    let strings = || {
        col.iter()
            .map(|c| c.map(str::to_string))
            .collect::<Vec<_>>()
    };
    Ok(match ty {
        ColumnType::Float => ColumnData::Float(typed(col, parse_float)?),
        ColumnType::Integer => ColumnData::Integer(typed(col, parse_int)?),
        ColumnType::Boolean => ColumnData::Boolean(typed(col, parse_bool_forced)?),
        ColumnType::Date => ColumnData::Date(typed(col, parse_date)?),
        ColumnType::DateTime => ColumnData::DateTime(typed(col, parse_datetime_forced)?),
        ColumnType::Categorical => ColumnData::Categorical(strings()),
        ColumnType::Text => ColumnData::Text(strings()),
    })
}

/// A value shortened for an error message (values can be arbitrarily long free text).
pub(crate) fn excerpt(s: &str) -> String {
    const MAX_CHARS: usize = 80;
    match s.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(cells: &[&str]) -> RawColumn {
        let mut c = RawColumn::with_capacity(cells.len());
        for s in cells {
            c.push(Some(s.trim()));
        }
        c
    }

    #[test]
    fn missing_tokens_become_none() {
        let c = raw(&[
            "1", "", "NA", "N/A", "na", "n/a", "null", "NULL", "None", "NaN", "nan", "?",
        ]);
        assert_eq!(c.iter().filter(Option::is_none).count(), 11);
        assert_eq!(infer(&c), ColumnType::Integer);
    }

    #[test]
    fn zero_one_is_integer_not_boolean() {
        assert_eq!(infer(&raw(&["0", "1", "1"])), ColumnType::Integer);
        assert_eq!(infer(&raw(&["true", "FALSE", "True"])), ColumnType::Boolean);
        let forced = convert(&raw(&["0", "1", "yes", "N"]), ColumnType::Boolean).unwrap();
        assert_eq!(
            forced,
            ColumnData::Boolean(vec![Some(false), Some(true), Some(true), Some(false)])
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(infer(&raw(&["1", "-2", "+3"])), ColumnType::Integer);
        assert_eq!(infer(&raw(&["1", "2.5", "1e3", ".5"])), ColumnType::Float);
        assert_eq!(infer(&raw(&["1", "inf"])), ColumnType::Categorical);
        assert_eq!(infer(&raw(&["1", "Infinity"])), ColumnType::Categorical);
        assert_eq!(
            infer(&raw(&["1e400"])),
            ColumnType::Categorical,
            "overflow is not finite"
        );
        // Too big for i64, still a number.
        assert_eq!(infer(&raw(&["99999999999999999999"])), ColumnType::Float);
    }

    #[test]
    fn dates_and_datetimes() {
        assert_eq!(infer(&raw(&["2024-01-31", "1999-12-01"])), ColumnType::Date);
        assert_eq!(infer(&raw(&["2024-02-30"])), ColumnType::Categorical);
        assert_eq!(
            infer(&raw(&[
                "2024-01-31 10:00:00",
                "2024-01-31T10:00:00.25",
                "2024-01-31T10:00:00+02:00"
            ])),
            ColumnType::DateTime
        );
        assert_eq!(
            infer(&raw(&["2024-01-31", "2024-01-31 10:00:00"])),
            ColumnType::DateTime
        );
        let ColumnData::DateTime(v) = convert(
            &raw(&["2024-01-31T10:00:00+02:00", "2024-01-31"]),
            ColumnType::DateTime,
        )
        .unwrap() else {
            panic!("not datetime")
        };
        assert_eq!(v[0].unwrap().to_string(), "2024-01-31 08:00:00");
        assert_eq!(v[1].unwrap().to_string(), "2024-01-31 00:00:00");
    }

    #[test]
    fn categorical_versus_text() {
        assert_eq!(categorical_limit(0), 20);
        assert_eq!(categorical_limit(1000), 50);
        assert_eq!(categorical_limit(1_000_000), 1000);
        let levels: Vec<String> = (0..1000).map(|i| format!("level {}", i % 10)).collect();
        let refs: Vec<&str> = levels.iter().map(String::as_str).collect();
        assert_eq!(infer(&raw(&refs)), ColumnType::Categorical);
        let unique: Vec<String> = (0..1000).map(|i| format!("note number {i}")).collect();
        let refs: Vec<&str> = unique.iter().map(String::as_str).collect();
        assert_eq!(infer(&raw(&refs)), ColumnType::Text);
        assert_eq!(
            infer(&raw(&["", "NA"])),
            ColumnType::Categorical,
            "all missing"
        );
    }

    #[test]
    fn convert_reports_the_bad_row() {
        assert_eq!(
            convert(&raw(&["1", "", "x"]), ColumnType::Integer),
            Err((2, "x".to_string()))
        );
    }

    #[test]
    fn excerpt_truncates_on_char_boundary() {
        let long = "é".repeat(100);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), 81);
        assert_eq!(excerpt("short"), "short");
    }
}
