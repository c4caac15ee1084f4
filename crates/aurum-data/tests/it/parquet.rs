//! Parquet files written in memory with the Arrow writer and read back.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, DictionaryArray, Float32Array, Float64Array, Int16Array,
    Int32Array, Int64Array, StringArray, TimestampMillisecondArray, UInt8Array,
};
use arrow::datatypes::{Field, Int32Type, Schema};
use arrow::record_batch::RecordBatch;
use aurum_core::{ColumnData, ColumnType, Table};
use aurum_data::{DataError, Format, ReadOptions, read_auto, read_csv, read_parquet};
use chrono::{NaiveDate, NaiveDateTime};
use parquet::arrow::ArrowWriter;

use crate::german_credit::GERMAN_CREDIT;

/// Writes `columns` as one or more record batches of at most `batch_rows` rows.
fn write_parquet(columns: Vec<(&str, ArrayRef)>, batch_rows: usize) -> Vec<u8> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays: Vec<ArrayRef> = columns.into_iter().map(|(_, a)| a).collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, None).unwrap();
    let mut offset = 0;
    while offset < batch.num_rows() {
        let len = batch_rows.min(batch.num_rows() - offset);
        writer.write(&batch.slice(offset, len)).unwrap();
        writer.flush().unwrap();
        offset += len;
    }
    writer.close().unwrap();
    out
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn datetime(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

#[test]
fn small_file_round_trips_every_supported_type() {
    let days = |s: &str| (date(s) - date("1970-01-01")).num_days() as i32;
    let millis = |s: &str| datetime(s).and_utc().timestamp_millis();
    let dict: DictionaryArray<Int32Type> =
        vec![Some("car"), None, Some("tv")].into_iter().collect();
    let bytes = write_parquet(
        vec![
            (
                "i16",
                Arc::new(Int16Array::from(vec![Some(-3), None, Some(7)])) as ArrayRef,
            ),
            ("u8", Arc::new(UInt8Array::from(vec![1, 2, 255]))),
            (
                "i64",
                Arc::new(Int64Array::from(vec![i64::MIN, 0, i64::MAX])),
            ),
            (
                "f32",
                Arc::new(Float32Array::from(vec![Some(0.5), None, Some(-2.25)])),
            ),
            (
                "f64",
                Arc::new(Float64Array::from(vec![1.5, f64::NAN, 3.0])),
            ),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![Some("a b"), None, Some(" c ")])),
            ),
            ("purpose", Arc::new(dict)),
            (
                "day",
                Arc::new(Date32Array::from(vec![
                    Some(days("2024-02-29")),
                    None,
                    Some(days("1969-12-31")),
                ])),
            ),
            (
                "at",
                Arc::new(
                    TimestampMillisecondArray::from(vec![
                        Some(millis("2024-01-01 10:00:00")),
                        None,
                        Some(millis("2001-09-09 01:46:40")),
                    ])
                    .with_timezone("+02:00"),
                ),
            ),
        ],
        2,
    );
    assert_eq!(Format::detect(&bytes), Format::Parquet);
    let t = read_auto(&bytes, &ReadOptions::default()).unwrap();
    assert_eq!(t.n_rows(), 3);
    let data = |name: &str| t.column(name).unwrap().data.clone();
    assert_eq!(
        data("i16"),
        ColumnData::Integer(vec![Some(-3), None, Some(7)])
    );
    assert_eq!(
        data("u8"),
        ColumnData::Integer(vec![Some(1), Some(2), Some(255)])
    );
    assert_eq!(
        data("i64"),
        ColumnData::Integer(vec![Some(i64::MIN), Some(0), Some(i64::MAX)])
    );
    assert_eq!(
        data("f32"),
        ColumnData::Float(vec![Some(0.5), None, Some(-2.25)])
    );
    assert_eq!(
        data("f64"),
        ColumnData::Float(vec![Some(1.5), None, Some(3.0)])
    );
    assert_eq!(
        data("flag"),
        ColumnData::Boolean(vec![Some(true), Some(false), None])
    );
    // Parquet strings go through the cell parser, as CSV cells do: trimmed.
    assert_eq!(
        data("name"),
        ColumnData::Categorical(vec![Some("a b".into()), None, Some("c".into())])
    );
    assert_eq!(
        data("purpose"),
        ColumnData::Categorical(vec![Some("car".into()), None, Some("tv".into())])
    );
    assert_eq!(
        data("day"),
        ColumnData::Date(vec![
            Some(date("2024-02-29")),
            None,
            Some(date("1969-12-31"))
        ])
    );
    // Timestamps are stored as UTC whatever the zone; aurum keeps the UTC wall-clock time.
    assert_eq!(
        data("at"),
        ColumnData::DateTime(vec![
            Some(datetime("2024-01-01 10:00:00")),
            None,
            Some(datetime("2001-09-09 01:46:40"))
        ])
    );
}

