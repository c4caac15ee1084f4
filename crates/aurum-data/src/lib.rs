//! Dataset ingest (CSV, Parquet), schema inference, column profiles, binary targets and splits.
//!
//! This crate is where untrusted bytes become an `aurum_core::Table`. Everything above it —
//! models, the registry, the service — may assume a table is well-formed and typed, because every
//! way a file can be wrong is caught here and reported as a [`DataError`] that names the line,
//! column and value involved. A person uploading a 10 000-row CSV should be able to fix their file
//! from the error message alone.
//!
//! The pieces, in the order a training run uses them:
//!
//! * [`read_csv`], [`read_parquet`] and [`read_auto`] (which sniffs the [`Format`]) read bytes with
//!   [`ReadOptions`] into a `Table`. Types are inferred unless overridden; a stored dataset is
//!   re-read with its stored schema so it gets exactly the same types. The inference rules
//!   (missing-value tokens [`MISSING_TOKENS`], categorical versus text by [`categorical_limit`])
//!   are documented once, in the `infer` module, and shared by both formats. [`parse_cell`] is
//!   the same cell parser for one string, for the serving paths: a request cell means what the
//!   same text meant in the training file.
//! * [`profile`] summarises each column and flags the usual modelling hazards
//!   ([`ColumnWarning`]); the profile is stored as JSON in the registry.
//! * [`binary_target`] encodes the target column as 0/1 with a documented positive-class rule.
//! * [`stratified_split`], [`random_split`] and [`time_ordered_split`] produce reproducible
//!   train/test row indices.
//!
//! Deliberately absent: file-system and network IO (callers hand over bytes, so the registry
//! decides where data lives), async, logging, and any wire format other than the stored profile.

mod csv_read;
mod error;
mod infer;
pub mod json;
mod options;
mod parquet_guard;
mod parquet_read;
mod profile;
mod split;
pub mod synth;
mod target;

pub use csv_read::{read_csv, read_csv_with_formats};
pub use error::{ColumnRef, DataError, Location};
pub use infer::{
    CellError, CellFormat, MISSING_TOKENS, TWO_DIGIT_YEAR_PIVOT, categorical_limit,
    expected_spelling, is_missing, parse_cell, parse_field_cell,
};
pub use options::{Format, ReadOptions};
pub use parquet_read::{ParquetBatches, check_column_names, read_parquet};
pub use profile::{
    ColumnProfile, ColumnWarning, DatasetProfile, NumericSummary, TOP_VALUES, profile,
    profile_with_formats,
};
pub use split::{Split, random_split, stratified_split, time_ordered_split};
pub use target::{MAX_CLASSES, POSITIVE_LABELS, binary_target, class_target, numeric_target};

use std::collections::BTreeMap;

use aurum_core::Table;

/// The [`CellFormat`] of each column that has one, by column name.
pub type ColumnFormats = BTreeMap<String, CellFormat>;

/// Reads `bytes` as Parquet if they start with the `PAR1` magic, as CSV otherwise.
///
/// # Errors
///
/// Those of [`read_parquet`] or [`read_csv`].
pub fn read_auto(bytes: &[u8], opts: &ReadOptions) -> Result<Table, DataError> {
    match Format::detect(bytes) {
        Format::Csv => read_csv(bytes, opts),
        Format::Parquet => read_parquet(bytes, opts),
    }
}

/// [`read_auto`], also returning the [`CellFormat`]s worth recording in the profile. Parquet
/// columns record only an explicit date format.
///
/// # Errors
///
/// Those of [`read_parquet`] or [`read_csv`].
pub fn read_auto_with_formats(
    bytes: &[u8],
    opts: &ReadOptions,
) -> Result<(Table, ColumnFormats), DataError> {
    match Format::detect(bytes) {
        Format::Csv => read_csv_with_formats(bytes, opts),
        Format::Parquet => {
            let table = read_parquet(bytes, opts)?;
            let formats = opts
                .date_formats
                .iter()
                .map(|(name, pattern)| {
                    let format = CellFormat::Date {
                        pattern: pattern.clone(),
                    };
                    (name.clone(), format)
                })
                .collect();
            Ok((table, formats))
        }
    }
}
