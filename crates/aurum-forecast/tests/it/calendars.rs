//! Calendars: trading days with holidays, intraday sessions, integer-indexed series and the date
//! forms people write.

use aurum_forecast::{CsvOptions, FillPolicy, Frequency, ParsedSeries, parse_timestamp, read_csv};
use chrono::NaiveDate;

use crate::common::data;

fn read(text: &str, opts: CsvOptions) -> ParsedSeries {
    read_csv(text.as_bytes(), &opts).expect("parses").remove(0)
}

fn ts(s: &str) -> chrono::NaiveDateTime {
    parse_timestamp(s).expect("valid timestamp")
}

fn labels(p: &ParsedSeries, h: usize) -> Vec<String> {
    p.series
        .future_timestamps(h)
        .into_iter()
        .map(|t| p.series.frequency.label(t))
        .collect()
}

#[test]
fn msft_forecasts_are_labelled_with_the_next_trading_days() {
    let opts = |holidays: Vec<NaiveDate>| CsvOptions {
        value_columns: vec!["Close".into()],
        holidays,
        ..CsvOptions::default()
    };
    let p = read_csv(&data("msft_daily.csv"), &opts(Vec::new()))
        .expect("raw trading days parse")
        .remove(0);
    assert_eq!(p.series.timestamps.last(), Some(&ts("2017-11-10")));
    let plain = labels(&p, 20);
    assert_eq!(plain[0], "2017-11-13");
    assert_eq!(plain[4], "2017-11-17");
    assert_eq!(plain[5], "2017-11-20");
    assert_eq!(plain[19], "2017-12-08");
    assert!(plain.iter().all(|d| {
        let w = chrono::Datelike::weekday(&NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap());
        !matches!(w, chrono::Weekday::Sat | chrono::Weekday::Sun)
    }));
    // With the exchange's Thanksgiving holiday, the 20th trading day is one later.
    let thanksgiving = NaiveDate::from_ymd_opt(2017, 11, 23).unwrap();
    let p = read_csv(&data("msft_daily.csv"), &opts(vec![thanksgiving]))
        .expect("parses")
        .remove(0);
    let with = labels(&p, 20);
    assert!(!with.contains(&"2017-11-23".to_string()));
    assert_eq!(with[8], "2017-11-24");
    assert_eq!(with[19], "2017-12-11");
}

#[test]
fn us_dates_and_day_first_dates_with_a_format() {
    let us = read(
        "d,v\n9/30/2015,1\n10/1/2015,2\n10/2/2015,3\n10/5/2015,4\n",
        CsvOptions::default(),
    );
    assert_eq!(us.series.timestamps[1], ts("2015-10-01"));
    assert_eq!(us.series.frequency, Frequency::TradingDays);
    assert_eq!(labels(&us, 1), ["2015-10-06"]);

    // 13/10/2015 is no US date: refused, with the way out in the message.
    let eu = "d,v\n12/10/2015,1\n13/10/2015,2\n14/10/2015,3\n";
    let err = read_csv(eu.as_bytes(), &CsvOptions::default()).expect_err("day-first");
    assert!(err.to_string().contains("date_format"), "{err}");
    let eu = read(
        eu,
        CsvOptions {
            date_format: Some("%d/%m/%Y".into()),
            ..CsvOptions::default()
        },
    );
    assert_eq!(eu.series.timestamps[0], ts("2015-10-12"));
    let bad = read_csv(
        b"d,v\n1,2\n",
        &CsvOptions {
            date_format: Some("%Q".into()),
            ..CsvOptions::default()
        },
    )
    .expect_err("not a format");
    assert!(bad.to_string().contains("date_format"), "{bad}");
}

#[test]
fn integer_indexed_series_are_plain_sequences() {
    let p = read("step,v\n1,10\n2,11\n3,12\n4,13\n", CsvOptions::default());
    assert_eq!(p.series.frequency, Frequency::Index);
    assert_eq!(labels(&p, 3), ["5", "6", "7"]);
    // A missing step is a gap like any other.
    let err = read_csv(b"step,v\n1,10\n2,11\n4,13\n", &CsvOptions::default()).expect_err("gap");
    assert_eq!(err.code(), "forecast_gap");
    // Four-digit years stay years.
    let y = read("y,v\n2020,1\n2021,2\n2022,3\n", CsvOptions::default());
    assert_eq!(y.series.frequency, Frequency::Yearly);
}

/// Three days (Fri, Mon, Tue) of 30-minute bars from 09:30 to 15:30.
fn session_csv() -> String {
    let mut s = String::from("t,v\n");
    let mut k = 0;
    for day in ["2024-03-01", "2024-03-04", "2024-03-05"] {
        for bar in 0..13 {
            let mins = 9 * 60 + 30 + 30 * bar;
            s.push_str(&format!(
                "{day} {:02}:{:02}:00,{}\n",
                mins / 60,
                mins % 60,
                k
            ));
            k += 1;
        }
    }
    s
}

#[test]
fn intraday_sessions_continue_at_the_next_open() {
    let p = read(&session_csv(), CsvOptions::default());
    assert_eq!(
        p.series.frequency,
        Frequency::Session {
            seconds: 1800,
            open: 9 * 3600 + 1800,
            close: 16 * 3600,
            weekdays_only: true,
        }
    );
    assert_eq!(p.series.frequency.default_season_period(), 13);
    let next = labels(&p, 14);
    assert_eq!(next[0], "2024-03-06T09:30:00");
    assert_eq!(next[12], "2024-03-06T15:30:00");
    assert_eq!(next[13], "2024-03-07T09:30:00");
    // A given session shortens the day: bars after its close are refused.
    let err = read_csv(
        session_csv().as_bytes(),
        &CsvOptions {
            session: Some((9 * 3600 + 1800, 15 * 3600)),
            ..CsvOptions::default()
        },
    )
    .expect_err("15:00 bar is after the close");
    assert_eq!(err.code(), "forecast_unknown_frequency", "{err}");
    // A missing value inside a session is still a missing value.
    let holey = session_csv().replace(",5\n", ",\n");
    let err = read_csv(holey.as_bytes(), &CsvOptions::default()).expect_err("missing");
    assert_eq!(err.code(), "forecast_missing_value");
    let filled = read(
        &holey,
        CsvOptions {
            fill: FillPolicy::Linear,
            ..CsvOptions::default()
        },
    );
    assert_eq!(filled.series.values[5], 5.0);
}
