use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A cooperative cancellation flag shared between whoever started a job and the job itself.
///
/// Long loops (model fitting, ingest of large files) check [`CancelToken::is_cancelled`] at
/// natural boundaries (an epoch, a chunk) and stop with a cancellation error.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Progress reporting for long work. `fraction` is in `[0, 1]`; `stage` is a short human label.
pub trait Progress: Send + Sync {
    fn report(&self, stage: &str, fraction: f64);
}

/// A [`Progress`] that discards reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&self, _stage: &str, _fraction: f64) {}
}
