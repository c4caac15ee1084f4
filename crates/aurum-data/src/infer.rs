//! The cell parser: THE way a cell string becomes a typed value, and column type inference on top
//! of it. Shared by the CSV and Parquet readers and, through [`parse_cell`], by every serving path
//! (`/v1` JSON strings, OIP BYTES tensors), so a cell means the same thing at import, at
//! training and at prediction time.
//!
//! Why one module: the same rules must hold whichever way a value arrives. A column re-read from
//! storage with a forced schema, a column a user overrode, a column typed by inference and a
//! string sent to a served model all go through the functions here, so "what counts as an
//! integer", "what counts as missing" and "what `(1,200.00)` is" are written down exactly once.
//!
//! # Rules
//!
//! * Every cell is trimmed of surrounding whitespace before anything else.
//! * A trimmed cell equal to one of [`MISSING_TOKENS`] is missing (`None` / `Value::Null`), in
//!   *every* column type, categorical and text included.
//! * **Numbers.** A number is written in one of three spellings:
//!   - *plain*: decimal or exponent notation, optional sign (`-2`, `1250.5`, `1e3`, `.5`);
//!     `inf`, `infinity` and `nan` spellings are not numbers;
//!   - *currency*: an amount with any of a currency symbol (`$ € £ ¥`) or ISO code (`USD EUR GBP
//!     JPY CHF CAD AUD`) before or after it, `,` thousands separators in groups of three
//!     (`1,250.5`; `1,5` is not a number), a leading minus (`-$1,200`, `$-1,200`) or accounting
//!     parentheses for negatives (`(1,200.00)` → −1200). No exponent;
//!   - *percent*: a plain number followed by `%`. **The number is kept as written**: `12.5%` is
//!     12.5, not 0.125, so a percent column and the same column without its `%` signs give the
//!     same model.
//! * **Dates** (no time part) in one of these layouts, which cannot be confused with each other:
//!   - ISO `2024-02-28`;
//!   - `dd-Mon-yy` / `dd-Mon-yyyy` (`28-Feb-97`, `3-Mar-2004`; English month abbreviations in any
//!     case);
//!   - US `mm/dd/yyyy` and `m/d/yyyy` (`02/28/1997`, `2/8/1997`). Day-first slashed dates need an
//!     explicit format ([`crate::ReadOptions::date_formats`]).
//!
//!   **Two-digit years** pivot at [`TWO_DIGIT_YEAR_PIVOT`]: `00`–`69` are 2000–2069 and `70`–`99`
//!   are 1970–1999, the rule of chrono's `%y`, so an explicit format with `%y` agrees with the
//!   built-in layouts.
//! * **Datetimes**: RFC 3339 (converted to UTC), `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`,
//!   optionally with fractional seconds.
//! * Inference looks at **every** non-missing value of a column and picks the first type that
//!   accepts all of them, in this order:
//!   1. boolean — `true`/`false`, `True`/`False`, `TRUE`/`FALSE` only (a 0/1 column is an
//!      integer column unless a type override says boolean);
//!   2. integer — an `i64` in plain decimal, optional sign (see zero-padded codes below);
//!   3. float — every value a plain number;
//!   4. float with format [`CellFormat::Currency`] — every value a plain or currency number (at
//!      least one in currency spelling);
//!   5. float with format [`CellFormat::Percent`] — every value a percentage;
//!   6. date — every value a date in the layouts above (format [`CellFormat::Date`] records the
//!      layout when the column used one non-ISO layout);
//!   7. datetime — every value a datetime or a date; a column mixing dates and datetimes is a
//!      datetime column (dates read as midnight);
//!   8. otherwise a string column: categorical when it has at most [`categorical_limit`]`(n)`
//!      distinct values (n = non-missing count), text otherwise.
//! * **Zero-padded codes.** A column with any value written with a leading zero before another
//!   digit (`007`, `0123`) is a column of codes, not numbers: neither integer nor any float type
//!   (`007` and `7` must not become one customer). `0`, `0.5` and `-0.25` are ordinary numbers.
//! * A column with no non-missing value is categorical (every value `None`): it carries no
//!   information, and categorical is the type that every consumer can encode without failing.
//! * When a type is *forced* (a type override, a stored schema, or a served model's feature),
//!   parsing is a little more lenient than inference: a float accepts any of the three number
//!   spellings cell by cell, an integer also accepts a whole currency amount (`$1,200`), booleans
//!   also accept `1`/`0`, `yes`/`no`, `y`/`n`, `t`/`f` in any case, and a datetime also accepts a
//!   date. A value that still does not parse is an error naming the line, column and value.
//!
//! The parsers allocate nothing: amounts are un-grouped into a small stack buffer, dates are
//! split in place.

