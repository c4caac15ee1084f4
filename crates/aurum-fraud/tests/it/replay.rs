use aurum_fraud::{
    FeatureEngine, FeatureSpec, LabelRef, TrainingLabel, labels_from_events, replay,
};

use crate::common::{DAY, event, rich_spec, stream};

fn bits(row: &[f64]) -> Vec<u64> {
    row.iter().map(|x| x.to_bits()).collect()
}

/// For every event, the training row equals what a fresh live engine returns when it is fed the
/// same stream event by event up to that event, with each label delivered once it is known.
#[test]
fn replay_rows_equal_live_rows_for_every_prefix() {
    let spec = rich_spec();
    let events = stream(300, 12, 11);
    let labels = labels_from_events(&events);
    let delay = DAY;
    let matrix = replay(&spec, &events, &labels, delay).unwrap();
    assert_eq!(matrix.rows.len(), events.len());
    let mut nonzero_risk = 0;
    for (i, e) in events.iter().enumerate() {
        let live = FeatureEngine::new(&spec).unwrap();
        for prior in &events[..i] {
            live.score_and_apply(prior).unwrap();
        }
        let mut arrived: Vec<(i64, usize)> = (0..i)
            .map(|j| (events[j].ts + delay, j))
            .filter(|(k, _)| *k <= e.ts)
            .collect();
        arrived.sort_unstable();
        for (known_at, j) in arrived {
            live.add_label(
                &LabelRef::EventId(events[j].id.clone()),
                events[j].label.unwrap(),
                known_at,
            )
            .unwrap();
        }
        let row = live.features(e).unwrap();
        assert_eq!(
            bits(&row),
            bits(&matrix.rows[i]),
            "event {i} ({}): live {row:?} replay {:?}",
            e.id,
            matrix.rows[i]
        );
        nonzero_risk += usize::from(row[13] > 0.0);
    }
    // The check is not vacuous: label features do move in this stream.
    assert!(nonzero_risk > 20, "{nonzero_risk}");
}

/// A label younger than the delay (event inside the delay gap), or known only after the event,
/// is not used, though using it would change the value.
#[test]
fn labels_are_used_only_once_known_and_delayed() {
    let spec = FeatureSpec::from_toml_str(
        r#"
[schema]
id = "id"
timestamp = "ts"
amount = "amount"
entities = ["customer", "terminal"]
[[features]]
kind = "fraud_count"
entity = "terminal"
window = "7d"
delay = "2d"
"#,
    )
    .unwrap();
    let events = vec![
        event("fraud", 0, "a", "T", 10.0),
        event("d1", DAY, "b", "T", 10.0), // fraud is inside the 2-day delay gap
        event("d3", 3 * DAY, "b", "T", 10.0), // fraud is in the window, but its label is known at day 7
        event("d8", 8 * DAY, "b", "T", 10.0), // in the window and known
    ];
    let label = |known_at| {
        vec![TrainingLabel {
            event_id: "fraud".into(),
            fraud: true,
            known_at,
        }]
    };
    let honest = replay(&spec, &events, &label(None), 7 * DAY).unwrap();
    assert_eq!(
        honest.rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        [0.0, 0.0, 0.0, 1.0]
    );
    // Had the label been known at once, day 3 would see it: the value depends on the rule.
    let instant = replay(&spec, &events, &label(Some(0)), 7 * DAY).unwrap();
    assert_eq!(
        instant.rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        [0.0, 0.0, 1.0, 1.0]
    );
    // Known at once but younger than the delay: day 1 still does not see it.
    assert_eq!(instant.rows[1][0], 0.0);
    // An explicit later known_at overrides the default delay.
    let late = replay(&spec, &events, &label(Some(9 * DAY)), DAY).unwrap();
    assert_eq!(late.rows[3][0], 0.0);
}

#[test]
fn replay_refuses_unsorted_events_and_stray_labels() {
    let spec = rich_spec();
    let mut events = stream(20, 2, 3);
    let stray = vec![TrainingLabel {
        event_id: "nope".into(),
        fraud: true,
        known_at: None,
    }];
    let err = replay(&spec, &events, &stray, DAY).unwrap_err();
    assert_eq!(
        err.to_string(),
        "labels: event `nope` is not in the replayed events"
    );
    events.swap(0, 19);
    let err = replay(&spec, &events, &[], DAY).unwrap_err();
    assert!(
        err.to_string().starts_with("events[1]: event field `ts`"),
        "{err}"
    );
}

#[test]
fn feature_matrix_writes_csv() {
    let spec = rich_spec();
    let events = stream(5, 1, 5);
    let m = replay(&spec, &events, &labels_from_events(&events), DAY).unwrap();
    let mut out = Vec::new();
    m.write_csv(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("id,ts,amount,customer_count_1d,"),
        "{header}"
    );
    assert!(
        header.ends_with(",customer_fraud_rate_2d_delay_12h,label"),
        "{header}"
    );
    assert_eq!(lines.count(), 5);
}
