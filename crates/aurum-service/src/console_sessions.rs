//! Web console sessions in the registry, shared by every process and replica.
//!
//! Why in the registry: a session kept in one process's memory ends at its restart and is
//! unknown to the other replicas behind a load balancer. The `console_sessions` table lives in
//! the metadata store every replica already shares (SQLite on one machine, PostgreSQL at
//! scale), so a browser signed in on one replica is signed in on all of them, and stays signed
//! in across restarts. Only the SHA-256 of the cookie's id is stored; the console
//! (`aurum-console::session`) hashes and checks expiry, this layer only stores and reads.
//!
//! Nothing here is cached or audited: every console request reads its session row (a primary-key
//! lookup), so a sign-out on one replica ends the session on all of them at once.

use aurum_registry::ConsoleSessionRecord;

use crate::{Platform, ServiceError};

impl Platform {
    /// Stores a new console session, first purging the sessions expired at its creation and
    /// then, while `max_live` or more remain, the oldest (see
    /// `aurum_registry::MetadataStore::put_console_session`).
    pub async fn put_console_session(
        &self,
        session: &ConsoleSessionRecord,
        max_live: u32,
    ) -> Result<(), ServiceError> {
        Ok(self
            .inner
            .meta
            .put_console_session(session, max_live)
            .await?)
    }

    /// The console session stored under `session_hash` (expired or not), `None` when there is
    /// none.
    pub async fn get_console_session(
        &self,
        session_hash: &str,
    ) -> Result<Option<ConsoleSessionRecord>, ServiceError> {
        Ok(self.inner.meta.get_console_session(session_hash).await?)
    }

    /// Ends the console session stored under `session_hash`; `false` when there was none.
    pub async fn delete_console_session(&self, session_hash: &str) -> Result<bool, ServiceError> {
        Ok(self.inner.meta.delete_console_session(session_hash).await?)
    }

    /// Removes every console session that ended at or before `now_ms` (unix milliseconds);
    /// returns how many.
    pub async fn delete_expired_console_sessions(&self, now_ms: i64) -> Result<u64, ServiceError> {
        Ok(self
            .inner
            .meta
            .delete_expired_console_sessions(now_ms)
            .await?)
    }
}
