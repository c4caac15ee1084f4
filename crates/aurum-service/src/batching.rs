//! Dynamic batching: coalesces concurrent predict calls to one model version into a single
//! scoring call.
//!
//! One task per batched model version owns a queue. It takes the first waiting call, then keeps
//! taking calls until the batch holds `max_batch_size` rows or `max_queue_delay_us` has passed
//! since the first, scores all rows in one scoring call on the blocking pool, and
//! answers every caller with its own rows. If the batch fails (one caller sent a row the model
//! refuses), each call is re-scored alone so the error reaches only the caller who caused it.
//! Off by default (`batching.models` is empty): for cheap models the wait costs more than the
//! batch saves; the serving benchmark measures both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aurum_core::Value;
use tokio::sync::{mpsc, oneshot};

use crate::predict::{RecordOutput, score};
use crate::{LoadedModel, ServiceError};

struct Call {
    rows: Vec<Vec<Value>>,
    explain: bool,
    reply: oneshot::Sender<Result<Vec<RecordOutput>, ServiceError>>,
}

#[derive(Default)]
pub(crate) struct Batchers {
    queues: Mutex<HashMap<(String, u32), mpsc::Sender<Call>>>,
}

impl Batchers {
    /// Scores `rows` through the model's batcher (started on first use).
    pub(crate) async fn submit(
        &self,
        model: &Arc<LoadedModel>,
        rows: Vec<Vec<Value>>,
        explain: bool,
        max_rows: usize,
        delay: Duration,
    ) -> Result<Vec<RecordOutput>, ServiceError> {
        let tx = {
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            let key = (model.name.clone(), model.version);
            match queues.get(&key) {
                Some(tx) if !tx.is_closed() => tx.clone(),
                _ => {
                    let (tx, rx) = mpsc::channel(4096);
                    tokio::spawn(run(model.clone(), rx, max_rows, delay));
                    queues.insert(key, tx.clone());
                    tx
                }
            }
        };
        let (reply, answer) = oneshot::channel();
        tx.send(Call {
            rows,
            explain,
            reply,
        })
        .await
        .map_err(|_| ServiceError::Unavailable("the batching queue is closed".into()))?;
        answer
            .await
            .map_err(|_| ServiceError::Internal("the batcher stopped before answering".into()))?
    }
}

async fn run(
    model: Arc<LoadedModel>,
    mut rx: mpsc::Receiver<Call>,
    max_rows: usize,
    delay: Duration,
) {
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + delay;
        let mut rows = first.rows.len();
        let mut calls = vec![first];
        while rows < max_rows {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(call)) => {
                    rows += call.rows.len();
                    calls.push(call);
                }
                Ok(None) | Err(_) => break,
            }
        }
        metrics::histogram!("aurum_dynamic_batch_rows").record(rows as f64);
        let m = model.clone();
        let done = tokio::task::spawn_blocking(move || score_calls(&m, calls)).await;
        if let Err(e) = done {
            tracing::error!(model = %model.name, version = model.version, error = %e, "batch scoring task failed");
        }
    }
}

fn score_calls(model: &LoadedModel, calls: Vec<Call>) {
    let uniform = calls.iter().all(|c| !c.explain);
    if calls.len() == 1 || !uniform {
        for c in calls {
            let _ = c.reply.send(score(model, &c.rows, c.explain));
        }
        return;
    }
    let sizes: Vec<usize> = calls.iter().map(|c| c.rows.len()).collect();
    let mut all = Vec::with_capacity(sizes.iter().sum());
    let mut replies = Vec::with_capacity(calls.len());
    for c in calls {
        all.extend(c.rows);
        replies.push(c.reply);
    }
    match score(model, &all, false) {
        Ok(mut out) => {
            for (reply, n) in replies.into_iter().zip(sizes).rev() {
                let mine = out.split_off(out.len() - n);
                let _ = reply.send(Ok(mine));
            }
        }
        Err(_) => {
            // Attribute the failure: score each call alone.
            let mut start = 0;
            for (reply, n) in replies.into_iter().zip(sizes) {
                let _ = reply.send(score(model, &all[start..start + n], false));
                start += n;
            }
        }
    }
}
