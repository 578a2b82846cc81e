//! Token-bucket rate limits per client address and per key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most buckets kept per limiter; beyond it, buckets that have refilled are dropped, as a
/// refilled bucket is the same as a new one.
const MAX_BUCKETS: usize = 100_000;

/// A rate limit over many clients: each name has a bucket of `burst` tokens that refills at
/// `rate` tokens a second, and a request takes one token.
#[derive(Debug)]
pub(super) struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Limiter {
    /// Creates a limiter, or returns `None` when `rate` is 0 (no limit).
    pub(super) fn new(rate: f64, burst: u32) -> Option<Self> {
        (rate > 0.0).then(|| Self {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    pub(super) fn rate(&self) -> f64 {
        self.rate
    }

    /// Takes a token for `name` at `now`, or returns how long until one is free.
    pub(super) fn check(&self, name: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("the rate lock is not poisoned");
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(name) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, bucket| refilled(bucket, now, rate, burst) < burst);
        }
        let bucket = buckets.entry(name.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        bucket.tokens = refilled(bucket, now, self.rate, self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

fn refilled(bucket: &Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * rate).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_rate_is_no_limiter() {
        assert!(Limiter::new(0.0, 10).is_none());
    }

    #[test]
    fn burst_then_refill() {
        let limiter = Limiter::new(2.0, 3).expect("limited");
        let start = Instant::now();
        for request in 0..3 {
            assert!(limiter.check("a", start).is_ok(), "request {request}");
        }
        let wait = limiter.check("a", start).expect_err("fourth is limited");
        assert!(
            (wait.as_secs_f64() - 0.5).abs() < 1e-9,
            "one token at 2/s: {wait:?}"
        );
        assert!(
            limiter.check("b", start).is_ok(),
            "other names keep their own bucket"
        );
        let later = start + Duration::from_millis(500);
        assert!(limiter.check("a", later).is_ok(), "refilled after 0.5 s");
        assert!(limiter.check("a", later).is_err());
    }
}