use std::collections::HashSet;

use aurum_core::{ColumnData, ColumnType, Field, Value};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// The spellings of a missing value (compared after trimming surrounding whitespace, case-sensitive).
pub const MISSING_TOKENS: &[&str] = &[
    "", "NA", "N/A", "na", "n/a", "null", "NULL", "None", "NaN", "nan", "?",
];

/// Two-digit years below this are 20xx, the others 19xx (chrono's `%y` rule).
pub const TWO_DIGIT_YEAR_PIVOT: u32 = 70;

/// How the values of a column were spelled, when that is worth recording: it tells a person why
/// `$50,000.00` became the float 50000, and which layout a date column used. Stored in the
/// dataset profile (see [`crate::ColumnProfile::format`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CellFormat {
    /// Amounts with currency symbols or codes, thousands separators or accounting negatives.
    Currency,
    /// Percentages; the number is kept as written (`12.5%` → 12.5).
    Percent,
    /// A date layout as a chrono strftime pattern: the one non-ISO layout the column used
    /// (`%d-%b-%y`, `%d-%b-%Y`, `%m/%d/%Y`), or the explicit per-column format.
    Date { pattern: String },
}

/// Why one cell could not be read as the type asked for (see [`parse_cell`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CellError {
    /// An infinity or NaN spelling where a number was expected.
    #[error("not a finite number")]
    NonFinite,
    /// Anything else that does not parse as `expected`.
    #[error("cannot read the value as {expected}{}", expected_spelling(*expected))]
    Invalid { expected: ColumnType },
}

/// A human hint of the spellings a type accepts, for error messages (starts with a space, or
/// empty).
pub fn expected_spelling(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Date => {
            " (expected a date such as 2024-02-28, 28-Feb-24, 28-Feb-2024 or 02/28/2024)"
        }
        ColumnType::DateTime => {
            " (expected RFC 3339, `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`)"
        }
        ColumnType::Boolean => " (expected true/false, yes/no, y/n, t/f or 1/0)",
        ColumnType::Integer => " (expected a whole number that fits in 64 bits)",
        ColumnType::Float => {
            " (expected a finite number such as 1250.5, 1,250.50, $1,250.50, (1,250.50) or 12.5%)"
        }
        ColumnType::Categorical | ColumnType::Text => "",
    }
}

/// Parses one cell string as a value of type `ty`, by the forced-type rules of this module:
/// trimmed, missing tokens are `Value::Null` whatever the type, numbers in any of the three
/// spellings, dates in any built-in layout. Categorical and text cells are returned trimmed.
///
/// This is the function every serving path calls for string inputs, so that a request is read
/// exactly as the training file was.
///
/// # Errors
///
/// [`CellError::NonFinite`] for `inf`-like spellings in a numeric type, [`CellError::Invalid`]
/// for anything else that does not parse.
pub fn parse_cell(text: &str, ty: ColumnType) -> Result<Value, CellError> {
    parse_cell_with(text, ty, None)
}

/// [`parse_cell`] for a field of a stored schema: a date or datetime field with an explicit
/// format (`Field::format`, chosen at import) is read with that format only, exactly as the
/// training file was. Serving paths call this with the model's input field.
///
/// # Errors
///
/// Those of [`parse_cell`].
pub fn parse_field_cell(text: &str, field: &Field) -> Result<Value, CellError> {
    parse_cell_with(text, field.ty, field.format.as_deref())
}

fn parse_cell_with(text: &str, ty: ColumnType, format: Option<&str>) -> Result<Value, CellError> {
    let s = text.trim();
    if is_missing(s) {
        return Ok(Value::Null);
    }
    let invalid = CellError::Invalid { expected: ty };
    let parsed = match ty {
        ColumnType::Categorical | ColumnType::Text => return Ok(Value::Str(s.to_string())),
        ColumnType::Float => parse_number(s).map(|(x, _)| Value::Float(x)),
        ColumnType::Integer => parse_int_forced(s).map(Value::Integer),
        ColumnType::Boolean => parse_bool_forced(s).map(Value::Boolean),
        ColumnType::Date => match format {
            Some(f) => parse_date_with(s, f).map(Value::Date),
            None => parse_date_auto(s).map(|(d, _)| Value::Date(d)),
        },
        ColumnType::DateTime => parse_datetime_forced(s, format).map(Value::DateTime),
    };
    parsed.ok_or_else(|| {
        if ty.is_numeric() && is_non_finite_spelling(s) {
            CellError::NonFinite
        } else {
            invalid
        }
    })
}