#[test]
fn infinite_float_names_the_row() {
    let bytes = write_parquet(
        vec![(
            "x",
            Arc::new(Float64Array::from(vec![1.0, 2.0, f64::INFINITY])) as ArrayRef,
        )],
        10,
    );
    let err = read_parquet(&bytes, &ReadOptions::default()).unwrap_err();
    assert_eq!(err.code(), "bad_value");
    assert!(
        err.to_string()
            .starts_with("row 3, column 1 (`x`): cannot read `inf` as float"),
        "{err}"
    );
}

#[test]
fn empty_and_truncated_files() {
    let bytes = write_parquet(
        vec![(
            "x",
            Arc::new(Int64Array::from(Vec::<i64>::new())) as ArrayRef,
        )],
        10,
    );
    assert_eq!(
        read_parquet(&bytes, &ReadOptions::default()).unwrap_err(),
        DataError::NoDataRows
    );

    let bytes = write_parquet(
        vec![("x", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef)],
        10,
    );
    let err = read_parquet(&bytes[..bytes.len() - 10], &ReadOptions::default()).unwrap_err();
    assert_eq!(err.code(), "parquet_error");
    assert!(err.is_user_error());
}

#[test]
fn duplicate_names_are_rejected() {
    let bytes = write_parquet(
        vec![
            ("a", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("a", Arc::new(Int64Array::from(vec![2])) as ArrayRef),
        ],
        10,
    );
    let err = read_parquet(&bytes, &ReadOptions::default()).unwrap_err();
    assert_eq!(
        err,
        DataError::DuplicateHeader {
            line: None,
            name: "a".into(),
            first: 1,
            second: 2
        }
    );
}

/// Converts a table of integer and string columns to Arrow arrays (enough for German credit).
fn to_arrow(table: &Table) -> Vec<(&str, ArrayRef)> {
    table
        .columns()
        .iter()
        .map(|c| {
            let array: ArrayRef = match &c.data {
                ColumnData::Integer(v) => Arc::new(Int64Array::from(v.clone())),
                ColumnData::Categorical(v) | ColumnData::Text(v) => {
                    Arc::new(StringArray::from(v.clone()))
                }
                other => panic!("unexpected column type {:?}", other.column_type()),
            };
            (c.name.as_str(), array)
        })
        .collect()
}

#[test]
fn german_credit_as_parquet_reads_like_the_csv() {
    let from_csv = read_csv(GERMAN_CREDIT, &ReadOptions::default()).unwrap();
    let bytes = write_parquet(to_arrow(&from_csv), 300);
    let from_parquet = read_parquet(&bytes, &ReadOptions::default()).unwrap();
    assert_eq!(from_parquet, from_csv);
    // Forcing the stored schema, and overriding one column, work on Parquet too.
    let opts = ReadOptions {
        schema: Some(from_csv.schema()),
        overrides: [("age_in_years".to_string(), ColumnType::Float)].into(),
        ..ReadOptions::default()
    };
    let forced = read_parquet(&bytes, &opts).unwrap();
    assert_eq!(
        forced.column("age_in_years").unwrap().data.column_type(),
        ColumnType::Float
    );
    assert_eq!(
        forced.column("age_in_years").unwrap().data.get(0).as_f64(),
        Some(67.0)
    );
}

#[test]
fn corrupted_files_are_errors_not_panics() {
    let from_csv = read_csv(GERMAN_CREDIT, &ReadOptions::default()).unwrap();
    let bytes = write_parquet(to_arrow(&from_csv), 250);
    let opts = ReadOptions::default();
    // Truncations at many points, and single-byte corruptions spread through the file.
    for cut in (4..bytes.len()).step_by(bytes.len() / 50) {
        let err = read_parquet(&bytes[..cut], &opts).unwrap_err();
        assert!(err.is_user_error(), "{err}");
    }
    for (k, at) in (8..bytes.len() - 8).step_by(bytes.len() / 100).enumerate() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x5a ^ (k as u8);
        if let Err(err) = read_parquet(&bad, &opts) {
            assert!(err.is_user_error(), "{err}");
        }
    }
}

