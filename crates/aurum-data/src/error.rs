//! The one error type of this crate.
//!
//! Almost everything that can go wrong while ingesting a dataset is the *caller's* input: a ragged
//! row, a stray byte that is not UTF-8, a target column with three labels. Those errors must let a
//! person fix their file without a debugger, so every variant names where the problem is — the
//! 1-based line of the file (or row of a Parquet file), the column by name and 1-based position, and
//! the offending value. [`DataError::is_user_error`] separates these from the rare failures that
//! are ours (an Arrow kernel refusing a cast we asked for), and [`DataError::code`] gives each
//! variant a stable machine code for the wire layer.

use std::fmt;

use aurum_core::ColumnType;

/// A column of the input, by 1-based position and, where known, by name.
///
/// The name is absent only when the header itself could not be read (for example, invalid UTF-8
/// in a header cell).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnRef {
    /// The header name, if it could be decoded.
    pub name: Option<String>,
    /// 1-based position of the column in the file.
    pub position: usize,
}

impl ColumnRef {
    pub(crate) fn new(name: &str, index: usize) -> Self {
        Self {
            name: Some(name.to_string()),
            position: index + 1,
        }
    }

    pub(crate) fn unnamed(index: usize) -> Self {
        Self {
            name: None,
            position: index + 1,
        }
    }
}

impl fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "column {} (`{}`)", self.position, name),
            None => write!(f, "column {}", self.position),
        }
    }
}

/// Where a value sits in the input: a 1-based line of a CSV file (line 1 is the header) or a
/// 1-based data row of a Parquet file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// 1-based physical line of a CSV file where the record starts.
    Line(u64),
    /// 1-based data row of a columnar file (Parquet has no lines).
    Row(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Row(n) => write!(f, "row {n}"),
        }
    }
}

