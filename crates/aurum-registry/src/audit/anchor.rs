//! Signed checkpoints of the chain head, kept outside the database.
//!
//! # Why
//!
//! The hash chain catches an edit in the middle of the log, but not its *end*: deleting the newest
//! records leaves a shorter chain that verifies, and whoever edits record N can recompute the
//! hash of every record after it, because the chain has no secret. The anchor closes both gaps. It
//! is a small file (`audit.anchor` beside `audit.db` by default) holding the newest committed
//! `(seq, hash)` and an HMAC-SHA-256 over them, keyed by a secret that is not in the database.
//! Verification then also demands that the log reaches the anchored seq (or it was truncated) and
//! that the record there has the anchored hash (or the chain was rewritten from that point back).
//!
//! # Why an HMAC and not a signature
//!
//! The same process writes and verifies, so a shared secret is enough, and HMAC-SHA-256 needs only
//! the `hmac` crate over the `sha2` already used for the chain. A public-key signature would let a
//! third party verify without the secret; shipping anchors off the host is the step after this one.
//!
//! # Protocol
//!
//! - By default the writer moves the anchor after each committed batch and *before* answering
//!   the batch's callers, so every acknowledged record is covered. With
//!   [`AuditOptions::anchor_interval`](super::AuditOptions::anchor_interval) above zero it moves
//!   it in the background at most once per interval (and at flush, close and the next open), so
//!   the anchor may be behind the head by the records of one interval; verification accepts an
//!   anchor behind the head (the chain covers the rest) and still names a log shorter than its
//!   anchor, a different hash at the anchored seq, and an anchor that is not authentic.
//! - An anchor found behind the head at open (a crash before it moved) is moved over the records
//!   after it only once the record at its seq has its hash and the chain from there verifies.
//! - Several processes append to one file (the server and a CLI command), so the anchor is only
//!   ever moved forward: under an exclusive lock on `<anchor>.lock` the current anchor is read and
//!   replaced only by a higher seq. Readers take the lock shared.
//! - **Two slots.** The file holds two anchors, one per 4 096-byte block (each the v1 text, padded
//!   with newlines), and the anchor is the higher of the two; both must be authentic. A move
//!   overwrites the *older* slot in place and `fdatasync`s it: one data flush and no metadata,
//!   where a replaced file costs a new inode, an fsync, a rename and a directory fsync (about
//!   five times the latency at the median here, BENCHMARKS.md). The newest slot is never touched
//!   while the next one is written, so a crash mid-write leaves it intact; and the text of a slot
//!   sits in its block's first 512-byte sector, which storage writes atomically. A file in the
//!   one-anchor layout written before the slots existed is read as it is and replaced once (by
//!   the atomic write below, both slots holding the new anchor) at its next move. A new file is
//!   created the same way: temporary file, fsync, rename, directory fsync.
//! - The anchor must exist once anchoring is in use. A new, empty log gets an anchor at seq 0. A
//!   log from before anchoring (records, no anchor, no lock file) is anchored when it is opened,
//!   after its chain verified. A missing or unauthentic anchor is never replaced silently: appends
//!   fail (their records are committed but not acknowledged) and `verify` names the problem, until
//!   an operator has looked (see ARCHITECTURE.md for the recovery).
//!
//! # What it does not protect against
//!
//! Anyone who can read the key can forge anchors. With the default key file beside the database it
//! stops someone who can only edit `audit.db` (a copied file, SQL access); to stop someone who can
//! write the whole data directory, give the key from the environment or a file they cannot read.

use std::fmt;
use std::io::{Seek as _, Write as _};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;

use super::{ChainHead, GENESIS_HASH};

/// First line of an anchor (of each slot); a future format changes it.
const MAGIC: &str = "aurum-audit-anchor v1";
/// Bytes of one slot: a filesystem block, so writing one never rewrites the other.
const SLOT_BYTES: usize = 4096;
/// Bytes of a file in the two-slot layout.
const FILE_BYTES: usize = 2 * SLOT_BYTES;
/// Bytes of a generated key.
const KEY_BYTES: usize = 32;
/// The shortest secret accepted from the environment or a key file.
pub const MIN_KEY_BYTES: usize = 32;

