//! Series ingest: CSV bytes → regular [`Series`] plus a [`FillReport`] per series.
//!
//! Three input shapes are accepted:
//!
//! * wide, one value column: `date,value`;
//! * wide, several value columns: one series per column, sharing the timestamps;
//! * long: `id,date,value` with an id column; rows of one id must be sorted by time, ids may be
//!   interleaved.
//!
//! Timestamps are checked for order and duplicates *before* anything else, because every later
//! step (frequency inference, gap detection, filling) assumes a sorted, distinct index. Then the
//! frequency is inferred (or taken from the options), the regular grid from the first to the last
//! timestamp is laid out, and missing values — empty or `NA`-like cells, and grid points with no
//! row — are handled by the one explicit [`FillPolicy`]. Nothing is filled silently: the default
//! policy is [`FillPolicy::None`], which rejects any missing value or gap, and every other policy
//! returns the list of what it filled or dropped.

use std::collections::HashMap;
use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use serde::{Deserialize, Serialize};

use crate::error::{ForecastError, series_prefix};
use crate::frequency::{Frequency, fmt_ts};

/// Cells read as missing values (compared case-insensitively, after trimming).
pub const MISSING_TOKENS: &[&str] = &["", "na", "n/a", "nan", "null", "none"];

/// Largest grid a series may be expanded to, as a multiple of its row count (plus 1000). Beyond
/// it the frequency is surely wrong for the data (say, second-level ticks spread over years).
const MAX_GRID_FACTOR: usize = 20;

/// What to do with missing values and with timestamps absent from the regular grid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillPolicy {
    /// Reject any missing value or gap (the default).
    #[default]
    None,
    /// Carry the last observed value forward; leading missing values are trimmed.
    Ffill,
    /// Interpolate linearly between the neighbouring observations (by grid position); leading and
    /// trailing missing values are trimmed.
    Linear,
    /// Replace with 0 (counts, flows).
    Zero,
    /// Remove rows with missing values and do not insert gap rows: the series becomes positional
    /// (trading days with holidays, for instance).
    Drop,
}

impl std::str::FromStr for FillPolicy {
    type Err = ForecastError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(FillPolicy::None),
            "ffill" => Ok(FillPolicy::Ffill),
            "linear" => Ok(FillPolicy::Linear),
            "zero" => Ok(FillPolicy::Zero),
            "drop" => Ok(FillPolicy::Drop),
            other => Err(ForecastError::InvalidParameter(format!(
                "unknown fill policy `{other}` (expected none, ffill, linear, zero or drop)"
            ))),
        }
    }
}

/// Where the timestamp comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeColumn {
    /// The first column of the file.
    First,
    /// A named column.
    Named(String),
    /// A year column and a quarter column (1–4), as in statsmodels' macrodata.
    YearQuarter {
        /// Year column.
        year: String,
        /// Quarter column.
        quarter: String,
    },
}

/// How to read series from CSV bytes.
#[derive(Clone, Debug)]
pub struct CsvOptions {
    /// The timestamp column(s).
    pub time: TimeColumn,
    /// Value columns; empty means every column that is neither time nor id.
    pub value_columns: Vec<String>,
    /// Series-id column for long format.
    pub id_column: Option<String>,
    /// Missing-value and gap handling.
    pub fill: FillPolicy,
    /// The frequency, or `None` to infer it per series.
    pub frequency: Option<Frequency>,
    /// Field delimiter.
    pub delimiter: u8,
    /// How the time column is written: `None` infers it (ISO dates and date-times, US
    /// `m/d/yyyy`, `dd-Mon-yy`, periods such as `2024-01` or `2024 Q1`, or plain integers as an
    /// integer index), `index` for an integer index, or a chrono format such as `%d/%m/%Y` for
    /// day-first dates.
    pub date_format: Option<String>,
    /// Market holidays (sorted, distinct): forecasts on trading days or sessions skip them.
    pub holidays: Vec<NaiveDate>,
    /// An intraday session `(open, close)` in seconds after midnight, instead of the one
    /// inferred from the bars.
    pub session: Option<(u32, u32)>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            time: TimeColumn::First,
            value_columns: Vec::new(),
            id_column: None,
            fill: FillPolicy::None,
            frequency: None,
            delimiter: b',',
            date_format: None,
            holidays: Vec::new(),
            session: None,
        }
    }
}

