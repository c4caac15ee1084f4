//! The alert webhook: drift and performance alerts POSTed as JSON to `monitoring.webhook_url`.
//!
//! Why a queue and a task: alerts are raised on the scoring path, which must not wait on a
//! remote endpoint. [`WebhookSink::deliver`] only enqueues (a bounded queue of
//! [`QUEUE`] alerts; past it alerts are dropped, logged and counted); one task sends them in
//! order, each with a 5 s timeout and up to [`ATTEMPTS`] attempts (backoff 0.5 s, 1 s, 2 s) on a
//! network error, a 429 or a 5xx. Receivers authenticate the sender with
//! `x-aurum-signature: sha256=<hex HMAC-SHA256 of the body>` when `AURUM_MONITORING_WEBHOOK_SECRET`
//! is set; `x-aurum-alert` carries the kind.

use std::sync::Arc;
use std::time::Duration;

use aurum_service::{Alert, AlertSink};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

/// Alerts waiting to be sent, at most.
pub const QUEUE: usize = 1024;
/// Tries per alert.
pub const ATTEMPTS: u32 = 4;

/// Sends alerts to one URL (see the module docs).
pub struct WebhookSink {
    queue: mpsc::Sender<Alert>,
}

impl WebhookSink {
    /// Starts the sending task on the current Tokio runtime.
    pub fn start(url: String, secret: Option<String>) -> Result<Arc<WebhookSink>, String> {
        aurum_objstore::ensure_crypto_provider();
        let client = reqwest013::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("monitoring.webhook_url: cannot build the HTTP client: {e}"))?;
        let (queue, mut rx) = mpsc::channel::<Alert>(QUEUE);
        tokio::spawn(async move {
            while let Some(alert) = rx.recv().await {
                send(&client, &url, secret.as_deref(), &alert).await;
            }
        });
        Ok(Arc::new(WebhookSink { queue }))
    }
}

impl AlertSink for WebhookSink {
    fn deliver(&self, alert: Alert) {
        if let Err(e) = self.queue.try_send(alert) {
            let alert = match e {
                mpsc::error::TrySendError::Full(a) | mpsc::error::TrySendError::Closed(a) => a,
            };
            tracing::warn!(model = %alert.model, kind = alert.kind, "alert webhook queue full; alert dropped");
            metrics::counter!("aurum_alert_webhook_dropped_total").increment(1);
        }
    }
}

/// The signature header value for `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn send(client: &reqwest013::Client, url: &str, secret: Option<&str>, alert: &Alert) {
    let body = match serde_json::to_vec(alert) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "alert does not serialise");
            return;
        }
    };
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=ATTEMPTS {
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-aurum-alert", alert.kind)
            .body(body.clone());
        if let Some(secret) = secret {
            request = request.header("x-aurum-signature", signature(secret, &body));
        }
        let outcome = match request.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                Err(format!("status {}", r.status()))
            }
            Ok(r) => {
                // A 4xx other than 429 will not change on retry.
                tracing::warn!(status = %r.status(), model = %alert.model, kind = alert.kind,
                               "alert webhook refused the alert");
                metrics::counter!("aurum_alert_webhook_failed_total").increment(1);
                return;
            }
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                metrics::counter!("aurum_alert_webhook_delivered_total").increment(1);
                return;
            }
            Err(why) if attempt < ATTEMPTS => {
                tracing::debug!(attempt, error = %why, "alert webhook call failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(why) => {
                tracing::warn!(error = %why, model = %alert.model, kind = alert.kind,
                               "alert webhook unreachable; alert dropped after retries");
                metrics::counter!("aurum_alert_webhook_failed_total").increment(1);
            }
        }
    }
}
