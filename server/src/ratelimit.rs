//! Token buckets for `POST /r` and `POST /csp/KEY`: one per site and one
//! per client address.
//!
//! Each key has a bucket of `burst` tokens refilled at `rate` tokens per
//! second. A request costs one token per site it carries reports for (the
//! site map only ever holds keys of registered sites: the check runs after
//! the site lookup) and one from its client's bucket. Client addresses are
//! not bounded by anything, so that map has a size cap: when it is full,
//! buckets that are back to full (idle clients) are dropped, and if none
//! is, the map is cleared (every client starts again with a full bucket).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    max_keys: usize,
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
            max_keys: usize::MAX,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Caps the number of buckets kept (for unbounded keys: client addresses).
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// Makes room for a new key when the map is full: drops buckets that
    /// have refilled completely, or everything if none has.
    fn make_room(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        if buckets.len() < self.max_keys {
            return;
        }
        buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens + elapsed * self.rate < self.burst
        });
        if buckets.len() >= self.max_keys {
            buckets.clear();
        }
    }

    /// Buckets held (for tests and metrics).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
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
            if !buckets.contains_key(site) {
                self.make_room(&mut buckets, now);
            }
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

/// The key of a client address: IPv4 as is, IPv6 by its /64 prefix (one
/// host usually holds a whole /64).
pub fn client_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
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
    fn the_client_map_stays_bounded() {
        let rl = RateLimiter::new(1.0, 2).with_max_keys(3);
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(rl.check([format!("c{i}").as_str()], t0).is_ok());
            assert!(rl.len() <= 3);
        }
        // A busy client keeps its (empty) bucket while idle ones go.
        let rl = RateLimiter::new(1.0, 1).with_max_keys(2);
        assert!(rl.check(["idle"], t0).is_ok());
        assert!(rl.check(["busy"], t0 + Duration::from_millis(900)).is_ok());
        let later = t0 + Duration::from_millis(1000);
        assert!(rl.check(["new"], later).is_ok());
        assert!(rl.check(["busy"], later).is_err());
        assert_eq!(
            client_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(client_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(client_key("10.0.0.1".parse().unwrap()), "10.0.0.1");
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
