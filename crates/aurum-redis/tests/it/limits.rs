//! The shared request limits: one bucket and one failure count whichever replica asks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aurum_redis::{RedisLimits, RedisOptions, Taken};

use super::{options, redis_url};

fn limits(url: &str, opts: &RedisOptions) -> RedisLimits {
    RedisLimits::connect(url, opts).unwrap()
}

#[test]
fn a_key_gets_its_burst_once_across_replicas_then_its_rate() {
    let Some(url) = redis_url("a_key_gets_its_burst_once_across_replicas_then_its_rate") else {
        return;
    };
    let opts = options();
    let (a, b) = (limits(&url, &opts), limits(&url, &opts));
    // A burst of 5 for a key limited to 5 a second, taken alternately by two replicas: five
    // pass, the sixth waits about one interval (200 ms), whoever asks.
    let started = Instant::now();
    let mut allowed = 0;
    let mut waits = Vec::new();
    for i in 0..10 {
        let replica = if i % 2 == 0 { &a } else { &b };
        match replica.take("k1", 5, 1).unwrap() {
            Taken::Granted(n) => allowed += n as usize,
            Taken::Wait(wait) => waits.push(wait),
        }
    }
    let elapsed = started.elapsed();
    // Refilled while the loop ran: one more per 200 ms.
    let refill = (elapsed.as_secs_f64() * 5.0).floor() as usize;
    assert!(
        (5..=5 + refill).contains(&allowed),
        "{allowed} allowed in {elapsed:?}"
    );
    let first = waits[0];
    assert!(
        first > Duration::ZERO && first <= Duration::from_millis(200),
        "{waits:?}"
    );
    // Another key has its own bucket.
    assert_eq!(b.take("k2", 5, 1).unwrap(), Taken::Granted(1));
    // After the announced wait, one more passes, and only one.
    std::thread::sleep(*waits.last().unwrap() + Duration::from_millis(5));
    assert_eq!(a.take("k1", 5, 1).unwrap(), Taken::Granted(1));
    assert!(matches!(b.take("k1", 5, 1).unwrap(), Taken::Wait(_)));
}

#[test]
fn concurrent_takes_never_pass_more_than_the_bucket() {
    let Some(url) = redis_url("concurrent_takes_never_pass_more_than_the_bucket") else {
        return;
    };
    let opts = options();
    let replicas: Vec<Arc<RedisLimits>> = (0..4).map(|_| Arc::new(limits(&url, &opts))).collect();
    let started = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let r = Arc::clone(&replicas[t % replicas.len()]);
            std::thread::spawn(move || {
                (0..25)
                    .map(|_| match r.take("hot", 20, 1).unwrap() {
                        Taken::Granted(n) => n as usize,
                        Taken::Wait(_) => 0,
                    })
                    .sum::<usize>()
            })
        })
        .collect();
    let allowed: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let elapsed = started.elapsed();
    let ceiling = 20 + (elapsed.as_secs_f64() * 20.0).ceil() as usize;
    assert!(
        (20..=ceiling).contains(&allowed),
        "{allowed} of 200 allowed in {elapsed:?} (bucket 20, 20/s)"
    );
}

#[test]
fn leases_take_what_fits_and_never_more_than_the_bucket() {
    let Some(url) = redis_url("leases_take_what_fits_and_never_more_than_the_bucket") else {
        return;
    };
    let opts = options();
    let (a, b) = (limits(&url, &opts), limits(&url, &opts));
    // A bucket of 1 000 (1 000 a second), leased 300 at a time by two replicas: 300, 300, 300,
    // then the 100 or so left (plus the refill meanwhile), then nothing.
    let started = Instant::now();
    let mut granted = Vec::new();
    let mut wait = None;
    for i in 0..50 {
        let replica = if i % 2 == 0 { &a } else { &b };
        match replica.take("lease", 1000, 300).unwrap() {
            Taken::Granted(n) => granted.push(n),
            Taken::Wait(w) => {
                wait = Some(w);
                break;
            }
        }
    }
    let refilled = (started.elapsed().as_secs_f64() * 1000.0).ceil() as u32;
    assert_eq!(&granted[..3], [300, 300, 300], "{granted:?}");
    let total: u32 = granted.iter().sum();
    assert!(
        (1000..=1000 + refilled).contains(&total),
        "{granted:?}, refilled {refilled}"
    );
    assert!(granted[3..].iter().all(|n| *n <= 300), "{granted:?}");
    let wait = wait.expect("the bucket ran dry");
    assert!(wait <= Duration::from_millis(1), "{wait:?}");
}

#[test]
fn failures_are_counted_per_client_across_replicas_in_one_window() {
    let Some(url) = redis_url("failures_are_counted_per_client_across_replicas_in_one_window")
    else {
        return;
    };
    let opts = options();
    let (a, b) = (limits(&url, &opts), limits(&url, &opts));
    let window = Duration::from_millis(600);
    let counts: Vec<u32> = (0..4)
        .map(|i| {
            let replica = if i % 2 == 0 { &a } else { &b };
            replica.count_failures("10.0.0.7", 1, window).unwrap().0
        })
        .collect();
    assert_eq!(counts, [1, 2, 3, 4]);
    let (n, left) = b.count_failures("10.0.0.8", 1, window).unwrap();
    assert_eq!(n, 1, "another client counts on its own");
    assert!(
        left > Duration::from_millis(400) && left <= window,
        "{left:?}"
    );
    // The window ends: counting starts again.
    std::thread::sleep(window + Duration::from_millis(50));
    assert_eq!(a.count_failures("10.0.0.7", 1, window).unwrap().0, 1);
    // Several at once (a replica's batch) start a window as one does.
    assert_eq!(b.count_failures("10.0.0.9", 6, window).unwrap().0, 6);
    assert_eq!(a.count_failures("10.0.0.9", 1, window).unwrap().0, 7);
}

#[test]
fn an_unreachable_redis_is_refused_at_connect() {
    let opts = RedisOptions {
        timeout: Duration::from_millis(300),
        ..options()
    };
    let err = RedisLimits::connect("redis://127.0.0.1:1", &opts).unwrap_err();
    assert!(err.to_string().contains("unavailable"), "{err}");
    let err = RedisLimits::connect("http://127.0.0.1:1", &opts).unwrap_err();
    assert!(err.to_string().contains("not a Redis URL"), "{err}");
}
