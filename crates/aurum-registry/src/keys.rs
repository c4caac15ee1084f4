//! API key material: generation, parsing and argon2id hashing.
//!
//! A key reads `aurum_<keyid>_<secret>`: the 12-character key id is public and indexes the
//! stored row, so verification costs one lookup and one hash rather than a scan; the secret is
//! 32 bytes from the thread-local CSPRNG, hex-encoded. Only an argon2id PHC string of the whole
//! key is stored, so a copy of the database does not let anyone call the API. Hashing and
//! verification are deliberately slow and run on the blocking pool.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use rand::Rng;

use crate::error::{RegistryError, Result};

const PREFIX: &str = "aurum_";
const KEY_ID_LEN: usize = 12;
const KEY_ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_BYTES: usize = 32;

/// A freshly generated key: its public id and the full plaintext.
pub(crate) struct GeneratedKey {
    pub id: String,
    pub plaintext: String,
}

pub(crate) fn generate() -> GeneratedKey {
    let mut rng = rand::rng();
    let id: String = (0..KEY_ID_LEN)
        .map(|_| char::from(KEY_ID_ALPHABET[rng.random_range(0..KEY_ID_ALPHABET.len())]))
        .collect();
    let mut secret = [0u8; SECRET_BYTES];
    rng.fill(&mut secret[..]);
    let plaintext = format!("{PREFIX}{id}_{}", hex::encode(secret));
    GeneratedKey { id, plaintext }
}

/// The key id of a well-formed key, `None` for anything else.
pub(crate) fn parse_key_id(plaintext: &str) -> Option<&str> {
    let rest = plaintext.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == KEY_ID_LEN && id.bytes().all(|b| KEY_ID_ALPHABET.contains(&b));
    let secret_ok = secret.len() == SECRET_BYTES * 2
        && secret
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (id_ok && secret_ok).then_some(id)
}

/// The argon2id PHC string of `plaintext` with a fresh random salt.
pub(crate) fn hash(plaintext: &str) -> Result<String> {
    Argon2::default()
        .hash_password(plaintext.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| RegistryError::Internal(format!("hashing an API key failed: {e}")))
}

/// Whether `plaintext` matches the stored PHC string.
pub(crate) fn verify(plaintext: &str, phc: &str) -> Result<bool> {
    let parsed = PasswordHash::new(phc)
        .map_err(|e| RegistryError::CorruptRecord(format!("stored API key hash: {e}")))?;
    match Argon2::default().verify_password(plaintext.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(RegistryError::Internal(format!(
            "verifying an API key failed: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = generate();
        let b = generate();
        assert_ne!(a.plaintext, b.plaintext);
        assert_eq!(parse_key_id(&a.plaintext), Some(a.id.as_str()));
        assert_eq!(a.plaintext.len(), PREFIX.len() + KEY_ID_LEN + 1 + 64);
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        let good = generate().plaintext;
        assert!(parse_key_id("").is_none());
        assert!(parse_key_id("aurum_").is_none());
        assert!(parse_key_id(&good.replacen("aurum_", "other_", 1)).is_none());
        assert!(parse_key_id(&good[..good.len() - 1]).is_none());
        assert!(parse_key_id(&good.to_uppercase()).is_none());
        assert!(parse_key_id(&format!("{good}_")).is_none());
    }

    #[test]
    fn hash_verifies_only_the_same_key() {
        let key = generate().plaintext;
        let phc = hash(&key).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(!phc.contains(&key));
        assert!(verify(&key, &phc).unwrap());
        assert!(!verify(&generate().plaintext, &phc).unwrap());
        assert!(verify(&key, "not a phc string").is_err());
    }
}
