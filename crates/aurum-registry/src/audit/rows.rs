//! The SQL the audit log runs, and decoding of its rows.
//!
//! Every statement uses `$n` placeholders and standard SQL, and every backend runs the same text
//! (the constants are public for backends in other crates), except that SQLite inserts with the
//! same statement's anonymous form ([`insert_rows_anonymous`]); backend-only details (pragmas,
//! triggers, how the writers exclude each other) live in each backend's migration and
//! [`AuditStore::append_batch`](super::AuditStore::append_batch).

use std::fmt::Write as _;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::canonical::{HashedFields, canonical_json};
use super::{AuditRecord, FORMAT_VERSION};

/// The columns of `audit_log` in the order [`RawRow::from_row`] expects, prefixed to a query tail.
macro_rules! select_records {
    ($tail:literal) => {
        concat!(
            "SELECT seq, format_version, ts, event, actor, request_id, model, model_version, ",
            "input_sha256, details, prev_hash, hash FROM audit_log ",
            $tail
        )
    };
}

/// Rows per `INSERT` statement: one statement per 32 records instead of one per record, and
/// 384 parameters, well under every backend's limit (SQLite's old default is 999).
pub const ROWS_PER_INSERT: usize = 32;
const INSERT_COLUMNS: usize = 12;

/// `INSERTS[k - 1]` inserts `k` rows of [`INSERT_COLUMNS`] parameters each, numbered `$1`…
/// Built once; only placeholders, never data.
static INSERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    (1..=ROWS_PER_INSERT)
        .map(|rows| {
            let mut sql = String::from(
                "INSERT INTO audit_log (seq, format_version, ts, event, actor, request_id, model, \
                 model_version, input_sha256, details, prev_hash, hash) VALUES ",
            );
            for row in 0..rows {
                sql.push_str(if row == 0 { "(" } else { ", (" });
                for column in 0..INSERT_COLUMNS {
                    let separator = if column == 0 { "" } else { ", " };
                    let _ = write!(sql, "{separator}${}", row * INSERT_COLUMNS + column + 1);
                }
                sql.push(')');
            }
            sql
        })
        .collect()
});

/// The statement inserting `rows` records, `1..=ROWS_PER_INSERT`.
pub fn insert_rows(rows: usize) -> &'static str {
    INSERTS[rows.clamp(1, ROWS_PER_INSERT) - 1].as_str()
}

/// [`insert_rows`] with anonymous `?` placeholders, the same parameters in the same order, for
/// SQLite: its driver asks SQLite for every parameter's name at every bind, and SQLite finds a
/// named parameter (`$n` is one) by a linear scan of the statement's names, so binding
/// [`ROWS_PER_INSERT`] rows of `$n` costs time quadratic in the parameters (a quarter of the
/// writer thread's time in the serving benchmark); anonymous ones have no name to look up.
pub fn insert_rows_anonymous(rows: usize) -> &'static str {
    INSERTS_ANONYMOUS[rows.clamp(1, ROWS_PER_INSERT) - 1].as_str()
}

static INSERTS_ANONYMOUS: LazyLock<Vec<String>> = LazyLock::new(|| {
    INSERTS
        .iter()
        .map(|sql| {
            let mut out = String::with_capacity(sql.len());
            let mut chars = sql.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '$' {
                    out.push('?');
                    while chars.next_if(char::is_ascii_digit).is_some() {}
                } else {
                    out.push(c);
                }
            }
            out
        })
        .collect()
});

pub const HEAD: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
pub const COUNT: &str = "SELECT COUNT(*) FROM audit_log";
pub const MAX_SEQ: &str = "SELECT MAX(seq) FROM audit_log";
pub const HASH_AT: &str = "SELECT hash FROM audit_log WHERE seq = $1";

pub const GET: &str = select_records!("WHERE seq = $1");
pub const TAIL: &str = concat!(
    "SELECT * FROM (",
    select_records!("ORDER BY seq DESC LIMIT $1"),
    ") AS newest ORDER BY seq"
);
pub const LIST: &str = select_records!("WHERE seq > $1 ORDER BY seq LIMIT $2");
pub const LIST_BY_EVENT: &str =
    select_records!("WHERE seq > $1 AND event = $3 ORDER BY seq LIMIT $2");
pub const LIST_BY_MODEL: &str =
    select_records!("WHERE seq > $1 AND model = $3 ORDER BY seq LIMIT $2");
pub const BY_REQUEST: &str =
    select_records!("WHERE request_id = $1 AND event = $2 ORDER BY seq LIMIT 16");
pub const LIST_BY_EVENT_AND_MODEL: &str =
    select_records!("WHERE seq > $1 AND event = $3 AND model = $4 ORDER BY seq LIMIT $2");