/// One regular (or, after [`FillPolicy::Drop`], positional) series.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The id for long-format input.
    pub id: Option<String>,
    /// The value column it came from.
    pub column: String,
    /// Timestamps, strictly increasing.
    pub timestamps: Vec<NaiveDateTime>,
    /// Values, all finite.
    pub values: Vec<f64>,
    /// The inferred or given frequency.
    pub frequency: Frequency,
    /// Market holidays (sorted) skipped by forecasts on trading days or sessions.
    pub holidays: Vec<NaiveDate>,
}

impl Series {
    /// A series from values alone (timestamps 0, 1, … days from 1970-01-01, frequency daily);
    /// convenient for tests and for callers that only have numbers.
    pub fn from_values(values: Vec<f64>) -> Self {
        let start = NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default();
        let timestamps = Frequency::Daily.future(start, values.len().saturating_sub(1));
        let mut ts = vec![start];
        ts.extend(timestamps);
        ts.truncate(values.len());
        Self {
            id: None,
            column: "value".into(),
            timestamps: ts,
            values,
            frequency: Frequency::Daily,
            holidays: Vec::new(),
        }
    }

    /// Number of observations.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// `true` when there are no observations.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The timestamps of the `h` periods after the last observation.
    pub fn future_timestamps(&self, h: usize) -> Vec<NaiveDateTime> {
        match self.timestamps.last() {
            Some(t) => self.frequency.future_on(*t, h, &self.holidays),
            None => Vec::new(),
        }
    }

    /// Checks that the series can carry a seasonal model of `period`: at least two full seasons.
    ///
    /// # Errors
    ///
    /// [`ForecastError::TooFewPoints`].
    pub fn require_seasonal(&self, period: usize) -> Result<(), ForecastError> {
        if period > 1 && self.len() < 2 * period {
            return Err(ForecastError::TooFewPoints {
                what: format!("seasonality with period {period}"),
                needed: 2 * period,
                got: self.len(),
            });
        }
        Ok(())
    }
}

/// Why a value was filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillReason {
    /// The cell was empty or a missing-value token.
    MissingValue,
    /// No row for this grid timestamp.
    Gap,
}

/// One value the fill policy supplied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FilledPoint {
    /// Its timestamp.
    pub timestamp: NaiveDateTime,
    /// The value supplied.
    pub value: f64,
    /// Why it was needed.
    pub reason: FillReason,
}

/// What the fill policy did to one series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FillReport {
    /// Series id (long format).
    pub id: Option<String>,
    /// Value column.
    pub column: String,
    /// The policy applied.
    pub policy: FillPolicy,
    /// The frequency used for the grid.
    pub frequency: Frequency,
    /// Missing cells in the input.
    pub missing_values: usize,
    /// Grid timestamps with no row.
    pub gaps: usize,
    /// Values supplied by the policy.
    pub filled: Vec<FilledPoint>,
    /// Timestamps removed (policy `drop`, or leading/trailing values `ffill`/`linear` cannot fill).
    pub dropped: Vec<NaiveDateTime>,
}

impl FillReport {
    /// `true` when the series was used exactly as given.
    pub fn is_clean(&self) -> bool {
        self.missing_values == 0 && self.gaps == 0
    }
}

/// A parsed series and what was done to it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSeries {
    /// The series, ready for modelling.
    pub series: Series,
    /// What the fill policy did.
    pub report: FillReport,
}

impl fmt::Display for FillReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}: {} missing value(s), {} gap(s), {} filled, {} dropped ({:?})",
            series_prefix(self.id.as_deref()),
            self.column,
            self.missing_values,
            self.gaps,
            self.filled.len(),
            self.dropped.len(),
            self.policy
        )
    }
}