/// Where `num_values` sits in the dictionary page header at `at` (Thrift compact protocol: the
/// i32 fields 1 to 4, then field 7, the dictionary page header, whose field 1 is `num_values`).
fn dictionary_num_values_at(bytes: &[u8], mut at: usize) -> usize {
    let mut field = 0;
    loop {
        let header = bytes[at];
        at += 1;
        field += header >> 4;
        match (field, header & 0x0f) {
            (7, 12) => {
                assert_eq!(bytes[at], 0x15, "num_values is field 1, an i32");
                return at + 1;
            }
            (_, 5) => {
                while bytes[at] & 0x80 != 0 {
                    at += 1;
                }
                at += 1;
            }
            other => panic!("unexpected page header field {other:?}"),
        }
    }
}

#[test]
fn a_dictionary_page_declaring_more_values_than_it_holds_is_refused() {
    // The decoder allocates the declared count before reading the page: a fuzzed 1.9 KB file
    // declaring billions of entries took 28 s and 6 GB. Here a 3-entry dictionary (12 bytes)
    // is patched to declare 63 entries (the largest one-byte count), which needs 252 bytes.
    let bytes = write_parquet(
        vec![(
            "n",
            Arc::new(Int32Array::from(vec![10, 20, 30, 10])) as ArrayRef,
        )],
        4,
    );
    let opts = ReadOptions::default();
    assert_eq!(read_parquet(&bytes, &opts).unwrap().n_rows(), 4);
    let metadata = parquet::arrow::arrow_reader::ArrowReaderMetadata::load(
        &bytes::Bytes::from(bytes.clone()),
        Default::default(),
    )
    .unwrap();
    let offset = metadata
        .metadata()
        .row_group(0)
        .column(0)
        .dictionary_page_offset();
    let at = dictionary_num_values_at(&bytes, usize::try_from(offset.unwrap()).unwrap());
    assert_eq!(bytes[at], 6, "3 entries, zigzag-encoded");
    let mut bad = bytes;
    bad[at] = 126;
    let err = read_parquet(&bad, &opts).unwrap_err();
    assert!(err.is_user_error(), "{err}");
    assert!(
        err.to_string()
            .contains("column `n`: its dictionary page declares 63 values but holds only 12 bytes"),
        "{err}"
    );
}

#[test]
fn a_page_header_with_a_runaway_list_is_refused() {
    // Found by fuzzing: a 675-byte file whose page header carries an unknown field holding a
    // collection that declares millions of elements with no bytes behind them. The decoder's
    // Thrift reader "skips" them one by one (2 s of CPU in a debug build, 55 s under the fuzzer);
    // the page-header walk refuses the collection before any is read.
    let bytes = include_bytes!("../fixtures/page_header_runaway_list.parquet");
    let err = read_parquet(bytes, &ReadOptions::default()).unwrap_err();
    assert!(err.is_user_error(), "{err}");
    assert!(
        err.to_string()
            .contains("column `when`: the page header at byte 0 of the column chunk is malformed"),
        "{err}"
    );
}

