//! Parquet ingest through the Arrow reader.
//!
//! Why Arrow and not the low-level Parquet record API: the Arrow reader handles every physical
//! encoding, logical type and compression we enable, and hands back typed columns that map almost
//! one-to-one onto [`ColumnData`]. The mapping is deliberately closed — a type with no faithful
//! aurum equivalent (binary, lists, structs, times of day, durations) is an
//! [`DataError::UnsupportedType`] error naming the column, never a silent string conversion.
//!
//! | Arrow type | aurum type |
//! |---|---|
//! | `Int8`…`Int64`, `UInt8`…`UInt64` | integer (a `UInt64` above `i64::MAX` is an error) |
//! | `Float16`/`32`/`64`, `Decimal*` | float (`NaN` is missing; ±∞ is an error) |
//! | `Boolean` | boolean |
//! | `Utf8`, `LargeUtf8`, `Utf8View`, dictionary of those | by the cell parser, as CSV cells: numbers (currency, percent), dates, else categorical or text by [`crate::categorical_limit`] |
//! | `Date32`, `Date64` | date |
//! | `Timestamp` (any unit; a time zone is converted to UTC) | datetime |
//! | `Null` | categorical, all missing |
//!
//! The decoder runs under `catch_unwind`: Parquet is an untrusted binary input, and a decoder
//! panic on a malformed file must become a [`DataError::Parquet`] for the caller, not unwind into
//! (and take down) whatever thread the server was using.
//! Before decoding, the `parquet_guard` module walks every page header with a bounded reader and
//! checks every dictionary page against the number of values it declares: the decoder trusts both,
//! and a small malicious file could otherwise cost minutes of CPU or gigabytes of memory. After
//! decoding, every array is fully validated (in release builds the decoder skips its own UTF-8
//! check on string columns).
//!
//! Parquet string columns go through the same cell parser as CSV cells (trimmed, missing-value
//! tokens, amounts, percentages, dates): files exported by spreadsheets and finance systems carry
//! `"$50,000.00"` and `"NA"` as strings whatever the container, and serving reads string inputs
//! with the same parser, so a Parquet dataset and its CSV twin train the same model. Errors name a
//! 1-based data *row*, as a Parquet file has no lines.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::{CastOptions, can_cast_types, cast_with_options, concat};
use arrow::datatypes::{
    ArrowTimestampType, DataType, Date32Type, Float64Type, Int64Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt64Type,
};
use aurum_core::{Column, ColumnData, ColumnType, Table};
use chrono::NaiveDateTime;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{ColumnRef, Location};
use crate::infer::{self, RawColumn};
use crate::{DataError, ReadOptions};

/// Reads a Parquet file into a typed [`Table`] (see the module docs for the type mapping).
///
/// [`ReadOptions::overrides`] and [`ReadOptions::schema`] apply as for CSV: a column whose
/// forced type differs from its Arrow type is converted value by value with the CSV parsing
/// rules, and a value that does not convert is a [`DataError::BadValue`] naming the row.
///
/// # Errors
///
/// [`DataError::Parquet`] for a corrupt or unreadable file, [`DataError::UnsupportedType`],
/// [`DataError::BadValue`], [`DataError::NoDataRows`], [`DataError::EmptyHeader`],
/// [`DataError::DuplicateHeader`], and the option errors.
pub fn read_parquet(bytes: &[u8], opts: &ReadOptions) -> Result<Table, DataError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(bytes, opts))).unwrap_or_else(
        |_| {
            Err(DataError::Parquet {
                message: "the decoder failed on malformed data".to_string(),
            })
        },
    )
}

fn read(bytes: &[u8], opts: &ReadOptions) -> Result<Table, DataError> {
    let data = bytes::Bytes::copy_from_slice(bytes);
    let builder = ParquetRecordBatchReaderBuilder::try_new(data.clone()).map_err(parquet_error)?;
    crate::parquet_guard::check(&data, builder.metadata())?;
    let schema = builder.schema().clone();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    if names.is_empty() {
        return Err(DataError::EmptyFile);
    }
    check_column_names(&names, None)?;
    let forced = opts.forced_types(&names)?;

    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(parquet_error)?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DataError::Parquet {
            message: e.to_string(),
        })?;
    crate::parquet_guard::check_arrays(&batches, &names)?;
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Err(DataError::NoDataRows);
    }

    let mut columns = Vec::with_capacity(names.len());
    for (i, (name, forced)) in names.into_iter().zip(forced).enumerate() {
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
        let array = concat(&parts).map_err(internal)?;
        let column = ColumnRef::new(&name, i);
        let date_format = opts.date_format(&name);
        let data = if is_string(array.data_type()) {
            string_column(&array, &column, forced, date_format)?
        } else {
            let natural = convert_array(&array, &column)?;
            match forced {
                Some(ty) if ty != natural.column_type() => {
                    coerce(natural, ty, &column, date_format)?
                }
                _ => natural,
            }
        };
        columns.push(Column { name, data });
    }
    Table::new(columns).map_err(internal)
}