/// Parses a timestamp cell. Accepted: `2024-01-31`, `2024/01/31`, `2024-01` (first of month),
/// `2024 Q1` / `2024-Q1` / `2024Q1` (first day of the quarter), `2024` (1 January),
/// `2024-01-31 13:45[:00[.fff]]`, `2024-01-31T13:45:00[.fff][Z|±hh:mm]` (offsets converted to UTC),
/// and the dataset reader's layouts: US `10/1/2015` (month first) and `28-Feb-97`. Day-first
/// slashed dates need an explicit format ([`CsvOptions::date_format`]).
pub fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0);
    for fmt in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, fmt) {
            return midnight(d);
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t);
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.naive_utc());
    }
    if let Ok(t) = chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%z") {
        return Some(t.naive_utc());
    }
    // US `m/d/yyyy` and `dd-Mon-yy`: the dataset reader's date layouts, so a file reads the same
    // as a forecasting series and as a dataset.
    if let Ok(aurum_core::Value::DateTime(t)) =
        aurum_data::parse_cell(s, aurum_core::ColumnType::DateTime)
    {
        return Some(t);
    }
    // Quarter: "2024 Q1", "2024-Q1", "2024Q1".
    let upper = s.to_ascii_uppercase();
    if let Some(pos) = upper.find('Q') {
        let year = upper[..pos].trim_end_matches([' ', '-']).trim();
        let q = upper[pos + 1..].trim();
        if let (Ok(y), Ok(q)) = (year.parse::<i32>(), q.parse::<u32>())
            && (1..=4).contains(&q)
        {
            return NaiveDate::from_ymd_opt(y, 3 * (q - 1) + 1, 1).and_then(midnight);
        }
        return None;
    }
    // Month: "2024-01".
    if let Some((y, m)) = s.split_once('-')
        && y.len() == 4
        && !m.contains('-')
        && let (Ok(y), Ok(m)) = (y.parse::<i32>(), m.parse::<u32>())
    {
        return NaiveDate::from_ymd_opt(y, m, 1).and_then(midnight);
    }
    if s.len() == 4
        && let Ok(y) = s.parse::<i32>()
    {
        return NaiveDate::from_ymd_opt(y, 1, 1).and_then(midnight);
    }
    None
}

/// How the time column is read.
enum TimeLayout {
    /// [`parse_timestamp`].
    Auto,
    /// Integers 0, 1, 2, … (any start; gaps are gaps).
    Index,
    /// An explicit chrono format, with or without a time part.
    Format(String),
}

impl TimeLayout {
    fn parse(&self, s: &str) -> Option<NaiveDateTime> {
        match self {
            TimeLayout::Auto => parse_timestamp(s),
            TimeLayout::Index => {
                let k: i64 = s.trim().parse().ok()?;
                (k.abs() < 100_000_000)
                    .then(|| crate::frequency::index_epoch() + chrono::Duration::days(k))
            }
            TimeLayout::Format(f) => NaiveDateTime::parse_from_str(s, f).ok().or_else(|| {
                NaiveDate::parse_from_str(s, f)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            }),
        }
    }
}

fn valid_format(format: &str) -> bool {
    use chrono::format::{Item, StrftimeItems};
    !format.is_empty() && StrftimeItems::new(format).all(|i| !matches!(i, Item::Error))
}

/// A time column of plain integers that are not years (a year column is 4-digit numbers
/// between 1000 and 2999 one apart).
fn looks_like_index(cells: &[String]) -> bool {
    let nums: Option<Vec<i64>> = cells.iter().map(|c| c.parse::<i64>().ok()).collect();
    let Some(nums) = nums else {
        return false;
    };
    if nums.is_empty() {
        return false;
    }
    let years = cells.iter().all(|c| c.len() == 4 && !c.starts_with('-'))
        && nums.iter().all(|n| (1000..3000).contains(n));
    !years
}

