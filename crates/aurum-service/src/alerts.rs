//! Operator alerts (drift of live inputs, realised performance below the training figure),
//! handed to a sink beside the log event and the counter that always record them.
//!
//! Why a trait and not an HTTP call here: this crate links no network client (`.ci/layering`).
//! The binary installs a sink when `monitoring.webhook_url` is set (`aurum-backends`' webhook
//! sender). `deliver` must not block: alerts are raised on the scoring path.

use std::sync::Arc;

use serde::Serialize;

use crate::Platform;

/// One alert, as a sink receives it (and a webhook's JSON body).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// `drift` or `performance`.
    pub kind: &'static str,
    pub model: String,
    pub version: u32,
    pub raised_at: chrono::DateTime<chrono::Utc>,
    /// Kind-specific figures: for drift the window and every alerting feature with its PSI; for
    /// performance the realised and training AUC and the number of outcomes.
    pub details: serde_json::Value,
}

/// Where alerts go besides the log and metrics.
pub trait AlertSink: Send + Sync {
    /// Takes the alert without waiting on IO.
    fn deliver(&self, alert: Alert);
}

impl Platform {
    /// Installs the process's alert sink; `false` if one was installed already.
    pub fn set_alert_sink(&self, sink: Arc<dyn AlertSink>) -> bool {
        self.inner.alert_sink.set(sink).is_ok()
    }

    pub(crate) fn alert(&self, alert: Alert) {
        if let Some(sink) = self.inner.alert_sink.get() {
            sink.deliver(alert);
        }
    }
}
