//! Forecasting over REST on real calendars: raw trading-day prices, 5-minute bars with daily and
//! weekly seasons, plain sequences; unknown fields, error details and `auto` backtests.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::{fixture, post_json};

const MSFT: &str = include_str!("../../../../data/timeseries/msft_daily.csv");

/// Date and close of the bundled MSFT prices, as they are (trading days only).
fn msft() -> (Vec<String>, Vec<f64>) {
    MSFT.lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].to_string(), cells[4].parse::<f64>().unwrap())
        })
        .unzip()
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_trading_day_prices_forecast_onto_the_next_trading_days() {
    let f = fixture().await;
    let (ts, vs) = msft();
    let body = json!({"series": {"timestamps": ts, "values": vs}, "horizon": 20, "model": "ets"});
    let r = post_json(&f.app, "/v1/forecast", Some(&f.client), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["frequency"], "trading days");
    assert_eq!(r.json["last_timestamp"], "2017-11-10");
    let labels: Vec<&str> = r.json["timestamps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let mut want = Vec::new();
    let mut d = chrono::NaiveDate::from_ymd_opt(2017, 11, 10).unwrap();
    while want.len() < 20 {
        d = d.succ_opt().unwrap();
        if !matches!(
            chrono::Datelike::weekday(&d),
            chrono::Weekday::Sat | chrono::Weekday::Sun
        ) {
            want.push(d.to_string());
        }
    }
    assert_eq!(labels, want);
    assert_eq!(r.json["filled_points"], 0);
    // With the exchange's holidays, the labels skip them.
    let body = json!({"series": {"timestamps": ts, "values": vs}, "horizon": 20, "model": "naive", "holidays": ["2017-11-23", "2017-12-25"]});
    let r = post_json(&f.app, "/v1/forecast", Some(&f.client), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["timestamps"][8], "2017-11-24");
    assert_eq!(r.json["timestamps"][19], "2017-12-11");
    // US month/day dates are read as such.
    let us: Vec<String> = ts[ts.len() - 60..]
        .iter()
        .map(|t| {
            let d = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").unwrap();
            d.format("%-m/%-d/%Y").to_string()
        })
        .collect();
    let body = json!({"series": {"timestamps": us, "values": vs[vs.len() - 60..]}, "horizon": 2, "model": "naive"});
    let r = post_json(&f.app, "/v1/forecast", Some(&f.client), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["timestamps"], json!(["2017-11-13", "2017-11-14"]));
}

/// Three weeks of 5-minute bars with a daily and a weekly pattern and a little noise.
fn five_minute_bars() -> (Vec<String>, Vec<f64>) {
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let mut state = 7u64;
    (0..3 * 2016)
        .map(|k| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2.0;
            let t = k as f64;
            let tau = std::f64::consts::TAU;
            let v =
                100.0 + 20.0 * (tau * t / 288.0).sin() + 10.0 * (tau * t / 2016.0).cos() + noise;
            let ts = start + chrono::Duration::minutes(5 * k as i64);
            (ts.format("%Y-%m-%dT%H:%M:%S").to_string(), v)
        })
        .unzip()
}

