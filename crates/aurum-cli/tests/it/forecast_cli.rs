//! `aurum forecast` on a raw trading-day price file, and its ARIMA order flag.

use std::process::Command;

const MSFT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/timeseries/msft_daily.csv"
);

#[test]
fn raw_daily_prices_forecast_onto_the_next_trading_days_without_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aurum"))
        .current_dir(dir.path())
        .args([
            "forecast",
            "--data",
            MSFT,
            "--date",
            "Date",
            "--value",
            "Close",
            "--horizon",
            "20",
            "--model",
            "ets",
            "--json",
        ])
        .env_remove("AURUM_LOG")
        .env_remove("AURUM_DATA_DIR")
        .output()
        .expect("run aurum");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let labels: Vec<&str> = json["timestamps"]
        .as_array()
        .expect("timestamps")
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 20);
    assert_eq!(labels[0], "2017-11-13");
    assert_eq!(labels[5], "2017-11-20", "the weekend is skipped");
    assert_eq!(labels[19], "2017-12-08");
    assert!(
        !dir.path().join("aurum-data").exists(),
        "a one-shot forecast creates no data directory"
    );

    let arima = Command::new(env!("CARGO_BIN_EXE_aurum"))
        .current_dir(dir.path())
        .args([
            "forecast",
            "--data",
            MSFT,
            "--date",
            "Date",
            "--value",
            "Close",
            "--horizon",
            "5",
            "--model",
            "arima",
            "--order",
            "0,1,1",
        ])
        .env_remove("AURUM_DATA_DIR")
        .output()
        .expect("run aurum");
    let text = String::from_utf8_lossy(&arima.stdout);
    assert!(
        arima.status.success(),
        "{}",
        String::from_utf8_lossy(&arima.stderr)
    );
    assert!(text.contains("ARIMA(0,1,1)"), "{text}");
    let bad = Command::new(env!("CARGO_BIN_EXE_aurum"))
        .current_dir(dir.path())
        .args([
            "forecast",
            "--data",
            MSFT,
            "--date",
            "Date",
            "--value",
            "Close",
            "--horizon",
            "5",
            "--model",
            "arima",
            "--order",
            "0,1",
        ])
        .output()
        .expect("run aurum");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--order"));
}
