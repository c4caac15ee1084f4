//! Every way a CSV file can be wrong, with the line and column the error must name.

use aurum_core::{ColumnData, ColumnType, Field, Schema};
use aurum_data::{ColumnRef, DataError, Location, ReadOptions, read_csv};

fn read(bytes: &[u8]) -> Result<aurum_core::Table, DataError> {
    read_csv(bytes, &ReadOptions::default())
}

fn col(name: &str, position: usize) -> ColumnRef {
    ColumnRef {
        name: Some(name.to_string()),
        position,
    }
}

fn overriding(column: &str, ty: ColumnType) -> ReadOptions {
    ReadOptions {
        overrides: [(column.to_string(), ty)].into(),
        ..ReadOptions::default()
    }
}

#[test]
fn empty_file() {
    for bytes in [
        &b""[..],
        b"   \n\r\n\t",
        b"\xEF\xBB\xBF",
        b"\xEF\xBB\xBF \n",
    ] {
        let err = read(bytes).unwrap_err();
        assert_eq!(err, DataError::EmptyFile, "{bytes:?}");
        assert_eq!(err.code(), "empty_file");
        assert!(err.is_user_error());
    }
}

#[test]
fn header_without_rows() {
    for bytes in [&b"a,b\n"[..], b"a,b", b"a,b\r\n\r\n\n"] {
        let err = read(bytes).unwrap_err();
        assert_eq!(err, DataError::NoDataRows);
        assert_eq!(
            err.to_string(),
            "the file has no data rows: only a header was found"
        );
    }
}

#[test]
fn duplicate_header_names_both_positions() {
    let err = read(b"id,amount,id\n1,2,3\n").unwrap_err();
    assert_eq!(
        err,
        DataError::DuplicateHeader {
            line: Some(1),
            name: "id".into(),
            first: 1,
            second: 3
        }
    );
    assert_eq!(
        err.to_string(),
        "line 1: duplicate column name `id` at columns 1 and 3"
    );
    assert_eq!(err.code(), "duplicate_header");
}

#[test]
fn empty_header_names_position() {
    let err = read(b"a,  ,c\n1,2,3\n").unwrap_err();
    assert_eq!(
        err,
        DataError::EmptyHeader {
            line: Some(1),
            position: 2
        }
    );
    assert!(
        err.to_string()
            .starts_with("line 1: the name of column 2 is empty"),
        "{err}"
    );
}

