//! Long forecasting fits as training jobs: queued at once, and stopped inside the optimiser when
//! the job is cancelled.

use std::time::{Duration, Instant};

use aurum_service::{CallContext, Config, ForecastSpec, Platform};

/// Thirty weekdays of 5-minute bars in a 07:00–21:00 session (169 bars a day), with a daily
/// pattern: the shape of the intraday call-volume series that take tens of seconds to fit with a
/// seasonal ETS of period 169.
fn session_bars() -> Vec<u8> {
    let mut csv = String::from("time,volume\n");
    let mut day = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let mut days = 0;
    let mut k = 0u64;
    while days < 30 {
        if !matches!(
            chrono::Datelike::weekday(&day),
            chrono::Weekday::Sat | chrono::Weekday::Sun
        ) {
            for bar in 0..169u32 {
                let t = day.and_hms_opt(7, 0, 0).unwrap()
                    + chrono::Duration::minutes(5 * i64::from(bar));
                let wobble = ((k * 2_654_435_761) % 1000) as f64 / 100.0;
                let v =
                    50.0 + 30.0 * (std::f64::consts::PI * f64::from(bar) / 168.0).sin() + wobble;
                csv.push_str(&format!("{},{v:.2}\n", t.format("%Y-%m-%d %H:%M:%S")));
                k += 1;
            }
            days += 1;
        }
        day = day.succ_opt().unwrap();
    }
    csv.into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_forecast_job_stops_its_fit() {
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
            "calls",
            session_bars(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let spec = ForecastSpec {
        model: "ets".into(),
        horizon: 169,
        season_periods: vec![169],
        ..ForecastSpec::default()
    };
    let job = platform
        .submit_forecast_training(&ctx, "calls", "calls", "time", "volume", spec, None)
        .await
        .unwrap();
    // Let the fit get going, then cancel it.
    let started = Instant::now();
    while platform.get_job(&job.id).await.unwrap().state.as_str() == "queued" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the job never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    platform.cancel_job(&ctx, &job.id).await.unwrap();
    // The job only leaves `running` once the fit's thread has returned.
    let state = loop {
        let state = platform.get_job(&job.id).await.unwrap().state;
        if state.as_str() != "running" {
            break state;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "the fit kept running after the cancel"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(state.as_str(), "cancelled");
    assert!(
        platform
            .list_versions("calls")
            .await
            .map_or(true, |v| v.is_empty())
    );
}
