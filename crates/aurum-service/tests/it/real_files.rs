//! A loan file as finance systems export it trains with every credit family through the same
//! `Platform` path the REST API and the CLI use.

use std::sync::Arc;

use aurum_core::{FamilyName, NoProgress, Value};
use aurum_data::CellFormat;
use aurum_service::{CallContext, Config, Platform, TrainRequest};

const ROWS: usize = 20_000;

/// A small deterministic generator (xorshift64*), so the file is the same on every run.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn grouped(cents: i64) -> String {
    let units = (cents.abs() / 100).to_string();
    let mut out = String::new();
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}.{:02}", cents.abs() % 100)
}

/// `name,amount,rate,approved,grade,default`: a unique borrower name, amounts like `$50,000.00`
/// and `(1,200.00)`, rates like `12.5%`, `dd-Mon-yy` approval dates across the century, a grade
/// with `NA` cells, and a default flag that depends on amount, rate and date.
fn loan_file() -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = chrono::NaiveDate::from_ymd_opt(1995, 1, 1).unwrap();
    let mut out = String::from("name,amount,rate,approved,grade,default\n");
    for i in 0..ROWS {
        let amount_cents = if rng.next() < 0.03 {
            -((rng.next() * 2_000.0 * 100.0) as i64)
        } else {
            ((1_000.0 + rng.next() * 99_000.0) * 100.0) as i64
        };
        let amount = if amount_cents < 0 {
            format!("(${})", grouped(amount_cents))
        } else {
            format!("${}", grouped(amount_cents))
        };
        let rate = (50.0 + (rng.next() * 200.0).round()) / 10.0;
        let days = (rng.next() * 3_650.0) as i64;
        let approved = start + chrono::Duration::days(days);
        let grade = if rng.next() < 0.05 {
            "NA"
        } else {
            ["A", "B", "C", "D"][(rng.next() * 4.0) as usize]
        };
        let logit = -1.5
            + 1.2 * (amount_cents as f64 / 100.0 / 50_000.0 - 1.0)
            + 0.25 * (rate - 15.0)
            + 1.2 * (days as f64 / 3_650.0 - 0.5);
        let default = rng.next() < 1.0 / (1.0 + (-logit).exp());
        out.push_str(&format!(
            "\"Borrower {i}, {}\",\"{amount}\",{rate}%,{},{grade},{}\n",
            ["Smith", "Jones", "Garcia", "Chen"][i % 4],
            approved.format("%d-%b-%y"),
            u8::from(default)
        ));
    }
    out.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loan_file_trains_with_every_credit_family() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::open(Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    })
    .await
    .unwrap();
    let ctx = CallContext::cli();
    platform
        .import_dataset(
            &ctx,
            "loans",
            loan_file(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let (_, profile) = platform.get_dataset("loans").await.unwrap();
    let col = |name: &str| profile.columns.iter().find(|c| c.name == name).unwrap();
    assert_eq!(col("amount").column_type.as_str(), "float");
    assert_eq!(col("amount").format, Some(CellFormat::Currency));
    assert_eq!(col("rate").format, Some(CellFormat::Percent));
    assert_eq!(col("approved").column_type.as_str(), "date");
    assert_eq!(
        col("approved").format,
        Some(CellFormat::Date {
            pattern: "%d-%b-%y".into()
        })
    );
    assert_eq!(col("approved").range.as_ref().unwrap().0, "1995-01-01");
    assert_eq!(col("grade").column_type.as_str(), "categorical");
    assert!(col("grade").missing_count > 0, "NA cells are missing");
    assert_eq!(col("name").column_type.as_str(), "text");

    for kind in ["logistic", "scorecard", "gbdt"].map(|k| FamilyName::new(k).unwrap()) {
        let (_, version) = platform
            .run_training(
                &ctx,
                TrainRequest {
                    dataset: "loans".into(),
                    target: "default".into(),
                    kind: kind.clone(),
                    model: format!("loans-{kind}"),
                    params: Default::default(),
                    positive_label: None,
                    alias: None,
                    date_column: None,
                    text_columns: None,
                    text_buckets: None,
                },
                Arc::new(NoProgress),
            )
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let report = platform
            .version_report(&version.model, version.version)
            .await
            .unwrap();
        for feature in ["amount", "rate", "approved"] {
            assert!(
                report.features.iter().any(|f| f == feature),
                "{kind}: {feature} is not a feature: {:?}",
                report.features
            );
        }
        let name = report
            .excluded_columns
            .iter()
            .find(|e| e.column == "name")
            .unwrap_or_else(|| panic!("{kind}: {:?}", report.excluded_columns));
        assert_eq!(
            name.reason,
            format!(
                "text: {ROWS} distinct values, short and unique per row (a name or an identifier)"
            )
        );
        assert!(
            report
                .excluded_columns
                .iter()
                .any(|e| e.column == "default" && e.reason == "target")
        );
        assert!(
            report.metrics.auc > 0.7,
            "{kind}: held-out AUC {}",
            report.metrics.auc
        );

        // Serving takes the model's features only, and reads a date as a date.
        let model = platform
            .resolve(&aurum_service::ModelRef {
                name: version.model.clone(),
                selector: aurum_service::Selector::Version(version.version),
            })
            .await
            .unwrap();
        let schema = model.input_schema();
        assert!(schema.field("name").is_none());
        let row: Vec<Value> = schema
            .fields
            .iter()
            .map(|f| {
                let text = match f.name.as_str() {
                    "amount" => "$50,000.00",
                    "rate" => "12.5%",
                    "approved" => "28-Feb-97",
                    "grade" => "NA",
                    other => panic!("unexpected feature {other}"),
                };
                aurum_data::parse_cell(text, f.ty).unwrap()
            })
            .collect();
        let p = model.binary().unwrap().predict_proba_one(&row).unwrap();
        assert!((0.0..=1.0).contains(&p), "{kind}: {p}");

        // A batch of several pieces (scored in parallel) answers in order, each record what
        // the model's `assess` gives that row alone, reasons included; a bad row is named by
        // its index in the whole batch.
        let mut rows = Vec::new();
        let mut rng = Rng(7);
        for _ in 0..300 {
            rows.push(
                schema
                    .fields
                    .iter()
                    .map(|f| {
                        let text = match f.name.as_str() {
                            "amount" => format!("${:.2}", 1000.0 + 99_000.0 * rng.next()),
                            "rate" => format!("{:.1}%", 5.0 + 20.0 * rng.next()),
                            "approved" => (chrono::NaiveDate::from_ymd_opt(1995, 1, 1).unwrap()
                                + chrono::Duration::days((3_650.0 * rng.next()) as i64))
                            .format("%d-%b-%y")
                            .to_string(),
                            _ => "NA".to_string(),
                        };
                        aurum_data::parse_cell(&text, f.ty).unwrap()
                    })
                    .collect::<Vec<Value>>(),
            );
        }
        let out = platform
            .predict(
                &ctx,
                model.clone(),
                rows.clone(),
                aurum_service::PredictOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(out.records.len(), rows.len());
        let mut adverse = 0;
        for (row, r) in rows.iter().zip(&out.records) {
            let a = model.binary().unwrap().assess(row, false).unwrap();
            assert_eq!(r.probability, a.decision.pd, "{kind}");
            assert_eq!(r.decision, a.decision.decision, "{kind}");
            assert_eq!(r.reasons, a.decision.reasons, "{kind}");
            assert_eq!(r.score, a.decision.score, "{kind}");
            adverse += usize::from(!r.reasons.is_empty());
        }
        assert!(adverse > 0, "{kind}: no declines to check reasons on");
        let mut bad = rows.clone();
        bad[200][0] = Value::Str("x".into());
        let e = platform
            .predict(&ctx, model.clone(), bad, Default::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("row 200"), "{kind}: {e}");
    }
}

/// A day-first date column imported with an explicit format: the format is stored with the
/// dataset, re-reading the dataset for training uses it, and the model's input schema carries it
/// so serving parses the column's strings the same way. An unusable format names the column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_date_format_travels_from_import_to_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::open(Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    })
    .await
    .unwrap();
    let ctx = CallContext::cli();
    let mut file = String::from("opened,amount,default\n");
    let start = chrono::NaiveDate::from_ymd_opt(2001, 1, 1).unwrap();
    for i in 0..400i64 {
        let opened = start + chrono::Duration::days(i * 9);
        let default = u8::from((i * 7919) % 100 < 20 + i / 10);
        file.push_str(&format!(
            "{},{},{default}\n",
            opened.format("%d.%m.%Y"),
            1_000 + (i * 37) % 500
        ));
    }
    let formats = |f: &str| [("opened".to_string(), f.to_string())].into();
    let err = platform
        .import_dataset(
            &ctx,
            "bad",
            file.clone().into_bytes(),
            Default::default(),
            formats("%Q"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_date_format");
    assert!(err.to_string().contains("opened"), "{err}");

    platform
        .import_dataset(
            &ctx,
            "opened",
            file.into_bytes(),
            Default::default(),
            formats("%d.%m.%Y"),
        )
        .await
        .unwrap();
    let (record, profile) = platform.get_dataset("opened").await.unwrap();
    assert!(
        record.schema_json.contains("%d.%m.%Y"),
        "{}",
        record.schema_json
    );
    let opened = profile.columns.iter().find(|c| c.name == "opened").unwrap();
    assert_eq!(opened.column_type.as_str(), "date");
    let (_, version) = platform
        .run_training(
            &ctx,
            TrainRequest {
                dataset: "opened".into(),
                target: "default".into(),
                kind: FamilyName::new("logistic").unwrap(),
                model: "opened".into(),
                params: Default::default(),
                positive_label: None,
                alias: None,
                date_column: None,
                text_columns: None,
                text_buckets: None,
            },
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
    let model = platform
        .resolve(&aurum_service::ModelRef {
            name: version.model.clone(),
            selector: aurum_service::Selector::Version(version.version),
        })
        .await
        .unwrap();
    let field = model.input_schema().field("opened").unwrap();
    assert_eq!(field.format.as_deref(), Some("%d.%m.%Y"));
    assert_eq!(
        aurum_data::parse_field_cell("28.02.2005", field).unwrap(),
        Value::Date(chrono::NaiveDate::from_ymd_opt(2005, 2, 28).unwrap())
    );
}