#[test]
fn a_string_column_that_is_not_utf8_is_refused() {
    // Found by fuzzing: the decoder checks that string data is UTF-8 only when built with debug
    // assertions (parquet 60, `OffsetBuffer::into_array`); a release build handed back a column of
    // invalid UTF-8 that became `String`s. The decoded arrays are now validated. With debug
    // assertions (the usual test build) the decoder's own check panics first and `catch_unwind`
    // makes that the error; `cargo test --release` exercises the validation.
    let bytes = include_bytes!("../fixtures/string_column_not_utf8.parquet");
    let err = read_parquet(bytes, &ReadOptions::default()).unwrap_err();
    assert!(err.is_user_error(), "{err}");
    let expected = if cfg!(debug_assertions) {
        "the decoder failed on malformed data"
    } else {
        "column `when` decodes to invalid data: Invalid argument error: Invalid UTF8 sequence"
    };
    assert!(err.to_string().contains(expected), "{err}");
}

#[test]
fn string_columns_use_the_cell_parser() {
    let strings = |v: Vec<Option<&str>>| Arc::new(StringArray::from(v)) as ArrayRef;
    let columns = vec![
        (
            "amount",
            strings(vec![Some("$50,000.00"), Some("(1,200.00)"), None]),
        ),
        ("rate", strings(vec![Some("12.5%"), Some("NA"), Some("3%")])),
        (
            "approved",
            strings(vec![Some("28-Feb-97"), Some("1-Mar-05"), Some("")]),
        ),
        ("grade", strings(vec![Some("A"), Some("NA"), Some("B")])),
    ];
    let bytes = write_parquet(columns, 3);
    let t = read_parquet(&bytes, &ReadOptions::default()).unwrap();
    let d = NaiveDate::from_ymd_opt;
    assert_eq!(
        t.column("amount").unwrap().data,
        ColumnData::Float(vec![Some(50_000.0), Some(-1200.0), None])
    );
    assert_eq!(
        t.column("rate").unwrap().data,
        ColumnData::Float(vec![Some(12.5), None, Some(3.0)])
    );
    assert_eq!(
        t.column("approved").unwrap().data,
        ColumnData::Date(vec![d(1997, 2, 28), d(2005, 3, 1), None])
    );
    assert_eq!(
        t.column("grade").unwrap().data,
        ColumnData::Categorical(vec![Some("A".into()), None, Some("B".into())])
    );
}

/// Every batch of a streamed file, or its first error.
fn stream(input: impl parquet::file::reader::ChunkReader + 'static) -> Result<usize, DataError> {
    let mut rows = 0;
    for batch in aurum_data::ParquetBatches::open(input, 2)? {
        rows += batch?.num_rows();
    }
    Ok(rows)
}

#[test]
fn the_streaming_reader_refuses_what_read_parquet_refuses() {
    // Batch scoring streams Parquet from a file; it must be as guarded as a dataset import.
    let good = write_parquet(
        vec![(
            "n",
            Arc::new(Int32Array::from(vec![10, 20, 30, 10, 20])) as ArrayRef,
        )],
        5,
    );
    assert_eq!(stream(bytes::Bytes::from(good.clone())).unwrap(), 5);
    let dir = std::env::temp_dir().join(format!("aurum-parquet-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("good.parquet");
    std::fs::write(&path, &good).unwrap();
    assert_eq!(stream(std::fs::File::open(&path).unwrap()).unwrap(), 5);

    for (name, bytes, expected) in [
        (
            "runaway list",
            include_bytes!("../fixtures/page_header_runaway_list.parquet").to_vec(),
            "the page header at byte 0 of the column chunk is malformed",
        ),
        (
            "not utf-8",
            include_bytes!("../fixtures/string_column_not_utf8.parquet").to_vec(),
            if cfg!(debug_assertions) {
                "the decoder failed on malformed data"
            } else {
                "decodes to invalid data"
            },
        ),
    ] {
        // From bytes and from a file on disk alike.
        let err = stream(bytes::Bytes::from(bytes.clone())).unwrap_err();
        assert!(err.to_string().contains(expected), "{name}: {err}");
        let path = dir.join("bad.parquet");
        std::fs::write(&path, &bytes).unwrap();
        let err = stream(std::fs::File::open(&path).unwrap()).unwrap_err();
        assert!(err.to_string().contains(expected), "{name} (file): {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
