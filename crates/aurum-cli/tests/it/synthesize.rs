//! `aurum data synthesize` end to end: a small real file in, a registered dataset with lineage
//! and a report out.

use crate::{GERMAN, aurum, ok};

#[test]
fn synthesize_a_file_into_a_dataset_with_lineage_and_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The first 300 rows of German credit (about 90 `bad`), as a file of its own.
    let text = std::fs::read_to_string(GERMAN).unwrap();
    let small: Vec<&str> = text.lines().take(301).collect();
    let file = dir.path().join("german_small.csv");
    std::fs::write(&file, small.join("\n") + "\n").unwrap();
    let report = dir.path().join("report.json");
    let out = aurum(
        &data,
        &[
            "data",
            "synthesize",
            "--dataset",
            file.to_str().unwrap(),
            "--target",
            "creditability",
            "--class",
            "bad",
            "--rows",
            "60",
            "--method",
            "vae",
            "--seed",
            "3",
            "--epochs",
            "5",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    let stdout = ok(&out);
    assert!(stdout.contains("dataset `german_small`"), "{stdout}");
    assert!(
        stdout.contains("created dataset `german_small-vae-60-s3`: 360 rows"),
        "{stdout}"
    );
    assert!(
        stdout.contains("real+smote") && stdout.contains("real+vae"),
        "{stdout}"
    );
    // The report: three utility rows on the same held-out rows, privacy for both generators.
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let utility = r["utility"].as_array().unwrap();
    assert_eq!(utility.len(), 3, "{r}");
    assert_eq!(
        utility[1]["rows"].as_u64().unwrap(),
        utility[0]["rows"].as_u64().unwrap() + 60
    );
    for u in utility {
        let auc = u["auc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auc), "{u}");
        assert!(u["pr_auc"].as_f64().is_some(), "{u}");
    }
    let privacy = r["privacy"].as_array().unwrap();
    let from: Vec<&str> = privacy
        .iter()
        .map(|p| p["rows_from"].as_str().unwrap())
        .collect();
    assert_eq!(from, ["smote", "vae", "real_holdout"]);
    assert!(
        privacy
            .iter()
            .all(|p| p["median"].as_f64().unwrap() >= p["p5"].as_f64().unwrap())
    );
    // The dataset is registered with its lineage.
    let shown = ok(&aurum(
        &data,
        &["data", "show", "german_small-vae-60-s3", "--json"],
    ));
    let d: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(d["rows"], 360);
    let lineage = &d["lineage"]["lineage"];
    assert_eq!(lineage["source"], "german_small", "{d}");
    assert_eq!(lineage["method"], "vae");
    assert_eq!(lineage["seed"], 3);
    assert_eq!(lineage["class"], "bad");
    assert_eq!(lineage["params"]["epochs"], 5);
    // The report asked for is stored with the dataset.
    assert_eq!(d["lineage"]["report"]["utility"], r["utility"], "{d}");
    // The same command again changes nothing (same seed, same bytes).
    let again = ok(&aurum(
        &data,
        &[
            "data",
            "synthesize",
            "--dataset",
            "german_small",
            "--target",
            "creditability",
            "--class",
            "bad",
            "--rows",
            "60",
            "--method",
            "vae",
            "--seed",
            "3",
            "--epochs",
            "5",
        ],
    ));
    assert!(
        again.contains("unchanged: dataset `german_small-vae-60-s3`"),
        "{again}"
    );
    // A bad field is an error naming it.
    let out = aurum(
        &data,
        &[
            "data",
            "synthesize",
            "--dataset",
            "german_small",
            "--target",
            "creditability",
            "--class",
            "bad",
            "--rows",
            "10",
            "--method",
            "gan",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gan"), "{stderr}");
}