/// Where the anchor key comes from.
#[derive(Clone)]
pub enum AnchorKey {
    /// A file holding the key as hex. Created from a CSPRNG with mode 0600 on first use.
    File(PathBuf),
    /// A secret given directly (from the environment); at least [`MIN_KEY_BYTES`] bytes.
    Secret(Vec<u8>),
}

impl fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Secret(_) => f.write_str("Secret(<redacted>)"),
        }
    }
}

/// Where the anchor lives and how it is keyed.
#[derive(Clone, Debug)]
pub struct AnchorOptions {
    /// The anchor file; `<path>.lock` beside it serialises writers.
    pub path: PathBuf,
    pub key: AnchorKey,
}

impl AnchorOptions {
    /// The defaults for a log at `db`: `audit.anchor` and `audit.key` in the same directory.
    pub fn beside(db: &Path) -> Self {
        let dir = db.parent().unwrap_or_else(|| Path::new(""));
        Self {
            path: dir.join("audit.anchor"),
            key: AnchorKey::File(dir.join("audit.key")),
        }
    }
}

/// What reading the anchor file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Found {
    Missing,
    /// Authentic: the log had reached this seq, with this hash there.
    Valid(ChainHead),
    /// Unparsable, or its HMAC does not match: forged, corrupt, or written with another key.
    Invalid(String),
}

/// The anchor of one log: its paths and key.
pub(super) struct Anchor {
    path: PathBuf,
    lock_path: PathBuf,
    key: Vec<u8>,
}

/// The result of [`Anchor::open`].
pub(super) struct Opened {
    pub anchor: Anchor,
    /// No process had anchored this log before (no lock file existed).
    pub first_use: bool,
    pub found: Found,
}

