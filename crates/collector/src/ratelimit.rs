//! Token buckets for `POST /r` and `POST /csp/KEY`: one per client
//! address ([`RateLimiter`]), and one per site shared fairly among the
//! site's clients ([`SiteLimiter`]).
//!
//! Each key has a bucket of `burst` tokens refilled at `rate` tokens per
//! second. A request costs one token from its client's bucket and one per
//! site it carries reports for (the site map only ever holds keys of
//! registered sites: the check runs after the site lookup). Client
//! addresses are not bounded by anything, so those maps have a size cap:
//! when one is full, buckets that are back to full (idle clients) are
//! dropped first.
//!
//! Site keys are public and origins can be forged, so a flood from many
//! addresses can empty a site's bucket. [`SiteLimiter`] keeps the site's
//! budget for the clients that send like a browser: each (site, client)
//! pair also has a *pace* bucket (a browser's few requests a minute). A
//! request within its client's pace may take the site's last token; one
//! beyond it only a token above [`PACE_RESERVE`] of the site's burst. So
//! while clients over their pace drain the site's bucket, it stays about
//! half full for the ones within it, and those are refused only when they
//! alone send more than the site's rate (docs/collector.md#rate-limit says
//! what that guarantees and what it cannot).

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

/// Share of a site's burst kept for requests within their client's pace:
/// a request beyond its pace is refused while the site's bucket holds less
/// than this share of `--burst` (half: the flood is held at half a bucket,
/// the other half absorbs the bursts of clients that send like a browser).
pub const PACE_RESERVE: f64 = 0.5;

/// Why [`SiteLimiter::check`] refused a request, and how long until it
/// would pass (for `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteRefusal {
    pub wait: Duration,
    /// The client is beyond its pace for a refusing site: it was shed to
    /// keep the site's reserve. `false`: the site's bucket is empty for
    /// everyone.
    pub over_pace: bool,
}

/// One bucket per site, shared fairly among the site's clients: see the
/// module comment.
#[derive(Debug)]
pub struct SiteLimiter {
    rate: f64,
    burst: f64,
    pace_rate: f64,
    pace_burst: f64,
    max_clients: usize,
    state: Mutex<SiteState>,
}

#[derive(Debug, Default)]
struct SiteState {
    sites: HashMap<String, Site>,
    /// Pace buckets held, over all sites.
    clients: usize,
}

#[derive(Debug)]
struct Site {
    bucket: Bucket,
    /// Client key → its pace bucket for this site.
    clients: HashMap<String, Bucket>,
}

/// `bucket` refilled at `rate` up to `cap` as of `now`.
fn refilled(bucket: Bucket, rate: f64, cap: f64, now: Instant) -> Bucket {
    let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
    Bucket {
        tokens: (bucket.tokens + elapsed * rate).min(cap),
        last: now.max(bucket.last),
    }
}

impl SiteLimiter {
    /// `rate` requests per second and site (0 disables limiting), at most
    /// `burst` saved; within that, `pace_rate` per second and client (0
    /// disables the pace: every client counts as within it), at most
    /// `pace_burst` saved.
    pub fn new(rate: f64, burst: u32, pace_rate: f64, pace_burst: u32) -> Self {
        let positive = |r: f64| if r.is_finite() && r > 0.0 { r } else { 0.0 };
        Self {
            rate: positive(rate),
            burst: f64::from(burst.max(1)),
            pace_rate: positive(pace_rate),
            pace_burst: f64::from(pace_burst.max(1)),
            max_clients: usize::MAX,
            state: Mutex::new(SiteState::default()),
        }
    }

    /// Caps the number of pace buckets kept, over all sites.
    pub fn with_max_clients(mut self, max_clients: usize) -> Self {
        self.max_clients = max_clients.max(1);
        self
    }

