//! Property: a table written with `csv::Writer` reads back with the same values.

use aurum_core::Value;
use aurum_data::{ReadOptions, read_csv};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Col {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    /// Strings that start with `s` and end with `x`: never a number, boolean, date or missing
    /// token, and never surrounded by whitespace (which the reader trims). Inside: spaces,
    /// delimiters, quotes and newlines, all of which must survive quoting.
    Str(Vec<Option<String>>),
}

impl Col {
    fn cell(&self, row: usize) -> (String, Value) {
        match self {
            Col::Int(v) => v[row].map_or((String::new(), Value::Null), |i| {
                (i.to_string(), Value::Integer(i))
            }),
            // `{:?}` keeps a fractional part (`3.0`), so float columns stay float columns.
            Col::Float(v) => v[row].map_or((String::new(), Value::Null), |x| {
                (format!("{x:?}"), Value::Float(x))
            }),
            Col::Str(v) => v[row].as_ref().map_or((String::new(), Value::Null), |s| {
                (s.clone(), Value::Str(s.clone()))
            }),
        }
    }
}

fn column(rows: usize) -> impl Strategy<Value = Col> {
    let finite = prop_oneof![
        prop::num::f64::NORMAL,
        prop::num::f64::SUBNORMAL,
        Just(0.0),
        Just(-0.5)
    ];
    prop_oneof![
        prop::collection::vec(prop::option::weighted(0.8, any::<i64>()), rows).prop_map(Col::Int),
        prop::collection::vec(prop::option::weighted(0.8, finite), rows).prop_map(Col::Float),
        prop::collection::vec(
            prop::option::weighted(0.8, "s[a-zA-Z0-9 ,;\"\n\r\t'é]{0,12}x"),
            rows
        )
        .prop_map(Col::Str),
    ]
}

fn table() -> impl Strategy<Value = (usize, Vec<Col>)> {
    (1usize..40, 1usize..6)
        .prop_flat_map(|(rows, cols)| (Just(rows), prop::collection::vec(column(rows), cols)))
}

proptest! {
    #[test]
    fn csv_round_trip((rows, cols) in table(), delimiter in prop_oneof![Just(b','), Just(b';'), Just(b'\t')]) {
        let mut writer = csv::WriterBuilder::new().delimiter(delimiter).from_writer(Vec::new());
        let header: Vec<String> = (0..cols.len()).map(|j| format!("c{j}")).collect();
        writer.write_record(&header).unwrap();
        let mut expected = Vec::with_capacity(rows);
        for row in 0..rows {
            let (text, values): (Vec<String>, Vec<Value>) = cols.iter().map(|c| c.cell(row)).unzip();
            writer.write_record(&text).unwrap();
            expected.push(values);
        }
        let bytes = writer.into_inner().unwrap();
        let opts = ReadOptions { delimiter, ..ReadOptions::default() };
        let table = read_csv(&bytes, &opts).unwrap();
        prop_assert_eq!(table.n_rows(), rows);
        prop_assert_eq!(table.n_cols(), cols.len());
        for (row, values) in expected.iter().enumerate() {
            prop_assert_eq!(&table.row(row), values, "row {}", row);
        }
    }
}
