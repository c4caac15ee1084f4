//! Console sessions: an opaque random id in an HttpOnly cookie, the state on the server.
//!
//! Why not put the key in the cookie: a cookie is stored by the browser and sent on every
//! request; an API key there would outlive the sign-out and leak with any copy of the cookie
//! jar. Instead sign-in checks the key once (with the same [`aurum_service::Platform`] call
//! as the API) and the server remembers only the key's *id* under a 256-bit random session
//! id. Sessions are stored under the SHA-256 of the session id, so the server does not hold the
//! cookie values either: a copy of the table signs nobody in.
//!
//! Every request re-reads the key's record ([`aurum_service::Platform::list_keys`]): a revoked
//! or expired key ends its sessions at once, and a changed scope applies on the next page.
//!
//! Where sessions live: in the registry's `console_sessions` table
//! ([`aurum_service::Platform::put_console_session`] and its siblings), the metadata store every
//! process and replica shares (SQLite on one machine, PostgreSQL at scale). A restart signs
//! nobody out, a load balancer may send each console request to any replica, and a sign-out on
//! one replica ends the session on all of them. Times are wall-clock unix milliseconds, so
//! processes agree on expiry (as far as their clocks do). An expired session is deleted when it
//! is presented, and every sign-in purges the expired ones; the table holds at most
//! [`MAX_SESSIONS`], a sign-in at the cap ending the oldest, so nobody can grow it without bound
//! by signing in over and over. A store failure is an error page (500), never a panic and never
//! a sign-in without a stored session.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aurum_service::types::ConsoleSessionRecord;
use aurum_service::{Platform, ServiceError};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The session cookie.
pub const SESSION_COOKIE: &str = "aurum_console_session";
/// The sign-in form's CSRF cookie (double submit: the form carries the same value).
pub const LOGIN_CSRF_COOKIE: &str = "aurum_console_login";

/// Sessions kept at most, over every process sharing the registry; beyond it the expired go
/// first, then the oldest.
pub const MAX_SESSIONS: u32 = 10_000;

/// One signed-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// The API key's public id (never its secret).
    pub key_id: String,
    /// The token the logout form must carry.
    pub csrf: String,
    /// When the session was opened (wall clock, whole milliseconds).
    pub created: SystemTime,
    /// When it ends: the console's session lifetime after `created`, or the key's expiry when
    /// that comes first.
    pub expires: SystemTime,
}

