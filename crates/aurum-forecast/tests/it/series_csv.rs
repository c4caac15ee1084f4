//! CSV ingest: shapes, frequency inference, fill policies and every error case.

use aurum_forecast::{
    CsvOptions, FillPolicy, FillReason, ForecastError, Frequency, ParsedSeries, Series, TimeColumn,
    parse_timestamp, read_csv,
};

use crate::common::data;

fn opts(fill: FillPolicy) -> CsvOptions {
    CsvOptions {
        fill,
        ..CsvOptions::default()
    }
}

fn read(text: &str, fill: FillPolicy) -> Result<Vec<ParsedSeries>, ForecastError> {
    read_csv(text.as_bytes(), &opts(fill))
}

fn one(text: &str, fill: FillPolicy) -> ParsedSeries {
    read(text, fill).expect("parses").remove(0)
}

fn ts(s: &str) -> chrono::NaiveDateTime {
    parse_timestamp(s).expect("valid timestamp")
}

#[test]
fn bundled_series_and_their_frequencies() {
    let air = read_csv(&data("airline_passengers.csv"), &CsvOptions::default()).expect("parses");
    assert_eq!(air.len(), 1);
    assert_eq!(air[0].series.frequency, Frequency::Monthly);
    assert_eq!(air[0].series.len(), 144);
    assert!(air[0].report.is_clean());
    assert_eq!(air[0].series.future_timestamps(1), vec![ts("1961-01-01")]);

    let us = read_csv(&data("us_change.csv"), &CsvOptions::default()).expect("parses");
    let columns: Vec<&str> = us.iter().map(|p| p.series.column.as_str()).collect();
    assert_eq!(
        columns,
        [
            "Consumption",
            "Income",
            "Production",
            "Savings",
            "Unemployment"
        ]
    );
    assert!(
        us.iter()
            .all(|p| p.series.frequency == Frequency::Quarterly)
    );
    assert_eq!(us[0].series.timestamps[0], ts("1970-01-01"));
    assert_eq!(us[0].series.len(), 187);

    let macro_opts = CsvOptions {
        time: TimeColumn::YearQuarter {
            year: "year".into(),
            quarter: "quarter".into(),
        },
        value_columns: vec!["realgdp".into()],
        ..CsvOptions::default()
    };
    let gdp = read_csv(&data("us_macrodata.csv"), &macro_opts).expect("parses");
    assert_eq!(gdp[0].series.frequency, Frequency::Quarterly);
    assert_eq!(gdp[0].series.len(), 203);
}

#[test]
fn market_data_is_on_its_trading_days_and_the_weekday_grid_on_request() {
    let bytes = data("msft_daily.csv");
    let close = |fill, frequency| CsvOptions {
        value_columns: vec!["Close".into()],
        fill,
        frequency,
        ..CsvOptions::default()
    };
    // As it is: the observed trading days, holidays are not gaps.
    let parsed = read_csv(&bytes, &close(FillPolicy::None, None))
        .expect("trading days need no fill policy")
        .remove(0);
    assert_eq!(parsed.series.frequency, Frequency::TradingDays);
    assert_eq!(parsed.series.len(), 7983);
    assert!(parsed.report.is_clean());
    // On the weekday grid the holidays are gaps, refused without a fill policy.
    let err = read_csv(
        &bytes,
        &close(FillPolicy::None, Some(Frequency::BusinessDaily)),
    )
    .expect_err("holidays are gaps on the weekday grid");
    match &err {
        ForecastError::Gap { frequency, .. } => assert_eq!(frequency, "business-daily"),
        other => panic!("expected a gap error, got {other:?}"),
    }
    let filled = read_csv(&bytes, &close(FillPolicy::Ffill, None))
        .expect("ffill fills the weekday grid")
        .remove(0);
    assert_eq!(filled.series.frequency, Frequency::BusinessDaily);
    assert!(filled.report.gaps > 0 && !filled.report.filled.is_empty());
}

