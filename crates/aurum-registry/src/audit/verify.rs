//! Chain verification: the pure checker, fed one page of rows at a time by
//! [`AuditLog::verify`](super::AuditLog::verify).

use std::fmt;
use std::path::PathBuf;

use super::rows::RawRow;
use super::{ChainHead, FORMAT_VERSION, GENESIS_HASH};

/// The outcome of [`AuditLog::verify`](super::AuditLog::verify).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records that passed every check, from seq 1 up to the first broken one (or the end).
    pub records_checked: u64,
    /// `true` when the whole chain verified and the signed anchor matches it.
    pub ok: bool,
    /// The first record that does not verify, and why. Later records are not examined.
    pub first_broken: Option<BrokenRecord>,
    /// The last verified record.
    pub head: Option<ChainHead>,
    /// The authentic signed anchor found outside the database, if any.
    pub anchor: Option<ChainHead>,
    /// What the anchor says is wrong with the log, or what is wrong with the anchor itself.
    pub anchor_problem: Option<AnchorProblem>,
}

/// A disagreement between the log and its signed anchor. `Display` gives the human wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorProblem {
    /// The anchor covers records the log no longer has: the newest records were removed.
    Truncated { anchor_seq: u64, last_seq: u64 },
    /// The record at the anchored seq has another hash: the chain was rewritten up to there.
    Rewritten { seq: u64 },
    /// The anchor cannot be read or its HMAC does not match: forged, corrupt, or another key.
    Invalid { detail: String },
    /// The log has records but no anchor: it was deleted (or never written, see `AuditLog::open`).
    Missing { path: PathBuf, last_seq: u64 },
    /// The log has no records, but the registry holds state whose creation it would have
    /// recorded: the log and its anchor were removed (a fresh log then anchors itself at
    /// genesis). Found by the caller that knows the registry, not by the log alone.
    Emptied { registry_entries: u64 },
}

impl fmt::Display for AnchorProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated {
                anchor_seq,
                last_seq,
            } => write!(
                f,
                "audit log truncated: anchor covers seq {anchor_seq} but the log ends at {last_seq}"
            ),
            Self::Rewritten { seq } => write!(
                f,
                "audit log rewritten: record {seq} does not have the hash the signed anchor covers"
            ),
            Self::Invalid { detail } => write!(f, "audit anchor forged or corrupt: {detail}"),
            Self::Missing { path, last_seq } => write!(
                f,
                "audit anchor missing: the log ends at seq {last_seq} but {} does not exist",
                path.display()
            ),
            Self::Emptied { registry_entries } => write!(
                f,
                "audit log emptied: it has no records, but the registry holds {registry_entries} datasets, models and keys whose creation it recorded (the log and its anchor were removed or replaced)"
            ),
        }
    }
}

/// A record at which the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenRecord {
    /// The seq of the offending record; for a gap, the first missing seq.
    pub seq: u64,
    pub reason: BreakReason,
}

/// Why a record breaks the chain. `Display` gives the human wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakReason {
    /// The stored hash is not the hash of the stored contents.
    HashMismatch,
    /// `prev_hash` is not the hash of record `previous` (0: the genesis hash).
    PrevHashMismatch { previous: u64 },
    /// Records `first..=last` are missing.
    Gap { first: u64, last: u64 },
    /// The record was written in a format this version cannot check.
    UnsupportedFormat { format_version: i64 },
    /// The record cannot be decoded at all (for example `details` is not JSON).
    Undecodable { detail: String },
}

impl fmt::Display for BreakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HashMismatch => f.write_str("hash mismatch: record contents were altered"),
            Self::PrevHashMismatch { previous: 0 } => {
                f.write_str("prev_hash does not match the genesis hash")
            }
            Self::PrevHashMismatch { previous } => {
                write!(f, "prev_hash does not match record {previous}")
            }
            Self::Gap { first, last } if first == last => write!(f, "gap: record {first} missing"),
            Self::Gap { first, last } => write!(f, "gap: records {first} to {last} missing"),
            Self::UnsupportedFormat { format_version } => {
                write!(f, "unsupported record format version {format_version}")
            }
            Self::Undecodable { detail } => write!(f, "record cannot be decoded: {detail}"),
        }
    }
}

/// Walks the chain in seq order, holding only the previous record's seq and hash.
#[derive(Debug)]
pub(super) struct ChainChecker {
    next_seq: u64,
    prev_hash: String,
    checked: u64,
    broken: Option<BrokenRecord>,
}

impl ChainChecker {
    pub(super) fn new() -> Self {
        Self {
            next_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            checked: 0,
            broken: None,
        }
    }

    /// A checker that continues the chain after record `seq` with hash `hash` (an anchored
    /// record already known to be good), for the records after it only.
    pub(super) fn after(seq: u64, hash: &str) -> Self {
        Self {
            next_seq: seq + 1,
            prev_hash: hash.to_owned(),
            checked: 0,
            broken: None,
        }
    }

    /// Checks `rows` (ascending seq, continuing the previous page). Returns `false` once the
    /// chain is broken; further rows are then ignored.
    pub(super) fn check_page(&mut self, rows: &[RawRow]) -> bool {
        for row in rows {
            if self.broken.is_some() {
                return false;
            }
            if let Err(broken) = self.check(row) {
                self.broken = Some(broken);
                return false;
            }
        }
        self.broken.is_none()
    }