fn parquet_error(e: parquet::errors::ParquetError) -> DataError {
    DataError::Parquet {
        message: e.to_string(),
    }
}

fn internal(e: impl std::fmt::Display) -> DataError {
    DataError::Internal {
        message: e.to_string(),
    }
}

/// The header rules of every tabular input: each column has a name, and no name repeats.
/// `line` is the header's line in a text file (`None` for Parquet).
pub fn check_column_names(names: &[String], line: Option<u64>) -> Result<(), DataError> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(DataError::EmptyHeader {
                line,
                position: i + 1,
            });
        }
        if let Some(first) = seen.insert(name, i) {
            return Err(DataError::DuplicateHeader {
                line,
                name: name.clone(),
                first: first + 1,
                second: i + 1,
            });
        }
    }
    Ok(())
}

fn unsupported(array: &dyn Array, column: &ColumnRef) -> DataError {
    DataError::UnsupportedType {
        column: column.clone(),
        data_type: array.data_type().to_string(),
    }
}

/// Casts with overflow checking; a cast Arrow cannot do at all is an unsupported type.
fn cast_to(array: &dyn Array, to: &DataType, column: &ColumnRef) -> Result<ArrayRef, DataError> {
    if !can_cast_types(array.data_type(), to) {
        return Err(unsupported(array, column));
    }
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(array, to, &options).map_err(|e| DataError::Internal {
        message: format!("casting {column} from {} to {to}: {e}", array.data_type()),
    })
}

fn bad_value(row: usize, column: &ColumnRef, value: String, expected: ColumnType) -> DataError {
    DataError::BadValue {
        location: Location::Row(row as u64 + 1),
        column: column.clone(),
        value: infer::excerpt(&value),
        expected,
    }
}

fn downcast_failed(column: &ColumnRef) -> DataError {
    DataError::Internal {
        message: format!("{column}: unexpected Arrow array layout"),
    }
}

fn convert_array(array: &ArrayRef, column: &ColumnRef) -> Result<ColumnData, DataError> {
    let n = array.len();
    Ok(match array.data_type() {
        DataType::Null => ColumnData::Categorical(vec![None; n]),
        DataType::Boolean => {
            let a = array
                .as_boolean_opt()
                .ok_or_else(|| downcast_failed(column))?;
            ColumnData::Boolean(a.iter().collect())
        }
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => {
            let c = cast_to(array, &DataType::Int64, column)?;
            let a = c
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| downcast_failed(column))?;
            ColumnData::Integer(a.iter().collect())
        }
        DataType::UInt64 => {
            let a = array
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| downcast_failed(column))?;
            let values = a
                .iter()
                .enumerate()
                .map(|(row, v)| match v {
                    None => Ok(None),
                    Some(v) => i64::try_from(v)
                        .map(Some)
                        .map_err(|_| bad_value(row, column, v.to_string(), ColumnType::Integer)),
                })
                .collect::<Result<_, _>>()?;
            ColumnData::Integer(values)
        }
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => {
            let c = cast_to(array, &DataType::Float64, column)?;
            let a = c
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| downcast_failed(column))?;
            let values = a
                .iter()
                .enumerate()
                .map(|(row, v)| match v {
                    Some(x) if x.is_nan() => Ok(None),
                    Some(x) if x.is_infinite() => {
                        Err(bad_value(row, column, x.to_string(), ColumnType::Float))
                    }
                    v => Ok(v),
                })
                .collect::<Result<_, _>>()?;
            ColumnData::Float(values)
        }
        ty if is_string(ty) => string_column(array, column, None, None)?,
        DataType::Date32 | DataType::Date64 => {
            let c = cast_to(array, &DataType::Date32, column)?;
            let a = c
                .as_primitive_opt::<Date32Type>()
                .ok_or_else(|| downcast_failed(column))?;
            let values = (0..a.len())
                .map(|row| {
                    if a.is_null(row) {
                        return Ok(None);
                    }
                    a.value_as_date(row).map(Some).ok_or_else(|| {
                        bad_value(row, column, a.value(row).to_string(), ColumnType::Date)
                    })
                })
                .collect::<Result<_, _>>()?;
            ColumnData::Date(values)
        }
        DataType::Timestamp(unit, _) => ColumnData::DateTime(match unit {
            TimeUnit::Second => timestamps::<TimestampSecondType>(array, column)?,
            TimeUnit::Millisecond => timestamps::<TimestampMillisecondType>(array, column)?,
            TimeUnit::Microsecond => timestamps::<TimestampMicrosecondType>(array, column)?,
            TimeUnit::Nanosecond => timestamps::<TimestampNanosecondType>(array, column)?,
        }),
        _ => return Err(unsupported(array, column)),
    })
}