fn is_missing(cell: &str) -> bool {
    let t = cell.trim();
    MISSING_TOKENS.iter().any(|m| t.eq_ignore_ascii_case(m))
}

/// One row of one series before regularisation: timestamp, value (NaN if missing), line.
struct Row {
    t: NaiveDateTime,
    v: f64,
    line: u64,
}

/// Reads one or many series from CSV bytes.
///
/// # Errors
///
/// Unreadable CSV, unknown columns, unparseable timestamps or values, non-monotonic or duplicate
/// timestamps, missing values or gaps under [`FillPolicy::None`], and timestamps that fit no
/// frequency. Every message names the line and, where it applies, the series and timestamp.
pub fn read_csv(bytes: &[u8], opts: &CsvOptions) -> Result<Vec<ParsedSeries>, ForecastError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(&e))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(ForecastError::NoData);
    }
    let find = |name: &str| -> Result<usize, ForecastError> {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ForecastError::MissingColumn {
                name: name.to_string(),
                available: header.join(", "),
            })
    };
    let time_cols: Vec<usize> = match &opts.time {
        TimeColumn::First => vec![0],
        TimeColumn::Named(n) => vec![find(n)?],
        TimeColumn::YearQuarter { year, quarter } => vec![find(year)?, find(quarter)?],
    };
    let id_col = opts.id_column.as_deref().map(find).transpose()?;
    let value_cols: Vec<usize> = if opts.value_columns.is_empty() {
        (0..header.len())
            .filter(|i| !time_cols.contains(i) && Some(*i) != id_col)
            .collect()
    } else {
        opts.value_columns
            .iter()
            .map(|c| find(c))
            .collect::<Result<_, _>>()?
    };
    if value_cols.is_empty() {
        return Err(ForecastError::InvalidParameter(
            "no value column: the file has only the time (and id) column".into(),
        ));
    }

    let mut records = Vec::new();
    loop {
        let mut record = csv::StringRecord::new();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => records.push(record),
            Err(e) => return Err(csv_error(&e)),
        }
    }
    let time_cell = |record: &csv::StringRecord| -> String {
        match &opts.time {
            TimeColumn::YearQuarter { .. } => format!(
                "{} Q{}",
                record.get(time_cols[0]).unwrap_or("").trim(),
                record.get(time_cols[1]).unwrap_or("").trim()
            ),
            _ => record.get(time_cols[0]).unwrap_or("").trim().to_string(),
        }
    };
    let layout = match opts.date_format.as_deref() {
        Some("index") => TimeLayout::Index,
        Some(f) => {
            if !valid_format(f) {
                return Err(ForecastError::InvalidField {
                    field: "date_format".into(),
                    message: format!(
                        "date_format `{f}` must be `index` or a chrono format such as %d/%m/%Y"
                    ),
                });
            }
            TimeLayout::Format(f.to_string())
        }
        None if matches!(opts.time, TimeColumn::YearQuarter { .. }) => TimeLayout::Auto,
        None => {
            let cells: Vec<String> = records.iter().map(time_cell).collect();
            if looks_like_index(&cells) {
                TimeLayout::Index
            } else {
                TimeLayout::Auto
            }
        }
    };
    let is_index = matches!(layout, TimeLayout::Index);

    // Group rows by id (first-appearance order), then by value column.
    let mut order: Vec<Option<String>> = Vec::new();
    let mut groups: HashMap<Option<String>, Vec<Vec<Row>>> = HashMap::new();
    for record in &records {
        let line = record.position().map_or(0, csv::Position::line);
        let cell = time_cell(record);
        let t = layout
            .parse(&cell)
            .ok_or(ForecastError::BadTimestamp { line, value: cell })?;
        let id = id_col.map(|c| record.get(c).unwrap_or("").trim().to_string());
        let entry = groups.entry(id.clone()).or_insert_with(|| {
            order.push(id.clone());
            (0..value_cols.len()).map(|_| Vec::new()).collect()
        });
        for (k, &c) in value_cols.iter().enumerate() {
            let cell = record.get(c).unwrap_or("");
            let v = if is_missing(cell) {
                f64::NAN
            } else {
                match cell.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => v,
                    Ok(v) if v.is_nan() => f64::NAN,
                    _ => {
                        return Err(ForecastError::BadValue {
                            line,
                            column: header[c].clone(),
                            value: cell.to_string(),
                        });
                    }
                }
            };
            entry[k].push(Row { t, v, line });
        }
    }
    if groups.is_empty() {
        return Err(ForecastError::NoData);
    }

    let mut out = Vec::new();
    for id in order {
        let Some(cols) = groups.remove(&id) else {
            continue;
        };
        for (k, rows) in cols.into_iter().enumerate() {
            out.push(regularise(
                id.clone(),
                header[value_cols[k]].clone(),
                rows,
                opts,
                is_index,
            )?);
        }
    }
    Ok(out)
}

