//! Human-readable rendering for the terminal.

use aurum_service::types::DatasetProfile;

pub fn print_profile(profile: &DatasetProfile) {
    println!(
        "{:<45} {:<12} {:>8} {:>8}  summary",
        "column", "type", "missing%", "distinct"
    );
    for c in &profile.columns {
        let summary = match &c.numeric {
            Some(n) => format!(
                "min {} max {} mean {:.3} std {:.3}",
                n.min, n.max, n.mean, n.std
            ),
            None => c
                .top_values
                .iter()
                .take(3)
                .map(|(v, n)| format!("{v} ({n})"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let warnings = if c.warnings.is_empty() {
            String::new()
        } else {
            format!(
                "  [{}]",
                c.warnings
                    .iter()
                    .map(|w| format!("{w:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        println!(
            "{:<45} {:<12} {:>7.1}% {:>8}  {}{}",
            c.name,
            c.column_type.as_str(),
            c.missing_pct,
            c.distinct_count,
            summary,
            warnings
        );
    }
}

pub fn print_metrics(metrics_json: &str) {
    let metrics: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(metrics_json).unwrap_or_default();
    let shown: Vec<String> = [
        "auc",
        "gini",
        "ks",
        "log_loss",
        "brier",
        "accuracy",
        "train_auc",
        "test_rows",
    ]
    .iter()
    .filter_map(|k| {
        metrics
            .get(*k)
            .and_then(|v| v.as_f64())
            .map(|v| format!("{k} {v:.4}"))
    })
    .collect();
    println!("   held-out metrics: {}", shown.join("  "));
}