/// Everything that can go wrong in `aurum-data`.
///
/// Messages are written for the person who owns the input file; see [`DataError::code`] for the
/// stable machine codes and [`DataError::is_user_error`] for who is at fault.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DataError {
    /// The input is 0 bytes, or only whitespace (and perhaps a byte-order mark).
    #[error("the file is empty: expected a header line followed by data rows")]
    EmptyFile,

    /// A header (or a Parquet schema) but not a single data row.
    #[error("the file has no data rows: only a header was found")]
    NoDataRows,

    /// A header cell that is empty or only whitespace.
    #[error("{}the name of column {position} is empty; every column needs a name", at_line(*line))]
    EmptyHeader {
        /// 1-based line of the header (`None` for Parquet).
        line: Option<u64>,
        /// 1-based position of the unnamed column.
        position: usize,
    },

    /// Two header cells with the same name.
    #[error("{}duplicate column name `{name}` at columns {first} and {second}", at_line(*line))]
    DuplicateHeader {
        /// 1-based line of the header (`None` for Parquet).
        line: Option<u64>,
        name: String,
        /// 1-based position of the first occurrence.
        first: usize,
        /// 1-based position of the repeated occurrence.
        second: usize,
    },

    /// A record with a different number of fields than the header.
    #[error("line {line}: expected {expected} fields (as in the header) but found {got}")]
    RaggedRow {
        line: u64,
        expected: usize,
        got: usize,
    },

    /// Bytes that are not valid UTF-8.
    #[error(
        "line {line}, {column}: the value is not valid UTF-8 (invalid byte at offset {byte_offset} of the field); re-save the file as UTF-8"
    )]
    InvalidUtf8 {
        line: u64,
        column: ColumnRef,
        /// 0-based byte offset of the first invalid byte inside the field.
        byte_offset: usize,
    },

    /// A value that cannot be read as the type its column was given (by an override, a forced
    /// schema, or because it is not representable, such as an infinite float).
    #[error("{location}, {column}: cannot read `{value}` as {expected}{}", hint_suffix(*expected))]
    BadValue {
        location: Location,
        column: ColumnRef,
        value: String,
        expected: ColumnType,
    },

    /// A column name (in an override, a forced schema or a target) that the data does not have.
    #[error(
        "unknown column `{name}`{}; available columns: {}",
        context_suffix(context),
        list(available)
    )]
    UnknownColumn {
        name: String,
        /// What referred to the column (`"type override"`, `"target"`, ...).
        context: &'static str,
        available: Vec<String>,
    },

    /// An explicit date format ([`crate::ReadOptions::date_formats`]) that cannot be used.
    #[error("date format `{format}` for column `{column}` cannot be used: {reason}")]
    InvalidDateFormat {
        column: String,
        format: String,
        reason: &'static str,
    },

    /// A column the forced schema declares but the file lacks.
    #[error("column `{name}` is in the dataset's schema but missing from the file")]
    MissingColumn { name: String },

    /// A column in the file that the forced schema does not declare.
    #[error("{column} is in the file but not in the dataset's schema")]
    UnexpectedColumn { column: ColumnRef },

    /// A Parquet column whose Arrow type has no aurum equivalent.
    #[error(
        "{column} has Arrow type {data_type}, which aurum cannot ingest; convert it to a number, boolean, string, date or timestamp"
    )]
    UnsupportedType {
        column: ColumnRef,
        data_type: String,
    },

    /// The CSV tokenizer rejected the input.
    #[error("line {line}: malformed CSV: {message}")]
    Csv { line: u64, message: String },

    /// The Parquet decoder rejected the input (corrupt or truncated file, unsupported encoding).
    #[error("cannot read the Parquet file: {message}")]
    Parquet { message: String },

    /// A target cell with no value.
    #[error(
        "target column `{column}` has a missing value at row {row} (line {line} of a CSV file with a header); drop or fill the row"
    )]
    MissingTarget {
        column: String,
        row: usize,
        line: usize,
    },

    /// A target column with more than two distinct labels.
    #[error(
        "target column `{column}` is not binary: row {row} (line {line} of a CSV file with a header) has `{value}` but `{first}` and `{second}` were already seen"
    )]
    NonBinaryTarget {
        column: String,
        row: usize,
        line: usize,
        value: String,
        first: String,
        second: String,
    },

    /// A target column where every row has the same label.
    #[error("target column `{column}` has a single class (`{label}`); a binary target needs two")]
    SingleClass { column: String, label: String },

    /// A numeric task (regression, forecasting) given a target column that is not numeric.
    #[error("target column `{column}` is {ty}, but this task needs a numeric target")]
    NonNumericTarget { column: String, ty: String },

    /// A multiclass target with more classes than a classifier takes.
    #[error("target column `{column}` has more than {limit} distinct labels")]
    TooManyClasses { column: String, limit: usize },

    /// The requested positive label is not one of the target's two labels.
    #[error("positive label `{label}` does not occur in target column `{column}` (its labels are `{}` and `{}`)", labels[0], labels[1])]
    UnknownLabel {
        column: String,
        label: String,
        labels: [String; 2],
    },

    /// A test fraction outside the open interval (0, 1).
    #[error("test fraction must be strictly between 0 and 1, got {fraction}")]
    InvalidFraction { fraction: f64 },

    /// A class with too few rows to be on both sides of a stratified split.
    #[error(
        "class {class} has {count} row(s), too few to appear in both the training and the test set with test fraction {fraction}"
    )]
    ClassTooSmall {
        class: String,
        count: usize,
        fraction: f64,
    },

    /// Too few rows for both sides of a split to be non-empty.
    #[error(
        "{rows} row(s) cannot be split into non-empty training and test sets with test fraction {fraction}"
    )]
    SplitTooSmall { rows: usize, fraction: f64 },

    /// A failure of ours, not caused by the input (an Arrow kernel failing on a supported type).
    #[error("internal error while reading data: {message}")]
    Internal { message: String },
}

fn hint_suffix(expected: ColumnType) -> &'static str {
    crate::infer::expected_spelling(expected)
}

fn at_line(line: Option<u64>) -> String {
    line.map(|l| format!("line {l}: ")).unwrap_or_default()
}

fn context_suffix(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!(" in {context}")
    }
}

fn list(names: &[String]) -> String {
    const SHOWN: usize = 50;
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    if out.is_empty() {
        out.push_str("(none)");
    }
    out
}

