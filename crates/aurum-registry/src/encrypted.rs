//! Encryption at rest for artifacts: an [`ArtifactStore`] wrapper that seals every value with
//! AES-256-GCM before it reaches the inner store.
//!
//! **Envelope.** `AURUMENC` (8 bytes) · format `1` · key-id length (1 byte) · key id · 12-byte
//! random nonce · ciphertext with its 16-byte tag. The associated data is the header plus the
//! artifact key, so a sealed value moved to another key (or given another key id) fails to
//! open instead of being served as something else.
//!
//! **Keys and rotation.** An [`EncryptionKeys`] ring holds named 256-bit keys; the first is the
//! current one and seals every write, the others only open older values. Rotation without
//! downtime: put the new key first and keep the old one after it (every process keeps reading
//! old values and writes new ones with the new key), re-seal the existing values with
//! [`EncryptedArtifactStore::reseal_all`] (`aurum admin reencrypt`), then drop the old key.
//!
//! **Compatibility.** A value without the magic is read as it is (data written before
//! encryption was turned on); `reseal_all` seals those too. The registry's SHA-256 stays the
//! hash of the plaintext, so [`crate::artifact::get_verified`] works unchanged above this layer
//! and the checksum is still verified on every load.

use std::sync::Arc;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use async_trait::async_trait;
use rand::RngCore;

use crate::artifact::ArtifactStore;
use crate::error::{RegistryError, Result};

const MAGIC: &[u8; 8] = b"AURUMENC";
const FORMAT: u8 = 1;
const NONCE_LEN: usize = 12;

/// Named AES-256 keys; the first seals, all open.
#[derive(Clone)]
pub struct EncryptionKeys {
    keys: Vec<(String, Arc<Aes256Gcm>)>,
}

impl std::fmt::Debug for EncryptionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material.
        f.debug_struct("EncryptionKeys")
            .field("ids", &self.ids())
            .finish()
    }
}

impl EncryptionKeys {
    /// Parses keys written one per line as `<id>:<64 hex digits>` (or `;`-separated on one
    /// line, for an environment variable); blank lines and `#` comments are skipped. The first
    /// key is the current one. Ids are 1–64 characters of `[A-Za-z0-9._-]` and unique.
    pub fn parse(text: &str) -> Result<EncryptionKeys> {
        let mut keys: Vec<(String, Arc<Aes256Gcm>)> = Vec::new();
        for (i, entry) in text
            .split(['\n', ';'])
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .enumerate()
        {
            let bad =
                |why: &str| RegistryError::InvalidInput(format!("encryption key {}: {why}", i + 1));
            let (id, hex_key) = entry
                .split_once(':')
                .ok_or_else(|| bad("expected `<id>:<64 hex digits>`"))?;
            let (id, hex_key) = (id.trim(), hex_key.trim());
            if id.is_empty()
                || id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(bad(
                    "the id must be 1-64 characters of letters, digits, '.', '_', '-'",
                ));
            }
            if keys.iter().any(|(k, _)| k == id) {
                return Err(bad(&format!("the id `{id}` appears twice")));
            }
            let bytes = hex::decode(hex_key).map_err(|_| bad("the key is not hex"))?;
            if bytes.len() != 32 {
                return Err(bad(&format!(
                    "the key has {} bytes; AES-256 needs 32 (64 hex digits)",
                    bytes.len()
                )));
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| bad("the key has the wrong length"))?;
            keys.push((id.to_string(), Arc::new(cipher)));
        }
        if keys.is_empty() {
            return Err(RegistryError::InvalidInput(
                "no encryption key given (expected lines of `<id>:<64 hex digits>`)".into(),
            ));
        }
        Ok(EncryptionKeys { keys })
    }

    /// The key ids, current first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _)| id.as_str()).collect()
    }

    fn current(&self) -> (&str, &Aes256Gcm) {
        let (id, cipher) = &self.keys[0];
        (id, cipher)
    }

    fn by_id(&self, id: &str) -> Option<&Aes256Gcm> {
        self.keys
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, c)| c.as_ref())
    }

    /// Seals `plaintext` stored under `artifact_key` with the current key.
    pub fn seal(&self, artifact_key: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let (id, cipher) = self.current();
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let header = header(id, &nonce);
        let aad = [header.as_slice(), artifact_key.as_bytes()].concat();
        let ciphertext = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| RegistryError::Internal("AES-GCM encryption failed".into()))?;
        let mut out = header;
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens a value read from `artifact_key`; a value without the envelope is returned as it
    /// is (written before encryption was turned on).
    pub fn open(&self, artifact_key: &str, stored: Vec<u8>) -> Result<Vec<u8>> {
        let Some(parsed) = parse_header(&stored) else {
            return Ok(stored);
        };
        let fail = |reason: String| RegistryError::ArtifactDecrypt {
            key: artifact_key.to_string(),
            reason,
        };
        let (id, nonce, body_at) = parsed.map_err(fail)?;
        let cipher = self.by_id(id).ok_or_else(|| {
            fail(format!(
                "it was sealed with key `{id}`, which is not configured (configured: {})",
                self.ids().join(", ")
            ))
        })?;
        let aad = [&stored[..body_at], artifact_key.as_bytes()].concat();
        cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &stored[body_at..],
                    aad: &aad,
                },
            )
            .map_err(|_| {
                fail(format!(
                    "the key configured as `{id}` does not open it (wrong key, or the file was \
                     altered or moved)"
                ))
            })
    }
}

/// Whether `bytes` carry the encryption envelope.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

fn header(id: &str, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    let mut h = Vec::with_capacity(MAGIC.len() + 2 + id.len() + NONCE_LEN);
    h.extend_from_slice(MAGIC);
    h.push(FORMAT);
    h.push(id.len() as u8);
    h.extend_from_slice(id.as_bytes());
    h.extend_from_slice(nonce);
    h
}