pub const VERIFY_PAGE: &str = select_records!("WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3");

/// One `audit_log` row exactly as stored: no parsing beyond SQL types, so that verification hashes
/// the stored text itself and a row that cannot be decoded can still be reported by seq. Every
/// backend returns its rows as these, selected with the columns in [`COLUMNS`] order.
#[derive(Debug, Clone)]
pub struct RawRow {
    pub seq: i64,
    pub format_version: i64,
    pub ts: String,
    pub event: String,
    pub actor: String,
    pub request_id: Option<String>,
    pub model: Option<String>,
    pub model_version: Option<i64>,
    pub input_sha256: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The column order of every `SELECT` of records (and of the `INSERT`).
pub const COLUMNS: &str = "seq, format_version, ts, event, actor, request_id, model, model_version, \
                           input_sha256, details, prev_hash, hash";

impl RawRow {
    /// Decodes a row selected with [`COLUMNS`], from any sqlx backend (SQLite here, PostgreSQL
    /// in `aurum-postgres`).
    pub fn decode<R>(row: &R) -> Result<Self, sqlx::Error>
    where
        R: sqlx::Row,
        usize: sqlx::ColumnIndex<R>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            seq: row.try_get(0)?,
            format_version: row.try_get(1)?,
            ts: row.try_get(2)?,
            event: row.try_get(3)?,
            actor: row.try_get(4)?,
            request_id: row.try_get(5)?,
            model: row.try_get(6)?,
            model_version: row.try_get(7)?,
            input_sha256: row.try_get(8)?,
            details: row.try_get(9)?,
            prev_hash: row.try_get(10)?,
            hash: row.try_get(11)?,
        })
    }

    /// The hash this row's contents call for (independent of its stored `hash`).
    ///
    /// Hashes the stored `ts` text as is and the canonical form of the stored `details`, so a
    /// backend that re-orders JSON keys (PostgreSQL `jsonb`) still verifies, while any change of
    /// meaning does not. Fails when `details` is not JSON.
    pub(super) fn expected_hash(&self) -> Result<String, String> {
        let details: Value = serde_json::from_str(&self.details)
            .map_err(|e| format!("details are not valid JSON: {e}"))?;
        Ok(HashedFields {
            format_version: self.format_version,
            seq: u64::try_from(self.seq).map_err(|_| format!("seq {} is negative", self.seq))?,
            ts: &self.ts,
            event: &self.event,
            actor: &self.actor,
            request_id: self.request_id.as_deref(),
            model: self.model.as_deref(),
            version: self.model_version,
            input_sha256: self.input_sha256.as_deref(),
            details: &canonical_json(&details),
            prev_hash: &self.prev_hash,
        }
        .hash())
    }

    /// The row as an [`AuditRecord`], or why it cannot be one.
    pub fn into_record(self) -> Result<AuditRecord, String> {
        if self.format_version != FORMAT_VERSION {
            return Err(format!(
                "unsupported format version {}",
                self.format_version
            ));
        }
        let seq = u64::try_from(self.seq).map_err(|_| format!("seq {} is negative", self.seq))?;
        let ts = DateTime::parse_from_rfc3339(&self.ts)
            .map_err(|e| format!("ts {:?} is not RFC 3339: {e}", self.ts))?
            .with_timezone(&Utc);
        let version = self
            .model_version
            .map(u32::try_from)
            .transpose()
            .map_err(|_| format!("model version {:?} is out of range", self.model_version))?;
        let details = serde_json::from_str(&self.details)
            .map_err(|e| format!("details are not valid JSON: {e}"))?;
        Ok(AuditRecord {
            seq,
            ts,
            event: self.event,
            actor: self.actor,
            request_id: self.request_id,
            model: self.model,
            version,
            input_sha256: self.input_sha256,
            details,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// One bound value of an audit statement, in a form every sqlx backend binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anonymous_insert_is_the_numbered_one_with_its_placeholders_in_order() {
        for k in 1..=ROWS_PER_INSERT {
            let numbered = insert_rows(k);
            let anonymous = insert_rows_anonymous(k);
            assert!(!anonymous.contains('$'), "{anonymous}");
            assert_eq!(anonymous.matches('?').count(), k * INSERT_COLUMNS);
            // Numbered in order from 1, so the anonymous order binds the same arguments.
            let mut expected = String::new();
            for (n, part) in numbered.split('$').enumerate() {
                if n > 0 {
                    let digits = part.bytes().take_while(u8::is_ascii_digit).count();
                    assert_eq!(part[..digits].parse::<usize>().unwrap(), n);
                    expected.push('?');
                    expected.push_str(&part[digits..]);
                } else {
                    expected.push_str(part);
                }
            }
            assert_eq!(anonymous, expected);
        }
    }
}