/// The console's sessions: a thin layer over the registry's shared `console_sessions` table.
#[derive(Clone)]
pub struct SessionStore {
    platform: Platform,
    ttl: Duration,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// 32 random bytes from the thread's CSPRNG, hex-encoded.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The stored key of a session id: its SHA-256, lowercase hex.
pub fn session_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Compares two tokens without an early exit on the first differing byte.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Unix milliseconds of `t` (0 before the epoch, saturating far in the future).
fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The instant `ms` unix milliseconds name (the epoch for a negative value).
fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl SessionStore {
    /// A store over `platform`'s registry whose sessions last `ttl` (or less, when the key
    /// expires sooner).
    pub fn new(platform: Platform, ttl: Duration) -> Self {
        SessionStore { platform, ttl }
    }

    /// Opens a session for `key_id`, ending no later than `key_expires_in`; returns the cookie
    /// value and the session.
    pub async fn open(
        &self,
        key_id: &str,
        key_expires_in: Option<Duration>,
    ) -> Result<(String, Session), ServiceError> {
        let id = random_token();
        let life = key_expires_in.map_or(self.ttl, |k| k.min(self.ttl));
        // Whole milliseconds, so the session handed back is the one read back later.
        let created_ms = to_ms(SystemTime::now());
        let expires_ms =
            created_ms.saturating_add(i64::try_from(life.as_millis()).unwrap_or(i64::MAX));
        let (created, expires) = (from_ms(created_ms), from_ms(expires_ms));
        let session = Session {
            key_id: key_id.to_string(),
            csrf: random_token(),
            created,
            expires,
        };
        let record = ConsoleSessionRecord {
            session_hash: session_hash(&id),
            key_id: session.key_id.clone(),
            csrf: session.csrf.clone(),
            created_at_ms: created_ms,
            expires_at_ms: expires_ms,
        };
        self.platform
            .put_console_session(&record, MAX_SESSIONS)
            .await?;
        Ok((id, session))
    }

    /// The live session of a cookie value; an expired one is removed.
    pub async fn get(&self, id: &str) -> Result<Option<Session>, ServiceError> {
        let hash = session_hash(id);
        let Some(record) = self.platform.get_console_session(&hash).await? else {
            return Ok(None);
        };
        if record.expires_at_ms <= to_ms(SystemTime::now()) {
            self.platform.delete_console_session(&hash).await?;
            return Ok(None);
        }
        Ok(Some(Session {
            key_id: record.key_id,
            csrf: record.csrf,
            created: from_ms(record.created_at_ms),
            expires: from_ms(record.expires_at_ms),
        }))
    }

    /// Ends a session (sign-out, or its key is no longer valid), on every replica.
    pub async fn close(&self, id: &str) -> Result<(), ServiceError> {
        self.platform
            .delete_console_session(&session_hash(id))
            .await?;
        Ok(())
    }

    /// How long a session lasts at most.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value scoped to `/ui`: HttpOnly, SameSite=Strict, Secure when `secure`.
/// `max_age` of zero clears the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/ui; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn platform(dir: &tempfile::TempDir) -> Platform {
        Platform::open(aurum_service::Config {
            data_dir: dir.path().join("data"),
            ..Default::default()
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn sessions_open_get_close_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let platform = platform(&dir).await;
        let store = SessionStore::new(platform.clone(), Duration::from_secs(60));
        let (id, s) = store.open("kid", None).await.unwrap();
        assert_eq!(id.len(), 64);
        let got = store.get(&id).await.unwrap().unwrap();
        assert_eq!(
            (got.key_id.as_str(), got.csrf.as_str()),
            ("kid", s.csrf.as_str())
        );
        assert_eq!((got.created, got.expires), (s.created, s.expires));
        assert_eq!(
            s.expires.duration_since(s.created).unwrap(),
            Duration::from_secs(60)
        );
        // The registry holds the digest of the cookie value, never the value.
        assert!(platform.get_console_session(&id).await.unwrap().is_none());
        let row = platform
            .get_console_session(&session_hash(&id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.key_id, "kid");
        assert!(store.get("not-a-session").await.unwrap().is_none());
        store.close(&id).await.unwrap();
        assert!(store.get(&id).await.unwrap().is_none());
        assert_ne!(s.csrf, id);
        let (short, _) = store.open("kid", Some(Duration::ZERO)).await.unwrap();
        assert!(
            store.get(&short).await.unwrap().is_none(),
            "capped at the key's expiry"
        );
        assert!(
            platform
                .get_console_session(&session_hash(&short))
                .await
                .unwrap()
                .is_none(),
            "an expired session is removed when presented"
        );
    }

    #[tokio::test]
    async fn sessions_survive_a_restart_and_are_seen_by_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let first = SessionStore::new(platform(&dir).await, Duration::from_secs(60));
        let (id, s) = first.open("kid", None).await.unwrap();
        let second = SessionStore::new(platform(&dir).await, Duration::from_secs(60));
        assert_eq!(second.get(&id).await.unwrap().unwrap().csrf, s.csrf);
        drop(first);
        let restarted = SessionStore::new(platform(&dir).await, Duration::from_secs(60));
        assert_eq!(restarted.get(&id).await.unwrap().unwrap().key_id, "kid");
        restarted.close(&id).await.unwrap();
        assert!(second.get(&id).await.unwrap().is_none());
    }

    #[test]
    fn millisecond_conversions() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(to_ms(t), 1_700_000_000_123);
        assert_eq!(from_ms(1_700_000_000_123), t);
        assert_eq!(from_ms(-5), UNIX_EPOCH);
        assert_eq!(to_ms(UNIX_EPOCH), 0);
        assert_eq!(session_hash("abc").len(), 64);
        assert_ne!(session_hash("abc"), session_hash("abd"));
    }

    #[test]
    fn cookies_parse_and_render() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            "cookie",
            "a=1; aurum_console_session=abc ; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        let c = set_cookie("n", "v", Duration::from_secs(5), true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(!set_cookie("n", "v", Duration::ZERO, false).contains("Secure"));
    }

    #[test]
    fn token_comparison() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "ab"));
    }
}