    /// The site tokens a request needs to find: 1 within its pace, the
    /// reserve plus 1 beyond it.
    fn needed(&self, within_pace: bool) -> f64 {
        if within_pace {
            1.0
        } else {
            (1.0 + PACE_RESERVE * (self.burst - 1.0)).min(self.burst)
        }
    }

    /// Makes room for one more pace bucket: drops those that have refilled
    /// completely (idle clients), then, if that is not enough, the fullest
    /// half. The emptiest (the heaviest clients) go last, so making the
    /// collector forget does not hand a flooding client a fresh pace.
    fn make_room(&self, state: &mut SiteState, now: Instant) {
        if state.clients < self.max_clients {
            return;
        }
        let (rate, cap) = (self.pace_rate, self.pace_burst);
        for site in state.sites.values_mut() {
            site.clients
                .retain(|_, b| refilled(*b, rate, cap, now).tokens < cap);
        }
        let mut held: Vec<(f64, String, String)> = state
            .sites
            .iter()
            .flat_map(|(key, site)| {
                site.clients.iter().map(move |(client, b)| {
                    (
                        refilled(*b, rate, cap, now).tokens,
                        key.clone(),
                        client.clone(),
                    )
                })
            })
            .collect();
        if held.len() >= self.max_clients {
            held.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
            let excess = held.len() - self.max_clients / 2;
            for (_, key, client) in held.iter().take(excess) {
                if let Some(site) = state.sites.get_mut(key) {
                    site.clients.remove(client);
                }
            }
        }
        state.clients = state.sites.values().map(|s| s.clients.len()).sum();
    }

    /// Pace buckets held (for tests).
    #[cfg(test)]
    fn clients(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clients
    }