impl Anchor {
    /// Loads (or, on first use, generates) the key and reads the anchor. Blocking.
    pub(super) fn open(options: &AnchorOptions) -> Result<Opened, String> {
        let lock_path = lock_path(&options.path);
        let first_use = !lock_path.exists();
        let lock = lock_file(&lock_path)?;
        let key = match &options.key {
            AnchorKey::Secret(secret) => {
                if secret.len() < MIN_KEY_BYTES {
                    return Err(format!(
                        "the anchor key secret must be at least {MIN_KEY_BYTES} bytes"
                    ));
                }
                secret.clone()
            }
            AnchorKey::File(path) => load_or_create_key(path)?,
        };
        let anchor = Anchor {
            path: options.path.clone(),
            lock_path,
            key,
        };
        let found = anchor.read_locked();
        drop(lock);
        Ok(Opened {
            anchor,
            first_use,
            found,
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and authenticates the anchor, holding the lock shared (a slot is written in place).
    pub(super) fn read(&self) -> Found {
        let lock = match private_options().read(true).open(&self.lock_path) {
            Ok(file) => match file.lock_shared() {
                Ok(()) => Some(file),
                Err(e) => {
                    return Found::Invalid(format!(
                        "cannot lock {}: {e}",
                        self.lock_path.display()
                    ));
                }
            },
            // Never anchored: no writer to wait for.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Found::Invalid(format!("cannot open {}: {e}", self.lock_path.display()));
            }
        };
        let found = self.read_locked();
        drop(lock);
        found
    }

    /// [`Anchor::read`] for a caller that holds the lock.
    fn read_locked(&self) -> Found {
        match self.load() {
            Ok(Some(slots)) => slots.found,
            Ok(None) => Found::Missing,
            Err(e) => Found::Invalid(format!("cannot read {}: {e}", self.path.display())),
        }
    }

    /// The file's anchor and, in the two-slot layout, which slot the next move overwrites.
    fn load(&self) -> std::io::Result<Option<Slots>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if bytes.len() != FILE_BYTES {
            // The one-anchor layout (or a damaged file: the parse says which).
            let found = match std::str::from_utf8(&bytes) {
                Ok(text) => self.parse(text),
                Err(_) => Found::Invalid("anchor file is not text".to_owned()),
            };
            return Ok(Some(Slots { found, next: None }));
        }
        let mut heads = Vec::with_capacity(2);
        for (k, block) in bytes.chunks(SLOT_BYTES).enumerate() {
            let found = match std::str::from_utf8(block) {
                Ok(text) => self.parse(text.trim_end_matches('\n')),
                Err(_) => Found::Invalid("anchor file is not text".to_owned()),
            };
            match found {
                Found::Valid(head) => heads.push(head),
                Found::Invalid(detail) => {
                    return Ok(Some(Slots {
                        found: Found::Invalid(format!("slot {k}: {detail}")),
                        next: None,
                    }));
                }
                Found::Missing => unreachable!("a parse finds an anchor or not"),
            }
        }
        let newest = usize::from(heads[1].seq > heads[0].seq);
        Ok(Some(Slots {
            found: Found::Valid(heads.swap_remove(newest)),
            next: Some(1 - newest),
        }))
    }

    fn parse(&self, text: &str) -> Found {
        let mut lines = text.lines();
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|line| line.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix(' '))
                .map(str::to_owned)
        };
        if field("aurum-audit-anchor").as_deref() != Some("v1") {
            return Found::Invalid("not an aurum audit anchor (v1)".to_owned());
        }
        let (Some(seq), Some(hash), Some(mac)) = (field("seq"), field("hash"), field("mac")) else {
            return Found::Invalid("anchor file is incomplete".to_owned());
        };
        let Ok(seq) = seq.parse::<u64>() else {
            return Found::Invalid(format!("anchor seq {seq:?} is not a number"));
        };
        let Ok(tag) = hex::decode(&mac) else {
            return Found::Invalid("anchor mac is not hex".to_owned());
        };
        if self.mac(seq, &hash).verify_slice(&tag).is_err() {
            return Found::Invalid(
                "HMAC does not match: the anchor was forged, corrupted or signed with another key"
                    .to_owned(),
            );
        }
        Found::Valid(ChainHead { seq, hash })
    }

    fn mac(&self, seq: u64, hash: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{MAGIC}\n{seq}\n{hash}").as_bytes());
        mac
    }

    fn render(&self, head: &ChainHead) -> String {
        let tag = hex::encode(self.mac(head.seq, &head.hash).finalize().into_bytes());
        format!("{MAGIC}\nseq {}\nhash {}\nmac {tag}\n", head.seq, head.hash)
    }

    /// One slot: the rendering padded with newlines to [`SLOT_BYTES`].
    fn slot(&self, head: &ChainHead) -> Vec<u8> {
        let mut bytes = self.render(head).into_bytes();
        debug_assert!(bytes.len() <= 512, "a slot's text fits in one sector");
        bytes.resize(SLOT_BYTES, b'\n');
        bytes
    }

    /// Moves the anchor forward to `head` under the lock. Blocking.
    ///
    /// A newer anchor (another process went further) is kept. A missing anchor is created only
    /// when `create` is set (a new log, or the first anchoring of an old one at open); otherwise
    /// it, like an unauthentic one, is an error and the file is left as found.
    pub(super) fn advance(&self, head: &ChainHead, create: bool) -> Result<(), String> {
        let lock = lock_file(&self.lock_path)?;
        let loaded = self
            .load()
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()));
        let next = match loaded {
            Err(detail) => Found::Invalid(detail),
            Ok(None) => Found::Missing,
            Ok(Some(slots)) => match (slots.found, slots.next) {
                (Found::Valid(current), _) if current.seq >= head.seq => return Ok(()),
                (Found::Valid(_), Some(slot)) => {
                    self.overwrite_slot(slot, head)
                        .map_err(|e| format!("cannot write audit anchor: {e}"))?;
                    drop(lock);
                    return Ok(());
                }
                (found, _) => found,
            },
        };
        match next {
            // The one-anchor layout: replaced below by the two-slot file.
            Found::Valid(_) => {}
            Found::Missing if create => {}
            Found::Missing => {
                return Err(format!(
                    "audit anchor {} is missing; refusing to re-create it over an existing log",
                    self.path.display()
                ));
            }
            Found::Invalid(detail) => {
                return Err(format!(
                    "audit anchor {} is not authentic ({detail}); refusing to replace it",
                    self.path.display()
                ));
            }
        }
        let slot = self.slot(head);
        write_atomic(&self.path, &[slot.as_slice(), slot.as_slice()].concat())
            .map_err(|e| format!("cannot write audit anchor: {e}"))?;
        drop(lock);
        Ok(())
    }

    /// Overwrites slot `k` with `head` in place and flushes its data (no metadata changes: the
    /// file keeps its size and inode).
    fn overwrite_slot(&self, k: usize, head: &ChainHead) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| named(&self.path, e))?;
        // Still the two-slot file the caller read under the same lock.
        if file.metadata()?.len() != FILE_BYTES as u64 {
            return Err(std::io::Error::other(
                "the anchor file changed under the lock",
            ));
        }
        file.seek(std::io::SeekFrom::Start((k * SLOT_BYTES) as u64))?;
        file.write_all(&self.slot(head))
            .and_then(|()| file.sync_data())
            .map_err(|e| named(&self.path, e))
    }
}

