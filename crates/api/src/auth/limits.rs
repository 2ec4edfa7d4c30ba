//! Abuse limits kept in memory: request rate limits (a token bucket per caller and route class)
//! and the sign-in throttle (slow-down, then lock-out, per account and source address).
//!
//! The sign-in lock is keyed on account + source address (ASVS 6.1.1 / 2.2.1): an attacker who
//! guesses from elsewhere locks only their own address out. A much higher per-account threshold
//! stops a distributed guess, and even then addresses the account signed in from before keep
//! working; a per-address threshold stops one address spraying many accounts.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sign-in throttle settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures (per account and address) before each attempt must wait 1, 2, 4, … s.
    pub slowdown_after: u32,
    /// Failures (per account and address) that lock the pair out for `duration`.
    pub threshold: u32,
    /// How long a lock lasts, and how long failures are remembered.
    pub duration: Duration,
    /// Failures of one account from every address that lock it for unknown addresses.
    pub account_threshold: u32,
    /// Failures from one address over every account that lock the address out.
    pub ip_threshold: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            slowdown_after: 3,
            threshold: 10,
            duration: Duration::from_secs(15 * 60),
            account_threshold: 100,
            ip_threshold: 200,
        }
    }
}

/// Why a sign-in attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Too fast after recent failures; retry after this long.
    SlowDown(Duration),
    /// Locked out; retry after this long.
    Locked(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

#[derive(Default)]
struct ThrottleState {
    pairs: HashMap<(String, IpAddr), Failures>,
    accounts: HashMap<String, Failures>,
    ips: HashMap<IpAddr, Failures>,
    /// Account and address pairs that signed in successfully.
    known: HashSet<(String, IpAddr)>,
}

/// Counts failed sign-ins and decides when to slow down or lock out.
pub struct LoginThrottle {
    policy: LockoutPolicy,
    state: Mutex<ThrottleState>,
}

const MAX_ENTRIES: usize = 200_000;

impl LoginThrottle {
    pub fn new(policy: LockoutPolicy) -> Self {
        LoginThrottle {
            policy,
            state: Mutex::new(ThrottleState::default()),
        }
    }

    pub fn policy(&self) -> LockoutPolicy {
        self.policy
    }

    fn live(&self, f: Option<&Failures>, now: Instant) -> Option<Failures> {
        f.copied()
            .filter(|f| now.saturating_duration_since(f.last) < self.policy.duration)
    }

    /// Whether `account` may try a password from `ip` now.
    pub fn check(&self, account: &str, ip: IpAddr) -> Result<(), Throttled> {
        self.check_at(account, ip, Instant::now())
    }

    fn check_at(&self, account: &str, ip: IpAddr, now: Instant) -> Result<(), Throttled> {
        let Ok(st) = self.state.lock() else {
            return Ok(());
        };
        let p = &self.policy;
        let key = (account.to_string(), ip);
        let remaining = |f: &Failures, d: Duration| d.saturating_sub(now - f.last);
        if let Some(f) = self.live(st.ips.get(&ip), now) {
            if p.ip_threshold > 0 && f.count >= p.ip_threshold {
                return Err(Throttled::Locked(remaining(&f, p.duration)));
            }
        }
        if let Some(f) = self.live(st.accounts.get(account), now) {
            if p.account_threshold > 0 && f.count >= p.account_threshold && !st.known.contains(&key)
            {
                return Err(Throttled::Locked(remaining(&f, p.duration)));
            }
        }
        if let Some(f) = self.live(st.pairs.get(&key), now) {
            if p.threshold > 0 && f.count >= p.threshold {
                return Err(Throttled::Locked(remaining(&f, p.duration)));
            }
            if p.slowdown_after > 0 && f.count >= p.slowdown_after {
                let exp = (f.count - p.slowdown_after).min(6);
                let wait = Duration::from_secs(1 << exp);
                let left = remaining(&f, wait);
                if !left.is_zero() {
                    return Err(Throttled::SlowDown(left));
                }
            }
        }
        Ok(())
    }

    /// Counts a failed attempt.
    pub fn failure(&self, account: &str, ip: IpAddr) {
        let now = Instant::now();
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if st.pairs.len() > MAX_ENTRIES {
            Self::prune_state(&mut st, self.policy.duration, now);
        }
        let duration = self.policy.duration;
        let bump = |f: Option<&mut Failures>| -> Failures {
            match f {
                Some(f) if now.saturating_duration_since(f.last) < duration => Failures {
                    count: f.count.saturating_add(1),
                    last: now,
                },
                _ => Failures {
                    count: 1,
                    last: now,
                },
            }
        };
        let key = (account.to_string(), ip);
        let v = bump(st.pairs.get_mut(&key));
        st.pairs.insert(key, v);
        let v = bump(st.accounts.get_mut(account));
        st.accounts.insert(account.to_string(), v);
        let v = bump(st.ips.get_mut(&ip));
        st.ips.insert(ip, v);
    }

    /// Clears the pair's failures and remembers the address as one the account uses.
    pub fn success(&self, account: &str, ip: IpAddr) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let key = (account.to_string(), ip);
        st.pairs.remove(&key);
        if st.known.len() < MAX_ENTRIES {
            st.known.insert(key);
        }
    }

    /// Forgets failures older than the lock duration.
    pub fn prune(&self) {
        if let Ok(mut st) = self.state.lock() {
            Self::prune_state(&mut st, self.policy.duration, Instant::now());
        }
    }

    fn prune_state(st: &mut ThrottleState, duration: Duration, now: Instant) {
        let live = |f: &Failures| now.saturating_duration_since(f.last) < duration;
        st.pairs.retain(|_, f| live(f));
        st.accounts.retain(|_, f| live(f));
        st.ips.retain(|_, f| live(f));
    }
}