fn is_string(ty: &DataType) -> bool {
    match ty {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_string(value),
        _ => false,
    }
}

/// A string column through the cell parser: the forced type or the inferred one.
fn string_column(
    array: &dyn Array,
    column: &ColumnRef,
    forced: Option<ColumnType>,
    date_format: Option<&str>,
) -> Result<ColumnData, DataError> {
    let c = cast_to(array, &DataType::LargeUtf8, column)?;
    let a = c
        .as_string_opt::<i64>()
        .ok_or_else(|| downcast_failed(column))?;
    let mut raw = RawColumn::with_capacity(a.len());
    for v in a.iter() {
        raw.push(v.map(str::trim));
    }
    let ty = forced.unwrap_or_else(|| infer::infer(&raw).0);
    infer::convert(&raw, ty, date_format).map_err(|(row, value)| bad_value(row, column, value, ty))
}

/// Timestamps as UTC wall-clock time (the stored value is UTC whatever the time zone says).
fn timestamps<T: ArrowTimestampType>(
    array: &dyn Array,
    column: &ColumnRef,
) -> Result<Vec<Option<NaiveDateTime>>, DataError> {
    let a = array
        .as_primitive_opt::<T>()
        .ok_or_else(|| downcast_failed(column))?;
    (0..a.len())
        .map(|row| {
            if a.is_null(row) {
                return Ok(None);
            }
            a.value_as_datetime(row).map(Some).ok_or_else(|| {
                bad_value(row, column, a.value(row).to_string(), ColumnType::DateTime)
            })
        })
        .collect()
}

/// Converts a column to a forced type: string kinds just relabel, anything else goes through
/// the text parsers so that Parquet and CSV agree on what converts.
fn coerce(
    data: ColumnData,
    ty: ColumnType,
    column: &ColumnRef,
    date_format: Option<&str>,
) -> Result<ColumnData, DataError> {
    match (data, ty) {
        (ColumnData::Categorical(v) | ColumnData::Text(v), ColumnType::Text) => {
            Ok(ColumnData::Text(v))
        }
        (ColumnData::Categorical(v) | ColumnData::Text(v), ColumnType::Categorical) => {
            Ok(ColumnData::Categorical(v))
        }
        (data, ty) => {
            let mut raw = RawColumn::with_capacity(data.len());
            for row in 0..data.len() {
                let value = data.get(row);
                let text = (!value.is_null()).then(|| value.to_string());
                raw.push(text.as_deref().map(str::trim));
            }
            infer::convert(&raw, ty, date_format)
                .map_err(|(row, value)| bad_value(row, column, value, ty))
        }
    }
}

/// A Parquet input decoded batch by batch (batch scoring of large files), with the checks of
/// [`read_parquet`]: page headers and dictionary pages walked before decoding, every decoded batch
/// fully validated, and decoder panics turned into [`DataError::Parquet`].
pub struct ParquetBatches {
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    names: Vec<String>,
    types: Vec<DataType>,
    failed: bool,
}

impl std::fmt::Debug for ParquetBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetBatches")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// One input shared by the decoder and the page checks (the parquet crate reads ranges through
/// `&self`, so both can hold it).
struct Shared<R>(std::sync::Arc<R>);

impl<R: parquet::file::reader::Length> parquet::file::reader::Length for Shared<R> {
    fn len(&self) -> u64 {
        self.0.len()
    }
}

impl<R: parquet::file::reader::ChunkReader> parquet::file::reader::ChunkReader for Shared<R> {
    type T = R::T;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        self.0.get_read(start)
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        self.0.get_bytes(start, length)
    }
}

fn decoder_panicked() -> DataError {
    DataError::Parquet {
        message: "the decoder failed on malformed data".to_string(),
    }
}