/// `inf`, `-Infinity`, `NaN`-like spellings (`NaN` itself is a missing token).
fn is_non_finite_spelling(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    ["inf", "infinity", "nan"]
        .iter()
        .any(|t| s.eq_ignore_ascii_case(t))
}

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

/// Whether a trimmed cell is one of the [`MISSING_TOKENS`].
pub fn is_missing(trimmed: &str) -> bool {
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

/// An integer, or a whole currency amount that fits an `i64` (`$1,200` → 1200).
fn parse_int_forced(s: &str) -> Option<i64> {
    parse_int(s).or_else(|| {
        let x = parse_amount(s)?;
        // 2^63 is exactly representable; anything at or beyond it does not fit.
        (x.fract() == 0.0 && x.abs() < 9.223_372_036_854_775e18).then_some(x as i64)
    })
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

/// How a number was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spelling {
    Plain,
    Currency,
    Percent,
}

/// A number in any of the three spellings (see the module docs), with the spelling.
fn parse_number(s: &str) -> Option<(f64, Spelling)> {
    if let Some(x) = parse_float(s) {
        return Some((x, Spelling::Plain));
    }
    if let Some(body) = s.strip_suffix('%') {
        return parse_float(body.trim_end()).map(|x| (x, Spelling::Percent));
    }
    parse_amount(s).map(|x| (x, Spelling::Currency))
}

const CURRENCY_SYMBOLS: [&str; 4] = ["$", "€", "£", "¥"];
const CURRENCY_CODES: [&str; 7] = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD"];

fn strip_currency_prefix(s: &str) -> Option<&str> {
    CURRENCY_SYMBOLS
        .iter()
        .chain(&CURRENCY_CODES)
        .find_map(|c| s.strip_prefix(c))
        .map(str::trim_start)
}

fn strip_currency_suffix(s: &str) -> Option<&str> {
    CURRENCY_SYMBOLS
        .iter()
        .chain(&CURRENCY_CODES)
        .find_map(|c| s.strip_suffix(c))
        .map(str::trim_end)
}

fn strip_sign(s: &str) -> (Option<bool>, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (Some(true), s[1..].trim_start()),
        Some(b'+') => (Some(false), s[1..].trim_start()),
        _ => (None, s),
    }
}

/// A currency amount: optional currency symbol or code (before or after), `,` thousands groups,
/// a leading minus or accounting parentheses. `None` unless the whole string is one amount.
fn parse_amount(s: &str) -> Option<f64> {
    let (parens, mut rest) = match s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        Some(inner) => (true, inner.trim()),
        None => (false, s),
    };
    let (mut sign, r) = strip_sign(rest);
    rest = r;
    let prefixed = strip_currency_prefix(rest);
    if let Some(r) = prefixed {
        rest = r;
        if sign.is_none() {
            let (s2, r2) = strip_sign(rest);
            sign = s2;
            rest = r2;
        }
    }
    if prefixed.is_none()
        && let Some(r) = strip_currency_suffix(rest)
    {
        rest = r;
    }
    if parens && sign.is_some() {
        return None;
    }
    let negative = parens || sign == Some(true);
    let magnitude = parse_grouped(rest)?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Digits with optional `,` thousands groups (first group 1–3 digits, then groups of exactly 3),
/// then an optional `.` and fraction digits. Un-grouped into a stack buffer, then parsed.
fn parse_grouped(s: &str) -> Option<f64> {
    const MAX: usize = 48;
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if int.is_empty() && frac.is_none_or(str::is_empty) {
        return None;
    }
    let mut buf = [0u8; MAX];
    let mut n = 0;
    let mut push = |b: u8| -> Option<()> {
        *buf.get_mut(n)? = b;
        n += 1;
        Some(())
    };
    if !int.is_empty() {
        let mut groups = int.split(',');
        let first = groups.next()?;
        let grouped = int.contains(',');
        if first.is_empty()
            || (grouped && first.len() > 3)
            || !first.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        first.bytes().try_for_each(&mut push)?;
        for g in groups {
            if g.len() != 3 || !g.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            g.bytes().try_for_each(&mut push)?;
        }
    }
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        push(b'.')?;
        f.bytes().try_for_each(&mut push)?;
    }
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    text.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// The built-in date layouts, as bits so inference can track which ones a column used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DateLayout {
    Iso = 1,
    DayMonYy = 2,
    DayMonYyyy = 4,
    Us = 8,
}