/// Requests per minute by kind of caller; 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Staff signed in with a session.
    pub staff_per_minute: u32,
    /// Audience signed in with a session.
    pub audience_per_minute: u32,
    /// Callers using an API token.
    pub api_token_per_minute: u32,
    /// Callers that are not signed in, per source address.
    pub anonymous_per_minute: u32,
    /// Sign-in, sign-up and e-mail link endpoints, per source address.
    pub auth_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            staff_per_minute: 600,
            audience_per_minute: 120,
            api_token_per_minute: 600,
            anonymous_per_minute: 120,
            auth_per_minute: 30,
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets by key: each holds up to `per_minute` requests and refills at that rate.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one token from `key`'s bucket, or answers how long until one is there.
    pub fn take(&self, key: &str, per_minute: u32) -> Result<(), Duration> {
        if per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let Ok(mut map) = self.buckets.lock() else {
            return Ok(());
        };
        if map.len() > MAX_ENTRIES {
            Self::prune_map(&mut map, now);
        }
        let cap = f64::from(per_minute);
        let rate = cap / 60.0;
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: cap,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(cap);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }

    /// Drops buckets untouched for 10 minutes (they are full again by then).
    pub fn prune(&self) {
        if let Ok(mut map) = self.buckets.lock() {
            Self::prune_map(&mut map, Instant::now());
        }
    }

    fn prune_map(map: &mut HashMap<String, Bucket>, now: Instant) {
        map.retain(|_, b| now.saturating_duration_since(b.last) < Duration::from_secs(600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn failures_slow_down_then_lock_only_that_address() {
        let t = LoginThrottle::new(LockoutPolicy {
            slowdown_after: 2,
            threshold: 4,
            duration: Duration::from_secs(60),
            account_threshold: 100,
            ip_threshold: 100,
        });
        let a = "a@example.com";
        t.failure(a, ip(1));
        assert!(t.check(a, ip(1)).is_ok());
        t.failure(a, ip(1));
        assert!(matches!(t.check(a, ip(1)), Err(Throttled::SlowDown(_))));
        t.failure(a, ip(1));
        t.failure(a, ip(1));
        assert!(
            matches!(t.check(a, ip(1)), Err(Throttled::Locked(d)) if d > Duration::from_secs(50))
        );
        // The real user elsewhere is not locked out.
        assert!(t.check(a, ip(2)).is_ok());
        // A success clears the pair.
        t.success(a, ip(1));
        assert!(t.check(a, ip(1)).is_ok());
    }

    #[test]
    fn account_wide_lock_spares_known_addresses() {
        let t = LoginThrottle::new(LockoutPolicy {
            slowdown_after: 0,
            threshold: 0,
            duration: Duration::from_secs(60),
            account_threshold: 5,
            ip_threshold: 0,
        });
        let a = "a@example.com";
        t.success(a, ip(9));
        for n in 0..5 {
            t.failure(a, ip(n));
        }
        assert!(matches!(t.check(a, ip(200)), Err(Throttled::Locked(_))));
        assert!(t.check(a, ip(9)).is_ok());
    }

    #[test]
    fn bucket_refuses_past_its_size_and_says_when() {
        let r = RateLimiter::default();
        for _ in 0..3 {
            assert!(r.take("k", 3).is_ok());
        }
        let wait = r.take("k", 3).unwrap_err();
        assert!(wait > Duration::from_secs(10) && wait <= Duration::from_secs(20));
        assert!(r.take("other", 3).is_ok());
        assert!(r.take("k", 0).is_ok());
    }
}
