//! `/v1` predict bodies: the strict JSON parser (`parse_json_value`, duplicate keys refused), the
//! `PredictIn` shape, and each record converted against a fixed input schema with
//! `record_to_row`, the conversion `records_to_rows` applies per record (every column type, a
//! date with an explicit format, a masked field). Errors are expected; a panic is a bug.
#![no_main]

use std::sync::OnceLock;

use aurum_core::{ColumnType, Field};
use aurum_server::middleware::{from_json_value, parse_json_value};
use aurum_server::routes::predict::record_to_row;
use aurum_server::wire::PredictIn;
use libfuzzer_sys::fuzz_target;

fn fields() -> &'static [Field] {
    static FIELDS: OnceLock<Vec<Field>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        vec![
            Field::new("age", ColumnType::Integer),
            Field::new("income", ColumnType::Float),
            Field::new("owner", ColumnType::Boolean),
            Field::new("purpose", ColumnType::Categorical),
            Field::new("note", ColumnType::Text),
            Field::new("opened", ColumnType::Date).with_format("%d.%m.%Y"),
            Field::new("born", ColumnType::Date),
            Field::new("seen", ColumnType::DateTime),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_json_value(data) else {
        return;
    };
    let Ok(body) = from_json_value::<PredictIn>(body) else {
        return;
    };
    let masked = ["income".to_string()];
    let records = body.records.iter().flatten().chain(body.record.iter());
    for (i, record) in records.enumerate() {
        let _ = record_to_row(fields(), record, &format!("records[{i}]"), &masked);
    }
});