/// What [`Anchor::load`] found.
struct Slots {
    found: Found,
    /// The slot the next move overwrites (the older one), in the two-slot layout.
    next: Option<usize>,
}

/// The anchor for an empty log.
pub(super) fn genesis() -> ChainHead {
    ChainHead {
        seq: 0,
        hash: GENESIS_HASH.to_owned(),
    }
}

fn lock_path(anchor: &Path) -> PathBuf {
    let mut name = anchor.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Opens (creating, mode 0600) and exclusively locks `path`; the lock is released on drop.
fn lock_file(path: &Path) -> Result<std::fs::File, String> {
    let file = private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("cannot open lock file {}: {e}", path.display()))?;
    file.lock()
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    Ok(file)
}

/// Reads the hex key at `path`, or creates it from a CSPRNG (`ThreadRng`, seeded by the OS) (mode 0600) when it is missing.
/// Called with the anchor lock held, so two processes cannot both create it.
fn load_or_create_key(path: &Path) -> Result<Vec<u8>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = hex::decode(text.trim()).map_err(|_| {
                format!(
                    "anchor key file {} must hold the key as hex",
                    path.display()
                )
            })?;
            if key.len() < MIN_KEY_BYTES {
                return Err(format!(
                    "anchor key file {} must hold at least {MIN_KEY_BYTES} bytes",
                    path.display()
                ));
            }
            warn_if_readable_by_others(path);
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = vec![0u8; KEY_BYTES];
            rand::rng().fill_bytes(&mut key);
            write_atomic(path, format!("{}\n", hex::encode(&key)).as_bytes())
                .map_err(|e| format!("cannot create anchor key: {e}"))?;
            tracing::info!(path = %path.display(), "audit anchor key created");
            Ok(key)
        }
        Err(e) => Err(format!(
            "cannot read anchor key file {}: {e}",
            path.display()
        )),
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "audit anchor key is readable by other users; it should be mode 0600"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// `OpenOptions` that create files readable and writable by the owner only (mode 0600).
pub(super) fn private_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// Replaces `path` whole, readable by the owner only.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::atomic_file::write(path, bytes, crate::atomic_file::Access::Private)
}

