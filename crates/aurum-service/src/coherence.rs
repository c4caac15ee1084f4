//! One view of the registry across every process sharing a data directory.
//!
//! A server and CLI commands (`aurum models alias`, `aurum keys revoke`, `aurum train`) open the
//! same registry. Each process keeps in-memory state for speed: the alias map, the loaded
//! versions and the key ring. The registry's change epoch (bumped by triggers in the same
//! transaction as every alias move, version change and key change) tells a process when that
//! state may be stale. A background task per process polls it every [`POLL_INTERVAL`] and, when
//! it moves, reloads the key ring and re-resolves every published alias, so a change made by
//! any process takes effect everywhere within a fraction of a second.
//!
//! The same task is the heartbeat of this process's training jobs, and fails jobs whose owner
//! stopped beating (a process that crashed), so a restart never fails a live job of another
//! process and a crashed job does not stay `running` forever.
//!
//! Why polling: SQLite has no cross-process notification, and one indexed single-row read every
//! 200 ms costs nothing measurable. A store that can push changes (PostgreSQL `LISTEN/NOTIFY`,
//! [`aurum_registry::MetadataStore::subscribe_changes`]) also wakes the task at once, so replicas
//! see an alias move or a revocation within milliseconds; the poll stays as the fallback for a
//! lost notification connection.

use std::sync::Weak;
use std::time::Duration;

use crate::Platform;
use crate::platform::{Inner, JOB_STALE_AFTER};

/// How often the change epoch is read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Every this many polls, the jobs' heartbeat is written and stale jobs are failed.
const HEARTBEAT_EVERY: u32 = 10;

/// Starts the coherence task of `platform` (when called inside a tokio runtime). The task stops
/// when the platform is dropped.
pub(crate) fn spawn(
    platform: &Platform,
    epoch: i64,
    pushed: Option<tokio::sync::watch::Receiver<i64>>,
) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = std::sync::Arc::downgrade(&platform.inner);
    handle.spawn(run(weak, epoch, pushed));
}

async fn run(
    weak: Weak<Inner>,
    mut seen: i64,
    mut pushed: Option<tokio::sync::watch::Receiver<i64>>,
) {
    let mut tick: u32 = 0;
    loop {
        let poll = tokio::time::sleep(POLL_INTERVAL);
        // `false` when a pushed change woke the task before the poll interval ended.
        let polled = match pushed.as_mut() {
            Some(receiver) => tokio::select! {
                () = poll => true,
                changed = receiver.changed() => {
                    if changed.is_err() {
                        // The listener stopped (the store closed): keep polling.
                        pushed = None;
                    }
                    false
                }
            },
            None => {
                poll.await;
                true
            }
        };
        if polled {
            tick = tick.wrapping_add(1);
        }
        let Some(inner) = weak.upgrade() else { return };
        let platform = Platform { inner };
        match platform.inner.meta.change_epoch().await {
            Ok(epoch) if epoch != seen => match platform.refresh_after_change().await {
                Ok(()) => seen = epoch,
                Err(e) => tracing::warn!(error = %e, "cannot refresh after a registry change"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the registry change epoch"),
        }
        if polled && tick.is_multiple_of(HEARTBEAT_EVERY) {
            if let Err(e) = platform
                .inner
                .meta
                .heartbeat_jobs(&platform.inner.instance)
                .await
            {
                tracing::warn!(error = %e, "cannot record the training jobs' heartbeat");
            }
            match platform
                .inner
                .meta
                .fail_interrupted_jobs(JOB_STALE_AFTER)
                .await
            {
                Ok(ended) => platform.audit_ended_jobs(ended).await,
                Err(e) => tracing::warn!(error = %e, "cannot check for interrupted jobs"),
            }
        }
    }
}

impl Platform {
    /// Reloads what another process may have changed: the key ring, the challenger settings and
    /// the published aliases.
    pub(crate) async fn refresh_after_change(&self) -> Result<(), crate::ServiceError> {
        self.reload_keys().await?;
        self.reload_challengers().await?;
        self.refresh_archived().await?;
        self.refresh_aliases().await
    }
}
