//! What the unit tests of this crate share: a spec's schema and events under it.

use crate::event::Event;

/// The `[schema]` of the unit tests' specs: two entity keys, an amount, no label.
pub(crate) const SCHEMA: &str = r#"
[schema]
id = "id"
timestamp = "ts"
amount = "amount"
entities = ["customer_id", "terminal_id"]
"#;

/// An event under [`SCHEMA`]: customer `c`, terminal `t`.
pub(crate) fn ev(id: &str, ts: i64, c: &str, t: &str, amount: f64) -> Event {
    Event {
        id: id.into(),
        ts,
        keys: vec![c.into(), t.into()],
        amount: Some(amount),
        label: None,
        extra: Default::default(),
    }
}