#[test]
fn frequency_inference() {
    let cases = [
        (
            "2024-01-06,1\n2024-01-07,2\n2024-01-08,3\n",
            Frequency::Daily,
        ),
        (
            "2024-01-05,1\n2024-01-08,2\n2024-01-09,3\n",
            Frequency::TradingDays,
        ),
        (
            "2024-01-01,1\n2024-01-08,2\n2024-01-15,3\n",
            Frequency::Weekly,
        ),
        (
            "2024-01-31,1\n2024-02-29,2\n2024-03-31,3\n",
            Frequency::Monthly,
        ),
        (
            "2024-01-15,1\n2024-02-15,2\n2024-03-15,3\n",
            Frequency::Monthly,
        ),
        ("2024 Q1,1\n2024 Q2,2\n2024 Q3,3\n", Frequency::Quarterly),
        ("2020,1\n2021,2\n2022,3\n", Frequency::Yearly),
        (
            "2024-01-01 09:00:00,1\n2024-01-01 09:05:00,2\n2024-01-01 09:10:00,3\n",
            Frequency::Intraday { seconds: 300 },
        ),
        (
            "2024-01-01T09:00:00Z,1\n2024-01-01T10:00:00Z,2\n2024-01-01T11:00:00Z,3\n",
            Frequency::Intraday { seconds: 3600 },
        ),
    ];
    for (body, want) in cases {
        let p = one(&format!("t,v\n{body}"), FillPolicy::None);
        assert_eq!(p.series.frequency, want, "{body}");
    }
    assert_eq!(
        Frequency::Intraday { seconds: 3600 }.default_season_period(),
        24
    );
    assert_eq!(Frequency::Monthly.default_season_period(), 12);
    assert_eq!(Frequency::BusinessDaily.default_season_period(), 5);
}

const HOLEY: &str =
    "date,value\n2024-01-01,1\n2024-01-02,2\n2024-01-03,\n2024-01-04,4\n2024-01-06,8\n";

#[test]
fn fill_policies() {
    let values = |fill| one(HOLEY, fill).series.values;
    assert_eq!(values(FillPolicy::Ffill), [1.0, 2.0, 2.0, 4.0, 4.0, 8.0]);
    assert_eq!(values(FillPolicy::Linear), [1.0, 2.0, 3.0, 4.0, 6.0, 8.0]);
    assert_eq!(values(FillPolicy::Zero), [1.0, 2.0, 0.0, 4.0, 0.0, 8.0]);
    assert_eq!(values(FillPolicy::Drop), [1.0, 2.0, 4.0, 8.0]);

    let linear = one(HOLEY, FillPolicy::Linear);
    assert_eq!(linear.report.missing_values, 1);
    assert_eq!(linear.report.gaps, 1);
    let filled: Vec<_> = linear
        .report
        .filled
        .iter()
        .map(|f| (f.timestamp, f.value, f.reason))
        .collect();
    assert_eq!(
        filled,
        [
            (ts("2024-01-03"), 3.0, FillReason::MissingValue),
            (ts("2024-01-05"), 6.0, FillReason::Gap),
        ]
    );
    assert_eq!(linear.series.timestamps.len(), 6);

    let dropped = one(HOLEY, FillPolicy::Drop);
    assert_eq!(dropped.report.dropped, [ts("2024-01-03")]);
    assert_eq!(
        dropped.series.timestamps,
        [
            ts("2024-01-01"),
            ts("2024-01-02"),
            ts("2024-01-04"),
            ts("2024-01-06")
        ]
    );

    // Leading missing values cannot be forward-filled: they are trimmed and reported.
    let lead = one(
        "d,v\n2024-01-01,NA\n2024-01-02,5\n2024-01-03,nan\n2024-01-04,7\n",
        FillPolicy::Ffill,
    );
    assert_eq!(lead.series.values, [5.0, 5.0, 7.0]);
    assert_eq!(lead.report.dropped, [ts("2024-01-01")]);
}

#[test]
fn missing_values_without_a_fill_policy_are_errors() {
    let err = read(HOLEY, FillPolicy::None).expect_err("missing value");
    assert_eq!(
        err.to_string(),
        "line 4, column `value`: missing value at 2024-01-03; choose a fill policy (ffill, \
         linear, zero, drop) to handle missing values"
    );
    assert_eq!(err.code(), "forecast_missing_value");
    assert!(err.is_user_error());

    let gap = "d,v\n2024-01-01,1\n2024-01-02,2\n2024-01-05,5\n2024-01-06,6\n";
    let err = read(gap, FillPolicy::None).expect_err("gap");
    assert_eq!(
        err.to_string(),
        "2 timestamp(s) missing from the daily grid, the first 2024-01-03 (after line 3); \
         choose a fill policy (ffill, linear, zero, drop)"
    );
}

#[test]
fn order_errors_name_the_line_and_timestamp() {
    let err = read(
        "d,v\n2024-01-01,1\n2024-01-03,2\n2024-01-02,3\n",
        FillPolicy::None,
    )
    .expect_err("not sorted");
    assert_eq!(
        err.to_string(),
        "line 4: timestamp 2024-01-02 is earlier than 2024-01-03 on the line before; rows must \
         be sorted by time"
    );
    let err = read(
        "d,v\n2024-01-01,1\n2024-01-02,2\n2024-01-02,3\n",
        FillPolicy::Ffill,
    )
    .expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        "line 4: duplicate timestamp 2024-01-02 (first seen on line 3)"
    );
    assert_eq!(err.code(), "forecast_duplicate_timestamp");
}

