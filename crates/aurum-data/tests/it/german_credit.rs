//! The UCI German Credit demo file: 1000 rows, 21 columns, target `creditability` (700 good,
//! 300 bad). Expected figures were computed independently with Python's `csv` and `statistics`.

use aurum_core::{ColumnType, Value};
use aurum_data::{
    ColumnWarning, ReadOptions, binary_target, profile, read_auto, read_csv, stratified_split,
};

pub(crate) const GERMAN_CREDIT: &[u8] = include_bytes!("../../../../data/demo/german_credit.csv");

fn table() -> aurum_core::Table {
    read_csv(GERMAN_CREDIT, &ReadOptions::default()).expect("german credit reads")
}

#[test]
fn shape_and_inferred_types() {
    let t = table();
    assert_eq!(t.n_rows(), 1000);
    assert_eq!(t.n_cols(), 21);
    let schema = t.schema();
    let ty = |name: &str| {
        schema
            .field(name)
            .unwrap_or_else(|| panic!("no column {name}"))
            .ty
    };
    for name in [
        "duration_in_month",
        "credit_amount",
        "age_in_years",
        "installment_rate_in_percentage_of_disposable_income",
        "present_residence_since",
        "number_of_existing_credits_at_this_bank",
        "number_of_people_being_liable_to_provide_maintenance_for",
    ] {
        assert_eq!(ty(name), ColumnType::Integer, "{name}");
    }
    let integers = schema
        .fields
        .iter()
        .filter(|f| f.ty == ColumnType::Integer)
        .count();
    assert_eq!(integers, 7);
    // Every other column, including the quoted "yes, registered under the customers name" one,
    // is categorical.
    for f in schema.fields.iter().filter(|f| f.ty != ColumnType::Integer) {
        assert_eq!(f.ty, ColumnType::Categorical, "{}", f.name);
    }
    let telephone = t.column("telephone").unwrap();
    assert_eq!(
        telephone.data.get(0),
        Value::Str("yes, registered under the customers name".into())
    );
    assert_eq!(t.row(0)[0], Value::Str("... < 0 DM".into()));
}

#[test]
fn profile_matches_known_figures() {
    let p = profile(&table());
    assert_eq!(p.rows, 1000);
    assert_eq!(p.columns.len(), 21);
    let col = |name: &str| p.columns.iter().find(|c| c.name == name).unwrap();

    let amount = col("credit_amount");
    let n = amount.numeric.expect("numeric summary");
    assert_eq!(n.min, 250.0);
    assert_eq!(n.max, 18424.0);
    assert!((n.mean - 3271.258).abs() < 1e-9, "mean {}", n.mean);
    assert!((n.std - 2_822.736_875_960_44).abs() < 1e-6, "std {}", n.std);
    assert_eq!(amount.distinct_count, 921);
    assert_eq!(amount.missing_count, 0);
    assert!(amount.warnings.is_empty(), "{:?}", amount.warnings);

    let age = col("age_in_years").numeric.unwrap();
    assert_eq!((age.min, age.max), (19.0, 75.0));
    assert!((age.mean - 35.546).abs() < 1e-9);

    let purpose = col("purpose");
    assert_eq!(purpose.distinct_count, 10);
    assert_eq!(purpose.top_values[0], ("radio/television".to_string(), 280));
    assert_eq!(purpose.top_values[1], ("car (new)".to_string(), 234));
    assert_eq!(
        purpose.top_values[2],
        ("furniture/equipment".to_string(), 181)
    );

    let target = col("creditability");
    assert_eq!(
        target.top_values,
        vec![("good".to_string(), 700), ("bad".to_string(), 300)]
    );

    // Nothing in this clean, small-levelled file deserves a warning.
    let warned: Vec<(&str, &Vec<ColumnWarning>)> = p
        .columns
        .iter()
        .filter(|c| !c.warnings.is_empty())
        .map(|c| (c.name.as_str(), &c.warnings))
        .collect();
    assert!(warned.is_empty(), "{warned:?}");
    // The profile is a stored format: it must survive JSON.
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(
        serde_json::from_str::<aurum_data::DatasetProfile>(&json).unwrap(),
        p
    );
}

#[test]
fn target_positive_class_is_bad() {
    let t = table();
    let target = binary_target(&t, "creditability", None).unwrap();
    assert_eq!(target.positive_label, "bad");
    assert_eq!(target.negative_label, "good");
    assert_eq!(target.len(), 1000);
    assert_eq!(target.y.iter().filter(|&&y| y == 1.0).count(), 300);
    // Row 2 of the file is `bad`.
    assert_eq!(target.y[1], 1.0);
    assert_eq!(target.y[0], 0.0);
}

#[test]
fn stratified_split_keeps_the_bad_rate() {
    let target = binary_target(&table(), "creditability", None).unwrap();
    let split = stratified_split(&target.y, 0.2, 42).unwrap();
    assert_eq!(split.test.len(), 200);
    let bad_in_test = split.test.iter().filter(|&&i| target.y[i] == 1.0).count();
    assert_eq!(bad_in_test, 60);
}

#[test]
fn reread_with_stored_schema_is_identical() {
    let t = table();
    let opts = ReadOptions {
        schema: Some(t.schema()),
        ..ReadOptions::default()
    };
    assert_eq!(read_auto(GERMAN_CREDIT, &opts).unwrap(), t);
}

#[test]
fn unknown_target_lists_columns() {
    let err = binary_target(&table(), "credit_risk", None).unwrap_err();
    assert_eq!(err.code(), "unknown_column");
    let msg = err.to_string();
    assert!(
        msg.contains("`credit_risk`") && msg.contains("`creditability`"),
        "{msg}"
    );
}