#[test]
fn ragged_rows_name_line_and_counts() {
    let err = read(b"a,b,c\n1,2,3\n4,5\n").unwrap_err();
    assert_eq!(
        err,
        DataError::RaggedRow {
            line: 3,
            expected: 3,
            got: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "line 3: expected 3 fields (as in the header) but found 2"
    );
    assert_eq!(err.code(), "ragged_row");

    let err = read(b"a,b\r\n1,2\r\n3,4\r\n5,6,7\r\n").unwrap_err();
    assert_eq!(
        err,
        DataError::RaggedRow {
            line: 4,
            expected: 2,
            got: 3
        }
    );
}

#[test]
fn line_numbers_count_physical_lines() {
    // The quoted field on line 2 spans three lines, so the ragged record starts on line 5.
    let err = read(b"a,b\n1,\"x\ny\nz\"\n2\n").unwrap_err();
    assert_eq!(
        err,
        DataError::RaggedRow {
            line: 5,
            expected: 2,
            got: 1
        }
    );
    // Blank lines are skipped but still counted.
    let err = read(b"a,b\n\n1,2\n\n3\n").unwrap_err();
    assert_eq!(
        err,
        DataError::RaggedRow {
            line: 5,
            expected: 2,
            got: 1
        }
    );
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let err = read(b"id,name\n1,ok\n2,caf\xe9\n").unwrap_err();
    assert_eq!(
        err,
        DataError::InvalidUtf8 {
            line: 3,
            column: col("name", 2),
            byte_offset: 3
        }
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("line 3, column 2 (`name`): the value is not valid UTF-8"),
        "{msg}"
    );
    assert_eq!(err.code(), "invalid_utf8");

    // In the header the column has no name yet.
    let err = read(b"id,\xffname\n1,2\n").unwrap_err();
    assert_eq!(
        err,
        DataError::InvalidUtf8 {
            line: 1,
            column: ColumnRef {
                name: None,
                position: 2
            },
            byte_offset: 0
        }
    );
}

#[test]
fn bad_value_for_override_names_line_column_value_and_type() {
    let csv = b"id,amount\n1,10\n2,\"1\n0\"\n3,ten\n";
    // Inferred: the multi-line value makes it a string column.
    assert_eq!(
        read(csv)
            .unwrap()
            .column("amount")
            .unwrap()
            .data
            .column_type(),
        ColumnType::Categorical
    );
    let err = read_csv(
        b"id,amount\n1,10\n2,20\n3,ten\n",
        &overriding("amount", ColumnType::Integer),
    )
    .unwrap_err();
    assert_eq!(
        err,
        DataError::BadValue {
            location: Location::Line(4),
            column: col("amount", 2),
            value: "ten".into(),
            expected: ColumnType::Integer,
        }
    );
    assert!(
        err.to_string()
            .starts_with("line 4, column 2 (`amount`): cannot read `ten` as integer"),
        "{err}"
    );
    assert_eq!(err.code(), "bad_value");
}

#[test]
fn bad_value_for_forced_schema() {
    let schema = Schema {
        fields: vec![
            Field::new("d", ColumnType::Date),
            Field::new("x", ColumnType::Float),
        ],
    };
    let opts = ReadOptions {
        schema: Some(schema),
        ..ReadOptions::default()
    };
    let err = read_csv(b"d,x\n2024-01-01,1.5\n2024-13-01,2\n", &opts).unwrap_err();
    assert!(
        matches!(&err, DataError::BadValue { location: Location::Line(3), column, value, expected: ColumnType::Date }
            if *column == col("d", 1) && value == "2024-13-01"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("(expected a date such as 2024-02-28"),
        "{err}"
    );
}

#[test]
fn override_of_unknown_column_is_named() {
    let err = read_csv(b"a,b\n1,2\n", &overriding("c", ColumnType::Float)).unwrap_err();
    assert_eq!(err.code(), "unknown_column");
    assert_eq!(
        err.to_string(),
        "unknown column `c` in type override; available columns: `a`, `b`"
    );
}

#[test]
fn forced_schema_must_match_the_header() {
    let schema = Schema {
        fields: vec![Field::new("a", ColumnType::Integer)],
    };
    let opts = ReadOptions {
        schema: Some(schema),
        ..ReadOptions::default()
    };
    let err = read_csv(b"a,b\n1,2\n", &opts).unwrap_err();
    assert_eq!(
        err,
        DataError::UnexpectedColumn {
            column: col("b", 2)
        }
    );
    let err = read_csv(b"b\n1\n", &opts).unwrap_err();
    assert_eq!(err, DataError::MissingColumn { name: "a".into() });
}

#[test]
fn overrides_apply() {
    let t = read_csv(
        b"flag,n\n1,1\n0,2\n,3\n",
        &overriding("flag", ColumnType::Boolean),
    )
    .unwrap();
    assert_eq!(
        t.column("flag").unwrap().data,
        ColumnData::Boolean(vec![Some(true), Some(false), None])
    );
    let t = read_csv(b"n\n1\n2\n", &overriding("n", ColumnType::Float)).unwrap();
    assert_eq!(
        t.column("n").unwrap().data,
        ColumnData::Float(vec![Some(1.0), Some(2.0)])
    );
    let t = read_csv(b"n\n1\n2\n", &overriding("n", ColumnType::Text)).unwrap();
    assert_eq!(t.column("n").unwrap().data.column_type(), ColumnType::Text);
}

#[test]
fn missing_tokens_and_inference() {
    let csv = "num,word,when,flag,x\n\
               1.5,NA,2024-01-01,true,inf\n\
               N/A,a,,False,1\n\
               2,?,2024-02-29,,2\n\
               null,None,NULL,nan,NaN\n\
               n/a,na,  ,TRUE,3\n";
    let t = read(csv.as_bytes()).unwrap();
    assert_eq!(
        t.column("num").unwrap().data,
        ColumnData::Float(vec![Some(1.5), None, Some(2.0), None, None])
    );
    assert_eq!(
        t.column("word").unwrap().data,
        ColumnData::Categorical(vec![None, Some("a".into()), None, None, None])
    );
    assert_eq!(
        t.column("when").unwrap().data.column_type(),
        ColumnType::Date
    );
    assert_eq!(
        t.column("flag").unwrap().data,
        ColumnData::Boolean(vec![Some(true), Some(false), None, None, Some(true)])
    );
    // `inf` is not a number, so the column stays a string column.
    assert_eq!(
        t.column("x").unwrap().data.column_type(),
        ColumnType::Categorical
    );
}

#[test]
fn datetimes_are_inferred() {
    let t = read(b"t\n2024-01-01 10:00:00\n2024-01-02T11:30:00Z\n").unwrap();
    let ColumnData::DateTime(v) = &t.column("t").unwrap().data else {
        panic!("not datetime")
    };
    assert_eq!(v[1].unwrap().to_string(), "2024-01-02 11:30:00");
}