    fn check(&mut self, row: &RawRow) -> Result<(), BrokenRecord> {
        let seq = u64::try_from(row.seq).unwrap_or(0);
        let broken = |seq, reason| BrokenRecord { seq, reason };
        if seq != self.next_seq {
            // Rows arrive in ascending seq, so a different seq can only be a later one.
            return Err(broken(
                self.next_seq,
                BreakReason::Gap {
                    first: self.next_seq,
                    last: seq.saturating_sub(1),
                },
            ));
        }
        if row.format_version != FORMAT_VERSION {
            return Err(broken(
                seq,
                BreakReason::UnsupportedFormat {
                    format_version: row.format_version,
                },
            ));
        }
        if row.prev_hash != self.prev_hash {
            return Err(broken(
                seq,
                BreakReason::PrevHashMismatch { previous: seq - 1 },
            ));
        }
        let expected = row
            .expected_hash()
            .map_err(|detail| broken(seq, BreakReason::Undecodable { detail }))?;
        if expected != row.hash {
            return Err(broken(seq, BreakReason::HashMismatch));
        }
        self.next_seq = seq + 1;
        self.prev_hash.clone_from(&row.hash);
        self.checked += 1;
        Ok(())
    }

    pub(super) fn into_report(self) -> VerifyReport {
        let head = (self.checked > 0).then(|| ChainHead {
            seq: self.next_seq - 1,
            hash: self.prev_hash.clone(),
        });
        VerifyReport {
            records_checked: self.checked,
            ok: self.broken.is_none(),
            first_broken: self.broken,
            head,
            anchor: None,
            anchor_problem: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::canonical::{HashedFields, canonical_json};
    use super::*;

    fn chain(n: u64) -> Vec<RawRow> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let details = canonical_json(&json!({"n": seq}));
                let ts = "2025-01-01T00:00:00.000000Z";
                let hash = HashedFields {
                    format_version: FORMAT_VERSION,
                    seq,
                    ts,
                    event: "prediction",
                    actor: "cli",
                    request_id: None,
                    model: None,
                    version: None,
                    input_sha256: None,
                    details: &details,
                    prev_hash: &prev,
                }
                .hash();
                let row = RawRow {
                    seq: i64::try_from(seq).unwrap(),
                    format_version: FORMAT_VERSION,
                    ts: ts.to_owned(),
                    event: "prediction".to_owned(),
                    actor: "cli".to_owned(),
                    request_id: None,
                    model: None,
                    model_version: None,
                    input_sha256: None,
                    details: details.clone(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                row
            })
            .collect()
    }

    fn run(rows: &[RawRow]) -> VerifyReport {
        let mut checker = ChainChecker::new();
        for page in rows.chunks(3) {
            if !checker.check_page(page) {
                break;
            }
        }
        checker.into_report()
    }

    #[test]
    fn intact_chain_verifies_across_pages() {
        let rows = chain(10);
        let report = run(&rows);
        assert!(report.ok);
        assert_eq!(report.records_checked, 10);
        assert_eq!(
            report.head,
            Some(ChainHead {
                seq: 10,
                hash: rows[9].hash.clone()
            })
        );
    }

    #[test]
    fn empty_chain_verifies() {
        let report = run(&[]);
        assert!(report.ok);
        assert_eq!((report.records_checked, report.head), (0, None));
    }

    #[test]
    fn altered_contents_are_a_hash_mismatch() {
        let mut rows = chain(6);
        rows[3].details = r#"{"n":999}"#.to_owned();
        let report = run(&rows);
        assert_eq!(
            report.first_broken,
            Some(BrokenRecord {
                seq: 4,
                reason: BreakReason::HashMismatch
            })
        );
        assert_eq!(report.records_checked, 3);
    }

    #[test]
    fn rehashed_record_breaks_the_next_link() {
        let mut rows = chain(6);
        rows[3].actor = "mallory".to_owned();
        rows[3].hash = rows[3].expected_hash().unwrap();
        let broken = run(&rows).first_broken.unwrap();
        assert_eq!(broken.seq, 5);
        assert_eq!(
            broken.reason.to_string(),
            "prev_hash does not match record 4"
        );
    }

    #[test]
    fn missing_records_are_a_gap() {
        let mut rows = chain(9);
        rows.remove(4);
        let broken = run(&rows).first_broken.unwrap();
        assert_eq!(broken.seq, 5);
        assert_eq!(broken.reason.to_string(), "gap: record 5 missing");

        let mut rows = chain(9);
        rows.drain(0..3);
        let broken = run(&rows).first_broken.unwrap();
        assert_eq!(broken.reason, BreakReason::Gap { first: 1, last: 3 });
        assert_eq!(broken.reason.to_string(), "gap: records 1 to 3 missing");
    }

    #[test]
    fn undecodable_and_unknown_format_are_named() {
        let mut rows = chain(3);
        rows[1].details = "not json".to_owned();
        let broken = run(&rows).first_broken.unwrap();
        assert_eq!(broken.seq, 2);
        assert!(matches!(broken.reason, BreakReason::Undecodable { .. }));

        let mut rows = chain(3);
        rows[0].format_version = 99;
        let broken = run(&rows).first_broken.unwrap();
        assert_eq!(
            broken.reason,
            BreakReason::UnsupportedFormat { format_version: 99 }
        );
    }
}