fn csv_error(e: &csv::Error) -> ForecastError {
    ForecastError::Csv {
        line: e.position().map_or(0, csv::Position::line),
        message: match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("expected {expected_len} fields, found {len}"),
            csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_string(),
            _ => e.to_string(),
        },
    }
}

fn regularise(
    id: Option<String>,
    column: String,
    rows: Vec<Row>,
    opts: &CsvOptions,
    is_index: bool,
) -> Result<ParsedSeries, ForecastError> {
    let prefix = series_prefix(id.as_deref());
    for w in rows.windows(2) {
        if w[1].t < w[0].t {
            return Err(ForecastError::NonMonotonic {
                series: prefix,
                line: w[1].line,
                timestamp: fmt_ts(w[1].t),
                previous: fmt_ts(w[0].t),
            });
        }
        if w[1].t == w[0].t {
            return Err(ForecastError::DuplicateTimestamp {
                series: prefix,
                line: w[1].line,
                timestamp: fmt_ts(w[1].t),
                first_line: w[0].line,
            });
        }
    }
    let ts: Vec<NaiveDateTime> = rows.iter().map(|r| r.t).collect();
    let unknown = |reason: String| ForecastError::UnknownFrequency {
        series: prefix.clone(),
        reason,
    };
    let frequency = match (opts.frequency, is_index) {
        (Some(f), _) => f,
        (None, true) => Frequency::Index,
        (None, false) => {
            let f = Frequency::infer(&ts).map_err(unknown)?;
            match f {
                // Daily prices: the days the series skips are holidays, not missing values,
                // unless a fill policy asks for the weekday grid.
                Frequency::BusinessDaily
                    if matches!(opts.fill, FillPolicy::None | FillPolicy::Drop) =>
                {
                    Frequency::TradingDays
                }
                Frequency::Intraday { seconds } | Frequency::Session { seconds, .. }
                    if opts.session.is_some() =>
                {
                    crate::frequency::infer_session(&ts, seconds, opts.session).unwrap_or(f)
                }
                other => other,
            }
        }
    };
    let missing_values = rows.iter().filter(|r| r.v.is_nan()).count();
    if frequency.is_observed_calendar() {
        return observed(id, column, rows, opts, frequency, missing_values);
    }

    // Place rows on the grid.
    let first = rows[0].t;
    let mut positions = Vec::with_capacity(rows.len());
    for r in &rows {
        let pos =
            frequency
                .steps_between(first, r.t)
                .ok_or_else(|| ForecastError::UnknownFrequency {
                    series: prefix.clone(),
                    reason: format!(
                        "line {}: timestamp {} is not on the {frequency} grid starting at {}",
                        r.line,
                        fmt_ts(r.t),
                        fmt_ts(first)
                    ),
                })?;
        positions.push(pos);
    }
    let grid_len = positions.last().map_or(0, |p| p + 1);
    let gaps = grid_len - rows.len();

    if opts.fill == FillPolicy::None {
        if let Some(r) = rows.iter().find(|r| r.v.is_nan()) {
            return Err(ForecastError::MissingValue {
                series: prefix,
                line: r.line,
                column,
                timestamp: fmt_ts(r.t),
            });
        }
        if gaps > 0 {
            let k = positions
                .windows(2)
                .position(|w| w[1] != w[0] + 1)
                .unwrap_or(0);
            return Err(ForecastError::Gap {
                series: prefix,
                count: gaps,
                first: fmt_ts(frequency.next(rows[k].t)),
                after_line: rows[k].line,
                frequency: frequency.to_string(),
            });
        }
    }

    let mut report = FillReport {
        id: id.clone(),
        column: column.clone(),
        policy: opts.fill,
        frequency,
        missing_values,
        gaps,
        filled: Vec::new(),
        dropped: Vec::new(),
    };

    if opts.fill == FillPolicy::Drop {
        let (mut t_out, mut v_out) = (Vec::new(), Vec::new());
        for r in rows {
            if r.v.is_nan() {
                report.dropped.push(r.t);
            } else {
                t_out.push(r.t);
                v_out.push(r.v);
            }
        }
        return finish(id, column, t_out, v_out, frequency, report);
    }

    if grid_len > MAX_GRID_FACTOR * rows.len() + 1000 {
        return Err(ForecastError::UnknownFrequency {
            series: prefix,
            reason: format!(
                "the {frequency} grid from {} to {} would hold {grid_len} points for {} rows; \
                 pass the frequency or use fill policy `drop`",
                fmt_ts(first),
                fmt_ts(rows[rows.len() - 1].t),
                rows.len()
            ),
        });
    }

    // Lay out the full grid; NaN where no value, remembering why.
    let mut grid_t = Vec::with_capacity(grid_len);
    let mut cur = first;
    for _ in 0..grid_len {
        grid_t.push(cur);
        cur = frequency.next(cur);
    }
    let mut grid_v = vec![f64::NAN; grid_len];
    let mut reason = vec![FillReason::Gap; grid_len];
    for (r, &p) in rows.iter().zip(&positions) {
        grid_v[p] = r.v;
        reason[p] = FillReason::MissingValue;
    }
    let known: Vec<usize> = (0..grid_len).filter(|&i| !grid_v[i].is_nan()).collect();
    let (Some(&lo), Some(&hi)) = (known.first(), known.last()) else {
        return Err(ForecastError::TooFewPoints {
            what: format!("{prefix}column `{column}`"),
            needed: 1,
            got: 0,
        });
    };
    let (start, end) = match opts.fill {
        FillPolicy::Ffill => (lo, grid_len - 1),
        FillPolicy::Linear => (lo, hi),
        _ => (0, grid_len - 1),
    };
    report.dropped.extend(grid_t[..start].iter().copied());
    report.dropped.extend(grid_t[end + 1..].iter().copied());
    let mut last_known = lo;
    for i in start..=end {
        if !grid_v[i].is_nan() {
            last_known = i;
            continue;
        }
        let v = match opts.fill {
            FillPolicy::Ffill => grid_v[last_known],
            FillPolicy::Linear => {
                let next = known
                    .get(known.partition_point(|&k| k < i))
                    .copied()
                    .unwrap_or(last_known);
                let (a, b) = (grid_v[last_known], grid_v[next]);
                a + (b - a) * (i - last_known) as f64 / (next - last_known) as f64
            }
            _ => 0.0,
        };
        grid_v[i] = v;
        report.filled.push(FilledPoint {
            timestamp: grid_t[i],
            value: v,
            reason: reason[i],
        });
    }
    finish(
        id,
        column,
        grid_t[start..=end].to_vec(),
        grid_v[start..=end].to_vec(),
        frequency,
        report,
    )
}

