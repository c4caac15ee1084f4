//! The one error type of this crate.
//!
//! Most failures are the caller's: a CSV whose timestamps go backwards, a missing value with no
//! fill policy, a seasonal model asked of two points. Those name the line, column and timestamp
//! involved so a person can fix the file from the message alone. [`ForecastError::is_user_error`]
//! separates them from our own failures (an optimiser that produced no finite likelihood), and
//! [`ForecastError::code`] gives each variant a stable machine code for the wire layer.

/// Everything that can go wrong in `aurum-forecast`.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ForecastError {
    /// The CSV could not be read at all (bad quoting, invalid UTF-8, ragged rows).
    #[error("line {line}: cannot read the CSV: {message}")]
    Csv {
        /// 1-based line of the file (line 1 is the header).
        line: u64,
        /// What the reader reported.
        message: String,
    },

    /// The input holds a header but no data rows (or nothing at all).
    #[error("the input has no data rows")]
    NoData,

    /// A column named in the options is not in the header.
    #[error("column `{name}` is not in the header (columns: {available})")]
    MissingColumn {
        /// The name asked for.
        name: String,
        /// The header, comma-separated.
        available: String,
    },

    /// A timestamp cell that none of the accepted formats parses.
    #[error(
        "line {line}: cannot parse `{value}` as a timestamp (accepted: 2024-01-31, 2024-01, \
         2024 Q1, 2024-01-31 13:45:00, 2024-01-31T13:45:00Z, 2024/01/31, US 1/31/2024, \
         31-Jan-24, integers; give `date_format` for others, e.g. %d/%m/%Y for day-first dates)"
    )]
    BadTimestamp {
        /// 1-based line of the file.
        line: u64,
        /// The cell as written.
        value: String,
    },

    /// A value cell that is neither a number nor a missing-value token.
    #[error("line {line}, column `{column}`: cannot parse `{value}` as a number")]
    BadValue {
        /// 1-based line of the file.
        line: u64,
        /// Column name.
        column: String,
        /// The cell as written.
        value: String,
    },

    /// A timestamp earlier than the one before it.
    #[error(
        "{series}line {line}: timestamp {timestamp} is earlier than {previous} on the line \
         before; rows must be sorted by time"
    )]
    NonMonotonic {
        /// `series `id`: ` for long-format input, empty otherwise.
        series: String,
        /// 1-based line of the offending row.
        line: u64,
        /// Its timestamp.
        timestamp: String,
        /// The previous row's timestamp.
        previous: String,
    },

    /// The same timestamp twice in one series.
    #[error(
        "{series}line {line}: duplicate timestamp {timestamp} (first seen on line {first_line})"
    )]
    DuplicateTimestamp {
        /// `series `id`: ` for long-format input, empty otherwise.
        series: String,
        /// 1-based line of the second occurrence.
        line: u64,
        /// The repeated timestamp.
        timestamp: String,
        /// 1-based line of the first occurrence.
        first_line: u64,
    },

    /// A missing value (empty cell, `NA`, `NaN`, …) with fill policy `none`.
    #[error(
        "{series}line {line}, column `{column}`: missing value at {timestamp}; choose a fill \
         policy (ffill, linear, zero, drop) to handle missing values"
    )]
    MissingValue {
        /// `series `id`: ` for long-format input, empty otherwise.
        series: String,
        /// 1-based line of the row.
        line: u64,
        /// Value column.
        column: String,
        /// The row's timestamp.
        timestamp: String,
    },

    /// Timestamps missing from the regular grid, with fill policy `none`.
    #[error(
        "{series}{count} timestamp(s) missing from the {frequency} grid, the first {first} \
         (after line {after_line}); choose a fill policy (ffill, linear, zero, drop)"
    )]
    Gap {
        /// `series `id`: ` for long-format input, empty otherwise.
        series: String,
        /// How many grid points are absent.
        count: usize,
        /// The first absent timestamp.
        first: String,
        /// The line of the row before the first gap.
        after_line: u64,
        /// The inferred or given frequency.
        frequency: String,
    },

    /// The timestamps follow no frequency this crate knows.
    #[error("{series}cannot infer a frequency from the timestamps: {reason}")]
    UnknownFrequency {
        /// `series `id`: ` for long-format input, empty otherwise.
        series: String,
        /// Why.
        reason: String,
    },

    /// Too few observations for what was asked.
    #[error("{what} needs at least {needed} observations, the series has {got}")]
    TooFewPoints {
        /// The model or operation, e.g. `seasonal naive with period 12`.
        what: String,
        /// Minimum required.
        needed: usize,
        /// Available.
        got: usize,
    },

    /// A non-finite value reached a model (fill policies remove them at ingest).
    #[error("value {index} of the series is {value}; models need finite values")]
    NonFinite {
        /// 0-based position in the series.
        index: usize,
        /// The value, as text.
        value: String,
    },

    /// A value so large that a model's sums of squares would overflow (see
    /// [`MAX_MAGNITUDE`]); rescaling the series (or a log transform) fixes it.
    #[error(
        "value {index} of the series is {value}, too large to fit without overflow: models need \
         values within ±{limit:e}; rescale the series (divide it by a power of ten) or use the \
         log transform"
    )]
    ValueTooLarge {
        /// 0-based position in the series.
        index: usize,
        /// The value, as text.
        value: String,
        /// The largest magnitude accepted ([`MAX_MAGNITUDE`]).
        limit: f64,
    },

    /// A parameter out of its domain (a window of 0, a level of 120 %, log of a negative).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),

    /// A stored artifact that cannot be loaded.
    #[error("cannot load the model artifact: {0}")]
    BadArtifact(String),

    /// Fitting failed for a reason that is ours, not the input's.
    #[error("model fitting failed: {0}")]
    FitFailed(String),

    /// The request or job that asked for the fit was cancelled.
    #[error("the fit was cancelled")]
    Cancelled,

    /// A forecasting option or parameter has a value outside what it accepts; names the field.
    #[error("{message}")]
    InvalidField {
        /// The option or parameter (`model`, `order`, `fill`, `date_column`, …).
        field: String,
        message: String,
    },
}

