//! CSV dataset uploads: `aurum_data::read_csv_with_formats` on arbitrary bytes, then the column
//! profile the registry stores with every dataset.
//!
//! Each input is read twice: with the default options (types inferred), and with a small forced
//! schema, as a stored dataset is re-read (every type, one column with an explicit date format).
//! The second read refuses early unless the header names exactly those columns; the seeds carry
//! files that do. Errors are expected; a panic is a bug.
#![no_main]

use aurum_core::{ColumnType, Field, Schema};
use aurum_data::{ReadOptions, profile_with_formats, read_csv_with_formats};
use libfuzzer_sys::fuzz_target;

fn forced() -> ReadOptions {
    ReadOptions {
        schema: Some(Schema {
            fields: vec![
                Field::new("id", ColumnType::Integer),
                Field::new("amount", ColumnType::Float),
                Field::new("active", ColumnType::Boolean),
                Field::new("purpose", ColumnType::Categorical),
                Field::new("note", ColumnType::Text),
                Field::new("opened", ColumnType::Date).with_format("%d.%m.%Y"),
                Field::new("seen", ColumnType::DateTime),
            ],
        }),
        ..ReadOptions::default()
    }
}

fuzz_target!(|data: &[u8]| {
    for opts in [ReadOptions::default(), forced()] {
        if let Ok((table, formats)) = read_csv_with_formats(data, &opts) {
            let _ = profile_with_formats(&table, &formats);
        }
    }
});