/// A series on an observed calendar (trading days, sessions): the rows are the grid, so there are
/// no gaps; each timestamp must still be a trading day or session bar, and missing values are
/// handled by the fill policy by position.
fn observed(
    id: Option<String>,
    column: String,
    rows: Vec<Row>,
    opts: &CsvOptions,
    frequency: Frequency,
    missing_values: usize,
) -> Result<ParsedSeries, ForecastError> {
    let prefix = series_prefix(id.as_deref());
    for r in &rows {
        let tod = r.t.time().num_seconds_from_midnight();
        let weekend = matches!(r.t.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun);
        let off = match frequency {
            Frequency::TradingDays => weekend || tod != 0,
            Frequency::Session {
                seconds,
                open,
                close,
                weekdays_only,
            } => {
                (weekdays_only && weekend)
                    || tod < open
                    || tod >= close
                    || (tod - open) % seconds.max(1) != 0
            }
            _ => false,
        };
        if off {
            return Err(ForecastError::UnknownFrequency {
                series: prefix,
                reason: format!(
                    "line {}: timestamp {} is not a bar of the {frequency} calendar",
                    r.line,
                    fmt_ts(r.t)
                ),
            });
        }
    }
    if opts.fill == FillPolicy::None
        && let Some(r) = rows.iter().find(|r| r.v.is_nan())
    {
        return Err(ForecastError::MissingValue {
            series: prefix,
            line: r.line,
            column,
            timestamp: fmt_ts(r.t),
        });
    }
    let mut report = FillReport {
        id: id.clone(),
        column: column.clone(),
        policy: opts.fill,
        frequency,
        missing_values,
        gaps: 0,
        filled: Vec::new(),
        dropped: Vec::new(),
    };
    let known: Vec<usize> = (0..rows.len()).filter(|&i| !rows[i].v.is_nan()).collect();
    let (Some(&lo), Some(&hi)) = (known.first(), known.last()) else {
        return Err(ForecastError::TooFewPoints {
            what: format!("{prefix}column `{column}`"),
            needed: 1,
            got: 0,
        });
    };
    let (start, end) = match opts.fill {
        FillPolicy::Ffill => (lo, rows.len() - 1),
        FillPolicy::Linear => (lo, hi),
        _ => (0, rows.len() - 1),
    };
    let mut t_out = Vec::with_capacity(rows.len());
    let mut v_out = Vec::with_capacity(rows.len());
    let mut last_known = lo;
    for (i, r) in rows.iter().enumerate() {
        if i < start || i > end || (opts.fill == FillPolicy::Drop && r.v.is_nan()) {
            report.dropped.push(r.t);
            continue;
        }
        let v = if r.v.is_nan() {
            let v = match opts.fill {
                FillPolicy::Ffill => rows[last_known].v,
                FillPolicy::Linear => {
                    let next = known[known.partition_point(|&k| k < i)];
                    let (a, b) = (rows[last_known].v, rows[next].v);
                    a + (b - a) * (i - last_known) as f64 / (next - last_known) as f64
                }
                _ => 0.0,
            };
            report.filled.push(FilledPoint {
                timestamp: r.t,
                value: v,
                reason: FillReason::MissingValue,
            });
            v
        } else {
            last_known = i;
            r.v
        };
        t_out.push(r.t);
        v_out.push(v);
    }
    let mut parsed = finish(id, column, t_out, v_out, frequency, report)?;
    parsed.series.holidays.clone_from(&opts.holidays);
    parsed.series.holidays.sort_unstable();
    parsed.series.holidays.dedup();
    Ok(parsed)
}

fn finish(
    id: Option<String>,
    column: String,
    timestamps: Vec<NaiveDateTime>,
    values: Vec<f64>,
    frequency: Frequency,
    report: FillReport,
) -> Result<ParsedSeries, ForecastError> {
    if values.is_empty() {
        return Err(ForecastError::TooFewPoints {
            what: format!("{}column `{column}`", series_prefix(id.as_deref())),
            needed: 1,
            got: 0,
        });
    }
    Ok(ParsedSeries {
        series: Series {
            id,
            column,
            timestamps,
            values,
            frequency,
            holidays: Vec::new(),
        },
        report,
    })
}