#[tokio::test(flavor = "multi_thread")]
async fn mstl_forecasts_five_minute_bars_with_daily_and_weekly_seasons() {
    let f = fixture().await;
    let (ts, vs) = five_minute_bars();
    let body = json!({"series": {"timestamps": ts, "values": vs}, "horizon": 288, "model": "mstl", "season_period": [288, 2016]});
    let r = post_json(&f.app, "/v1/forecast", Some(&f.client), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert!(
        r.json["model"]
            .as_str()
            .unwrap()
            .starts_with("MSTL[288,2016]"),
        "{}",
        r.json["model"]
    );
    assert_eq!(r.json["timestamps"][0], "2024-01-22T00:00:00");
    let mean: Vec<f64> = r.json["mean"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let tau = std::f64::consts::TAU;
    let mae = mean
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let t = (3 * 2016 + i) as f64;
            let truth = 100.0 + 20.0 * (tau * t / 288.0).sin() + 10.0 * (tau * t / 2016.0).cos();
            (m - truth).abs()
        })
        .sum::<f64>()
        / mean.len() as f64;
    assert!(mae < 1.5, "both seasons projected: MAE {mae}");
    // Given the same periods, `auto` compares MSTL with its other candidates and reports them all.
    let body = json!({"series": {"timestamps": ts, "values": vs}, "horizon": 288, "season_period": [288, 2016]});
    let r = post_json(&f.app, "/v1/forecast", Some(&f.client), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let names: Vec<&str> = r.json["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["model"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"mstl"), "{names:?}");
    assert!(
        r.json["model"].as_str().unwrap().starts_with("MSTL"),
        "{}",
        r.json["model"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_sequences_unknown_fields_details_and_auto_backtests() {
    let f = fixture().await;
    let vs: Vec<f64> = (0..60)
        .map(|i| 10.0 + (i % 7) as f64 + 0.1 * i as f64)
        .collect();
    // No timestamps: integer steps.
    let r = post_json(
        &f.app,
        "/v1/forecast",
        Some(&f.client),
        &json!({"series": {"values": vs}, "horizon": 3, "model": "drift"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["frequency"], "integer steps");
    assert_eq!(r.json["timestamps"], json!(["60", "61", "62"]));
    // Integer timestamps too.
    let steps: Vec<i64> = (100..160).collect();
    let r = post_json(
        &f.app,
        "/v1/forecast",
        Some(&f.client),
        &json!({"series": {"timestamps": steps, "values": vs}, "horizon": 2, "model": "naive"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["timestamps"], json!(["160", "161"]));
    // Misspelt options are refused, naming the field.
    for (uri, extra) in [
        ("/v1/forecast", "seasonal_period"),
        ("/v1/backtest", "levelz"),
    ] {
        let mut body =
            json!({"series": {"values": vs}, "horizon": 3, "models": ["naive"], "windows": 2});
        if uri == "/v1/forecast" {
            body.as_object_mut().unwrap().remove("models");
            body.as_object_mut().unwrap().remove("windows");
        }
        body[extra] = json!(7);
        let r = post_json(&f.app, uri, Some(&f.client), &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.json);
        assert_eq!(r.json["code"], "unknown_field");
        assert_eq!(r.json["details"]["field"], extra);
    }
    // Forecasting errors name their field.
    let r = post_json(
        &f.app,
        "/v1/forecast",
        Some(&f.client),
        &json!({"series": {"values": vs}, "horizon": 10_001}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["details"]["field"], "horizon", "{}", r.json);
    let r = post_json(
        &f.app,
        "/v1/decompose",
        Some(&f.client),
        &json!({"series": {"values": vs}, "periods": [7, 0]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["details"]["field"], "periods[1]", "{}", r.json);
    let r = post_json(&f.app, "/v1/forecast", Some(&f.client), &json!({"series": {"timestamps": ["2024-01-01", "2024-01-02", "2024-01-02"], "values": [1, 2, 3]}, "horizon": 1})).await;
    assert_eq!(r.json["code"], "forecast_duplicate_timestamp", "{}", r.json);
    assert_eq!(r.json["details"]["field"], "series.timestamps[2]");
    let r = post_json(&f.app, "/v1/forecast", Some(&f.client), &json!({"series": {"values": [1, 2, 3]}, "horizon": 1, "model": "seasonal_naive", "season_period": 12})).await;
    assert_eq!(r.json["code"], "forecast_too_few_points", "{}", r.json);
    assert_eq!(r.json["details"]["field"], "series.values");
    let r = post_json(&f.app, "/v1/forecast", Some(&f.client), &json!({"series": {"timestamps": ["13/10/2015", "14/10/2015"], "values": [1, 2]}, "horizon": 1})).await;
    assert_eq!(r.json["code"], "forecast_bad_timestamp", "{}", r.json);
    assert_eq!(r.json["details"]["field"], "series.timestamps[0]");
    let r = post_json(&f.app, "/v1/forecast", Some(&f.client), &json!({"series": {"timestamps": ["13/10/2015", "14/10/2015", "15/10/2015"], "values": [1, 2, 3]}, "horizon": 1, "model": "naive", "date_format": "%d/%m/%Y"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["timestamps"], json!(["2015-10-16"]));
    // `auto` is backtested as a whole, with its candidates and every window's forecast.
    let r = post_json(&f.app, "/v1/backtest", Some(&f.client), &json!({"series": {"values": vs}, "horizon": 5, "windows": 3, "models": ["auto", "naive"], "season_period": 7})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let res = r.json["results"].as_array().unwrap();
    assert_eq!(res[0]["model"], "auto");
    assert!(res[0]["selected"].is_string(), "{}", res[0]);
    assert_eq!(res[0]["windows"], 3);
    let windows = res[0]["forecasts"].as_array().unwrap();
    assert_eq!(windows.len(), 3);
    assert_eq!(
        windows[2]["timestamps"],
        json!(["55", "56", "57", "58", "59"])
    );
    assert_eq!(windows[2]["origin"], "54");
    assert_eq!(windows[2]["mean"].as_array().unwrap().len(), 5);
    assert!(res.iter().any(|m| m["model"] == "auto/ets"), "{res:?}");
    assert_eq!(res.last().unwrap()["model"], "naive");
}