impl ForecastError {
    /// `true` when the caller's input is at fault (the service answers 4xx), `false` when the
    /// failure is ours (5xx).
    pub fn is_user_error(&self) -> bool {
        match self {
            ForecastError::Csv { .. }
            | ForecastError::NoData
            | ForecastError::MissingColumn { .. }
            | ForecastError::BadTimestamp { .. }
            | ForecastError::BadValue { .. }
            | ForecastError::NonMonotonic { .. }
            | ForecastError::DuplicateTimestamp { .. }
            | ForecastError::MissingValue { .. }
            | ForecastError::Gap { .. }
            | ForecastError::UnknownFrequency { .. }
            | ForecastError::TooFewPoints { .. }
            | ForecastError::NonFinite { .. }
            | ForecastError::ValueTooLarge { .. }
            | ForecastError::InvalidParameter(_)
            | ForecastError::BadArtifact(_)
            | ForecastError::InvalidField { .. }
            | ForecastError::Cancelled => true,
            ForecastError::FitFailed(_) => false,
        }
    }

    /// A stable machine code per variant.
    pub fn code(&self) -> &'static str {
        match self {
            ForecastError::Csv { .. } => "forecast_csv_unreadable",
            ForecastError::NoData => "forecast_no_data",
            ForecastError::MissingColumn { .. } => "forecast_missing_column",
            ForecastError::BadTimestamp { .. } => "forecast_bad_timestamp",
            ForecastError::BadValue { .. } => "forecast_bad_value",
            ForecastError::NonMonotonic { .. } => "forecast_non_monotonic_timestamps",
            ForecastError::DuplicateTimestamp { .. } => "forecast_duplicate_timestamp",
            ForecastError::MissingValue { .. } => "forecast_missing_value",
            ForecastError::Gap { .. } => "forecast_gap",
            ForecastError::UnknownFrequency { .. } => "forecast_unknown_frequency",
            ForecastError::TooFewPoints { .. } => "forecast_too_few_points",
            ForecastError::NonFinite { .. } => "forecast_non_finite_value",
            ForecastError::ValueTooLarge { .. } => "forecast_value_too_large",
            ForecastError::InvalidParameter(_) => "forecast_invalid_parameter",
            ForecastError::BadArtifact(_) => "forecast_bad_artifact",
            ForecastError::FitFailed(_) => "forecast_fit_failed",
            ForecastError::InvalidField { .. } => "invalid_field",
            ForecastError::Cancelled => "forecast_cancelled",
        }
    }
}

pub(crate) fn series_prefix(id: Option<&str>) -> String {
    match id {
        Some(id) => format!("series `{id}`: "),
        None => String::new(),
    }
}

pub(crate) fn too_few(what: impl Into<String>, needed: usize, got: usize) -> ForecastError {
    ForecastError::TooFewPoints {
        what: what.into(),
        needed,
        got,
    }
}

/// Largest magnitude a model fits: squares stay below 1e200, so sums of squares, variances and
/// likelihoods over any series length stay finite (`f64::MAX` is 1.8e308).
pub const MAX_MAGNITUDE: f64 = 1e100;

/// [`check_finite`], and every value within ±[`MAX_MAGNITUDE`]: what a model can fit.
pub(crate) fn check_fittable(y: &[f64]) -> Result<(), ForecastError> {
    check_finite(y)?;
    match y.iter().position(|v| v.abs() > MAX_MAGNITUDE) {
        Some(index) => Err(ForecastError::ValueTooLarge {
            index,
            value: format!("{:e}", y[index]),
            limit: MAX_MAGNITUDE,
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_finite(y: &[f64]) -> Result<(), ForecastError> {
    match y.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(ForecastError::NonFinite {
            index,
            value: y[index].to_string(),
        }),
        None => Ok(()),
    }
}
