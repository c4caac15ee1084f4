//! Request limits shared by every replica: per-key request rates and failed authentications per
//! client address.
//!
//! Why: each process otherwise keeps its own buckets, so behind a load balancer a key limited to
//! `n` requests a second gets `n` per replica, and a client guessing keys gets the failed
//! authentication budget once per replica. Here both live in one Redis, and each check is one
//! script run (one round trip), atomic on the server:
//!
//! - **Rates** use GCRA (the generic cell rate algorithm), the token bucket `aurum` keeps in
//!   process expressed as one timestamp per key: the theoretical arrival time `tat`. A request at
//!   `now` is allowed when `tat - now <= (limit - 1) * T` with `T = 1 / limit` seconds, and then
//!   moves `tat` to `max(tat, now) + T`: bursts of up to `limit`, `limit` a second sustained. A
//!   caller may take several at once (a lease, see [`RedisLimits::take`]): it gets as many of
//!   them as fit, and `tat` moves by that many intervals. A refused request changes nothing and
//!   learns how long until one would pass. The clock is the Redis server's (`TIME`), so replicas
//!   with skewed clocks agree. Key: `<prefix>:rate:<key id>`, expiring when its bucket would be
//!   full again.
//! - **Failed authentications** are counted per client address in a fixed window (the first
//!   failures start it): `<prefix>:fail:<client>`, `INCRBY` then `PEXPIRE` on the first. The
//!   caller gets the count and the time left in the window.
//!
//! Nothing here is durable state: losing Redis loses the current windows only.

use std::sync::Arc;
use std::time::Duration;

use crate::{Pool, RedisOptions};

/// GCRA: `KEYS[1]` the key's arrival time (µs, Redis clock), `ARGV[1]` the interval `T` (µs),
/// `ARGV[2]` the tolerance `(limit - 1) * T` (µs), `ARGV[3]` how many requests the caller would
/// like. Returns `{granted, wait µs}`: `granted` of them fit (at least one, at most the wish),
/// or none and the wait until one would.
const TAKE: &str = "local t = redis.call('TIME') \
     local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) \
     local interval = tonumber(ARGV[1]) \
     local tolerance = tonumber(ARGV[2]) \
     local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0 \
     if tat < now then tat = now end \
     local room = math.floor((tolerance - (tat - now)) / interval + 1e-9) + 1 \
     if room < 1 then return {0, math.max(1, math.ceil(tat - now - tolerance))} end \
     local granted = math.min(tonumber(ARGV[3]), room) \
     local new = tat + granted * interval \
     redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1) \
     return {granted, 0}";

/// `KEYS[1]` the client's failure count, `ARGV[1]` the window (ms), `ARGV[2]` the failures to
/// add. Returns `{count, ms left}`.
const COUNT_FAILURE: &str = "local n = redis.call('INCRBY', KEYS[1], ARGV[2]) \
     local ttl = redis.call('PTTL', KEYS[1]) \
     if n == tonumber(ARGV[2]) or ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end \
     return {n, ttl}";

/// What [`RedisLimits::take`] got from a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// This many requests (at least one).
    Granted(u32),
    /// None: the bucket is empty for this long.
    Wait(Duration),
}

/// Redis could not be asked (connection, timeout, an unexpected reply).
#[derive(Debug, thiserror::Error)]
#[error("shared limits unavailable: {0}")]
pub struct LimitsUnavailable(pub String);

/// Rate and failure limits in one Redis (a standalone server or a primary, `redis://` URL), under
/// [`RedisOptions::key_prefix`].
pub struct RedisLimits {
    pool: Arc<Pool>,
    prefix: String,
    location: String,
}

impl std::fmt::Debug for RedisLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimits")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl RedisLimits {
    /// Connects (one `PING`). `options.timeout` bounds every check: keep it short, a check sits
    /// on the request path.
    pub fn connect(url: &str, options: &RedisOptions) -> Result<RedisLimits, LimitsUnavailable> {
        let (pool, location) = Pool::open(url, options)
            .map_err(|e| LimitsUnavailable(format!("not a Redis URL: {e}")))?;
        let pool = Arc::new(pool);
        pool.get()
            .and_then(|mut c| c.run(|c| redis::cmd("PING").query::<String>(c)))
            .map_err(|e| LimitsUnavailable(e.to_string()))?;
        Ok(RedisLimits {
            pool,
            prefix: options.key_prefix.clone(),
            location,
        })
    }

    /// Takes up to `want` requests from `key_id`'s bucket (`limit_per_s` a second, bursts of as
    /// many): `Ok(Taken::Granted(n))` with `1 <= n <= want` (as many as the bucket holds), or
    /// `Ok(Taken::Wait(d))` when it is empty, `d` being how long until one request would pass.
    /// Taking several at once is a lease: the caller spends them without asking again.
    pub fn take(
        &self,
        key_id: &str,
        limit_per_s: u32,
        want: u32,
    ) -> Result<Taken, LimitsUnavailable> {
        let limit = f64::from(limit_per_s.max(1));
        let interval = 1e6 / limit;
        let tolerance = (limit - 1.0) * interval;
        let key = format!("{}:rate:{key_id}", self.prefix);
        let (granted, wait_us): (i64, i64) = self.eval(
            TAKE,
            &key,
            &[
                format!("{interval:.3}"),
                format!("{tolerance:.3}"),
                want.max(1).to_string(),
            ],
        )?;
        Ok(if granted > 0 {
            Taken::Granted(u32::try_from(granted).unwrap_or(u32::MAX).min(want.max(1)))
        } else {
            Taken::Wait(Duration::from_micros(wait_us.max(1).unsigned_abs()))
        })
    }

    /// Adds `failures` failed authentications of `client` to its count in its current window of
    /// length `window` (started by the first of them): the count so far, these included, and the
    /// time left.
    pub fn count_failures(
        &self,
        client: &str,
        failures: u32,
        window: Duration,
    ) -> Result<(u32, Duration), LimitsUnavailable> {
        let key = format!("{}:fail:{client}", self.prefix);
        let window_ms = window.as_millis().max(1) as u64;
        let (count, left_ms): (i64, i64) = self.eval(
            COUNT_FAILURE,
            &key,
            &[window_ms.to_string(), failures.max(1).to_string()],
        )?;
        let count = u32::try_from(count.max(0)).unwrap_or(u32::MAX);
        let left = Duration::from_millis(left_ms.clamp(0, window_ms as i64) as u64);
        Ok((count, left))
    }

    /// Runs `script` on one key with `args`, on a pooled connection.
    fn eval<T: redis::FromRedisValue>(
        &self,
        script: &str,
        key: &str,
        args: &[String],
    ) -> Result<T, LimitsUnavailable> {
        self.pool
            .get()
            .and_then(|mut c| {
                c.run(|c| {
                    redis::cmd("EVAL")
                        .arg(script)
                        .arg(1)
                        .arg(key)
                        .arg(args)
                        .query(c)
                })
            })
            .map_err(|e| LimitsUnavailable(e.to_string()))
    }

    /// Where the limits live (no password).
    pub fn describe(&self) -> String {
        self.location.clone()
    }
}
