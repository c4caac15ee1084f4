//! The artifact store: where trained model bytes live.
//!
//! Why a trait: artifacts sit on local disk today ([`LocalArtifactStore`]) and in S3 (through the
//! `object_store` crate) later, so the trait is a plain key → bytes map with owned buffers and no
//! filesystem types. Keys are `/`-separated relative paths from a deliberately small alphabet
//! (see [`validate_key`]) that is safe both as a path under a root directory and as an object
//! name.
//!
//! Two invariants matter more than speed:
//! - **Writes are atomic.** A reader sees the old bytes or the new bytes, never a prefix: the
//!   local store writes a temp file in the destination directory, `fsync`s it, renames it into
//!   place and `fsync`s the directory, so a crash leaves either nothing or a complete file.
//! - **Reads are verified.** The registry records each artifact's SHA-256; [`get_verified`]
//!   recomputes it and refuses mismatching bytes with [`RegistryError::ArtifactCorrupt`], so a
//!   corrupted or tampered artifact is never deserialised.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::atomic_file::{self, Access, sync_dir};
use crate::error::{Entity, RegistryError, Result};

/// Longest accepted key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Longest accepted path segment, in bytes (common filesystem limit).
const MAX_SEGMENT_LEN: usize = 255;

/// Bytes by key. Object-safe: the service layer holds an `Arc<dyn ArtifactStore>`.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Stores `bytes` under `key` atomically, replacing any previous value.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()>;
    /// The bytes under `key`; [`RegistryError::NotFound`] (`Entity::Artifact`) when absent.
    /// Prefer [`get_verified`] whenever the expected hash is known.
    async fn get(&self, key: &str) -> Result<Vec<u8>>;
    async fn exists(&self, key: &str) -> Result<bool>;
    /// Removes `key`; removing an absent key succeeds.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Every key in the store, sorted (used to re-seal everything after a key rotation).
    async fn list(&self) -> Result<Vec<String>>;
}

/// Reads `key` and checks its SHA-256 against `expected_sha256` (lowercase hex) before returning
/// the bytes; a mismatch is [`RegistryError::ArtifactCorrupt`] and the bytes are dropped.
pub async fn get_verified(
    store: &dyn ArtifactStore,
    key: &str,
    expected_sha256: &str,
) -> Result<Vec<u8>> {
    let bytes = store.get(key).await?;
    let (bytes, actual) = tokio::task::spawn_blocking(move || {
        let actual = aurum_core::sha256_hex(&bytes);
        (bytes, actual)
    })
    .await
    .map_err(|e| RegistryError::Internal(format!("hashing task failed: {e}")))?;
    if !actual.eq_ignore_ascii_case(expected_sha256) {
        tracing::error!(key, expected = expected_sha256, actual = %actual, "artifact hash mismatch");
        return Err(RegistryError::ArtifactCorrupt {
            key: key.to_string(),
            expected: expected_sha256.to_string(),
            actual,
        });
    }
    Ok(bytes)
}

/// Checks that `key` is a safe relative path: non-empty `/`-separated segments of
/// `[A-Za-z0-9._-]`, none starting with `.` (which rules out `.`, `..`, hidden files and our temp
/// files), no leading or trailing `/`, at most [`MAX_KEY_LEN`] bytes.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |reason| {
        Err(RegistryError::InvalidArtifactKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("must not be empty");
    }
    if key.len() > MAX_KEY_LEN {
        return bad("must be at most 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("must be relative (no leading `/`)");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return bad("must not contain empty segments (`//` or a trailing `/`)");
        }
        if segment.starts_with('.') {
            return bad("segments must not start with `.` (no `.`, `..` or hidden names)");
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return bad("segments must be at most 255 bytes");
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return bad("segments may contain only letters, digits, '.', '_' and '-'");
        }
    }
    Ok(())
}