/// `None` without the magic; else the key id, the nonce and where the ciphertext starts.
#[allow(clippy::type_complexity)]
fn parse_header(
    bytes: &[u8],
) -> Option<std::result::Result<(&str, [u8; NONCE_LEN], usize), String>> {
    if !is_sealed(bytes) {
        return None;
    }
    let rest = &bytes[MAGIC.len()..];
    Some((|| {
        let (&format, rest) = rest.split_first().ok_or("the envelope is truncated")?;
        if format != FORMAT {
            return Err(format!(
                "envelope format {format} is not supported (expected 1)"
            ));
        }
        let (&id_len, rest) = rest.split_first().ok_or("the envelope is truncated")?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + NONCE_LEN + 16 {
            return Err("the envelope is truncated".to_string());
        }
        let id = std::str::from_utf8(&rest[..id_len]).map_err(|_| "the key id is not UTF-8")?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&rest[id_len..id_len + NONCE_LEN]);
        Ok((id, nonce, MAGIC.len() + 2 + id_len + NONCE_LEN))
    })())
}

/// An [`ArtifactStore`] that seals on `put` and opens on `get`.
pub struct EncryptedArtifactStore {
    inner: Arc<dyn ArtifactStore>,
    keys: EncryptionKeys,
}

impl EncryptedArtifactStore {
    pub fn new(inner: Arc<dyn ArtifactStore>, keys: EncryptionKeys) -> Self {
        EncryptedArtifactStore { inner, keys }
    }

    /// Re-seals every value with the current key (values in clear, or sealed with an older
    /// key); returns how many were rewritten. Each rewrite is an atomic replace, so readers see
    /// the old or the new envelope, both of which open while the old key is still configured.
    pub async fn reseal_all(&self) -> Result<usize> {
        let current = self.keys.current().0.to_string();
        let mut rewritten = 0;
        for key in self.inner.list().await? {
            let stored = self.inner.get(&key).await?;
            let up_to_date = matches!(parse_header(&stored), Some(Ok((id, _, _))) if id == current);
            if up_to_date {
                continue;
            }
            let plain = self.keys.open(&key, stored)?;
            self.inner.put(&key, self.keys.seal(&key, &plain)?).await?;
            rewritten += 1;
        }
        tracing::info!(rewritten, key_id = %current, "artifacts re-sealed with the current key");
        Ok(rewritten)
    }
}

#[async_trait]
impl ArtifactStore for EncryptedArtifactStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        crate::artifact::validate_key(key)?;
        let (keys, k) = (self.keys.clone(), key.to_string());
        let sealed = tokio::task::spawn_blocking(move || keys.seal(&k, &bytes))
            .await
            .map_err(|e| RegistryError::Internal(format!("encryption task failed: {e}")))??;
        self.inner.put(key, sealed).await
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let stored = self.inner.get(key).await?;
        let (keys, k) = (self.keys.clone(), key.to_string());
        tokio::task::spawn_blocking(move || keys.open(&k, stored))
            .await
            .map_err(|e| RegistryError::Internal(format!("decryption task failed: {e}")))?
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.inner.exists(key).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }

    async fn list(&self) -> Result<Vec<String>> {
        self.inner.list().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "k2:ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eff";

    #[test]
    fn seal_and_open_round_trip_and_bind_the_artifact_key() {
        let keys = EncryptionKeys::parse(K1).unwrap();
        let sealed = keys.seal("models/a/1.aurum", b"secret model").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            keys.open("models/a/1.aurum", sealed.clone()).unwrap(),
            b"secret model"
        );
        // Moved to another key: refused, not served.
        let err = keys.open("models/b/1.aurum", sealed.clone()).unwrap_err();
        assert_eq!(err.code(), "artifact_decrypt_failed");
        // One flipped bit: refused.
        let mut tampered = sealed;
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(keys.open("models/a/1.aurum", tampered).is_err());
        // Values in clear pass through.
        assert_eq!(keys.open("x", b"plain".to_vec()).unwrap(), b"plain");
    }

    #[test]
    fn rotation_opens_old_values_and_a_missing_key_is_named() {
        let old = EncryptionKeys::parse(K1).unwrap();
        let sealed = old.seal("d/x.csv", b"a,b\n1,2\n").unwrap();
        let rotated = EncryptionKeys::parse(&format!("{K2}\n{K1}")).unwrap();
        assert_eq!(rotated.ids(), ["k2", "k1"]);
        assert_eq!(
            rotated.open("d/x.csv", sealed.clone()).unwrap(),
            b"a,b\n1,2\n"
        );
        let only_new = EncryptionKeys::parse(K2).unwrap();
        let err = only_new.open("d/x.csv", sealed).unwrap_err().to_string();
        assert!(
            err.contains("`k1`") && err.contains("not configured"),
            "{err}"
        );
        // Same id, different key material: a clear refusal.
        let wrong = EncryptionKeys::parse(&K2.replace("k2:", "k1:")).unwrap();
        let sealed = old.seal("d/x.csv", b"data").unwrap();
        let err = wrong.open("d/x.csv", sealed).unwrap_err().to_string();
        assert!(err.contains("does not open it"), "{err}");
    }

    #[test]
    fn bad_key_files_are_refused_with_the_line() {
        for (text, needle) in [
            ("", "no encryption key"),
            ("k1", "expected"),
            ("k1:zz", "not hex"),
            ("k1:0011", "32"),
            (&format!("{K1}\n{K1}"), "twice"),
            ("bad id:00", "id must be"),
        ] {
            let err = EncryptionKeys::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
