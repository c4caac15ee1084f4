//! Console sessions: an opaque random id in an HttpOnly cookie, the state on the server.
//!
//! Why not put the key in the cookie: a cookie is stored by the browser and sent on every
//! request; an API key there would outlive the sign-out and leak with any copy of the cookie
//! jar. Instead sign-in checks the key once (with the same [`aurum_service::Platform`] call
//! as the API) and the server remembers only the key's *id* under a 256-bit random session
//! id. The map is keyed by the SHA-256 of the session id, so the server does not hold the
//! cookie values either.
//!
//! Every request re-reads the key's record ([`aurum_service::Platform::list_keys`]): a revoked
//! or expired key ends its sessions at once, and a changed scope applies on the next page.
//! Sessions live in this process's memory: a restart signs everyone out, and behind a load
//! balancer with several replicas a console user needs a sticky route (the API itself is
//! stateless and unaffected).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};

/// The session cookie.
pub const SESSION_COOKIE: &str = "aurum_console_session";
/// The sign-in form's CSRF cookie (double submit: the form carries the same value).
pub const LOGIN_CSRF_COOKIE: &str = "aurum_console_login";

/// Sessions kept at most; the oldest go first beyond it.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// The API key's public id (never its secret).
    pub key_id: String,
    /// The token the logout form must carry.
    pub csrf: String,
    pub created: Instant,
    pub expires: Instant,
}

/// The sessions of this process.
pub struct SessionStore {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
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

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Compares two tokens without an early exit on the first differing byte.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl SessionStore {
    /// A store whose sessions last `ttl` (or less, when the key expires sooner).
    pub fn new(ttl: Duration) -> Self {
        SessionStore {
            by_hash: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// Opens a session for `key_id`, ending no later than `key_expires_in`; returns the cookie
    /// value and the session.
    pub fn open(&self, key_id: &str, key_expires_in: Option<Duration>) -> (String, Session) {
        let id = random_token();
        let now = Instant::now();
        let life = key_expires_in.map_or(self.ttl, |k| k.min(self.ttl));
        let session = Session {
            key_id: key_id.to_string(),
            csrf: random_token(),
            created: now,
            expires: now + life,
        };
        let mut map = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires > now);
            if map.len() >= MAX_SESSIONS
                && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        map.insert(digest(&id), session.clone());
        (id, session)
    }

    /// The live session of a cookie value; an expired one is removed.
    pub fn get(&self, id: &str) -> Option<Session> {
        let key = digest(id);
        let mut map = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends a session (sign-out, or its key is no longer valid).
    pub fn close(&self, id: &str) {
        let mut map = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&digest(id));
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

    #[test]
    fn sessions_open_get_close_and_expire() {
        let store = SessionStore::new(Duration::from_secs(60));
        let (id, s) = store.open("kid", None);
        assert_eq!(id.len(), 64);
        assert_eq!(store.get(&id).unwrap().key_id, "kid");
        assert!(store.get("not-a-session").is_none());
        store.close(&id);
        assert!(store.get(&id).is_none());
        assert_ne!(s.csrf, id);
        let (short, _) = store.open("kid", Some(Duration::ZERO));
        assert!(store.get(&short).is_none(), "capped at the key's expiry");
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