/// Artifacts as files under a root directory, one file per key.
///
/// Blocking filesystem work runs on tokio's blocking pool; errors name the path (`fs_err`).
/// A key cannot be both a file and a directory (`a` and `a/b`), unlike in an object store.
#[derive(Clone, Debug)]
pub struct LocalArtifactStore {
    root: PathBuf,
}

impl LocalArtifactStore {
    /// A store rooted at `root`, creating the directory when missing so that a bad location
    /// fails at start-up rather than on the first training job.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs_err::create_dir_all(&root)?;
        Ok(LocalArtifactStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file for a key; the only place a key meets the filesystem.
    fn path_for(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key.split('/').collect::<PathBuf>()))
    }
}

#[async_trait]
impl ArtifactStore for LocalArtifactStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.path_for(key)?;
        let root = self.root.clone();
        let len = bytes.len();
        blocking(move || write_atomic(&root, &path, &bytes)).await?;
        tracing::debug!(key, bytes = len, "artifact stored");
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let path = self.path_for(key)?;
        match blocking(move || fs_err::read(path)).await {
            Err(RegistryError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(RegistryError::not_found(Entity::Artifact, key))
            }
            other => other,
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path_for(key)?;
        blocking(move || match fs_err::metadata(&path) {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_for(key)?;
        blocking(move || {
            match fs_err::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
            match path.parent() {
                Some(dir) => sync_dir(dir),
                None => Ok(()),
            }
        })
        .await?;
        tracing::debug!(key, "artifact deleted");
        Ok(())
    }

    async fn list(&self) -> Result<Vec<String>> {
        let root = self.root.clone();
        blocking(move || {
            let mut keys = Vec::new();
            let mut dirs = vec![root.clone()];
            while let Some(dir) = dirs.pop() {
                for entry in fs_err::read_dir(&dir)? {
                    let entry = entry?;
                    let path = entry.path();
                    if entry.file_type()?.is_dir() {
                        dirs.push(path);
                        continue;
                    }
                    let Ok(rel) = path.strip_prefix(&root) else {
                        continue;
                    };
                    let key = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    // Temp files and anything else no key could name are not artifacts.
                    if validate_key(&key).is_ok() {
                        keys.push(key);
                    }
                }
            }
            keys.sort();
            Ok(keys)
        })
        .await
    }
}

/// Runs blocking IO on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RegistryError::Internal(format!("blocking IO task failed: {e}")))?
        .map_err(RegistryError::from)
}

/// Creates the destination's directories (each new one fsynced up to the root), then writes the
/// file through [`crate::atomic_file::write`].
fn write_atomic(root: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(root);
    let dir_existed = dir.is_dir();
    fs_err::create_dir_all(dir)?;
    if !dir_existed {
        // New directories must reach the disk too: fsync each parent up to the root.
        let mut parent = dir.parent();
        while let Some(p) = parent {
            sync_dir(p)?;
            if p == root || !p.starts_with(root) {
                break;
            }
            parent = p.parent();
        }
    }
    atomic_file::write(path, bytes, Access::Default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated_strictly() {
        for good in ["model.bin", "models/credit/abc123.bin", "a/b-c/d_e.f", "A9"] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/abs",
            "../x",
            "a/../b",
            "a//b",
            "a/",
            "./a",
            ".hidden",
            "a/.tmp-123",
            "a\\b",
            "a b",
            "a/b:c",
            "é",
            "a\0b",
        ] {
            let err = validate_key(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_artifact_key", "{bad}");
        }
        assert!(validate_key(&"a".repeat(256)).is_err());
        assert!(validate_key(&["a"; 600].join("/")).is_err());
    }

    #[test]
    fn paths_stay_under_the_root() {
        let store = LocalArtifactStore {
            root: PathBuf::from("/srv/artifacts"),
        };
        assert_eq!(
            store.path_for("m/v1.bin").unwrap(),
            Path::new("/srv/artifacts/m/v1.bin")
        );
        assert!(store.path_for("../etc/passwd").is_err());
    }
}
