//! Building blocks for [`crate::MetadataStore`] implementations outside this crate.
//!
//! Why public: a second backend (PostgreSQL, in its own crate) must return records identical to
//! [`crate::SqliteStore`]'s and refuse the same input with the same errors. Sharing the
//! validation, the key material and the timestamp format here, rather than copying them, keeps
//! the backends from drifting apart; the key generation and hashing in particular must exist
//! once.

use chrono::{DateTime, SubsecRound, Utc};

use crate::error::{RegistryError, Result};

pub use crate::error::{check_name, check_sha256};
pub use crate::keys::{
    GeneratedKey, generate as generate_key, hash as hash_key, verify as verify_key_hash,
};

/// Shadow records per multi-row `INSERT` (10 bound values each: well under SQLite's 32,766 and
/// PostgreSQL's 65,535 parameters per statement).
pub const SHADOW_ROWS_PER_STATEMENT: usize = 500;

/// The current time, truncated to the microsecond precision timestamps are stored with, so that
/// a record returned by a write equals the one read back later.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The stored form of a timestamp: fixed-width RFC 3339 in UTC with microseconds
/// (`YYYY-MM-DDTHH:MM:SS.ffffffZ`), which sorts lexicographically in time order.
pub fn format_timestamp(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Parses a stored timestamp; anything else is a [`RegistryError::CorruptRecord`].
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| RegistryError::CorruptRecord(format!("bad timestamp `{text}`: {e}")))
}

/// An outcome's attributes as stored (a JSON object of strings; NULL when there are none).
pub fn outcome_attributes_to_db(
    attributes: &std::collections::BTreeMap<String, String>,
) -> Result<Option<String>> {
    if attributes.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(attributes)
        .map(Some)
        .map_err(|e| RegistryError::InvalidInput(format!("outcome attributes: {e}")))
}

/// An outcome's stored attributes read back.
pub fn outcome_attributes_from_db(
    text: Option<&str>,
) -> Result<std::collections::BTreeMap<String, String>> {
    match text {
        None => Ok(Default::default()),
        Some(t) => serde_json::from_str(t)
            .map_err(|e| RegistryError::CorruptRecord(format!("outcome attributes: {e}"))),
    }
}

/// Checks a console session before it is stored (see
/// [`crate::MetadataStore::put_console_session`]): the hash is a SHA-256 digest, the key id and
/// token are present, the expiry is not before the creation, and the cap allows a session.
pub fn check_console_session(session: &crate::ConsoleSessionRecord, max_live: u32) -> Result<()> {
    check_sha256("console session hash", &session.session_hash)?;
    if session.key_id.is_empty() || session.csrf.is_empty() {
        return Err(RegistryError::InvalidInput(
            "a console session needs a key id and a token".into(),
        ));
    }
    if session.expires_at_ms < session.created_at_ms {
        return Err(RegistryError::InvalidInput(format!(
            "a console session cannot expire ({}) before it is created ({})",
            session.expires_at_ms, session.created_at_ms
        )));
    }
    if max_live == 0 {
        return Err(RegistryError::InvalidInput(
            "the console session cap must be at least 1".into(),
        ));
    }
    Ok(())
}

/// Checks drift counts before they are stored (see [`crate::MetadataStore::put_drift_counts`]).
pub fn check_drift_counts(counts: &crate::DriftCountsRecord) -> Result<()> {
    if counts.model.is_empty() || counts.writer.is_empty() {
        return Err(RegistryError::InvalidInput(
            "drift counts need a model and a writer".into(),
        ));
    }
    if counts.window_end <= counts.window_start {
        return Err(RegistryError::InvalidInput(format!(
            "a drift window must end ({}) after it starts ({})",
            counts.window_end, counts.window_start
        )));
    }
    if counts.seq < 0 || i64::try_from(counts.rows).is_err() {
        return Err(RegistryError::InvalidInput(
            "drift counts need a copy number and a row count in range".into(),
        ));
    }
    Ok(())
}

/// A `drift_counts` row as both backends select it: model, version, window start and end,
/// writer, copy number, rows, counts.
pub type DriftCountsRow = (String, i64, i64, i64, String, i64, i64, String);

/// The record of a `drift_counts` row.
pub fn drift_counts_from_db(row: DriftCountsRow) -> Result<crate::DriftCountsRecord> {
    let (model, version, window_start, window_end, writer, seq, rows, counts) = row;
    Ok(crate::DriftCountsRecord {
        model,
        version: u32::try_from(version)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| RegistryError::CorruptRecord(format!("bad version number {version}")))?,
        window_start,
        window_end,
        writer,
        seq,
        rows: u64::try_from(rows)
            .map_err(|_| RegistryError::CorruptRecord(format!("negative rows {rows}")))?,
        counts,
    })
}

/// The message of the [`RegistryError::Conflict`] for a console session hash stored twice.
pub fn duplicate_console_session() -> RegistryError {
    RegistryError::Conflict("a console session with this id already exists".into())
}
