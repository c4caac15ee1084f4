//! Parquet dataset uploads: `aurum_data::read_parquet` on arbitrary bytes, then the profile.
//!
//! `read_parquet` runs the third-party decoder under `catch_unwind` on purpose (a decoder panic on
//! a corrupt file becomes `DataError::Parquet`), and that would also hide a panic in aurum's own
//! conversion code. libfuzzer-sys aborts on any panic, so this target installs its own hook: a
//! panic raised inside a crates.io dependency is reported once per location on stderr and left
//! to the reader's `catch_unwind` (the documented behaviour); a panic anywhere else (aurum's
//! code, or the standard library called from it) aborts, so the fuzzer records a crash.
#![no_main]

use std::collections::HashSet;
use std::sync::Mutex;

use aurum_core::{ColumnType, Field, Schema};
use aurum_data::{ReadOptions, profile, read_parquet};
use libfuzzer_sys::fuzz_target;

/// Panic locations inside dependencies already reported.
static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn in_dependency(file: &str) -> bool {
    file.contains("/.cargo/registry/") || file.contains("/cargo/registry/")
}

fn install_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let location = info.location().map(|l| (l.file().to_string(), l.line()));
        if let Some((file, line)) = &location
            && in_dependency(file)
        {
            let key = format!("{file}:{line}");
            let mut seen = SEEN
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.get_or_insert_with(HashSet::new).insert(key.clone()) {
                eprintln!("fuzz: dependency panic caught by read_parquet at {key}: {info}");
            }
            return;
        }
        default(info);
        std::process::abort();
    }));
}

fn forced() -> ReadOptions {
    ReadOptions {
        schema: Some(Schema {
            fields: vec![
                Field::new("id", ColumnType::Integer),
                Field::new("amount", ColumnType::Float),
                Field::new("active", ColumnType::Boolean),
                Field::new("purpose", ColumnType::Categorical),
                Field::new("opened", ColumnType::Date).with_format("%d.%m.%Y"),
            ],
        }),
        ..ReadOptions::default()
    }
}

fuzz_target!(init: install_hook(), |data: &[u8]| {
    for opts in [ReadOptions::default(), forced()] {
        if let Ok(table) = read_parquet(data, &opts) {
            let _ = profile(&table);
        }
    }
});