impl DataError {
    /// Whether the caller's input caused this error (as opposed to a failure of ours).
    ///
    /// Every variant except [`DataError::Internal`] is a user error.
    pub fn is_user_error(&self) -> bool {
        match self {
            DataError::EmptyFile
            | DataError::NoDataRows
            | DataError::EmptyHeader { .. }
            | DataError::DuplicateHeader { .. }
            | DataError::RaggedRow { .. }
            | DataError::InvalidUtf8 { .. }
            | DataError::BadValue { .. }
            | DataError::UnknownColumn { .. }
            | DataError::InvalidDateFormat { .. }
            | DataError::MissingColumn { .. }
            | DataError::UnexpectedColumn { .. }
            | DataError::UnsupportedType { .. }
            | DataError::Csv { .. }
            | DataError::Parquet { .. }
            | DataError::MissingTarget { .. }
            | DataError::NonBinaryTarget { .. }
            | DataError::SingleClass { .. }
            | DataError::NonNumericTarget { .. }
            | DataError::TooManyClasses { .. }
            | DataError::UnknownLabel { .. }
            | DataError::InvalidFraction { .. }
            | DataError::ClassTooSmall { .. }
            | DataError::SplitTooSmall { .. } => true,
            DataError::Internal { .. } => false,
        }
    }

    /// A stable snake_case machine code for the variant (never changes once published).
    pub fn code(&self) -> &'static str {
        match self {
            DataError::EmptyFile => "empty_file",
            DataError::NoDataRows => "no_data_rows",
            DataError::EmptyHeader { .. } => "empty_header",
            DataError::DuplicateHeader { .. } => "duplicate_header",
            DataError::RaggedRow { .. } => "ragged_row",
            DataError::InvalidUtf8 { .. } => "invalid_utf8",
            DataError::BadValue { .. } => "bad_value",
            DataError::UnknownColumn { .. } => "unknown_column",
            DataError::InvalidDateFormat { .. } => "invalid_date_format",
            DataError::MissingColumn { .. } => "missing_column",
            DataError::UnexpectedColumn { .. } => "unexpected_column",
            DataError::UnsupportedType { .. } => "unsupported_type",
            DataError::Csv { .. } => "csv_error",
            DataError::Parquet { .. } => "parquet_error",
            DataError::MissingTarget { .. } => "missing_target",
            DataError::NonBinaryTarget { .. } => "non_binary_target",
            DataError::SingleClass { .. } => "single_class",
            DataError::NonNumericTarget { .. } => "non_numeric_target",
            DataError::TooManyClasses { .. } => "too_many_classes",
            DataError::UnknownLabel { .. } => "unknown_label",
            DataError::InvalidFraction { .. } => "invalid_fraction",
            DataError::ClassTooSmall { .. } => "class_too_small",
            DataError::SplitTooSmall { .. } => "split_too_small",
            DataError::Internal { .. } => "internal_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_line_and_column() {
        let e = DataError::InvalidUtf8 {
            line: 7,
            column: ColumnRef::new("purpose", 3),
            byte_offset: 2,
        };
        let msg = e.to_string();
        assert!(msg.contains("line 7"), "{msg}");
        assert!(msg.contains("column 4 (`purpose`)"), "{msg}");
        assert_eq!(e.code(), "invalid_utf8");
        assert!(e.is_user_error());
    }

    #[test]
    fn unknown_column_lists_available() {
        let e = DataError::UnknownColumn {
            name: "x".into(),
            context: "target",
            available: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            e.to_string(),
            "unknown column `x` in target; available columns: `a`, `b`"
        );
    }

    #[test]
    fn internal_is_not_user_error() {
        let e = DataError::Internal {
            message: "boom".into(),
        };
        assert!(!e.is_user_error());
        assert_eq!(e.code(), "internal_error");
    }

    #[test]
    fn long_column_lists_are_truncated() {
        let available: Vec<String> = (0..60).map(|i| format!("c{i}")).collect();
        let e = DataError::UnknownColumn {
            name: "x".into(),
            context: "",
            available,
        };
        let msg = e.to_string();
        assert!(msg.ends_with("and 10 more"), "{msg}");
        assert!(msg.starts_with("unknown column `x`; available"), "{msg}");
    }
}
