//! Versioned JSON artifacts and state updates without refitting.

use aurum_forecast::{
    ArimaMethod, ArimaOrder, ArimaSpec, AutoArimaSpec, EtsSpec, FORMAT_VERSION, FittedModel,
    ForecastError, Forecaster, ModelSpec, Pipeline, Transform,
};

use crate::common::{log_airline, series};

fn specs() -> Vec<Pipeline> {
    vec![
        ModelSpec::Naive.into(),
        ModelSpec::SeasonalNaive { period: 12 }.into(),
        ModelSpec::MovingAverage { window: 6 }.into(),
        ModelSpec::Drift.into(),
        ModelSpec::Mean.into(),
        ModelSpec::Ets(EtsSpec::auto(12)).into(),
        ModelSpec::Arima(ArimaSpec {
            order: ArimaOrder::new(0, 1, 1).seasonal(0, 1, 1, 12),
            constant: false,
            method: ArimaMethod::CssMl,
        })
        .into(),
        Pipeline {
            model: ModelSpec::Arima(ArimaSpec {
                order: ArimaOrder::new(1, 1, 0),
                constant: true,
                method: ArimaMethod::CssMl,
            }),
            transform: Transform::Log,
            bias_adjust: true,
        },
    ]
}

#[test]
fn every_family_round_trips_and_updates_identically() {
    let s = series("airline_passengers.csv", "Passengers");
    let train = aurum_forecast::Series {
        timestamps: s.timestamps[..132].to_vec(),
        values: s.values[..132].to_vec(),
        ..s.clone()
    };
    for spec in specs() {
        let mut fitted = spec.fit_series(&train).expect("fits");
        let json = fitted.to_json().expect("serialises");
        let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(value["format_version"], FORMAT_VERSION);
        assert_eq!(value["kind"], "aurum-forecast-model");
        let mut loaded = FittedModel::from_json(&json).expect("loads");
        assert_eq!(loaded, fitted, "{}", spec.name());
        let a = fitted.forecast(12, &[80.0, 95.0]).expect("fc");
        let b = loaded.forecast(12, &[80.0, 95.0]).expect("fc");
        assert_eq!(a, b);

        // Updating in two steps, or after a round trip, gives the same state.
        fitted.update(&s.values[132..138]).expect("updates");
        fitted.update(&s.values[138..144]).expect("updates");
        loaded.update(&s.values[132..144]).expect("updates");
        let a = fitted.forecast(6, &[95.0]).expect("fc");
        let b = loaded.forecast(6, &[95.0]).expect("fc");
        for i in 0..6 {
            assert!((a.mean[i] - b.mean[i]).abs() <= 1e-9 * a.mean[i].abs().max(1.0));
        }
        assert_eq!(fitted.last_timestamp, s.timestamps.last().copied());
        assert_eq!(
            a.timestamps.expect("calendar known")[0]
                .format("%Y-%m")
                .to_string(),
            "1961-01"
        );
        assert_eq!(fitted.n_obs, 144);
    }
}

#[test]
fn updated_arima_forecasts_track_the_new_data() {
    let y = log_airline();
    let spec = ModelSpec::AutoArima(AutoArimaSpec {
        period: 12,
        ..AutoArimaSpec::default()
    });
    let mut model = spec.fit(&y[..120]).expect("fits");
    let before = model.arima().expect("arima").clone();
    model.update(&y[120..]).expect("updates");
    let after = model.arima().expect("arima");
    assert_eq!(before.ma, after.ma, "parameters are not refitted");
    assert_eq!(before.sigma2, after.sigma2);
    // The one-step forecast after the update is close to a fresh fit's.
    let fresh = ModelSpec::Arima(ArimaSpec {
        order: after.order,
        constant: after.constant.is_some(),
        method: ArimaMethod::CssMl,
    })
    .fit(&y)
    .expect("fits");
    let a = model.forecast(1, &[95.0]).expect("fc").mean[0];
    let b = fresh.forecast(1, &[95.0]).expect("fc").mean[0];
    assert!((a - b).abs() < 0.02, "{a} vs {b}");
}

#[test]
fn artifacts_from_other_versions_are_refused() {
    let fitted = ModelSpec::Naive.fit(&[1.0, 2.0, 3.0]).expect("fits");
    let json = fitted.to_json().expect("serialises");
    let newer = json.replace("\"format_version\":1", "\"format_version\":2");
    assert_eq!(
        FittedModel::from_json(&newer),
        Err(ForecastError::BadArtifact(
            "format_version 2 is not supported by this build (it reads version 1)".into()
        ))
    );
    let other = json.replace("aurum-forecast-model", "aurum-tabular-model");
    assert!(matches!(
        FittedModel::from_json(&other),
        Err(ForecastError::BadArtifact(_))
    ));
    assert!(matches!(
        FittedModel::from_json("{"),
        Err(ForecastError::BadArtifact(_))
    ));
    let broken = json.replace("\"window\"", "\"wnidow\"");
    assert!(matches!(
        FittedModel::from_json(&broken),
        Err(ForecastError::BadArtifact(_))
    ));
}