#[test]
fn cell_and_column_errors() {
    let err = read("d,v\n2024-01-01,1\n2024-13-45,2\n", FillPolicy::None).expect_err("bad date");
    assert!(
        matches!(err, ForecastError::BadTimestamp { line: 3, .. }),
        "{err}"
    );
    let err = read("d,v\n2024-01-01,1\n2024-01-02,abc\n", FillPolicy::None).expect_err("bad value");
    assert_eq!(
        err.to_string(),
        "line 3, column `v`: cannot parse `abc` as a number"
    );
    let err = read_csv(
        b"d,v\n2024-01-01,1\n",
        &CsvOptions {
            value_columns: vec!["price".into()],
            ..CsvOptions::default()
        },
    )
    .expect_err("no such column");
    assert_eq!(
        err.to_string(),
        "column `price` is not in the header (columns: d, v)"
    );
    assert_eq!(read("d,v\n", FillPolicy::None), Err(ForecastError::NoData));
    let err = read("d,v\n2024-01-01,1,9\n", FillPolicy::None).expect_err("ragged");
    assert!(matches!(err, ForecastError::Csv { line: 2, .. }), "{err}");
    let err = read(
        "d,v\n2024-01-01,1\n2024-01-04,2\n2024-01-11,3\n",
        FillPolicy::None,
    )
    .expect_err("irregular");
    assert_eq!(err.code(), "forecast_unknown_frequency");
}

#[test]
fn long_format_with_interleaved_ids() {
    let text = "id,date,value\na,2024-01-01,1\nb,2024-01-01,10\na,2024-01-02,2\nb,2024-01-02,20\n\
                a,2024-01-03,3\nb,2024-01-03,30\n";
    let parsed = read_csv(
        text.as_bytes(),
        &CsvOptions {
            time: TimeColumn::Named("date".into()),
            id_column: Some("id".into()),
            ..CsvOptions::default()
        },
    )
    .expect("parses");
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].series.id.as_deref(), Some("a"));
    assert_eq!(parsed[0].series.values, [1.0, 2.0, 3.0]);
    assert_eq!(parsed[1].series.values, [10.0, 20.0, 30.0]);

    let bad = "id,date,value\na,2024-01-01,1\na,2024-01-02,2\nb,2024-01-02,10\nb,2024-01-01,20\n";
    let err = read_csv(
        bad.as_bytes(),
        &CsvOptions {
            time: TimeColumn::Named("date".into()),
            id_column: Some("id".into()),
            ..CsvOptions::default()
        },
    )
    .expect_err("b goes backwards");
    assert!(err.to_string().starts_with("series `b`: line 5:"), "{err}");
}

#[test]
fn too_few_points_for_the_requested_seasonality() {
    let s = Series::from_values((0..10).map(f64::from).collect());
    let err = s.require_seasonal(12).expect_err("10 < 24");
    assert_eq!(
        err.to_string(),
        "seasonality with period 12 needs at least 24 observations, the series has 10"
    );
    assert!(s.require_seasonal(4).is_ok());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any daily series with random holes: linear fill keeps the observed values, lays out the
        /// full grid, and reports exactly the holes it filled.
        #[test]
        fn linear_fill_restores_the_grid(
            values in proptest::collection::vec(-1e6f64..1e6, 3..60),
            holes in proptest::collection::vec(any::<bool>(), 60),
        ) {
            let n = values.len();
            let start = ts("2024-01-01");
            let mut text = String::from("d,v\n");
            let mut kept = 0;
            for (i, v) in values.iter().enumerate() {
                let hole = holes[i] && i != 0 && i != n - 1;
                if !hole {
                    kept += 1;
                    let t = start + chrono::Duration::days(i as i64);
                    text.push_str(&format!("{},{v}\n", t.format("%Y-%m-%d")));
                }
            }
            let p = read_csv(
                text.as_bytes(),
                &CsvOptions {
                    fill: FillPolicy::Linear,
                    frequency: Some(Frequency::Daily),
                    ..CsvOptions::default()
                },
            )
            .expect("parses")
            .remove(0);
            prop_assert_eq!(p.series.len(), n);
            prop_assert_eq!(p.report.filled.len(), n - kept);
            prop_assert_eq!(p.report.gaps, n - kept);
            for (i, v) in values.iter().enumerate() {
                if !(holes[i] && i != 0 && i != n - 1) {
                    prop_assert_eq!(p.series.values[i], *v);
                }
            }
        }
    }
}