impl ParquetBatches {
    /// Opens `input` (a file or bytes) and checks its pages; batches of `batch_rows` rows.
    pub fn open<R: parquet::file::reader::ChunkReader + 'static>(
        input: R,
        batch_rows: usize,
    ) -> Result<ParquetBatches, DataError> {
        let input = std::sync::Arc::new(input);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let builder = ParquetRecordBatchReaderBuilder::try_new(Shared(input.clone()))
                .map_err(parquet_error)?;
            crate::parquet_guard::check_input(input.clone(), builder.metadata())?;
            let names: Vec<String> = builder
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            check_column_names(&names, None)?;
            let types: Vec<DataType> = builder
                .schema()
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect();
            let reader = builder
                .with_batch_size(batch_rows.max(1))
                .build()
                .map_err(parquet_error)?;
            Ok(ParquetBatches {
                reader,
                names,
                types,
                failed: false,
            })
        }))
        .unwrap_or_else(|_| Err(decoder_panicked()))
    }

    /// The file's column names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// [`DataError::UnsupportedType`] when column `column` has a type that dataset import does
    /// not read (binary, lists, structs…): a model's input must arrive as import reads it.
    pub fn check_supported(&self, column: usize) -> Result<(), DataError> {
        match self.types.get(column) {
            Some(ty) if !is_supported(ty) => Err(DataError::UnsupportedType {
                column: ColumnRef::new(&self.names[column], column),
                data_type: ty.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

/// The Arrow types [`convert_array`] reads (every other one is [`DataError::UnsupportedType`]).
fn is_supported(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Null
            | DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
            | DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(..)
    ) || is_string(ty)
}

impl Iterator for ParquetBatches {
    type Item = Result<arrow::record_batch::RecordBatch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let reader = &mut self.reader;
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.next()))
            .unwrap_or_else(|_| {
                Some(Err(arrow::error::ArrowError::ExternalError(Box::new(
                    std::io::Error::other("the decoder failed on malformed data"),
                ))))
            })?;
        let checked = next
            .map_err(|e| DataError::Parquet {
                message: e.to_string(),
            })
            .and_then(|batch| {
                crate::parquet_guard::check_arrays(std::slice::from_ref(&batch), &self.names)?;
                Ok(batch)
            });
        // After an error the decoder's position is unknown: stop.
        self.failed = checked.is_err();
        Some(checked)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, ListArray, StringArray, UInt64Array};
    use arrow::datatypes::{Field, Int32Type, Schema};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::ArrowWriter;

    use super::*;

    fn write(columns: Vec<(&str, ArrayRef)>) -> Vec<u8> {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns.into_iter().map(|c| c.1).collect(),
        )
        .unwrap();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        out
    }

    #[test]
    fn unsupported_type_names_the_column() {
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)])]);
        let bytes = write(vec![
            ("id", Arc::new(Int32Array::from(vec![1])) as ArrayRef),
            ("tags", Arc::new(list) as ArrayRef),
        ]);
        let err = read_parquet(&bytes, &ReadOptions::default()).unwrap_err();
        assert_eq!(err.code(), "unsupported_type");
        assert!(err.to_string().contains("column 2 (`tags`)"), "{err}");
    }

    #[test]
    fn u64_overflow_names_the_row() {
        let bytes = write(vec![(
            "n",
            Arc::new(UInt64Array::from(vec![1, u64::MAX])) as ArrayRef,
        )]);
        let err = read_parquet(&bytes, &ReadOptions::default()).unwrap_err();
        assert!(
            matches!(
                &err,
                DataError::BadValue {
                    location: Location::Row(2),
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn override_converts_through_text_rules() {
        let bytes = write(vec![(
            "flag",
            Arc::new(StringArray::from(vec![Some("yes"), None, Some("0")])) as ArrayRef,
        )]);
        let opts = ReadOptions {
            overrides: [("flag".to_string(), ColumnType::Boolean)].into(),
            ..ReadOptions::default()
        };
        let t = read_parquet(&bytes, &opts).unwrap();
        assert_eq!(
            t.column("flag").unwrap().data,
            ColumnData::Boolean(vec![Some(true), None, Some(false)])
        );
        let opts = ReadOptions {
            overrides: [("flag".to_string(), ColumnType::Integer)].into(),
            ..ReadOptions::default()
        };
        let err = read_parquet(&bytes, &opts).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("row 1, column 1 (`flag`): cannot read `yes`"),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_a_parquet_error() {
        let err = read_parquet(b"PAR1 not really", &ReadOptions::default()).unwrap_err();
        assert_eq!(err.code(), "parquet_error");
        assert!(err.is_user_error());
    }
}