impl DateLayout {
    fn pattern(self) -> &'static str {
        match self {
            DateLayout::Iso => "%Y-%m-%d",
            DateLayout::DayMonYy => "%d-%b-%y",
            DateLayout::DayMonYyyy => "%d-%b-%Y",
            DateLayout::Us => "%m/%d/%Y",
        }
    }

    fn from_bits(bits: u8) -> Option<DateLayout> {
        [
            DateLayout::Iso,
            DateLayout::DayMonYy,
            DateLayout::DayMonYyyy,
            DateLayout::Us,
        ]
        .into_iter()
        .find(|l| *l as u8 == bits)
    }
}

fn looks_like_date_prefix(s: &[u8]) -> bool {
    s.len() >= 10 && s[4] == b'-' && s[7] == b'-' && s[..4].iter().all(u8::is_ascii_digit)
}

fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 || !looks_like_date_prefix(s.as_bytes()) {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// 1–`max` ASCII digits as a number.
fn digits(s: &str, max: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn month_abbrev(s: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    MONTHS
        .iter()
        .position(|m| s.eq_ignore_ascii_case(m))
        .map(|i| i as u32 + 1)
}

/// A two- or four-digit year; two digits pivot at [`TWO_DIGIT_YEAR_PIVOT`].
fn year(s: &str) -> Option<(i32, bool)> {
    let y = digits(s, 4)?;
    match s.len() {
        2 if y < TWO_DIGIT_YEAR_PIVOT => Some((2000 + y as i32, true)),
        2 => Some((1900 + y as i32, true)),
        4 => Some((y as i32, false)),
        _ => None,
    }
}

/// A date in any built-in layout, with the layout.
fn parse_date_auto(s: &str) -> Option<(NaiveDate, DateLayout)> {
    if let Some(d) = parse_iso_date(s) {
        return Some((d, DateLayout::Iso));
    }
    if s.len() > 11 {
        return None;
    }
    if s.contains('/') {
        let mut parts = s.split('/');
        let (m, d, y) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || y.len() != 4 {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(digits(y, 4)? as i32, digits(m, 2)?, digits(d, 2)?)?;
        return Some((date, DateLayout::Us));
    }
    let mut parts = s.split('-');
    let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (y, two_digit) = year(y)?;
    let date = NaiveDate::from_ymd_opt(y, month_abbrev(m)?, digits(d, 2)?)?;
    let layout = if two_digit {
        DateLayout::DayMonYy
    } else {
        DateLayout::DayMonYyyy
    };
    Some((date, layout))
}

/// A date in an explicit chrono format.
fn parse_date_with(s: &str, format: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, format).ok()
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

/// A datetime, or a date at midnight; with an explicit format, that format only (a datetime
/// format, or a date format read as midnight).
fn parse_datetime_forced(s: &str, format: Option<&str>) -> Option<NaiveDateTime> {
    match format {
        Some(f) => NaiveDateTime::parse_from_str(s, f)
            .ok()
            .or_else(|| parse_date_with(s, f).and_then(|d| d.and_hms_opt(0, 0, 0))),
        None => parse_datetime(s)
            .or_else(|| parse_date_auto(s).and_then(|(d, _)| d.and_hms_opt(0, 0, 0))),
    }
}

/// Whether `format` is a chrono strftime format that can be used for parsing.
pub(crate) fn valid_format(format: &str) -> bool {
    use chrono::format::{Item, StrftimeItems};
    !format.is_empty() && StrftimeItems::new(format).all(|i| !matches!(i, Item::Error))
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

/// Infers the type of a column of trimmed cells, and the format worth recording (see the module
/// docs for the rules).
pub(crate) fn infer(col: &RawColumn) -> (ColumnType, Option<CellFormat>) {
    let (mut boolean, mut integer, mut float) = (true, true, true);
    let (mut amount, mut percent, mut date, mut datetime) = (true, true, true, true);
    let mut any_currency = false;
    let mut layouts = 0u8;
    let mut any = false;
    for s in col.iter().flatten() {
        any = true;
        if boolean && parse_bool_strict(s).is_none() {
            boolean = false;
        }
        if (integer || float || amount || percent) && zero_padded(s) {
            // An identifier (`007`, an account or branch code): as a number `007` and `7`
            // would be one customer.
            (integer, float, amount, percent) = (false, false, false, false);
        }
        let is_int = integer && parse_int(s).is_some();
        integer = is_int;
        if (float || amount || percent) && !is_int {
            match parse_number(s).map(|(_, spelling)| spelling) {
                Some(Spelling::Plain) => percent = false,
                Some(Spelling::Currency) => {
                    float = false;
                    percent = false;
                    any_currency = true;
                }
                Some(Spelling::Percent) => {
                    float = false;
                    amount = false;
                }
                None => (float, amount, percent) = (false, false, false),
            }
        } else if is_int {
            percent = false;
        }
        if date || datetime {
            let parsed = parse_date_auto(s);
            if let Some((_, layout)) = parsed {
                layouts |= layout as u8;
            }
            date &= parsed.is_some();
            datetime &= parsed.is_some() || parse_datetime(s).is_some();
        }
        if !(boolean || integer || float || amount || percent || date || datetime) {
            break;
        }
    }
    if !any {
        return (ColumnType::Categorical, None);
    }
    if boolean {
        (ColumnType::Boolean, None)
    } else if integer {
        (ColumnType::Integer, None)
    } else if float {
        (ColumnType::Float, None)
    } else if amount && any_currency {
        (ColumnType::Float, Some(CellFormat::Currency))
    } else if percent {
        (ColumnType::Float, Some(CellFormat::Percent))
    } else if date {
        let format = DateLayout::from_bits(layouts)
            .filter(|l| *l != DateLayout::Iso)
            .map(|l| CellFormat::Date {
                pattern: l.pattern().to_string(),
            });
        (ColumnType::Date, format)
    } else if datetime {
        (ColumnType::DateTime, None)
    } else {
        (infer_string(col.iter().flatten()), None)
    }
}

/// Whether `s` is written with a leading zero before another digit (`007`, `-01`, `0012.5`):
/// the spelling of codes and identifiers, not of quantities (`0`, `0.5` and `-0.25` are not).
fn zero_padded(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    digits.len() > 1 && digits[0] == b'0' && digits[1].is_ascii_digit()
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

/// Converts a column of trimmed cells to `ty`, by the forced-type rules. `date_format` (an
/// explicit chrono format) applies to date and datetime columns only.
///
/// On failure returns the 0-based row and the offending cell, for the caller to turn into an
/// error with its own notion of location.
pub(crate) fn convert(
    col: &RawColumn,
    ty: ColumnType,
    date_format: Option<&str>,
) -> Result<ColumnData, (usize, String)> {
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
        ColumnType::Float => ColumnData::Float(typed(col, |s| parse_number(s).map(|(x, _)| x))?),
        ColumnType::Integer => ColumnData::Integer(typed(col, parse_int_forced)?),
        ColumnType::Boolean => ColumnData::Boolean(typed(col, parse_bool_forced)?),
        ColumnType::Date => ColumnData::Date(match date_format {
            Some(f) => typed(col, |s| parse_date_with(s, f))?,
            None => typed(col, |s| parse_date_auto(s).map(|(d, _)| d))?,
        }),
        ColumnType::DateTime => {
            ColumnData::DateTime(typed(col, |s| parse_datetime_forced(s, date_format))?)
        }
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

    fn ty(c: &RawColumn) -> ColumnType {
        infer(c).0
    }

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
        assert_eq!(ty(&c), ColumnType::Integer);
    }

    #[test]
    fn zero_one_is_integer_not_boolean() {
        assert_eq!(ty(&raw(&["0", "1", "1"])), ColumnType::Integer);
        assert_eq!(ty(&raw(&["true", "FALSE", "True"])), ColumnType::Boolean);
        let forced = convert(&raw(&["0", "1", "yes", "N"]), ColumnType::Boolean, None).unwrap();
        assert_eq!(
            forced,
            ColumnData::Boolean(vec![Some(false), Some(true), Some(true), Some(false)])
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(ty(&raw(&["1", "-2", "+3"])), ColumnType::Integer);
        // Zero-padded codes are not numbers: `007` and `7` stay two values.
        for codes in [&["007", "7", "12"][..], &["0123", "0456"], &["01.5", "2"]] {
            let t = ty(&raw(codes));
            assert!(
                matches!(t, ColumnType::Categorical | ColumnType::Text),
                "{codes:?}: {t:?}"
            );
        }
        assert_eq!(ty(&raw(&["0", "10", "-0"])), ColumnType::Integer);
        assert_eq!(ty(&raw(&["0.5", "-0.25", "3"])), ColumnType::Float);
        // Dates keep their zero-padded days and months.
        assert_eq!(ty(&raw(&["02/28/1997", "01/02/2003"])), ColumnType::Date);
        assert_eq!(ty(&raw(&["1", "2.5", "1e3", ".5"])), ColumnType::Float);
        assert_eq!(ty(&raw(&["1", "inf"])), ColumnType::Categorical);
        assert_eq!(ty(&raw(&["1", "Infinity"])), ColumnType::Categorical);
        assert_eq!(
            ty(&raw(&["1e400"])),
            ColumnType::Categorical,
            "overflow is not finite"
        );
        // Too big for i64, still a number.
        assert_eq!(ty(&raw(&["99999999999999999999"])), ColumnType::Float);
    }

    #[test]
    fn dates_and_datetimes() {
        assert_eq!(ty(&raw(&["2024-01-31", "1999-12-01"])), ColumnType::Date);
        assert_eq!(ty(&raw(&["2024-02-30"])), ColumnType::Categorical);
        assert_eq!(
            ty(&raw(&[
                "2024-01-31 10:00:00",
                "2024-01-31T10:00:00.25",
                "2024-01-31T10:00:00+02:00"
            ])),
            ColumnType::DateTime
        );
        assert_eq!(
            ty(&raw(&["2024-01-31", "2024-01-31 10:00:00"])),
            ColumnType::DateTime
        );
        let ColumnData::DateTime(v) = convert(
            &raw(&["2024-01-31T10:00:00+02:00", "2024-01-31"]),
            ColumnType::DateTime,
            None,
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
        assert_eq!(ty(&raw(&refs)), ColumnType::Categorical);
        let unique: Vec<String> = (0..1000).map(|i| format!("note number {i}")).collect();
        let refs: Vec<&str> = unique.iter().map(String::as_str).collect();
        assert_eq!(ty(&raw(&refs)), ColumnType::Text);
        assert_eq!(
            ty(&raw(&["", "NA"])),
            ColumnType::Categorical,
            "all missing"
        );
    }

    #[test]
    fn convert_reports_the_bad_row() {
        assert_eq!(
            convert(&raw(&["1", "", "x"]), ColumnType::Integer, None),
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

    fn float(s: &str) -> Option<f64> {
        match parse_cell(s, ColumnType::Float) {
            Ok(Value::Float(x)) => Some(x),
            _ => None,
        }
    }

    fn date(s: &str) -> Option<String> {
        match parse_cell(s, ColumnType::Date) {
            Ok(Value::Date(d)) => Some(d.to_string()),
            _ => None,
        }
    }

    #[test]
    fn currency_amounts() {
        assert_eq!(float("$50,000.00"), Some(50_000.0));
        assert_eq!(float("1,250.5"), Some(1250.5));
        assert_eq!(float("(1,200.00)"), Some(-1200.0));
        assert_eq!(float("($1,200.00)"), Some(-1200.0));
        assert_eq!(float("-$1,200"), Some(-1200.0));
        assert_eq!(float("$-1,200"), Some(-1200.0));
        assert_eq!(float("€ 12"), Some(12.0));
        assert_eq!(float("12 €"), Some(12.0));
        assert_eq!(float("£0.50"), Some(0.5));
        assert_eq!(float("¥1,000,000"), Some(1e6));
        assert_eq!(float("USD 1,000"), Some(1000.0));
        assert_eq!(float("1000 EUR"), Some(1000.0));
        assert_eq!(float("  $7  "), Some(7.0));
        for bad in [
            "1,5",
            "1,2345",
            "12,34.5",
            ",123",
            "1,",
            "$",
            "$$5",
            "(5",
            "-(5)",
            "(-5)",
            "$5.",
            "1.2.3",
            "$1e3",
            "USD",
            "$ 1 000",
            "1,000.00.00",
            "EUR5USD",
        ] {
            assert_eq!(float(bad), None, "{bad}");
        }
    }

    #[test]
    fn percentages_keep_the_number_as_written() {
        assert_eq!(float("12.5%"), Some(12.5));
        assert_eq!(float("-3%"), Some(-3.0));
        assert_eq!(float("0.5 %"), Some(0.5));
        assert_eq!(float("%"), None);
        assert_eq!(float("abc%"), None);
    }

    #[test]
    fn date_layouts_and_pivot() {
        assert_eq!(date("2024-02-28").as_deref(), Some("2024-02-28"));
        assert_eq!(date("28-Feb-97").as_deref(), Some("1997-02-28"));
        assert_eq!(date("28-feb-69").as_deref(), Some("2069-02-28"));
        assert_eq!(date("1-JAN-70").as_deref(), Some("1970-01-01"));
        assert_eq!(date("01-Jan-00").as_deref(), Some("2000-01-01"));
        assert_eq!(date("3-Mar-2004").as_deref(), Some("2004-03-03"));
        assert_eq!(date("02/28/1997").as_deref(), Some("1997-02-28"));
        assert_eq!(date("2/8/1997").as_deref(), Some("1997-02-08"));
        for bad in [
            "28/02/1997",
            "29-Feb-97",
            "28-Fbr-97",
            "28-Feb-997",
            "2/8/97",
            "1997/02/28",
            "28-02-97",
        ] {
            assert_eq!(date(bad), None, "{bad}");
        }
        // chrono's %y agrees with the built-in pivot.
        for y in ["00", "42", "69", "70", "99"] {
            let s = format!("01-Jan-{y}");
            assert_eq!(
                date(&s),
                parse_date_with(&s, "%d-%b-%y").map(|d| d.to_string()),
                "{s}"
            );
        }
    }

    #[test]
    fn parse_cell_missing_is_missing_in_every_type() {
        for ty in ColumnType::ALL {
            for token in MISSING_TOKENS {
                assert_eq!(parse_cell(token, ty), Ok(Value::Null), "{ty} {token:?}");
            }
            assert_eq!(parse_cell("  NA ", ty), Ok(Value::Null));
        }
        assert_eq!(
            parse_cell(" car ", ColumnType::Categorical),
            Ok(Value::Str("car".into()))
        );
        assert_eq!(
            parse_cell("inf", ColumnType::Float),
            Err(CellError::NonFinite)
        );
        assert_eq!(
            parse_cell("-Infinity", ColumnType::Integer),
            Err(CellError::NonFinite)
        );
        assert_eq!(
            parse_cell("abc", ColumnType::Float),
            Err(CellError::Invalid {
                expected: ColumnType::Float
            })
        );
        assert_eq!(
            parse_cell("$1,200", ColumnType::Integer),
            Ok(Value::Integer(1200))
        );
        assert_eq!(
            parse_cell("yes", ColumnType::Boolean),
            Ok(Value::Boolean(true))
        );
        assert_eq!(
            parse_cell("28-Feb-97", ColumnType::DateTime),
            Ok(Value::DateTime(
                NaiveDate::from_ymd_opt(1997, 2, 28)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
            ))
        );
    }

    #[test]
    fn inference_is_per_column_and_records_the_format() {
        assert_eq!(
            infer(&raw(&["$50,000.00", "(1,200.00)", "950", ""])),
            (ColumnType::Float, Some(CellFormat::Currency))
        );
        assert_eq!(
            infer(&raw(&["12.5%", "3%", "NA"])),
            (ColumnType::Float, Some(CellFormat::Percent))
        );
        // Mixed spellings are not one number column.
        assert_eq!(ty(&raw(&["12.5%", "$3"])), ColumnType::Categorical);
        assert_eq!(ty(&raw(&["12.5%", "3"])), ColumnType::Categorical);
        assert_eq!(ty(&raw(&["$3", "abc"])), ColumnType::Categorical);
        assert_eq!(
            infer(&raw(&["28-Feb-97", "1-Mar-05"])),
            (
                ColumnType::Date,
                Some(CellFormat::Date {
                    pattern: "%d-%b-%y".into()
                })
            )
        );
        assert_eq!(
            infer(&raw(&["02/28/1997", "2/8/1997"])),
            (
                ColumnType::Date,
                Some(CellFormat::Date {
                    pattern: "%m/%d/%Y".into()
                })
            )
        );
        assert_eq!(
            infer(&raw(&["2024-01-01", "02/28/1997"])),
            (ColumnType::Date, None)
        );
        assert_eq!(
            infer(&raw(&["2024-01-01"])),
            (ColumnType::Date, None),
            "ISO is not worth recording"
        );
        let ColumnData::Float(v) = convert(
            &raw(&["$50,000.00", "(1,200.00)", "NA", "1,250.5"]),
            ColumnType::Float,
            None,
        )
        .unwrap() else {
            panic!("not float")
        };
        assert_eq!(v, [Some(50_000.0), Some(-1200.0), None, Some(1250.5)]);
    }

    #[test]
    fn explicit_date_format() {
        assert!(valid_format("%d.%m.%Y"));
        assert!(!valid_format("%Q"));
        assert!(!valid_format(""));
        let ColumnData::Date(v) = convert(
            &raw(&["28.02.1997", ""]),
            ColumnType::Date,
            Some("%d.%m.%Y"),
        )
        .unwrap() else {
            panic!("not date")
        };
        assert_eq!(v, [NaiveDate::from_ymd_opt(1997, 2, 28), None]);
        assert_eq!(
            convert(&raw(&["1997-02-28"]), ColumnType::Date, Some("%d.%m.%Y")),
            Err((0, "1997-02-28".into()))
        );
    }

    #[test]
    fn field_cells_use_the_fields_date_format() {
        let field = Field::new("d", ColumnType::Date).with_format("%d.%m.%Y");
        let day = NaiveDate::from_ymd_opt(1997, 2, 28).unwrap();
        assert_eq!(
            parse_field_cell(" 28.02.1997 ", &field),
            Ok(Value::Date(day))
        );
        assert_eq!(parse_field_cell("NA", &field), Ok(Value::Null));
        // With a format, that format only (as the training file was read).
        assert!(parse_field_cell("1997-02-28", &field).is_err());
        let plain = Field::new("d", ColumnType::Date);
        assert_eq!(parse_field_cell("28-Feb-97", &plain), Ok(Value::Date(day)));
        assert!(parse_field_cell("28.02.1997", &plain).is_err());
        let dt = Field::new("t", ColumnType::DateTime).with_format("%d.%m.%Y");
        assert_eq!(
            parse_field_cell("28.02.1997", &dt),
            Ok(Value::DateTime(day.and_hms_opt(0, 0, 0).unwrap()))
        );
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        fn grouped(n: u64) -> String {
            let digits = n.to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            out
        }

        proptest! {
            #[test]
            fn never_panics(s in "\\PC{0,40}") {
                for ty in ColumnType::ALL {
                    let _ = parse_cell(&s, ty);
                }
                let mut c = RawColumn::with_capacity(1);
                c.push(Some(s.trim()));
                let (ty, _) = infer(&c);
                prop_assert!(convert(&c, ty, None).is_ok(), "inferred {ty} must convert");
            }

            #[test]
            fn never_panics_on_number_like_text(s in "[-+()$€£¥%,.0-9 USDEUR]{0,24}") {
                let _ = parse_cell(&s, ColumnType::Float);
                let _ = parse_cell(&s, ColumnType::Integer);
                let mut c = RawColumn::with_capacity(1);
                c.push(Some(s.trim()));
                let (ty, _) = infer(&c);
                prop_assert!(convert(&c, ty, None).is_ok());
            }

            #[test]
            fn currency_round_trips(units in 0u64..10_000_000_000, cents in 0u32..100,
                                    symbol in prop::sample::select(vec!["$", "€", "£", "¥", "USD ", ""]),
                                    negative in any::<bool>(), parens in any::<bool>()) {
                let body = format!("{symbol}{}.{cents:02}", grouped(units));
                let text = match (negative, parens) {
                    (true, true) => format!("({body})"),
                    (true, false) => format!("-{body}"),
                    (false, _) => body,
                };
                let expected = (units as f64 * 100.0 + f64::from(cents)) / 100.0;
                let expected = if negative { -expected } else { expected };
                let got = parse_cell(&text, ColumnType::Float);
                prop_assert_eq!(got, Ok(Value::Float(expected)), "{}", text);
            }

            #[test]
            fn percent_round_trips(x in -1000.0f64..1000.0) {
                let text = format!("{x}%");
                prop_assert_eq!(parse_cell(&text, ColumnType::Float), Ok(Value::Float(x)));
            }

            #[test]
            fn dates_round_trip(days in 0i64..(200 * 366)) {
                let d = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(days);
                let mut layouts = vec!["%Y-%m-%d", "%d-%b-%Y", "%m/%d/%Y", "%-m/%-d/%Y"];
                if (1970..2070).contains(&chrono::Datelike::year(&d)) {
                    layouts.push("%d-%b-%y");
                }
                for layout in layouts {
                    let text = d.format(layout).to_string();
                    prop_assert_eq!(parse_cell(&text, ColumnType::Date), Ok(Value::Date(d)), "{}", text);
                }
            }
        }
    }
}
