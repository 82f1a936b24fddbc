//! Per-site token buckets for `POST /r`.
//!
//! Each site has a bucket of `burst` tokens refilled at `rate` tokens per
//! second; a request costs one token per site it carries reports for. The
//! map only ever holds keys of registered sites (the check runs after the
//! site lookup), so it is bounded by the number of sites.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// `rate` tokens per second (0 disables limiting), at most `burst` saved.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate: if rate.is_finite() && rate > 0.0 {
                rate
            } else {
                0.0
            },
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from each site's bucket, or none at all. On refusal
    /// returns how long until every bucket has a token again.
    pub fn check<'a>(
        &self,
        sites: impl IntoIterator<Item = &'a str> + Clone,
        now: Instant,
    ) -> Result<(), Duration> {
        if self.rate == 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut wait = 0.0f64;
        for site in sites.clone() {
            let bucket = buckets.entry(site.to_owned()).or_insert(Bucket {
                tokens: self.burst,
                last: now,
            });
            let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
            bucket.last = now;
            if bucket.tokens < 1.0 {
                wait = wait.max((1.0 - bucket.tokens) / self.rate);
            }
        }
        if wait > 0.0 {
            return Err(Duration::from_secs_f64(wait.min(3600.0)));
        }
        for site in sites {
            if let Some(bucket) = buckets.get_mut(site) {
                bucket.tokens -= 1.0;
            }
        }
        Ok(())
    }
}

/// `Retry-After` in whole seconds, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_refuses_then_refills() {
        let rl = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rl.check(["a"], t0).is_ok());
        }
        let wait = rl.check(["a"], t0).expect_err("bucket empty");
        assert_eq!(retry_after_secs(wait), 1);
        // Another site has its own bucket.
        assert!(rl.check(["b"], t0).is_ok());
        // Half a second refills one token at 2/s.
        assert!(rl.check(["a"], t0 + Duration::from_millis(500)).is_ok());
        assert!(rl.check(["a"], t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn all_or_nothing_across_sites() {
        let rl = RateLimiter::new(1.0, 1);
        let t0 = Instant::now();
        assert!(rl.check(["a"], t0).is_ok());
        assert!(rl.check(["a", "b"], t0).is_err());
        // "b" was not charged by the refused request.
        assert!(rl.check(["b"], t0).is_ok());
    }

    #[test]
    fn zero_rate_disables() {
        let rl = RateLimiter::new(0.0, 1);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert!(rl.check(["a"], t0).is_ok());
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