fn named(path: &Path, error: std::io::Error) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor(dir: &tempfile::TempDir) -> Anchor {
        let options = AnchorOptions::beside(&dir.path().join("audit.db"));
        let opened = Anchor::open(&options).unwrap();
        assert!(opened.first_use);
        assert_eq!(opened.found, Found::Missing);
        opened.anchor
    }

    fn head(seq: u64) -> ChainHead {
        ChainHead {
            seq,
            hash: format!("{seq:064x}"),
        }
    }

    #[test]
    fn round_trips_and_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let a = anchor(&dir);
        assert!(
            a.advance(&head(5), false).is_err(),
            "missing is not created"
        );
        a.advance(&head(5), true).unwrap();
        assert_eq!(a.read(), Found::Valid(head(5)));
        a.advance(&head(3), false).unwrap();
        assert_eq!(a.read(), Found::Valid(head(5)), "a lower seq is ignored");
        a.advance(&head(9), false).unwrap();
        assert_eq!(a.read(), Found::Valid(head(9)));

        let again = Anchor::open(&AnchorOptions::beside(&dir.path().join("audit.db"))).unwrap();
        assert!(!again.first_use);
        assert_eq!(again.found, Found::Valid(head(9)), "the key file is reused");
    }

    #[test]
    fn a_forged_anchor_is_invalid_and_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let a = anchor(&dir);
        a.advance(&head(4), true).unwrap();
        let text = std::fs::read_to_string(a.path()).unwrap();
        std::fs::write(a.path(), text.replace("seq 4", "seq 2")).unwrap();
        assert!(matches!(a.read(), Found::Invalid(detail) if detail.contains("HMAC")));
        assert!(
            a.advance(&head(6), false)
                .unwrap_err()
                .contains("not authentic")
        );

        let other = Anchor {
            key: vec![7; 32],
            ..anchor(&tempfile::tempdir().unwrap())
        };
        assert!(matches!(
            other.parse(&a.render(&head(1))),
            Found::Invalid(_)
        ));
    }

    /// The seqs of the two slots.
    fn slot_seqs(a: &Anchor) -> [u64; 2] {
        let bytes = std::fs::read(a.path()).unwrap();
        assert_eq!(bytes.len(), FILE_BYTES);
        let seq = |block: &[u8]| match a.parse(std::str::from_utf8(block).unwrap().trim_end()) {
            Found::Valid(h) => h.seq,
            other => panic!("{other:?}"),
        };
        [seq(&bytes[..SLOT_BYTES]), seq(&bytes[SLOT_BYTES..])]
    }

    #[cfg(unix)]
    #[test]
    fn moves_overwrite_the_older_slot_in_place() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let a = anchor(&dir);
        a.advance(&head(1), true).unwrap();
        assert_eq!(slot_seqs(&a), [1, 1]);
        let inode = std::fs::metadata(a.path()).unwrap().ino();
        a.advance(&head(2), false).unwrap();
        let after2 = slot_seqs(&a);
        assert!(after2.contains(&1) && after2.contains(&2), "{after2:?}");
        for seq in 3..=6 {
            a.advance(&head(seq), false).unwrap();
            let mut slots = slot_seqs(&a);
            slots.sort_unstable();
            assert_eq!(slots, [seq - 1, seq], "the newest slot is kept");
            assert_eq!(a.read(), Found::Valid(head(seq)));
        }
        assert_eq!(
            std::fs::metadata(a.path()).unwrap().ino(),
            inode,
            "written in place, never replaced"
        );
        // Either slot forged: the anchor is not authentic, and is left as found.
        let bytes = std::fs::read(a.path()).unwrap();
        for k in 0..2 {
            let mut forged = bytes.clone();
            let at = k * SLOT_BYTES + MAGIC.len() + 5;
            forged[at] = if forged[at] == b'1' { b'2' } else { b'1' };
            std::fs::write(a.path(), &forged).unwrap();
            assert!(
                matches!(a.read(), Found::Invalid(d) if d.contains(&format!("slot {k}"))),
                "slot {k}"
            );
            assert!(a.advance(&head(9), false).is_err());
            assert_eq!(std::fs::read(a.path()).unwrap(), forged);
        }
    }

    #[test]
    fn a_one_anchor_file_is_read_and_replaced_by_two_slots_at_its_next_move() {
        let dir = tempfile::tempdir().unwrap();
        let a = anchor(&dir);
        std::fs::write(a.path(), a.render(&head(4))).unwrap();
        assert_eq!(a.read(), Found::Valid(head(4)));
        a.advance(&head(3), false).unwrap();
        assert_eq!(
            std::fs::read_to_string(a.path()).unwrap(),
            a.render(&head(4)),
            "not moved back"
        );
        a.advance(&head(7), false).unwrap();
        assert_eq!(slot_seqs(&a), [7, 7]);
        assert_eq!(a.read(), Found::Valid(head(7)));
        // A damaged one-anchor file stays an error.
        std::fs::write(a.path(), "aurum-audit-anchor v1\nseq").unwrap();
        assert!(matches!(a.read(), Found::Invalid(_)));
        assert!(a.advance(&head(8), false).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn key_anchor_and_lock_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        anchor(&dir).advance(&head(1), true).unwrap();
        for name in ["audit.key", "audit.anchor", "audit.anchor.lock"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let options = AnchorOptions {
            path: dir.path().join("audit.anchor"),
            key: AnchorKey::Secret(b"short".to_vec()),
        };
        assert!(Anchor::open(&options).is_err());
    }
}
