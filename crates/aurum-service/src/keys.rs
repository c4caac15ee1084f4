//! API keys: creation, revocation and authentication with a verification cache.
//!
//! Keys are stored as argon2id hashes, which makes one verification cost milliseconds by
//! design. A serving path cannot pay that per request, so a successful verification is cached
//! under the SHA-256 of the presented key for [`KEY_CACHE_TTL`]; revocation through this process
//! clears the cache at once, and revocation by another replica takes effect within the TTL.
//! Failed lookups are cached briefly too, so a flood of bad keys cannot pin the CPU on argon2.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aurum_core::{sha256_hex, validate_name};
use aurum_registry::KeyRecord;

pub use aurum_registry::Role;

use crate::{CallContext, Platform, ServiceError};

/// How long a verified key is trusted without re-checking the store.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(30);
const NEGATIVE_TTL: Duration = Duration::from_secs(5);
const MAX_CACHE_ENTRIES: usize = 10_000;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// Whether this principal may act with `needed`'s permissions (admin may do everything).
    pub fn allows(&self, needed: Role) -> bool {
        self.role == Role::Admin || self.role == needed
    }
}

#[derive(Default)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<String, (Option<Principal>, Instant)>>,
}

impl KeyCache {
    fn get(&self, digest: &str) -> Option<Option<Principal>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (principal, at) = entries.get(digest)?;
        let ttl = if principal.is_some() {
            KEY_CACHE_TTL
        } else {
            NEGATIVE_TTL
        };
        (at.elapsed() < ttl).then(|| principal.clone())
    }

    fn put(&self, digest: String, principal: Option<Principal>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_CACHE_ENTRIES {
            entries.retain(|_, (p, at)| {
                at.elapsed()
                    < if p.is_some() {
                        KEY_CACHE_TTL
                    } else {
                        NEGATIVE_TTL
                    }
            });
            if entries.len() >= MAX_CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(digest, (principal, Instant::now()));
    }

    fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

fn principal(record: &KeyRecord) -> Principal {
    Principal {
        key_id: record.id.clone(),
        name: record.name.clone(),
        role: record.role,
    }
}

impl Platform {
    /// Resolves a presented API key to its principal, or `Unauthenticated`.
    pub async fn authenticate(&self, presented: &str) -> Result<Principal, ServiceError> {
        let digest = sha256_hex(presented.as_bytes());
        let cached = self.inner.keys.get(&digest);
        let found = match cached {
            Some(p) => p,
            None => {
                let record = self.inner.meta.verify_key(presented).await?;
                let p = record.as_ref().map(principal);
                self.inner.keys.put(digest, p.clone());
                p
            }
        };
        found.ok_or_else(|| ServiceError::Unauthenticated("invalid or revoked API key".into()))
    }

    /// Creates a key; the plaintext is returned once and never stored.
    pub async fn create_key(
        &self,
        ctx: &CallContext,
        name: &str,
        role: Role,
    ) -> Result<(KeyRecord, String), ServiceError> {
        validate_name(name)
            .map_err(|e| ServiceError::invalid("invalid_name", Some("name"), e.to_string()))?;
        let (record, plaintext) = self.inner.meta.create_key(name, role).await?;
        self.audit(
            ctx,
            "key.create",
            None,
            serde_json::json!({"key_id": record.id, "name": record.name, "role": role.as_str()}),
        )
        .await?;
        tracing::info!(key = %record.name, role = role.as_str(), "API key created");
        Ok((record, plaintext))
    }

    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, ServiceError> {
        Ok(self.inner.meta.list_keys().await?)
    }

    /// Revokes a key by name or id; it stops working in this process at once.
    pub async fn revoke_key(
        &self,
        ctx: &CallContext,
        name_or_id: &str,
    ) -> Result<KeyRecord, ServiceError> {
        let record = self.inner.meta.revoke_key(name_or_id).await?;
        self.inner.keys.clear();
        self.audit(
            ctx,
            "key.revoke",
            None,
            serde_json::json!({"key_id": record.id, "name": record.name}),
        )
        .await?;
        tracing::info!(key = %record.name, "API key revoked");
        Ok(record)
    }

    /// On a data dir without any active key, creates an `admin` key, writes it to
    /// `<data_dir>/admin.key` with mode 0600 and returns it. Otherwise returns `None`.
    pub async fn ensure_bootstrap_admin(&self) -> Result<Option<String>, ServiceError> {
        if self.inner.meta.count_active_keys().await? > 0 {
            return Ok(None);
        }
        let mut name = "admin".to_string();
        let existing = self.inner.meta.list_keys().await?;
        let mut n = 1;
        while existing.iter().any(|k| k.name == name) {
            n += 1;
            name = format!("admin-{n}");
        }
        let (_, plaintext) = self
            .create_key(&CallContext::cli(), &name, Role::Admin)
            .await?;
        let path = self.data_dir().join("admin.key");
        write_secret_file(&path, &plaintext)
            .map_err(|e| ServiceError::Internal(format!("cannot write {}: {e}", path.display())))?;
        Ok(Some(plaintext))
    }
}

fn write_secret_file(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}