    /// Takes a token from each site's bucket for a request from `client`
    /// (a [`client_key`]), or none at all.
    pub fn check<'a>(
        &self,
        sites: impl IntoIterator<Item = &'a str> + Clone,
        client: &str,
        now: Instant,
    ) -> Result<(), SiteRefusal> {
        if self.rate == 0.0 {
            return Ok(());
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut refusal: Option<SiteRefusal> = None;
        for key in sites.clone() {
            let site = state.sites.entry(key.to_owned()).or_insert_with(|| Site {
                bucket: Bucket {
                    tokens: self.burst,
                    last: now,
                },
                clients: HashMap::new(),
            });
            site.bucket = refilled(site.bucket, self.rate, self.burst, now);
            let within_pace = self.pace_rate == 0.0
                || site.clients.get(client).map_or(self.pace_burst, |b| {
                    refilled(*b, self.pace_rate, self.pace_burst, now).tokens
                }) >= 1.0;
            let needed = self.needed(within_pace);
            if site.bucket.tokens < needed {
                let wait = (needed - site.bucket.tokens) / self.rate;
                let r = refusal.get_or_insert(SiteRefusal {
                    wait: Duration::ZERO,
                    over_pace: false,
                });
                r.wait = r.wait.max(Duration::from_secs_f64(wait.min(3600.0)));
                r.over_pace |= !within_pace;
            }
        }
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        for key in sites {
            let has_client = state
                .sites
                .get(key)
                .is_some_and(|s| s.clients.contains_key(client));
            if !has_client && self.pace_rate > 0.0 {
                self.make_room(&mut state, now);
                state.clients += 1;
            }
            let Some(site) = state.sites.get_mut(key) else {
                continue;
            };
            site.bucket.tokens -= 1.0;
            if self.pace_rate > 0.0 {
                let pace = site.clients.entry(client.to_owned()).or_insert(Bucket {
                    tokens: self.pace_burst,
                    last: now,
                });
                *pace = refilled(*pace, self.pace_rate, self.pace_burst, now);
                // Beyond its pace a request is paid from the shared upper
                // half alone; the pace bucket stays empty and refills.
                pace.tokens = (pace.tokens - 1.0).max(0.0);
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

    /// One simulated run: `flood` addresses each trying every `flood_every`,
    /// and a browser sending one batch every `browser_every` (one page
    /// view), for `secs` seconds on an injected clock. Returns (browser
    /// sent, browser accepted, flood accepted, flood refused as over its
    /// pace).
    fn simulate(
        rl: &SiteLimiter,
        flood: usize,
        flood_every: Duration,
        browser_every: Duration,
        secs: u64,
    ) -> (u32, u32, u32, u32) {
        let t0 = Instant::now();
        let step = Duration::from_millis(10);
        let steps = u32::try_from(secs * 100).unwrap();
        let every = |d: Duration| u32::try_from(d.as_millis() / 10).unwrap().max(1);
        let (flood_every, browser_every) = (every(flood_every), every(browser_every));
        let mut counts = (0, 0, 0, 0);
        for i in 0..steps {
            let now = t0 + step * i;
            for a in 0..flood {
                // Staggered: address a tries at its own offset.
                let offset = u32::try_from(a).unwrap() % flood_every;
                if i % flood_every == offset {
                    match rl.check(["site"], &format!("10.0.{}.{}", a / 256, a % 256), now) {
                        Ok(()) => counts.2 += 1,
                        Err(r) if r.over_pace => counts.3 += 1,
                        Err(_) => {}
                    }
                }
            }
            if i % browser_every == browser_every / 2 {
                counts.0 += 1;
                if rl.check(["site"], "192.0.2.7", now).is_ok() {
                    counts.1 += 1;
                }
            }
        }
        counts
    }

    #[test]
    fn a_browser_gets_every_batch_through_a_flood_from_many_addresses() {
        // 50 addresses each at 2 requests/s (20 times a browser's pace),
        // 10 times the site's rate between them, for 10 minutes; a browser
        // sends a batch every 15 s.
        let rl = SiteLimiter::new(10.0, 20, 0.1, 5);
        let secs = 600;
        let (sent, accepted, flood_accepted, shed) = simulate(
            &rl,
            50,
            Duration::from_millis(500),
            Duration::from_secs(15),
            secs,
        );
        assert_eq!(sent, 40);
        assert_eq!(accepted, sent, "the browser lost batches to the flood");
        // The flood is shed as over its pace, and gets what is left: the
        // site's rate, never more.
        assert!(shed > 50_000, "{shed}");
        let cap = 20 + 10 * u32::try_from(secs).unwrap();
        assert!(flood_accepted + accepted <= cap, "{flood_accepted}");
        assert!(flood_accepted + accepted >= cap - 100, "{flood_accepted}");
    }

    #[test]
    fn without_a_pace_the_same_flood_starves_the_browser() {
        // The landed limiter (one bucket per site): the browser's batches
        // are refused as often as the flood's.
        let rl = SiteLimiter::new(10.0, 20, 0.0, 5);
        let (sent, accepted, _, shed) = simulate(
            &rl,
            50,
            Duration::from_millis(500),
            Duration::from_secs(15),
            600,
        );
        assert_eq!(shed, 0);
        assert!(accepted * 4 < sent, "{accepted} of {sent}");
    }

    #[test]
    fn addresses_sending_slightly_more_than_a_browser_are_shed_first() {
        // 80 addresses each at twice the pace: their pace alone covers 8 of
        // the site's 10 requests/s, their whole demand 16/s.
        let rl = SiteLimiter::new(10.0, 20, 0.1, 5);
        let (sent, accepted, _, shed) = simulate(
            &rl,
            80,
            Duration::from_secs(5),
            Duration::from_secs(15),
            600,
        );
        assert_eq!(accepted, sent);
        assert!(shed > 0);
    }

    #[test]
    fn more_addresses_at_a_browsers_pace_than_the_site_allows_share_it() {
        // 300 addresses each exactly at the pace (30 requests/s against a
        // rate of 10): they cannot be told from visitors. The site still
        // gets no more than its rate, and the browser gets a share like
        // any of them.
        let rl = SiteLimiter::new(10.0, 20, 0.1, 5);
        let secs = 600;
        let (sent, accepted, flood_accepted, _) = simulate(
            &rl,
            300,
            Duration::from_secs(10),
            Duration::from_secs(15),
            secs,
        );
        assert!(accepted < sent, "{accepted} of {sent}");
        assert!(accepted > 0);
        assert!(flood_accepted + accepted <= 20 + 10 * u32::try_from(secs).unwrap());
    }

    #[test]
    fn a_client_alone_gets_the_whole_site_rate() {
        // Beyond its pace, but nobody else is there: work-conserving.
        let rl = SiteLimiter::new(10.0, 20, 0.1, 5);
        let t0 = Instant::now();
        let mut accepted = 0;
        for i in 0..10_000u32 {
            // 100 tries a second for 100 s.
            if rl
                .check(["s"], "a", t0 + Duration::from_millis(10) * i)
                .is_ok()
            {
                accepted += 1;
            }
        }
        assert!((1000..=1020).contains(&accepted), "{accepted}");
    }

    #[test]
    fn over_pace_refusals_say_so_and_when_to_retry() {
        let rl = SiteLimiter::new(2.0, 11, 1.0, 1);
        let t0 = Instant::now();
        // Within its pace: takes one token; then beyond it, down to the
        // reserve of 1 + (11 - 1) / 2 = 6 tokens.
        for _ in 0..6 {
            assert!(rl.check(["s"], "a", t0).is_ok());
        }
        let r = rl.check(["s"], "a", t0).expect_err("reserve reached");
        assert!(r.over_pace);
        assert_eq!(r.wait, Duration::from_millis(500));
        assert_eq!(retry_after_secs(r.wait), 1);
        // Another client within its pace takes the reserve, to the last token.
        for i in 0..5 {
            assert!(rl.check(["s"], &format!("b{i}"), t0).is_ok(), "{i}");
        }
        let r = rl.check(["s"], "c", t0).expect_err("bucket empty");
        assert!(!r.over_pace);
        assert_eq!(r.wait, Duration::from_millis(500));
        // A second later "a" has a pace token again, and the site two tokens.
        let t1 = t0 + Duration::from_secs(1);
        assert!(rl.check(["s"], "a", t1).is_ok());
        // A refused request costs nothing: "c" was not charged.
        assert!(rl.check(["s"], "c", t1).is_ok());
    }

    #[test]
    fn all_or_nothing_across_sites_with_a_pace() {
        let rl = SiteLimiter::new(1.0, 1, 1.0, 5);
        let t0 = Instant::now();
        assert!(rl.check(["a"], "c", t0).is_ok());
        assert!(rl.check(["a", "b"], "c", t0).is_err());
        assert!(rl.check(["b"], "c", t0).is_ok());
        let off = SiteLimiter::new(0.0, 1, 1.0, 1);
        for _ in 0..100 {
            assert!(off.check(["a"], "c", t0).is_ok());
        }
    }

    #[test]
    fn the_pace_map_stays_bounded_and_forgets_the_heaviest_last() {
        // The site's reserve is 1 + 999 / 2 = 500.5 tokens.
        let rl = SiteLimiter::new(1.0, 1000, 0.01, 3).with_max_clients(8);
        let t0 = Instant::now();
        // "heavy" spends its pace.
        for _ in 0..3 {
            assert!(rl.check(["s"], "heavy", t0).is_ok());
        }
        // 600 new clients within their pace take the site below its reserve
        // while the map never holds more than 8 of them.
        for i in 0..600 {
            assert!(rl.check(["s"], &format!("v{i}"), t0).is_ok(), "{i}");
            assert!(rl.clients() <= 8, "{}", rl.clients());
        }
        // "heavy" was not forgotten: it is still beyond its pace.
        let r = rl
            .check(["s"], "heavy", t0)
            .expect_err("still beyond its pace");
        assert!(r.over_pace);
        assert!(rl.check(["s"], "new", t0).is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
